import { readFile } from 'node:fs/promises';
import { afterAll, expect } from 'vitest';
import type { Metrics } from '../../lib/metrics.ts';
import type { StoredOrder } from '../../lib/orders.ts';
import type { Store } from '../../lib/store.ts';
import { countByStatus, scanOrders, servicePid, startService, type RunningService } from '../support.ts';

/** tsx start-up on a busy 2-core machine. */
const START_TIMEOUT_MS = 90_000;

/**
 * The base seed of every seeded choice in the chaos tests: fixed so a run can be repeated, and
 * overridable with CHAOS_SEED to explore other runs.
 */
export const CHAOS_SEED = Number(process.env.CHAOS_SEED ?? 20_261_125);

/**
 * Spawns `npm run start:standalone` and stops, at the end of the file, whatever a test left running
 * (SIGKILL: these services use a DynamoDB Local the test owns, so nothing else is in their group).
 */
export const standaloneSpawner = () => {
  const spawned: RunningService[] = [];
  afterAll(async () => {
    await Promise.all(spawned.map((service) => service.stop('SIGKILL')));
  }, 60_000);
  return async (env: Record<string, string>): Promise<RunningService> => {
    const service = await startService('start:standalone', { PORT: '0', LOG_LEVEL: 'WARN', ...env }, { timeoutMs: START_TIMEOUT_MS });
    spawned.push(service);
    return service;
  };
};

/** SIGTERM to the service: its exit code and how long it took, or 'timed out'. */
export const terminate = async (
  service: RunningService,
  timeoutMs: number,
): Promise<{ code: number | null | 'timed out'; ms: number }> => {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'timed out'>((resolve) => (timer = setTimeout(() => resolve('timed out'), timeoutMs)));
  const code = await Promise.race([service.stop('SIGTERM'), late]);
  clearTimeout(timer);
  return { code, ms: Math.round(performance.now() - started) };
};

/** The peak resident set (VmHWM) of a process, in bytes. */
export const peakRss = async (pid: number): Promise<number> => {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status)?.[1];
  if (!kb) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(kb) * 1024;
};

/** The node process serving `service` (not npm, not esbuild). */
export const nodePidOf = async (service: RunningService): Promise<number> => {
  const pid = await servicePid(service.process.pid!);
  if (!pid) throw new Error('the service has no node process');
  return pid;
};

export type Answer =
  | { kind: 'answered'; status: number; body: Record<string, unknown>; ms: number }
  | { kind: 'error'; error: string }
  | { kind: 'unsent' };

/** POSTs one order; a network failure or timeout is an answer too (`error`), never a throw. */
export const postOrder = async (url: string, order: Record<string, unknown>, timeoutMs = 60_000): Promise<Answer> => {
  const started = performance.now();
  try {
    const response = await fetch(`${url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(order),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = (await response.json()) as Record<string, unknown>;
    return { kind: 'answered', status: response.status, body, ms: performance.now() - started };
  } catch (error) {
    return { kind: 'error', error: (error as Error).cause ? String((error as Error).cause) : String(error) };
  }
};

/**
 * POSTs orders with at most `concurrency` in flight. Once `stop()` says so, no new request starts
 * (those left are `unsent`); requests already in flight run to their end.
 */
export const postAll = async (
  url: string,
  orders: Record<string, unknown>[],
  {
    concurrency,
    stop = () => false,
    onAnswer = () => {},
    timeoutMs,
  }: { concurrency: number; stop?: () => boolean; onAnswer?: (answer: Answer, index: number) => void; timeoutMs?: number },
): Promise<Answer[]> => {
  const answers: Answer[] = orders.map(() => ({ kind: 'unsent' }));
  let next = 0;
  const worker = async () => {
    while (next < orders.length && !stop()) {
      const index = next++;
      const answer = await postOrder(url, orders[index]!, timeoutMs);
      answers[index] = answer;
      onAnswer(answer, index);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return answers;
};

/** Tallies answers: `201`, `200`, ..., `error`, `unsent`. */
export const tally = (answers: Answer[]): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const answer of answers) {
    const key = answer.kind === 'answered' ? String(answer.status) : answer.kind;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
};

/** GET a JSON resource, with a deadline. */
export const getJson = async (url: string, timeoutMs = 10_000): Promise<{ status: number; contentType: string; body: any }> => {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await response.text();
  return { status: response.status, contentType: response.headers.get('content-type') ?? '', body: text ? JSON.parse(text) : undefined };
};

export const getMetrics = async (url: string): Promise<Metrics> => {
  const answer = await getJson(`${url}/metrics`);
  if (answer.status !== 200) throw new Error(`GET /metrics answered ${answer.status}`);
  return answer.body as Metrics;
};

const STATUS_ORDER = ['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED'] as const;

const round1 = (value: number) => Math.round(value * 10) / 10;

/**
 * Asserts that GET /metrics says exactly what a full scan of the orders says: counts per status, totals,
 * quarantined orders, and the exact averages (sums over the completed orders). Returns the scan.
 */
export const expectMetricsEqualScan = async (url: string, store: Store, context: string): Promise<StoredOrder[]> => {
  const metrics = await getMetrics(url);
  const orders = await scanOrders(store);
  const counts = countByStatus(orders);
  const completed = orders.filter((order) => order.status === 'COMPLETED');
  const mean = (values: number[]) => (values.length ? round1(values.reduce((a, b) => a + b, 0) / values.length) : null);
  expect(metrics, context).toMatchObject({
    total_orders: orders.length,
    total_orders_processed: counts.COMPLETED,
    status_counts: Object.fromEntries(STATUS_ORDER.map((status) => [status, counts[status]])),
    quarantined: orders.filter((order) => order.quarantined !== undefined).length,
    average_processing_time_ms: mean(completed.map((order) => order.processing_ms!)),
    average_turnaround_time_ms: mean(completed.map((order) => Date.parse(order.completed_at!) - Date.parse(order.created_at))),
  });
  const bucketed = metrics.processing_time_histogram.reduce((sum, bucket) => sum + bucket.count, 0);
  expect(bucketed, `${context}: completed orders in the histogram`).toBe(counts.COMPLETED);
  return orders;
};

/**
 * Asserts every order's record is that of one path through the state machine: its fields match its status,
 * and no failed attempt is recorded twice. With the metrics equal to a scan (each transition moves the
 * counters in its own transaction), that shows every transition happened once.
 */
export const expectEachTransitionOnce = (orders: StoredOrder[], context: string): void => {
  const odd = orders.filter((order) => {
    const failures = order.failures ?? [];
    const attempts = failures.map((failure) => failure.attempt);
    if (new Set(attempts).size !== attempts.length || attempts.some((attempt) => attempt < 1 || attempt > order.attempts)) return true;
    switch (order.status) {
      case 'PENDING':
        return order.attempts !== 0 || order.started_at !== undefined;
      case 'PROCESSING':
        return order.attempts < 1 || order.due_at === undefined;
      case 'COMPLETED':
        return order.completed_at === undefined || order.processing_ms === undefined || order.failed_at !== undefined || order.due_at !== undefined;
      case 'FAILED':
        return order.failed_at === undefined || order.error === undefined || order.completed_at !== undefined || order.due_at !== undefined;
    }
  });
  expect(odd, `${context}: orders whose record does not match one path through the state machine`).toEqual([]);
};
