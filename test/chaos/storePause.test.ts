import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { startDynamoDBLocal, type DynamoDBLocal } from '../../local/dynamodbLocal.ts';
import { countByStatus, pollUntil, testServices, uniqueTable, validOrder } from '../support.ts';
import { expectEachTransitionOnce, expectMetricsEqualScan, getMetrics, postAll, standaloneSpawner, tally, type Answer } from './harness.ts';

const ORDERS = 40;
/** The service's answer deadline in this test (REQUEST_DEADLINE_MS): short, so the test is. */
const DEADLINE_MS = 2_000;
/** How long the store stays paused: longer than the deadline and than a lease. */
const PAUSE_MS = 5_000;
const start = standaloneSpawner();
const run = promisify(execFile);

let dynamodb: DynamoDBLocal | undefined;
afterAll(async () => {
  if (dynamodb) await run('pkill', ['-CONT', '-P', String(dynamodb.pid)]).catch(() => undefined);
  await dynamodb?.stop();
}, 60_000);

/** Stops or continues DynamoDB Local's JVM (a child of its launcher shell): a store that hangs, not one that is gone. */
const signalStore = (store: DynamoDBLocal, signal: 'STOP' | 'CONT') => run('pkill', [`-${signal}`, '-P', String(store.pid), 'java']);

/** One request, its answer and how long it took (given up at four deadlines). */
const timed = async (url: string, init: RequestInit = {}) => {
  const asked = performance.now();
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(4 * DEADLINE_MS) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown>, ms: performance.now() - asked };
};

describe('a store that hangs', () => {
  it(
    'answers every request within the deadline while DynamoDB Local is paused, and loses nothing after it continues',
    async () => {
      dynamodb = await startDynamoDBLocal();
      const table = uniqueTable('pause');
      const { store } = await testServices({ TABLE_NAME: table, DYNAMODB_ENDPOINT: dynamodb.endpoint });
      const service = await start({
        DYNAMODB_ENDPOINT: dynamodb.endpoint,
        TABLE_NAME: table,
        REQUEST_DEADLINE_MS: String(DEADLINE_MS),
        LEASE_MS: '3000',
        SWEEP_INTERVAL_MS: '300',
        PROCESSING_MIN_MS: '200',
        PROCESSING_MAX_MS: '600',
        PROCESSING_CONCURRENCY: '4',
      });
      const orders = Array.from({ length: ORDERS }, (_, i) => validOrder({ order_id: `pause-${i}` }));
      expect(tally(await postAll(service.url, orders, { concurrency: 10 }))).toEqual({ 201: ORDERS });

      await signalStore(dynamodb, 'STOP');
      const paused = performance.now();
      // Creates (each sent again after the pause, as a client told to retry would) and reads, while it hangs.
      const during: Record<string, unknown>[] = [];
      const answers: { status: number; body: Record<string, unknown>; ms: number }[] = [];
      let probe = 0;
      do {
        const order = validOrder({ order_id: `pause-during-${probe}` });
        during.push(order);
        const [created, read] = await Promise.all([
          timed(`${service.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(order) }),
          timed(`${service.url}/orders/pause-${probe % ORDERS}`),
        ]);
        answers.push(created, read);
        probe++;
      } while (performance.now() - paused < PAUSE_MS);
      await signalStore(dynamodb, 'CONT');

      // Each answered 503 problem JSON within the deadline (plus the event loop's slack), none hung.
      expect(answers.filter((answer) => answer.status !== 503)).toEqual([]);
      expect(answers[0]!.body).toMatchObject({ title: 'Service unavailable', status: 503, request_id: expect.any(String) });
      const slowest = Math.max(...answers.map((answer) => answer.ms));
      expect(slowest).toBeLessThan(DEADLINE_MS + 1_000);

      // After the pause the creates answered 503 are sent again with their order_id: each stored once.
      const retried: Answer[] = await postAll(service.url, during, { concurrency: 10 });
      expect(retried.filter((answer) => !(answer.kind === 'answered' && (answer.status === 201 || answer.status === 200)))).toEqual([]);
      const total = ORDERS + during.length;
      await pollUntil(async () => ((await getMetrics(service.url)).status_counts.COMPLETED === total ? true : undefined), {
        timeoutMs: 120_000,
        intervalMs: 250,
        what: `all ${total} orders to complete after the pause`,
      });
      const scanned = await expectMetricsEqualScan(service.url, store, 'after the pause');
      expect(countByStatus(scanned)).toEqual({ PENDING: 0, PROCESSING: 0, COMPLETED: total, FAILED: 0 });
      expect(scanned.map((order) => order.order_id).sort()).toEqual([...orders, ...during].map((order) => String(order.order_id)).sort());
      expectEachTransitionOnce(scanned, 'after the pause');
      console.log(
        `[store pause] DynamoDB Local paused ${Math.round(PAUSE_MS / 1000)} s: ${answers.length} requests all answered 503 ` +
          `within ${Math.round(slowest)} ms (deadline ${DEADLINE_MS} ms); the ${during.length} creates sent again: ${JSON.stringify(tally(retried))}; ` +
          `all ${total} COMPLETED, each transition once`,
      );
      await service.stop('SIGKILL');
    },
    300_000,
  );
});
