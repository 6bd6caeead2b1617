import type { Logger } from '@aws-lambda-powertools/logger';
import { nextStep, retryDelay } from './lifecycle.ts';
import type { OrderRepository, OrderState } from './orders.ts';
import { orderIdOf, type OrderQueue, type OrderRef } from './queue/port.ts';

export interface ProcessingSettings {
  minMs: number;
  maxMs: number;
  failureRate: number;
  maxAttempts: number;
  leaseMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
}

/** What one delivery of an order came to. */
export type ProcessOutcome =
  | { kind: 'completed' }
  | { kind: 'failed'; error: string }
  | { kind: 'retry'; at: number; error: string }
  | { kind: 'released' }
  | { kind: 'skipped'; reason: 'unknown' | 'finished' | 'busy' | 'lost' };

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

  /** Claims the order if its next step is to work on it; otherwise says why not (or ends it FAILED). */
  async begin(ref: OrderRef): Promise<Claimed | ProcessOutcome> {
    const order = typeof ref === 'string' ? await this.orders.get(ref) : ref;
    if (!order) {
      this.logger.warn('delivery for an unknown order', { order_id: orderIdOf(ref) });
      return { kind: 'skipped', reason: 'unknown' };
    }
    const now = this.now();
    const step = nextStep(order, now, this.settings.maxAttempts);
    switch (step.kind) {
      case 'finished':
        return { kind: 'skipped', reason: 'finished' };
      case 'busy':
        return { kind: 'skipped', reason: 'busy' };
      case 'exhausted': {
        const error = order.last_error ?? 'the last attempt was interrupted';
        return (await this.orders.fail(order, now, error, false)) ? this.failed(order, error) : { kind: 'skipped', reason: 'lost' };
      }
      case 'claim': {
        const claimed = await this.orders.claim(order, now, this.settings.leaseMs);
        if (!claimed) return { kind: 'skipped', reason: 'lost' };
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

  /** Records how the attempt went: COMPLETED, a retry after its back-off, FAILED, or the lease given back. */
  async finish({ order }: Claimed, result: WorkResult): Promise<ProcessOutcome> {
    switch (result.kind) {
      case 'aborted':
      case 'late':
        await this.orders.release(order, this.now());
        this.logger.info('order released', { order_id: order.order_id, attempt: order.attempts });
        if (result.kind === 'late') await this.requeue(order.order_id, this.now());
        return { kind: 'released' };
      case 'done':
        if (!(await this.orders.complete(order, result.endedAt, result.startedAt))) return { kind: 'skipped', reason: 'lost' };
        this.logger.info('order completed', { order_id: order.order_id, status: 'COMPLETED', attempt: order.attempts });
        return { kind: 'completed' };
      case 'error': {
        const { error, endedAt } = result;
        if (order.attempts >= this.settings.maxAttempts) {
          return (await this.orders.fail(order, endedAt, error)) ? this.failed(order, error) : { kind: 'skipped', reason: 'lost' };
        }
        const at = endedAt + retryDelay(order.attempts, this.settings.retryBaseMs, this.settings.retryMaxMs, this.random);
        if (!(await this.orders.retryLater(order, endedAt, error, at))) return { kind: 'skipped', reason: 'lost' };
        this.logger.info('order attempt failed', { order_id: order.order_id, attempt: order.attempts, error, retry_at: new Date(at).toISOString() });
        await this.requeue(order.order_id, at);
        return { kind: 'retry', at, error };
      }
    }
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
