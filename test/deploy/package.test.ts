import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { unzipSync } from 'fflate';
import { beforeAll, describe, expect, it } from 'vitest';
import { ASSETS } from '../../lib/assets.ts';
import { ROUTES } from '../../lib/routes.ts';
import { createDocumentClient, createStore, stateTableDefinition, stateTableNameOf, tableDefinition } from '../../lib/store.ts';
import { apiEvent } from '../support.ts';

const run = promisify(execFile);

type Resource = { Type: string; Properties: Record<string, any>; DependsOn?: unknown };
let template: { Resources: Record<string, Resource>; Conditions: Record<string, unknown>; Outputs: Record<string, { Value: unknown }> };
let resources: Record<string, Resource>;
const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

/** The logical id a reference points at ({ Ref } or { Fn::GetAtt }), or undefined for anything else. */
const target = (value: any): string | undefined => value?.Ref ?? value?.['Fn::GetAtt']?.[0] ?? value?.['Fn::Join']?.[1]?.[0]?.['Fn::GetAtt']?.[0];

// `npm run package:staging` is what a team runs before deploying: it must work with no AWS credentials.
beforeAll(async () => {
  await run('npm', ['run', 'package:staging'], {
    env: { ...process.env, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: '' },
    timeout: 180_000,
  });
  template = JSON.parse(await readFile('.serverless/cloudformation-template-update-stack.json', 'utf8'));
  resources = template.Resources;
}, 200_000);

