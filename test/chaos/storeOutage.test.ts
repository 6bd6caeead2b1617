import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LAPSE } from '../../lib/orderWrites.ts';
import { startDynamoDBLocal, type DynamoDBLocal } from '../../local/dynamodbLocal.ts';
import { countByStatus, pollUntil, testServices, uniqueTable, validOrder } from '../support.ts';
import { expectEachTransitionOnce, expectMetricsEqualScan, getMetrics, postAll, postOrder, standaloneSpawner, tally, type Answer } from './harness.ts';

const ORDERS = 60;
/** How fast an answer must come while the store is away: well under a client's patience. */
const UNAVAILABLE_ANSWER_MS = 5_000;
/** How long the store stays away: longer than a lease, so work cut off by the outage is taken over after it. */
const OUTAGE_MS = 4_000;
const start = standaloneSpawner();

let dynamodb: DynamoDBLocal | undefined;
const folders: string[] = [];
afterAll(async () => {
  await dynamodb?.stop();
  await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
}, 60_000);

/** One request, its whole answer and how long it took. */
const timed = async (url: string, init: RequestInit = {}) => {
  const started = performance.now();
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(3 * UNAVAILABLE_ANSWER_MS) });
  const text = await response.text();
  return {
    ms: Math.round(performance.now() - started),
    answer: {
      status: response.status,
      contentType: response.headers.get('content-type'),
      retryAfter: response.headers.get('retry-after'),
      body: JSON.parse(text) as Record<string, unknown>,
    },
  };
};

const unavailable = {
  status: 503,
  contentType: 'application/problem+json',
  retryAfter: '1',
  body: {
    type: 'about:blank',
    title: 'Service unavailable',
    status: 503,
    detail: 'The order store is unavailable; retry shortly',
    request_id: expect.any(String),
  },
};

describe('the store going away', () => {
  it(
    'answers 503 problem JSON quickly while DynamoDB is down and recovers by itself, losing no acknowledged order',
    async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'orders-outage-'));
      folders.push(dataDir);
      dynamodb = await startDynamoDBLocal({ dataDir });
      // The service keeps its endpoint: the store comes back on the port it had.
      const { port } = dynamodb;
      const table = uniqueTable('outage');
      const { store } = await testServices({ TABLE_NAME: table, DYNAMODB_ENDPOINT: dynamodb.endpoint });
      const service = await start({
        DYNAMODB_ENDPOINT: dynamodb.endpoint,
        TABLE_NAME: table,
        LEASE_MS: '2000',
        SWEEP_INTERVAL_MS: '300',
        // Slow enough that orders are PENDING and PROCESSING when the store goes.
        PROCESSING_MIN_MS: '200',
        PROCESSING_MAX_MS: '600',
        PROCESSING_CONCURRENCY: '4',
      });
      const orders = Array.from({ length: ORDERS }, (_, i) => validOrder({ order_id: `outage-${i}` }));
      const answers = await postAll(service.url, orders, { concurrency: 20 });
      expect(tally(answers)).toEqual({ 201: ORDERS });
      const beforeOutage = await pollUntil(
        async () => {
          const { status_counts: counts } = await getMetrics(service.url);
          return counts.COMPLETED >= 5 ? counts : undefined;
        },
        { timeoutMs: 60_000, what: 'a few orders to complete' },
      );

      await dynamodb.stop();
      const outageStarted = performance.now();
      // Requests of every kind while the store is away, for as long as the outage lasts.
      const latencies: number[] = [];
      const refused: Record<string, unknown>[] = [];
      let probe = 0;
      do {
        // A few creates (each is an order to send again later); reads as often as they come back.
        if (refused.length < 10) {
          const order = validOrder({ order_id: `outage-refused-${probe}` });
          const { ms: createMs, answer: create } = await timed(`${service.url}/orders`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(order),
          });
          expect(create).toEqual(unavailable);
          refused.push(order);
          latencies.push(createMs);
        }
        const { ms: readMs, answer: read } = await timed(`${service.url}/orders/outage-${probe % ORDERS}`);
        expect(read).toEqual(unavailable);
        const { ms: healthMs, answer: health } = await timed(`${service.url}/health`);
        expect(health).toEqual(unavailable);
        const { ms: metricsMs, answer: metrics } = await timed(`${service.url}/metrics`);
        expect(metrics).toEqual(unavailable);
        latencies.push(readMs, healthMs, metricsMs);
        probe++;
      } while (performance.now() - outageStarted < OUTAGE_MS);
      expect(Math.max(...latencies)).toBeLessThan(UNAVAILABLE_ANSWER_MS);

      dynamodb = await startDynamoDBLocal({ dataDir, port });
      const storeBack = performance.now();
      await pollUntil(async () => ((await timed(`${service.url}/health`)).answer.status === 200 ? true : undefined), {
        timeoutMs: 30_000,
        intervalMs: 50,
        what: 'GET /health to answer 200 again',
      });
      const healthyMs = Math.round(performance.now() - storeBack);
      // The orders refused during the outage are sent again, as a client told to retry would.
      const retried = await postAll(service.url, refused, { concurrency: 10 });
      const acceptedAt = performance.now();
      expect(
        retried.filter((answer: Answer) => !(answer.kind === 'answered' && (answer.status === 201 || answer.status === 200))),
      ).toEqual([]);
      const total = ORDERS + refused.length;
      await pollUntil(
        async () => ((await getMetrics(service.url)).status_counts.COMPLETED === total ? true : undefined),
        { timeoutMs: 120_000, intervalMs: 250, what: `all ${total} orders to complete after the outage` },
      );
      const completedMs = Math.round(performance.now() - storeBack);

      const scanned = await expectMetricsEqualScan(service.url, store, 'after the outage');
      expect(countByStatus(scanned)).toEqual({ PENDING: 0, PROCESSING: 0, COMPLETED: total, FAILED: 0 });
      expect(scanned.map((order) => order.order_id).sort()).toEqual([...orders, ...refused].map((order) => String(order.order_id)).sort());
      expectEachTransitionOnce(scanned, 'after the outage');
      // Work the outage cut off (its outcome could not be written) was taken over once its lease ran out.
      const takenOver = scanned.filter((order) => order.failures?.some((failure) => failure.error === LAPSE));
      expect(takenOver.length).toBeGreaterThan(0);
      for (const order of takenOver) expect(order.attempts).toBeGreaterThan(1);
      // A new order after the recovery is created and processed like any other.
      const late = await postOrder(service.url, validOrder({ order_id: 'outage-after' }));
      expect(late).toMatchObject({ kind: 'answered', status: 201 });

      latencies.sort((a, b) => a - b);
      console.log(
        `[store outage] ${ORDERS} orders acknowledged, store stopped with ${JSON.stringify(beforeOutage)}; ` +
          `${latencies.length} requests during a ${Math.round(storeBack - outageStarted)} ms outage all answered 503 problem JSON ` +
          `(median ${latencies[Math.floor(latencies.length / 2)]} ms, max ${latencies.at(-1)} ms, bound ${UNAVAILABLE_ANSWER_MS} ms); ` +
          `healthy ${healthyMs} ms after DynamoDB Local answered again, the ${refused.length} refused orders accepted ${Math.round(acceptedAt - storeBack)} ms after it; ` +
          `all ${total} COMPLETED ${completedMs} ms after the store came back, ${takenOver.length} taken over (retried creates ${JSON.stringify(tally(retried))})`,
      );
      await service.stop('SIGKILL');
    },
    300_000,
  );
});
