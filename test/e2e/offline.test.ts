import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../local/dynamodbLocal.ts';
import { dynamodbEndpoint, pollUntil, runToEnd, startService, uniqueTable, validOrder, type RunningService } from '../support.ts';
import { describeAuth } from './authContract.ts';
import { describeContract } from './contract.ts';

const SCRIPT = 'start:offline';
const spawned: RunningService[] = [];

/** `npm run start:offline` on free ports, with its own table on the test run's DynamoDB Local. */
const start = async (env: Record<string, string> = {}): Promise<RunningService> => {
  const service = await startService(
    SCRIPT,
    {
      PORT: String(await freePort()),
      OFFLINE_LAMBDA_PORT: String(await freePort()),
      DYNAMODB_ENDPOINT: dynamodbEndpoint(),
      TABLE_NAME: uniqueTable('offline'),
      PROCESSING_MIN_MS: '20',
      PROCESSING_MAX_MS: '60',
      ...env,
    },
    { timeoutMs: 120_000, readyPattern: /Server ready: (http:\/\/[^\s]+)/ },
  );
  spawned.push(service);
  return service;
};

afterAll(async () => {
  await Promise.all(spawned.map((service) => service.stop('SIGINT')));
}, 60_000);

describeContract(
  SCRIPT,
  async () => {
    const service = await start();
    return { url: service.url, stop: () => service.stop('SIGINT') };
  },
  { emulatorDefaultsContentType: true },
);

describeAuth(SCRIPT, async (env) => {
  const service = await start(env);
  return { ...service, stop: () => service.stop('SIGINT') };
}, async (env) =>
  runToEnd('npm', ['run', '--silent', SCRIPT], {
    PORT: String(await freePort()),
    OFFLINE_LAMBDA_PORT: String(await freePort()),
    DYNAMODB_ENDPOINT: dynamodbEndpoint(),
    TABLE_NAME: uniqueTable('offline-open'),
    ...env,
  }),
);

describe(`${SCRIPT}: the in-process consumer behind serverless-offline`, () => {
  it('completes 200 orders created through serverless-offline, with exact metrics', async () => {
    const { url } = await start({ PROCESSING_CONCURRENCY: '32' });

    const statuses = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const response = await fetch(`${url}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(validOrder({ order_id: `offline-${i}` })),
        });
        return response.status;
      }),
    );
    expect(statuses).toEqual(Array(200).fill(201));

    const metrics = await pollUntil(
      async () => {
        const body = (await (await fetch(`${url}/metrics`)).json()) as { total_orders_processed: number };
        return body.total_orders_processed === 200 ? body : undefined;
      },
      { timeoutMs: 90_000, what: '200 orders to complete' },
    );
    expect(metrics).toMatchObject({
      total_orders: 200,
      total_orders_processed: 200,
      status_counts: { PENDING: 0, PROCESSING: 0, COMPLETED: 200, FAILED: 0 },
    });
  });
});
