import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@aws-lambda-powertools/logger';
import { nextStep, retryDelay } from './lifecycle.ts';
import type { OrderRepository, OrderState } from './orders.ts';
import { checkState, LAPSE } from './orderWrites.ts';
import { orderIdOf, type OrderQueue, type OrderRef } from './queue/port.ts';

export interface ProcessingSettings {
  minMs: number;
  maxMs: number;
  failureRate: number;
  maxAttempts: number;
  leaseMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Tries ending in a fault or a lapsed lease before an order is quarantined (POISON_MAX_TRIES). */
  poisonMaxTries: number;
}

/** What one delivery of an order came to. */
export type ProcessOutcome =
  | { kind: 'completed' }
  | { kind: 'failed'; error: string }
  | { kind: 'retry'; at: number; error: string }
  | { kind: 'released' }
  /** The try ended in a fault (the order could not be read, the store refused a write): counted, the order stays due. */
  | { kind: 'faulted'; error: string; faults: number }
  /** Set aside for an operator: by this delivery (with the error that did it), or before it. */
  | { kind: 'quarantined'; error?: string }
  | { kind: 'skipped'; reason: 'unknown' | 'finished' | 'busy' | 'lost' };

/** An outcome's write is tried again this long after the store refused it, doubling up to the most. */
const RECORD_RETRY_BASE_MS = 100;
const RECORD_RETRY_MAX_MS = 2_000;
/** The error recorded with a fault: enough to tell what happened, never a large item. */
const FAULT_MESSAGE_MAX = 500;

/** Errors reach here translated (see `translateStoreError`): only this name means "the store is away, later". */
const saysUnavailable = (error: unknown) => (error as Error | undefined)?.name === 'StoreUnavailable';
const faultMessage = (error: unknown) =>
  (error instanceof Error ? `${error.name}: ${error.message}` : String(error)).slice(0, FAULT_MESSAGE_MAX);

/** An order this worker claimed: its attempt is the lease token. */
export interface Claimed {
  order: OrderState;
}

/** How the work of a claimed order went. */
export type WorkResult =
  | { kind: 'done'; startedAt: number; endedAt: number }
  | { kind: 'error'; error: string; endedAt: number }
  /** Stopped, or never started: at shutdown. */
  | { kind: 'aborted' }
  /** Never started: too little of its lease was left for the longest work. */
  | { kind: 'late' };

/** The simulated work failed (PROCESSING_FAILURE_RATE). */
export class ProcessingFailure extends Error {
  override name = 'ProcessingFailure';
}

/**
 * Processes deliveries of orders: the same code behind the local consumer and the SQS handler. A delivery
 * goes through three steps, which the local consumer runs apart so that a worker only waits on the work
 * itself: `begin` (read unless the queue carried the order's state, decide, claim), `run` (the work) and
 * `finish` (record the outcome). Deliveries are at-least-once; each transition is a conditional write, so a
 * duplicate or stale delivery changes nothing.
 */
export class OrderProcessor {
  constructor(
    private readonly orders: OrderRepository,
    /** Where a failed attempt is sent again, due when its back-off ends. */
    private readonly queue: OrderQueue,
    private readonly settings: ProcessingSettings,
    private readonly logger: Logger,
    private readonly random: () => number = Math.random,
    private readonly now: () => number = Date.now,
  ) {}

  /** One delivery, start to end. */
  async process(ref: OrderRef, signal?: AbortSignal): Promise<ProcessOutcome> {
    const begun = await this.begin(ref);
    if (!('order' in begun)) return begun;
    return this.finish(begun, await this.run(begun, signal));
  }

  /**
   * Claims the order if its next step is to work on it; otherwise says why not (or ends it FAILED, or sets it
   * aside). A fault on the way is counted against the order (see `fault`).
   */
  async begin(ref: OrderRef): Promise<Claimed | ProcessOutcome> {
    try {
      return await this.decide(ref);
    } catch (error) {
      return this.fault(orderIdOf(ref), error);
    }
  }

