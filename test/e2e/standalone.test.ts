import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { isLoopbackAddress } from '../../lib/hostCheck.ts';
import { listeningSocketsOf, processTree } from '../sockets.ts';
import { dynamodbEndpoint, pollUntil, startService, uniqueTable, validOrder, type RunningService } from '../support.ts';
import { describeContract } from './contract.ts';

const SCRIPT = 'start:standalone';
/** tsx start-up, plus a few seconds when the service starts its own DynamoDB Local. */
const START_TIMEOUT_MS = 90_000;

/** Every service this file spawned, so afterAll can stop the ones a failed test left running. */
const spawned: RunningService[] = [];
const temporaryFolders: string[] = [];

const start = async (env: Record<string, string>): Promise<RunningService> => {
  const service = await startService(SCRIPT, { PORT: '0', ...env }, { timeoutMs: START_TIMEOUT_MS });
  spawned.push(service);
  return service;
};

/** SIGTERM, then SIGKILL if it has not exited within the grace period. */
const stopForSure = async (service: RunningService, graceMs = 20_000): Promise<number | null> => {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
  const code = await Promise.race([service.stop('SIGTERM'), late]);
  clearTimeout(timer);
  return code === 'late' ? service.stop('SIGKILL') : code;
};

/** SIGTERM to the service, resolving with its exit code, or 'timed out'. */
const terminate = async (service: RunningService, timeoutMs = 20_000): Promise<number | null | 'timed out'> => {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'timed out'>((resolve) => (timer = setTimeout(() => resolve('timed out'), timeoutMs)));
  const code = await Promise.race([service.stop('SIGTERM'), late]);
  clearTimeout(timer);
  return code;
};

afterAll(async () => {
  await Promise.all(spawned.map((service) => stopForSure(service)));
  await Promise.all(temporaryFolders.map((folder) => rm(folder, { recursive: true, force: true })));
}, 120_000);

const fastProcessing = { PROCESSING_MIN_MS: '20', PROCESSING_MAX_MS: '60' };

