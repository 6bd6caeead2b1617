import { TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { foldAll, putDelta, type CounterMove } from '../../lib/counters.ts';
import { StoreUnavailable } from '../../lib/errors.ts';
import { readMetrics } from '../../lib/metrics.ts';
import { createDocumentClient, createStore, ensureTable, type Store } from '../../lib/store.ts';
import { dynamodbEndpoint, metricsBeforeAnyOrder, uniqueTable } from '../support.ts';

// GET /metrics's arithmetic over known counters: the counter moves are written as the transitions write them
// (a delta each), so every total, average, quantile and bucket below is known exactly. That the counters equal
// a scan of the orders is lifecycle.test.ts's.

const freshStore = async (): Promise<Store> => {
  const store = createStore(createDocumentClient({ tableName: uniqueTable(), region: 'us-east-1', endpoint: dynamodbEndpoint() }), uniqueTable('metrics'));
  await ensureTable(store);
  return store;
};

/** Commits one counter delta, as a transition's transaction does. */
const move = async (store: Store, counters: CounterMove) =>
  store.documentClient.send(new TransactWriteItemsCommand({ TransactItems: putDelta(store.tableName, 0, counters) }));

const NOW = new Date('2026-12-02T12:00:00.000Z');

describe('readMetrics', () => {
  it('reports zeros, no averages or quantiles and an empty histogram before any order', async () => {
    expect(await readMetrics(await freshStore(), NOW)).toEqual({
      ...metricsBeforeAnyOrder,
      processing_time_histogram: [],
      generated_at: '2026-12-02T12:00:00.000Z',
    });
  });

  it('sums the statuses, averages over the completed orders to 0.1 ms, and lists the buckets by bound', async () => {
    const store = await freshStore();
    // Three orders completed in 10, 20 and 301 ms (bucket 300, 4 ms wide), one failed, two pending, one at work
    // (quarantined: still counted under its status). The slowest is folded into the total first, so the
    // counters are read with bucket 300 ahead of buckets 10 and 20.
    await move(store, { COMPLETED: 1, sum_processing_ms: 301, sum_turnaround_ms: 700, h_300: 1 });
    await foldAll(store);
    await move(store, { COMPLETED: 2, sum_processing_ms: 30, sum_turnaround_ms: 300, h_10: 1, h_20: 1 });
    await move(store, { PENDING: 2, PROCESSING: 1, FAILED: 1, quarantined: 1 });

    expect(await readMetrics(store, NOW)).toEqual({
      total_orders: 7,
      total_orders_processed: 3,
      average_processing_time_ms: 110.3, // 331 / 3
      average_turnaround_time_ms: 333.3, // 1000 / 3
      // Nearest rank: the 2nd of 3 for p50, the 3rd for p95 and p99, each its bucket's middle.
      processing_time_ms: { p50: 20, p95: 302, p99: 302 },
      status_counts: { PENDING: 2, PROCESSING: 1, COMPLETED: 3, FAILED: 1 },
      quarantined: 1,
      processing_time_histogram: [
        { ge_ms: 10, count: 1 },
        { ge_ms: 20, count: 1 },
        { ge_ms: 300, count: 1 },
      ],
      generated_at: '2026-12-02T12:00:00.000Z',
    });
  });

  it('is generated now unless told otherwise', async () => {
    const before = Date.now();
    const { generated_at } = await readMetrics(await freshStore());

    expect(Date.parse(generated_at)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(generated_at)).toBeLessThanOrEqual(Date.now());
  });

  it('is unavailable (a 503), not a fault, while the store is away', async () => {
    const away = createStore(createDocumentClient({ tableName: uniqueTable(), region: 'us-east-1', endpoint: 'http://127.0.0.1:1' }), uniqueTable());

    await expect(readMetrics(away)).rejects.toBeInstanceOf(StoreUnavailable);
  });
});