  private async decide(ref: OrderRef): Promise<Claimed | ProcessOutcome> {
    const read = typeof ref === 'string' ? await this.orders.getState(ref) : ref;
    if (!read) {
      this.logger.warn('delivery for an unknown order', { order_id: orderIdOf(ref) });
      return { kind: 'skipped', reason: 'unknown' };
    }
    const order = checkState(read);
    const now = this.now();
    const step = nextStep(order, now, { maxAttempts: this.settings.maxAttempts, maxFaults: this.settings.poisonMaxTries });
    switch (step.kind) {
      case 'finished':
        return { kind: 'skipped', reason: 'finished' };
      case 'busy':
        return { kind: 'skipped', reason: 'busy' };
      case 'quarantined':
        return { kind: 'quarantined' };
      case 'exhausted': {
        const error = order.last_error ?? 'the retry budget was spent';
        return (await this.orders.exhaust(order, now, error)) ? this.failed(order, error) : { kind: 'skipped', reason: 'lost' };
      }
      case 'quarantine': {
        const error = `${LAPSE} on ${(order.lapsed ?? 0) + 1} attempts with no outcome recorded`;
        if (!(await this.orders.quarantineLapsed(order, now, error))) return { kind: 'skipped', reason: 'lost' };
        return this.quarantined(order.order_id, error, (order.faults ?? 0) + 1);
      }
      case 'claim':
      case 'take over': {
        const lapsed = step.kind === 'take over';
        const claimed = await this.orders.claim(order, now, this.settings.leaseMs, lapsed);
        if (!claimed) return { kind: 'skipped', reason: 'lost' };
        if (lapsed) this.logger.warn('order taken over: its lease ran out with no outcome recorded', { order_id: order.order_id, attempt: order.attempts, faults: claimed.faults });
        this.logger.info('order processing', { order_id: order.order_id, status: 'PROCESSING', attempt: claimed.attempts });
        return { order: claimed };
      }
    }
  }

