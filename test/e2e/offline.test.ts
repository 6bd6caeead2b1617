import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLoopbackAddress } from '../../lib/hostCheck.ts';
import { listeningSocketsOf, processTree } from '../sockets.ts';
import { apiEvent, dynamodbEndpoint, pollUntil, runToEnd, startService, uniqueTable, validOrder, type RunningService } from '../support.ts';
import { API_KEYS, describeAuth, KEYS } from './authContract.ts';
import { describeContract } from './contract.ts';

const SCRIPT = 'start:offline';
const spawned: RunningService[] = [];

/** `npm run start:offline` on a port the OS picks as it binds (port 0), with its own table on the test run's DynamoDB Local. */
const start = async (env: Record<string, string> = {}): Promise<RunningService> => {
  const service = await startService(
    SCRIPT,
    {
      PORT: '0',
      DYNAMODB_ENDPOINT: dynamodbEndpoint(),
      TABLE_NAME: uniqueTable('offline'),
      PROCESSING_MIN_MS: '20',
      PROCESSING_MAX_MS: '60',
      ...env,
    },
    // The plugin's line, with the port bound (serverless-offline's own "Server ready" repeats the 0).
    { timeoutMs: 120_000, readyPattern: /Order service API listening on (http:\/\/\S+)/ },
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

/** `npm run start:offline -- <args>` to its end, as a refused start ends. */
const runOffline = async (env: Record<string, string>, args: string[] = []) =>
  runToEnd('npm', ['run', '--silent', SCRIPT, ...(args.length > 0 ? ['--', ...args] : [])], {
    PORT: '0',
    DYNAMODB_ENDPOINT: dynamodbEndpoint(),
    TABLE_NAME: uniqueTable('offline-open'),
    ...env,
  });

describeAuth(SCRIPT, async (env) => {
  const service = await start(env);
  return { ...service, stop: () => service.stop('SIGINT') };
}, runOffline);

describe(`${SCRIPT}: secure by default, however the host is given`, () => {
  it('refuses to go on without API keys when --host 0.0.0.0 binds beyond loopback', async () => {
    const ended = await runOffline({ API_KEYS: '' }, ['--host', '0.0.0.0']);

    expect(ended.code).not.toBe(0);
    expect(ended.output).toMatch(/Listening on 0\.0\.0\.0:\d+ would serve the API beyond this machine, but no API keys are configured\./);
  }, 120_000);
});

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

/** POSTs `body` to serverless-offline's Lambda invoke endpoint over its Unix socket; resolves with the status and payload. */
const invoke = (socketPath: string, functionName: string, body: unknown): Promise<{ status: number; payload: string }> =>
  new Promise((resolve, reject) => {
    const call = request({ socketPath, method: 'POST', path: `/2015-03-31/functions/${functionName}/invocations` }, (response) => {
      let payload = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (payload += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, payload }));
    });
    call.on('error', reject);
    call.end(JSON.stringify(body));
  });

describe(`${SCRIPT}: serverless-offline's Lambda invoke endpoint`, () => {
  let service: RunningService;
  let socket: string;
  beforeAll(async () => {
    service = await start({ API_KEYS });
    socket = /Lambda invoke endpoint on the Unix socket (\S+)/.exec(service.output())![1]!;
  }, 180_000);

  it("listens on no TCP port: the runtime's one listening TCP socket is the API's, on loopback", async () => {
    const sockets = await listeningSocketsOf(await processTree(service.process.pid!));

    expect(sockets.map((listening) => listening.port)).toEqual([Number(new URL(service.url).port)]);
    expect(isLoopbackAddress(sockets[0]!.address)).toBe(true);
  });

  it('refuses a forged getStatus invocation whose routeKey is $default with 401, even from this machine', async () => {
    const created = await fetch(`${service.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.writer}` },
      body: JSON.stringify(validOrder({ order_id: 'INVOKE-1' })),
    });
    expect(created.status).toBe(201);

    const forged = apiEvent({ routeKey: '$default', path: '/orders/INVOKE-1', pathParameters: { order_id: 'INVOKE-1' } });
    const answer = await invoke(socket, 'order-processing-local-getStatus', forged);

    expect(answer.status).toBe(200);
    const result = JSON.parse(answer.payload) as { statusCode: number; body: string };
    expect(result.statusCode).toBe(401);
    expect(result.body).not.toContain('INVOKE-1');
  });
});
