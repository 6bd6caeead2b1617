import { describe, expect, it } from 'vitest';
import { retryDelay } from '../../lib/lifecycle.ts';
import type { FailureEntry, StoredOrder } from '../../lib/orders.ts';
import { countByStatus, dynamodbEndpoint, pollUntil, testServices, uniqueTable, validOrder } from '../support.ts';
import { expectEachTransitionOnce, expectMetricsEqualScan, getJson, getMetrics, postAll, standaloneSpawner, tally } from './harness.ts';

const ORDERS = 400;
const MAX_ATTEMPTS = 3;
const RETRY_BASE_MS = 300;
const RETRY_MAX_MS = 60_000;
const ERROR = 'simulated processing failure';
const start = standaloneSpawner();

/** The back-off ceiling after failed attempt `attempt` (retryDelay with the random part at its top). */
const ceiling = (attempt: number) => retryDelay(attempt, RETRY_BASE_MS, RETRY_MAX_MS, () => 1);

const failures = (order: StoredOrder): FailureEntry[] => order.failures ?? [];
/** When attempt `attempt` started: recorded with its failure, or (the last one) on the order. */
const startOf = (order: StoredOrder, attempt: number): string | undefined =>
  failures(order).find((failure) => failure.attempt === attempt)?.started_at ?? (attempt === order.attempts ? order.started_at : undefined);

describe('failing attempts', () => {
  it(
    'retries each failed attempt after its back-off and ends every order COMPLETED or FAILED with its error',
    async () => {
      const table = uniqueTable('retries');
      const { store } = await testServices({ TABLE_NAME: table });
      const service = await start({
        DYNAMODB_ENDPOINT: dynamodbEndpoint(),
        TABLE_NAME: table,
        PROCESSING_FAILURE_RATE: '0.3',
        MAX_ATTEMPTS: String(MAX_ATTEMPTS),
        RETRY_BASE_MS: String(RETRY_BASE_MS),
        RETRY_MAX_MS: String(RETRY_MAX_MS),
        PROCESSING_MIN_MS: '20',
        PROCESSING_MAX_MS: '60',
        LEASE_MS: '5000',
        SWEEP_INTERVAL_MS: '300',
      });
      const orders = Array.from({ length: ORDERS }, (_, i) => validOrder({ order_id: `retry-${String(i).padStart(3, '0')}` }));
      const answers = await postAll(service.url, orders, { concurrency: 64 });
      expect(tally(answers)).toEqual({ 201: ORDERS });

      const metrics = await pollUntil(
        async () => {
          const current = await getMetrics(service.url);
          return current.status_counts.COMPLETED + current.status_counts.FAILED === ORDERS ? current : undefined;
        },
        { timeoutMs: 180_000, intervalMs: 250, what: `all ${ORDERS} orders to finish` },
      );
      const scanned = await expectMetricsEqualScan(service.url, store, 'after retries');
      const counts = countByStatus(scanned);
      expect(counts).toMatchObject({ PENDING: 0, PROCESSING: 0, COMPLETED: metrics.status_counts.COMPLETED, FAILED: metrics.status_counts.FAILED });
      expectEachTransitionOnce(scanned, 'after retries');

      // Every failed attempt is recorded once, numbered 1..n; all attempts failed but a completing last one.
      for (const order of scanned) {
        expect(
          failures(order).map((entry) => [entry.attempt, entry.error]),
          order.order_id,
        ).toEqual(
          Array.from({ length: order.status === 'FAILED' ? order.attempts : order.attempts - 1 }, (_, i) => [i + 1, ERROR]),
        );
      }

      // A FAILED order says why over HTTP, after spending its whole budget.
      const failed = scanned.filter((order) => order.status === 'FAILED');
      for (const order of failed) {
        const read = await getJson(`${service.url}/orders/${order.order_id}`);
        expect(read).toEqual({
          status: 200,
          contentType: 'application/json',
          body: {
            order_id: order.order_id,
            user_id: 'USER001',
            item_ids: [1, 2, 3],
            total_amount: 99.99,
            status: 'FAILED',
            attempts: MAX_ATTEMPTS,
            created_at: order.created_at,
            started_at: expect.any(String),
            failed_at: expect.any(String),
            error: ERROR,
          },
        });
      }

      // Back-off: the next claim comes at least half the ceiling (the fixed half of equal jitter) after the failure.
      const gaps = new Map<number, number[]>();
      const tooSoon: { order_id: string; failed: FailureEntry; next: string; gap: number; min: number }[] = [];
      for (const order of scanned) {
        for (const failure of failures(order)) {
          const next = startOf(order, failure.attempt + 1);
          if (!next) continue;
          const gap = Date.parse(next) - Date.parse(failure.at);
          gaps.set(failure.attempt, [...(gaps.get(failure.attempt) ?? []), gap]);
          if (gap < ceiling(failure.attempt) / 2) tooSoon.push({ order_id: order.order_id, failed: failure, next, gap, min: ceiling(failure.attempt) / 2 });
        }
      }
      expect(tooSoon).toEqual([]);
      expect([...gaps.keys()].sort()).toEqual([1, 2]);
      // With 400 orders and a 30% failure rate about 11 end FAILED (0.3^3); none would happen once in 60 000 runs.
      expect(counts.FAILED).toBeGreaterThan(0);

      const describeGaps = [...gaps.entries()]
        .sort(([a], [b]) => a - b)
        .map(([attempt, values]) => {
          values.sort((a, b) => a - b);
          return `after attempt ${attempt}: ${values.length} retries, gap min ${values[0]} ms (floor ${ceiling(attempt) / 2} ms, ceiling ${ceiling(attempt)} ms), median ${values[Math.floor(values.length / 2)]} ms`;
        });
      console.log(
        `[retries] ${ORDERS} orders, failure rate 0.3, MAX_ATTEMPTS ${MAX_ATTEMPTS}: ${counts.COMPLETED} COMPLETED, ${counts.FAILED} FAILED; ` +
          `${describeGaps.join('; ')}`,
      );
      await service.stop('SIGKILL');
    },
    300_000,
  );
});
