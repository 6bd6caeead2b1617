import { spawnSync } from 'node:child_process';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/**
 * `npm run deploy:staging`: checks that AWS credentials are there (a clear message instead of a stack
 * trace from deep inside the framework), builds the artifacts, deploys the stage and prints the API URL.
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

run('npm', ['run', 'build']);
run('npx', ['serverless', 'deploy', '--stage', stage]);
const info = run('npx', ['serverless', 'info', '--stage', stage, '--verbose'], true);
const url = /HttpApiUrl:\s*(\S+)/.exec(info)?.[1];
process.stdout.write(url ? `\nAPI of stage ${stage}: ${url}\n` : `\n${info}`);
