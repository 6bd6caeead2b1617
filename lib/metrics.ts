import { readCounters } from './counters.ts';
import { quantile } from './histogram.ts';
import { ORDER_STATUSES, type OrderStatus } from './order.ts';
import { translateStoreError } from './orders.ts';
import type { Store } from './store.ts';

/** The body of GET /metrics. */
export interface Metrics {
  total_orders: number;
  total_orders_processed: number;
  average_processing_time_ms: number | null;
  average_turnaround_time_ms: number | null;
  processing_time_ms: { p50: number | null; p95: number | null; p99: number | null };
  status_counts: Record<OrderStatus, number>;
  /** Orders set aside for an operator (they keep their status, and are counted in `status_counts` too). */
  quarantined: number;
  /** Completed orders per processing-time bucket (lower bound in ms), for charts. */
  processing_time_histogram: { ge_ms: number; count: number }[];
  generated_at: string;
}

const round1 = (value: number) => Math.round(value * 10) / 10;

/**
 * Reads the metrics: a strongly consistent read of the counter shards, never a scan of the orders,
 * so the cost is the same at any number of orders and the counts equal what a scan would count.
 */
export async function readMetrics(store: Store, now = new Date()): Promise<Metrics> {
  let totals: Map<string, number>;
  try {
    totals = await readCounters(store);
  } catch (error) {
    throw translateStoreError(error);
  }
  const count = (name: string) => totals.get(name) ?? 0;
  const histogram = new Map<number, number>();
  for (const [name, value] of totals) {
    if (name.startsWith('h_') && value > 0) histogram.set(Number(name.slice(2)), value);
  }
  const completed = count('COMPLETED');
  const statusCounts = Object.fromEntries(ORDER_STATUSES.map((status) => [status, count(status)])) as Record<OrderStatus, number>;

  return {
    total_orders: ORDER_STATUSES.reduce((sum, status) => sum + statusCounts[status], 0),
    total_orders_processed: completed,
    average_processing_time_ms: completed ? round1(count('sum_processing_ms') / completed) : null,
    average_turnaround_time_ms: completed ? round1(count('sum_turnaround_ms') / completed) : null,
    processing_time_ms: { p50: quantile(histogram, 0.5), p95: quantile(histogram, 0.95), p99: quantile(histogram, 0.99) },
    status_counts: statusCounts,
    quarantined: count('quarantined'),
    processing_time_histogram: [...histogram.entries()]
      .sort(([a], [b]) => a - b)
      .map(([geMs, value]) => ({ ge_ms: geMs, count: value })),
    generated_at: now.toISOString(),
  };
}