  /**
   * The simulated work: a uniform delay, failing at the configured rate; abortable for shutdown. An order whose
   * lease would end before the longest work could is not started (another worker may take it over then).
   */
  run(claimed: Claimed, signal?: AbortSignal): Promise<WorkResult> {
    const { minMs, maxMs, failureRate } = this.settings;
    if ((claimed.order.due_at ?? 0) - this.now() < maxMs) return Promise.resolve({ kind: 'late' });
    const ms = minMs + this.random() * (maxMs - minMs);
    const fails = this.random() < failureRate;
    const startedAt = this.now();
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve({ kind: 'aborted' });
      const onAbort = () => {
        clearTimeout(timer);
        resolve({ kind: 'aborted' });
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        const endedAt = this.now();
        resolve(fails ? { kind: 'error', error: new ProcessingFailure('simulated processing failure').message, endedAt } : { kind: 'done', startedAt, endedAt });
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Records how the attempt went: COMPLETED, a retry after its back-off, FAILED, or the lease given back. Only
   * the work's own failures spend the retry budget. A fault on the way is counted against the order.
   */
  async finish(claimed: Claimed, result: WorkResult): Promise<ProcessOutcome> {
    try {
      return await this.record(claimed.order, result);
    } catch (error) {
      return this.fault(claimed.order.order_id, error);
    }
  }

  private async record(order: OrderState, result: WorkResult): Promise<ProcessOutcome> {
    switch (result.kind) {
      case 'aborted':
      case 'late':
        // Not retried: a stop must not wait on an absent store, and a lapsed lease spends no budget either.
        await this.orders.release(order, this.now());
        this.logger.info('order released', { order_id: order.order_id, attempt: order.attempts });
        if (result.kind === 'late') await this.requeue(order.order_id, this.now());
        return { kind: 'released' };
      case 'done':
        if (!(await this.persist(order, () => this.orders.complete(order, result.endedAt, result.startedAt)))) return { kind: 'skipped', reason: 'lost' };
        this.logger.info('order completed', { order_id: order.order_id, status: 'COMPLETED', attempt: order.attempts });
        return { kind: 'completed' };
      case 'error': {
        const { error, endedAt } = result;
        const failures = (order.failed_attempts ?? 0) + 1;
        if (failures >= this.settings.maxAttempts) {
          return (await this.persist(order, () => this.orders.fail(order, endedAt, error))) ? this.failed(order, error) : { kind: 'skipped', reason: 'lost' };
        }
        const at = endedAt + retryDelay(failures, this.settings.retryBaseMs, this.settings.retryMaxMs, this.random);
        if (!(await this.persist(order, () => this.orders.retryLater(order, endedAt, error, at)))) return { kind: 'skipped', reason: 'lost' };
        this.logger.info('order attempt failed', { order_id: order.order_id, attempt: order.attempts, error, retry_at: new Date(at).toISOString() });
        await this.requeue(order.order_id, at);
        return { kind: 'retry', at, error };
      }
    }
  }

  /**
   * Writes an attempt's outcome, again after a back-off while the store is unavailable and the lease lasts:
   * work that was done must not be done again, or end FAILED, for want of one write. Past the lease the
   * order is another worker's to take over (its history then says the lease ran out).
   */
  private async persist(order: OrderState, write: () => Promise<boolean>): Promise<boolean> {
    for (let tries = 1; ; tries++) {
      try {
        return await write();
      } catch (error) {
        const wait = retryDelay(tries, RECORD_RETRY_BASE_MS, RECORD_RETRY_MAX_MS, this.random);
        if (!saysUnavailable(error) || this.now() + wait >= (order.due_at ?? 0)) throw error;
        this.logger.warn('could not record the outcome; trying again', { order_id: order.order_id, attempt: order.attempts, retry_in_ms: wait });
        await sleep(wait);
      }
    }
  }

  /**
   * A try that ended in a fault rather than an outcome: counted on the order, which stays due for another try,
   * and set aside at the POISON_MAX_TRIES-th, so a poison order is never tried for ever. The store being away
   * is no fault of the order's: that is thrown on, and the order is simply due again later.
   */
  private async fault(orderId: string, error: unknown): Promise<ProcessOutcome> {
    if (saysUnavailable(error)) throw error;
    const message = faultMessage(error);
    const counted = await this.orders.noteFault(orderId, message, this.settings.poisonMaxTries, this.now());
    switch (counted.kind) {
      case 'quarantined':
        return this.quarantined(orderId, error, counted.faults);
      case 'aside':
        return { kind: 'quarantined' };
      case 'settled':
        return { kind: 'skipped', reason: 'lost' };
      case 'counted':
        this.logger.warn('order could not be processed; it will be tried again', {
          order_id: orderId,
          error: error as Error,
          faults: counted.faults,
          quarantined_at: this.settings.poisonMaxTries,
        });
        return { kind: 'faulted', error: message, faults: counted.faults };
    }
  }

  /** The one line an operator is alerted by: which order was set aside, and why (`npm run requeue` brings it back). */
  private quarantined(orderId: string, error: unknown, faults: number): ProcessOutcome {
    this.logger.error('order quarantined; fix it, then npm run requeue', { order_id: orderId, error: error as Error, faults });
    return { kind: 'quarantined', error: typeof error === 'string' ? error : faultMessage(error) };
  }

  /** A lost retry message is not a lost order: it is due in the store, where the sweeper finds it. */
  private async requeue(orderId: string, at: number): Promise<void> {
    try {
      await this.queue.send([orderId], { notBefore: at });
    } catch (error) {
      this.logger.warn('could not queue the retry; the sweeper will', { order_id: orderId, error: error as Error });
    }
  }

  private failed(order: OrderState, error: string): ProcessOutcome {
    this.logger.warn('order failed', { order_id: order.order_id, status: 'FAILED', attempt: order.attempts, error });
    return { kind: 'failed', error };
  }
}
