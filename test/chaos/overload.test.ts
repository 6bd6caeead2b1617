import { describe, expect, it } from 'vitest';
import { countByStatus, dynamodbEndpoint, pollUntil, testServices, uniqueTable, validOrder } from '../support.ts';
import { expectEachTransitionOnce, expectMetricsEqualScan, getMetrics, nodePidOf, peakRss, postAll, standaloneSpawner, tally } from './harness.ts';

const ORDERS = 5_000;
const IN_FLIGHT = 200;
const QUEUE_CAPACITY = 50;
const MiB = 1024 * 1024;
/**
 * The bound on the growth of the peak resident set over the idle service's. What 5 000 accepted orders may
 * cost in memory here: 200 requests in flight (each its event, body and the order, a few KiB), 4 group
 * commits of at most 99 orders, 32 orders being processed, 50 ids queued, the SDK's sockets, and V8's
 * young generation (16-32 MiB per semi-space pair) with garbage not yet collected. 5 000 orders are about
 * 1 KiB each as stored; what must stay out of memory is that backlog growing with the load (the orders,
 * their promises and timers), so the bound is a fixed sum, independent of the number of orders.
 */
const GROWTH_BOUND = 160 * MiB;
const start = standaloneSpawner();

describe('overload', () => {
  it(
    'accepts 5000 orders through a queue of 50 with bounded memory, and completes every one',
    async () => {
      const table = uniqueTable('overload');
      const { store } = await testServices({ TABLE_NAME: table });
      const service = await start({
        DYNAMODB_ENDPOINT: dynamodbEndpoint(),
        TABLE_NAME: table,
        QUEUE_CAPACITY: String(QUEUE_CAPACITY),
        PROCESSING_MIN_MS: '5',
        PROCESSING_MAX_MS: '20',
        SWEEP_INTERVAL_MS: '500',
      });
      const pid = await nodePidOf(service);
      // Idle, after a first request has loaded the request path's modules.
      expect(tally(await postAll(service.url, [validOrder({ order_id: 'overload-warm-up' })], { concurrency: 1 }))).toEqual({ 201: 1 });
      const idlePeak = await peakRss(pid);

      // The store's backlog, sampled while orders pour in: orders wait there, not in the process.
      let sampling = true;
      let maxPending = 0;
      const sampler = (async () => {
        while (sampling) {
          maxPending = Math.max(maxPending, (await getMetrics(service.url)).status_counts.PENDING);
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      })();

      const started = performance.now();
      const orders = Array.from({ length: ORDERS }, (_, i) =>
        validOrder({ order_id: `overload-${String(i).padStart(4, '0')}`, user_id: `USER${i % 100}` }),
      );
      const answers = await postAll(service.url, orders, { concurrency: IN_FLIGHT, timeoutMs: 120_000 });
      const acceptedMs = Math.round(performance.now() - started);
      expect(tally(answers)).toEqual({ 201: ORDERS });

      const total = ORDERS + 1;
      await pollUntil(
        async () => ((await getMetrics(service.url)).status_counts.COMPLETED === total ? true : undefined),
        { timeoutMs: 480_000, intervalMs: 500, what: `all ${total} orders to complete` },
      );
      const completedMs = Math.round(performance.now() - started);
      sampling = false;
      await sampler;

      const scanned = await expectMetricsEqualScan(service.url, store, 'after the overload');
      expect(countByStatus(scanned)).toEqual({ PENDING: 0, PROCESSING: 0, COMPLETED: total, FAILED: 0 });
      expectEachTransitionOnce(scanned, 'after the overload');

      const peak = await peakRss(pid);
      console.log(
        `[overload] ${ORDERS} orders, ${IN_FLIGHT} in flight, QUEUE_CAPACITY ${QUEUE_CAPACITY}: all 201 in ${acceptedMs} ms, ` +
          `all COMPLETED after ${completedMs} ms; up to ${maxPending} PENDING in the store at once; ` +
          `peak RSS (VmHWM) ${(peak / MiB).toFixed(1)} MiB, idle ${(idlePeak / MiB).toFixed(1)} MiB, ` +
          `growth ${((peak - idlePeak) / MiB).toFixed(1)} MiB (bound ${GROWTH_BOUND / MiB} MiB)`,
      );
      // The queue could not hold the load: most accepted orders waited in the store.
      expect(maxPending).toBeGreaterThan(10 * QUEUE_CAPACITY);
      expect(peak - idlePeak).toBeLessThan(GROWTH_BOUND);
      // No process warning (such as a listener-leak warning under load) and no error logged.
      expect(service.output()).not.toMatch(/Warning:|"level":"ERROR"/);
      await service.stop('SIGKILL');
    },
    600_000,
  );
});