describe('the staging CloudFormation template', () => {
  it('has every function on nodejs22.x with its own small artifact', async () => {
    const functions = ofType('AWS::Lambda::Function');
    expect(functions.map(([id]) => id).sort()).toEqual(
      ['ApiDocs', 'CreateOrder', 'Dashboard', 'GetMetrics', 'GetStatus', 'Health', 'ListOrders', 'NotFound', 'ProcessOrder', 'Sweeper'].map((n) => `${n}LambdaFunction`),
    );
    for (const [, fn] of functions) {
      expect(fn.Properties.Runtime).toBe('nodejs22.x');
      const name = fn.Properties.Handler.split('/')[1].split('.')[0];
      expect(fn.Properties.Handler).toBe(`functions/${name}.handler`);
      expect((await stat(`.esbuild/${name}.zip`)).size).toBeLessThan(1024 * 1024);
    }
  });

  it('serves the dashboard, its files and the reference page from the artifacts alone', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'artifacts-'));
    try {
      const invoke = async (name: string, routeKey: string, path: string, pathParameters?: Record<string, string>) => {
        const folder = join(dir, name);
        for (const [file, bytes] of Object.entries(unzipSync(await readFile(`.esbuild/${name}.zip`)))) {
          await mkdir(dirname(join(folder, file)), { recursive: true });
          await writeFile(join(folder, file), bytes);
        }
        // Auth is off (no keys, not in Lambda), so the request must be addressed to this machine.
        const event = apiEvent({ routeKey, path, headers: { host: 'localhost' }, pathParameters });
        // A plain Node process with nothing but the unpacked artifact, as Lambda runs it.
        const script = `const { handler } = await import(${JSON.stringify(pathToFileURL(join(folder, 'functions', `${name}.mjs`)).href)});
          process.stdout.write(JSON.stringify(await handler(${JSON.stringify(event)})));`;
        const { stdout } = await run('node', ['--input-type=module', '-e', script], { cwd: dir, env: { ...process.env, LOG_LEVEL: 'ERROR' } });
        return JSON.parse(stdout) as { statusCode: number; headers: Record<string, string>; body: string };
      };

      const page = await invoke('dashboard', 'GET /', '/');
      expect(page).toMatchObject({ statusCode: 200, headers: { 'content-type': 'text/html; charset=utf-8' } });
      expect(page.body).toContain('/assets/dashboard.js');
      for (const name of Object.keys(ASSETS)) {
        const asset = await invoke('dashboard', 'GET /assets/{name}', `/assets/${name}`, { name });
        expect(asset.statusCode).toBe(200);
        expect(asset.body).toBe(await readFile(join('lib', 'web', name), 'utf8'));
      }
      const docs = await invoke('dashboard', 'GET /docs', '/docs');
      expect(docs).toMatchObject({ statusCode: 200, headers: { 'content-type': 'text/html; charset=utf-8' } });
      expect(docs.body).toContain('/assets/docs.js');
      const document = await invoke('apiDocs', 'GET /openapi.json', '/openapi.json');
      expect(document.statusCode).toBe(200);
      expect(JSON.parse(document.body).paths['/orders/{order_id}/status']).toBeDefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('routes every path of the API, plus a catch-all for 404 and 405', () => {
    const routeKeys = ofType('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties.RouteKey);
    expect(routeKeys.sort()).toEqual([...ROUTES.map((r) => `${r.method} ${r.path}`), '$default'].sort());
  });

  it('defines the tables exactly as the application creates them, named as it finds them, on demand with point-in-time recovery', async () => {
    expect(ofType('AWS::DynamoDB::Table').map(([id]) => id).sort()).toEqual(['OrderStatesTable', 'OrdersTable']);
    const store = createStore(createDocumentClient({ tableName: 'x', region: 'us-east-1' }), 'x');
    for (const [id, definition] of [['OrdersTable', tableDefinition(store)], ['OrderStatesTable', stateTableDefinition(store)]] as const) {
      const { AttributeDefinitions, KeySchema, GlobalSecondaryIndexes } = definition;
      const table = resources[id]!;
      expect(table.Properties).toMatchObject({
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        KeySchema,
      });
      expect(table.Properties.GlobalSecondaryIndexes).toEqual(GlobalSecondaryIndexes);
      expect(table.Properties.AttributeDefinitions).toEqual(expect.arrayContaining(AttributeDefinitions!));
    }
    const tableName = resources.OrdersTable!.Properties.TableName;
    expect(resources.OrderStatesTable!.Properties.TableName).toBe(stateTableNameOf(tableName));
    expect(resources.CreateOrderLambdaFunction!.Properties.Environment.Variables.TABLE_NAME).toBe(tableName);
  });

  it('sends poison messages to a dead-letter queue and reports partial batch failures', () => {
    const queue = resources.OrdersQueue!;
    expect(target(queue.Properties.RedrivePolicy.deadLetterTargetArn)).toBe('OrdersDeadLetterQueue');
    expect(queue.Properties.RedrivePolicy.maxReceiveCount).toBeGreaterThan(1);
    expect(queue.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(6 * resources.ProcessOrderLambdaFunction!.Properties.Timeout);
    const [[, mapping]] = ofType('AWS::Lambda::EventSourceMapping') as [[string, Resource]];
    expect(mapping.Properties).toMatchObject({ FunctionResponseTypes: ['ReportBatchItemFailures'] });
    expect(target(mapping.Properties.EventSourceArn)).toBe('OrdersQueue');
  });

  it('pages the operators through one topic: dead letters, a backlog falling behind, consumer, sweeper and API failures', () => {
    const watched = ofType('AWS::CloudWatch::Alarm').map(([, alarm]) => {
      const { AlarmActions, OKActions, Namespace, MetricName, Dimensions, TreatMissingData } = alarm.Properties;
      expect(AlarmActions.map(target)).toEqual(['AlarmTopic']);
      expect(OKActions.map(target)).toEqual(['AlarmTopic']);
      expect(TreatMissingData).toBe('notBreaching');
      return `${Namespace} ${MetricName} ${target(Dimensions[0].Value)}`;
    });
    expect(watched.sort()).toEqual([
      'AWS/ApiGateway 5xx HttpApi',
      'AWS/Lambda Errors ProcessOrderLambdaFunction',
      'AWS/Lambda Errors SweeperLambdaFunction',
      'AWS/SQS ApproximateAgeOfOldestMessage OrdersQueue',
      'AWS/SQS ApproximateNumberOfMessagesVisible OrdersDeadLetterQueue',
    ]);
    // With no ALARM_EMAIL at package time, the template holds the subscription but the condition leaves it out.
    expect(resources.AlarmEmail).toMatchObject({ Condition: 'HasAlarmEmail', Properties: { Protocol: 'email', Endpoint: '' } });
    expect(template.Conditions.HasAlarmEmail).toEqual({ 'Fn::Not': [{ 'Fn::Equals': ['', ''] }] });
    expect(target(template.Outputs.AlarmTopicArn?.Value)).toBe('AlarmTopic');
  });

  it('gives each function a least-privilege role: only its actions, only on this table and queue', () => {
    const roles = ofType('AWS::IAM::Role');
    expect(resources.IamRoleLambdaExecution).toBeUndefined();
    for (const [, role] of roles) {
      const statements = role.Properties.Policies.flatMap((p: any) => p.PolicyDocument.Statement);
      for (const statement of statements) {
        const resourcesOf = [statement.Resource].flat();
        expect(resourcesOf).not.toContain('*');
        for (const action of statement.Action as string[]) {
          expect(action).not.toMatch(/\*/);
          const allowedTargets = action.startsWith('dynamodb:') ? ['OrdersTable', 'OrderStatesTable'] : action.startsWith('sqs:') ? ['OrdersQueue'] : undefined;
          if (allowedTargets) for (const r of resourcesOf) expect(allowedTargets).toContain(target(r));
        }
      }
    }
    const actionsOf = (roleId: string) =>
      resources[roleId]!.Properties.Policies.flatMap((p: any) => p.PolicyDocument.Statement.flatMap((s: any) => s.Action)).sort();
    expect(actionsOf('ReadOrdersRole')).toEqual(['dynamodb:BatchGetItem', 'kms:Decrypt', 'logs:CreateLogStream', 'logs:PutLogEvents', 'ssm:GetParameter']);
    expect(actionsOf('NotFoundRole')).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
    expect(actionsOf('WebRole')).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
    expect(actionsOf('ApiDocsRole')).toEqual(['kms:Decrypt', 'logs:CreateLogStream', 'logs:PutLogEvents', 'ssm:GetParameter']);
    expect(actionsOf('CreateOrderRole')).toEqual(['dynamodb:BatchGetItem', 'dynamodb:PutItem', 'kms:Decrypt', 'logs:CreateLogStream', 'logs:PutLogEvents', 'sqs:SendMessage', 'ssm:GetParameter']);
    expect(actionsOf('ReadMetricsRole')).toEqual(['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:Query', 'kms:Decrypt', 'logs:CreateLogStream', 'logs:PutLogEvents', 'ssm:GetParameter']);
    expect(actionsOf('ListOrdersRole')).toEqual(['dynamodb:BatchGetItem', 'dynamodb:Query', 'kms:Decrypt', 'logs:CreateLogStream', 'logs:PutLogEvents', 'ssm:GetParameter']);
    expect(resources.ListOrdersRole!.Properties.Policies[0].PolicyDocument.Statement[1].Resource).toEqual({
      'Fn::Join': ['/', [{ 'Fn::GetAtt': ['OrdersTable', 'Arn'] }, 'index', 'byUser']],
    });
    expect(resources.ListOrdersLambdaFunction!.Properties.Role).toEqual({ 'Fn::GetAtt': ['ListOrdersRole', 'Arn'] });
  });

  it('reads the API keys from the stage\'s SSM parameter, only in the functions behind protected routes', () => {
    const parameter = '/order-processing/staging/api-keys';
    const protectedRoles = new Set<string>();
    for (const [, fn] of ofType('AWS::Lambda::Function')) {
      expect(fn.Properties.Environment.Variables.API_KEYS_PARAMETER).toBe(parameter);
      const name = fn.Properties.Handler.split('/')[1].split('.')[0];
      if (ROUTES.some((route) => route.handler === name && route.scope !== null)) protectedRoles.add(target(fn.Properties.Role)!);
    }
    expect([...protectedRoles].sort()).toEqual(['ApiDocsRole', 'CreateOrderRole', 'ListOrdersRole', 'ReadMetricsRole', 'ReadOrdersRole']);
    for (const [id, role] of ofType('AWS::IAM::Role')) {
      const statements = role.Properties.Policies.flatMap((p: any) => p.PolicyDocument.Statement);
      const reads = statements.filter((st: any) => st.Action.includes('ssm:GetParameter'));
      expect(reads.length, id).toBe(protectedRoles.has(id) ? 1 : 0);
      for (const read of reads) expect(read.Resource['Fn::Join'][1].at(-1)).toBe(parameter);
      for (const decrypt of statements.filter((st: any) => st.Action.includes('kms:Decrypt'))) {
        expect(decrypt.Condition.StringEquals['kms:ViaService']).toBeDefined();
      }
    }
  });
});
