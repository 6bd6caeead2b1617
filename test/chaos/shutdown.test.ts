import { describe, expect, it } from 'vitest';
import { countByStatus, dynamodbEndpoint, pollUntil, scanOrders, testServices, uniqueTable, validOrder } from '../support.ts';
import { expectEachTransitionOnce, expectMetricsEqualScan, getMetrics, postAll, standaloneSpawner, tally, terminate } from './harness.ts';

const ORDERS = 24;
const LEASE_MS = 6_000;
const start = standaloneSpawner();

describe('SIGTERM while orders are being processed', () => {
  it(
    'exits 0 within a lease, giving unfinished work back with its attempt, and a restart completes every order once',
    async () => {
      const table = uniqueTable('shutdown');
      const { store } = await testServices({ TABLE_NAME: table });
      const env = {
        DYNAMODB_ENDPOINT: dynamodbEndpoint(),
        TABLE_NAME: table,
        LEASE_MS: String(LEASE_MS),
        // Work longer than the shutdown grace (half a lease, 3 s), so what is under way is cut off and released.
        PROCESSING_MIN_MS: '3500',
        PROCESSING_MAX_MS: '5500',
        PROCESSING_CONCURRENCY: '8',
        SWEEP_INTERVAL_MS: '300',
        // One attempt each: work cut off by a stop must give its attempt back, or the restart would fail it.
        MAX_ATTEMPTS: '1',
      };
      const first = await start(env);
      const orders = Array.from({ length: ORDERS }, (_, i) => validOrder({ order_id: `shutdown-${i}` }));
      expect(tally(await postAll(first.url, orders, { concurrency: 20 }))).toEqual({ 201: ORDERS });
      const before = await pollUntil(
        async () => {
          const { status_counts: counts } = await getMetrics(first.url);
          // At least: the consumer also claims ahead of its free workers. The first sighting is taken, so
          // the stop comes well before any work (3.5 s or more) can end within the 3 s grace.
          return counts.PROCESSING >= 8 ? counts : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 50, what: 'at least 8 orders PROCESSING' },
      );

      const { code, ms } = await terminate(first, 3 * LEASE_MS);
      const stoppedAt = Date.now();
      expect(code).toBe(0);
      expect(ms).toBeLessThan(LEASE_MS);
      expect(first.output()).not.toMatch(/"level":"ERROR"|unhandled|Error:/);

      // Work cut off by the stop was given back with its attempt: PENDING again, not PROCESSING until a lease ran out.
      const left = await scanOrders(store);
      const atStop = countByStatus(left);
      expect(left.filter((order) => order.status === 'PROCESSING' && order.due_at! > stoppedAt).map((order) => order.order_id)).toEqual([]);
      expect(atStop).toMatchObject({ PROCESSING: 0, FAILED: 0 });
      expect(atStop).toMatchObject({ PENDING: ORDERS - before.COMPLETED, COMPLETED: before.COMPLETED });

      const second = await start(env);
      const restartedAt = performance.now();
      await pollUntil(
        async () => ((await getMetrics(second.url)).status_counts.COMPLETED === ORDERS ? true : undefined),
        { timeoutMs: 120_000, intervalMs: 250, what: `all ${ORDERS} orders to complete after the restart` },
      );
      const completedMs = Math.round(performance.now() - restartedAt);
      const scanned = await expectMetricsEqualScan(second.url, store, 'after the restart');
      expect(countByStatus(scanned)).toEqual({ PENDING: 0, PROCESSING: 0, COMPLETED: ORDERS, FAILED: 0 });
      expectEachTransitionOnce(scanned, 'after the restart');
      // No attempt was lost to the stop: each order completed on its first (and only allowed) attempt.
      expect(scanned.filter((order) => order.attempts !== 1).map((order) => order.order_id)).toEqual([]);

      console.log(
        `[shutdown] SIGTERM with ${JSON.stringify(before)}: exit code ${code} after ${ms} ms (LEASE_MS ${LEASE_MS}); ` +
          `left in the store ${JSON.stringify(atStop)}; ` +
          `all ${ORDERS} COMPLETED ${completedMs} ms after the restart`,
      );
      await second.stop('SIGKILL');
    },
    240_000,
  );
});
