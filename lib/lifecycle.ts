import type { OrderStatus } from './order.ts';

/** What a worker holding a delivery of an order should do with it. */
export type NextStep =
  | { kind: 'claim' }
  | { kind: 'finished' }
  | { kind: 'busy'; until: number }
  | { kind: 'exhausted' };

/** The parts of an order that decide its next step. */
export interface LifecycleState {
  status: OrderStatus;
  attempts: number;
  due_at?: number;
}

/**
 * The state machine, as a pure decision: PENDING -> PROCESSING -> COMPLETED | FAILED.
 * A PROCESSING order is only taken over once its lease (or retry back-off) has run out, and never
 * beyond the retry budget: a lease that ran out on the last attempt means FAILED.
 */
export const nextStep = (order: LifecycleState, now: number, maxAttempts: number): NextStep => {
  switch (order.status) {
    case 'COMPLETED':
    case 'FAILED':
      return { kind: 'finished' };
    case 'PENDING':
      return { kind: 'claim' };
    case 'PROCESSING': {
      const until = order.due_at ?? 0;
      if (until > now) return { kind: 'busy', until };
      return order.attempts >= maxAttempts ? { kind: 'exhausted' } : { kind: 'claim' };
    }
  }
};

/**
 * Back-off before attempt `attempt + 1`: exponential from `baseMs`, capped at `maxMs`, with "equal jitter"
 * (half fixed, half random) so retries spread out yet each wait is visibly longer than the last.
 */
export const retryDelay = (attempt: number, baseMs: number, maxMs: number, random: () => number): number => {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
};