const postOrder = async (url: string, order: Record<string, unknown>) => {
  const response = await fetch(`${url}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(order),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

const getMetrics = async (url: string) => {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  return (await response.json()) as {
    total_orders: number;
    total_orders_processed: number;
    status_counts: Record<string, number>;
  };
};

describeContract(SCRIPT, async () => {
  const service = await start({
    DYNAMODB_ENDPOINT: dynamodbEndpoint(),
    TABLE_NAME: uniqueTable('contract'),
    ...fastProcessing,
  });
  return { url: service.url, stop: () => stopForSure(service) };
});

describe(`${SCRIPT} under load and across restarts`, () => {
  it(
    'accepts 1000 concurrent orders and completes all of them',
    async () => {
      const service = await start({
        DYNAMODB_ENDPOINT: dynamodbEndpoint(),
        TABLE_NAME: uniqueTable('load'),
        PROCESSING_CONCURRENCY: '32',
        ...fastProcessing,
      });
      const count = 1000;
      const orders = Array.from({ length: count }, (_, i) =>
        validOrder({ order_id: `load-${String(i).padStart(4, '0')}`, user_id: `USER${i % 50}` }),
      );

      const latencies: number[] = [];
      const started = performance.now();
      const answers = await Promise.all(
        orders.map(async (order) => {
          const sent = performance.now();
          const answer = await postOrder(service.url, order);
          latencies.push(performance.now() - sent);
          return answer;
        }),
      );
      const createdMs = performance.now() - started;

      const statuses = new Map<number, number>();
      for (const answer of answers) statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      expect(Object.fromEntries(statuses)).toEqual({ 201: count });
      expect(new Set(answers.map((answer) => answer.body.order_id)).size).toBe(count);
      for (const answer of answers) expect(answer.body).toMatchObject({ status: 'PENDING', attempts: 0 });

      const metrics = await pollUntil(
        async () => {
          const current = await getMetrics(service.url);
          return current.total_orders_processed === count && current.status_counts.COMPLETED === count ? current : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 250, what: `${count} orders to complete` },
      );
      const completedMs = performance.now() - started;

      expect(metrics).toMatchObject({
        total_orders: count,
        total_orders_processed: count,
        status_counts: { PENDING: 0, PROCESSING: 0, COMPLETED: count, FAILED: 0 },
      });
      latencies.sort((a, b) => a - b);
      const at = (q: number) => Math.round(latencies[Math.min(count - 1, Math.floor(q * count))]!);
      console.log(
        `[load] ${count} concurrent creates answered in ${Math.round(createdMs)} ms ` +
          `(latency p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms); ` +
          `all ${count} COMPLETED ${Math.round(completedMs)} ms after the first request, ` +
          `${Math.round(completedMs - createdMs)} ms after the last create was answered ` +
          `(PROCESSING_CONCURRENCY 32, PROCESSING_MIN_MS 20, PROCESSING_MAX_MS 60)`,
      );

      expect(await terminate(service)).toBe(0);
    },
    240_000,
  );

  it(
    'keeps every order across a restart',
    async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'orders-restart-'));
      temporaryFolders.push(dataDir);
      const env = {
        // Empty means unset: the service starts its own DynamoDB Local, persisted under DATA_DIR.
        DYNAMODB_ENDPOINT: '',
        DATA_DIR: dataDir,
        TABLE_NAME: uniqueTable('restart'),
        // Slow enough that orders are still PENDING or PROCESSING when it stops.
        PROCESSING_MIN_MS: '200',
        PROCESSING_MAX_MS: '400',
        PROCESSING_CONCURRENCY: '4',
        // Work cut off by the stop becomes due again soon after the restart.
        LEASE_MS: '2000',
        SWEEP_INTERVAL_MS: '500',
        WARMUP_ORDERS: '1000',
        LOG_LEVEL: 'INFO',
      };
      const count = 50;

      const first = await start(env);
      // It warmed up on a table of its own before it said it was ready, and left nothing of it behind.
      expect(first.output()).toMatch(/"message":"warmed up"[^\n]*"orders":1000/);
      // It logged at INFO as the service does, into nothing: none of its orders' lines reached the log.
      expect(first.output()).not.toMatch(/warmup-(\d|user-)/);
      const endpoint = /DynamoDB Local at (http:\/\/\S+),/.exec(first.output())![1]!;
      const { TableNames } = await new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }).send(
        new ListTablesCommand({}),
      );
      expect(TableNames?.sort()).toEqual([env.TABLE_NAME, `${env.TABLE_NAME}-states`].sort());
      const answers = await Promise.all(
        Array.from({ length: count }, (_, i) => postOrder(first.url, validOrder({ order_id: `restart-${i}`, total_amount: i + 0.25 }))),
      );
      expect(answers.map((answer) => answer.status)).toEqual(Array(count).fill(201));
      const createdAt = new Map(answers.map((answer) => [String(answer.body.order_id), answer.body.created_at]));
      const before = await getMetrics(first.url);
      expect(before.total_orders).toBe(count);
      expect(before.total_orders_processed).toBeLessThan(count);

      expect(await terminate(first)).toBe(0);

      const second = await start(env);
      for (let i = 0; i < count; i++) {
        const response = await fetch(`${second.url}/orders/restart-${i}`);
        expect(response.status).toBe(200);
        expect(await response.json()).toMatchObject({
          order_id: `restart-${i}`,
          user_id: 'USER001',
          item_ids: [1, 2, 3],
          total_amount: i + 0.25,
          created_at: createdAt.get(`restart-${i}`),
        });
      }

      const metrics = await pollUntil(
        async () => {
          const current = await getMetrics(second.url);
          return current.status_counts.COMPLETED === count ? current : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 250, what: `all ${count} orders to complete after the restart` },
      );
      expect(metrics).toMatchObject({
        total_orders: count,
        total_orders_processed: count,
        status_counts: { PENDING: 0, PROCESSING: 0, COMPLETED: count, FAILED: 0 },
      });
      for (let i = 0; i < count; i++) {
        const response = await fetch(`${second.url}/orders/restart-${i}/status`);
        expect(await response.json()).toEqual({ order_id: `restart-${i}`, status: 'COMPLETED' });
      }

      expect(await terminate(second)).toBe(0);
    },
    240_000,
  );

  it(
    'shuts down gracefully on SIGTERM with exit code 0',
    async () => {
      const service = await start({
        DYNAMODB_ENDPOINT: dynamodbEndpoint(),
        TABLE_NAME: uniqueTable('shutdown'),
        ...fastProcessing,
      });
      expect((await postOrder(service.url, validOrder())).status).toBe(201);

      const stopping = Date.now();
      expect(await terminate(service)).toBe(0);
      // Half a lease at most for work in flight, then it exits.
      expect(Date.now() - stopping).toBeLessThan(15_000);
      expect(service.output()).not.toMatch(/\bError\b|ERROR|unhandled/);
      await expect(fetch(`${service.url}/health`)).rejects.toThrow();
    },
    120_000,
  );
});

describe(`${SCRIPT} warming up on a busy machine`, () => {
  it(
    'starts when the service sheds some of its warm-up, and says so',
    async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'orders-shed-'));
      temporaryFolders.push(dataDir);
      // A warm-up wave of 1 000 requests at once against a limit of 20: most are answered 503.
      const service = await start({ DYNAMODB_ENDPOINT: '', DATA_DIR: dataDir, TABLE_NAME: uniqueTable('shed'), WARMUP_ORDERS: '1000', MAX_REQUESTS_IN_FLIGHT: '20', LOG_LEVEL: 'INFO' });
      expect(service.output()).toMatch(/"message":"warm-up requests shed[^"]*"[^\n]*"shed":[1-9]/);
      expect(service.output()).toMatch(/"message":"warmed up"/);
      expect((await postOrder(service.url, validOrder({ order_id: 'after-a-shed-warm-up' }))).status).toBe(201);
      expect(await stopForSure(service)).toBe(0);
    },
    START_TIMEOUT_MS * 2,
  );
});

describe(`${SCRIPT} with its own DynamoDB Local: what it exposes`, () => {
  it(
    'listens on loopback only: the API (node) and DynamoDB Local (java)',
    async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'orders-exposure-'));
      temporaryFolders.push(dataDir);
      const service = await start({ DYNAMODB_ENDPOINT: '', DATA_DIR: dataDir, TABLE_NAME: uniqueTable('exposure') });

      const sockets = await listeningSocketsOf(await processTree(service.process.pid!));
      expect(sockets).toHaveLength(2);
      expect(sockets.map((socket) => socket.port)).toContain(Number(new URL(service.url).port));
      for (const socket of sockets) expect(isLoopbackAddress(socket.address), `${socket.address}:${socket.port}`).toBe(true);

      expect(await terminate(service)).toBe(0);
    },
    120_000,
  );
});
