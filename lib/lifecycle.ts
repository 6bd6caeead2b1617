import type { OrderStatus } from './order.ts';

/** What a worker holding a delivery of an order should do with it. */
export type NextStep =
  | { kind: 'claim' }
  /** Its lease ran out with no outcome recorded: claim it again, recording the lapse. */
  | { kind: 'take over' }
  | { kind: 'finished' }
  | { kind: 'busy'; until: number }
  /** Its work failed as often as the budget allows: FAILED with its last error. */
  | { kind: 'exhausted' }
  /** Its lease ran out once too often (a crash loop): set it aside for an operator. */
  | { kind: 'quarantine' }
  /** Set aside already: nothing happens to it until an operator requeues it. */
  | { kind: 'quarantined' };

/** The parts of an order that decide its next step. */
export interface LifecycleState {
  status: OrderStatus;
  /** Claims so far: failed, cut off (lapsed) or under way. */
  attempts: number;
  due_at?: number;
  /** Attempts whose work failed: only these spend the retry budget. */
  failed_attempts?: number;
  /** Attempts whose lease ran out before any outcome was recorded (a crash, a write that never got through). */
  lapsed?: number;
  /** Tries that ended in a fault or a lapse since the order was last requeued (see `Budget.maxFaults`). */
  faults?: number;
  quarantined?: string;
}

export interface Budget {
  /** Failed attempts before an order is FAILED (MAX_ATTEMPTS). */
  maxAttempts: number;
  /** Faults and lapses before an order is quarantined (POISON_MAX_TRIES). */
  maxFaults: number;
}

/**
 * True when the order's last attempt has no recorded outcome: every attempt is either failed, lapsed, or the
 * current one. A PROCESSING order whose last attempt failed is waiting for its retry.
 */
export const lastAttemptOpen = (order: LifecycleState): boolean =>
  order.status === 'PROCESSING' && order.attempts > (order.failed_attempts ?? 0) + (order.lapsed ?? 0);

/**
 * The state machine, as a pure decision: PENDING -> PROCESSING -> COMPLETED | FAILED.
 * A PROCESSING order is only taken over once its lease (or retry back-off) has run out. Only the work's own
 * failures spend the retry budget: an attempt cut off by a crash, a shutdown or a write that could not be
 * recorded is taken over, and counts as a fault instead, so a crash loop ends in quarantine, not in a loop.
 */
export const nextStep = (order: LifecycleState, now: number, budget: Budget): NextStep => {
  if (order.quarantined !== undefined) return { kind: 'quarantined' };
  switch (order.status) {
    case 'COMPLETED':
    case 'FAILED':
      return { kind: 'finished' };
    case 'PENDING':
      return { kind: 'claim' };
    case 'PROCESSING': {
      const until = order.due_at ?? 0;
      if (until > now) return { kind: 'busy', until };
      if (!lastAttemptOpen(order)) return (order.failed_attempts ?? 0) >= budget.maxAttempts ? { kind: 'exhausted' } : { kind: 'claim' };
      return (order.faults ?? 0) + 1 >= budget.maxFaults ? { kind: 'quarantine' } : { kind: 'take over' };
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
