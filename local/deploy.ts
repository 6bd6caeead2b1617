import { spawnSync } from 'node:child_process';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';

/**
 * `npm run deploy:staging`: checks that AWS credentials and the stage's API keys are there (a clear
 * message instead of a stack trace from deep inside the framework), builds the artifacts, deploys the
 * stage and prints the API URL.
 */
const stage = process.argv[2] ?? 'staging';

const run = (command: string, args: string[], capture = false) => {
  const result = spawnSync(command, args, { stdio: capture ? ['inherit', 'pipe', 'inherit'] : 'inherit', encoding: 'utf8' });
  if (result.status !== 0) process.exit(result.status ?? 1);
  return result.stdout ?? '';
};

try {
  // The client's provider walks the SDK's default chain: env, profile, SSO, container and instance roles.
  await new DynamoDBClient({ region: process.env.AWS_REGION ?? 'us-east-1' }).config.credentials();
} catch {
  process.stderr.write(
    `No AWS credentials found, so stage "${stage}" cannot be deployed.\n` +
      'Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (after `aws configure` or `aws sso login`), and run it again.\n' +
      'To build the CloudFormation template without deploying, run `npm run package:staging`.\n',
  );
  process.exit(1);
}

// The stage refuses to go up without API keys: the functions would answer every protected route with 401.
const parameter = `/order-processing/${stage}/api-keys`;
try {
  await new SSMClient({ region: process.env.AWS_REGION ?? 'us-east-1' }).send(new GetParameterCommand({ Name: parameter }));
} catch (error) {
  const missing = (error as Error).name === 'ParameterNotFound';
  process.stderr.write(
    (missing ? `Stage "${stage}" has no API keys: the SSM parameter ${parameter} does not exist.\n` : `Could not read the SSM parameter ${parameter}: ${(error as Error).message}\n`) +
      'Make a key with `npm run key:new -- --name <name> --scopes orders:write,orders:read,metrics:read`, then store its entry:\n' +
      `  aws ssm put-parameter --type SecureString --name ${parameter} --value '<name>:<scopes>:<sha256>'\n`,
  );
  process.exit(1);
}

run('npm', ['run', 'build']);
run('npx', ['serverless', 'deploy', '--stage', stage]);
const info = run('npx', ['serverless', 'info', '--stage', stage, '--verbose'], true);
const url = /HttpApiUrl:\s*(\S+)/.exec(info)?.[1];
process.stdout.write(url ? `\nAPI of stage ${stage}: ${url}\n` : `\n${info}`);
