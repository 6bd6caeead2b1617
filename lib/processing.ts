import type { Logger } from '@aws-lambda-powertools/logger';
import { nextStep, retryDelay } from './lifecycle.ts';
import type { OrderRepository, StoredOrder } from './orders.ts';
import type { OrderQueue } from './queue/port.ts';

export interface ProcessingSettings {
  minMs: number;
  maxMs: number;
  failureRate: number;
  maxAttempts: number;
  leaseMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
}

/** What one delivery of an order id came to. */
export type ProcessOutcome =
  | { kind: 'completed' }
  | { kind: 'failed'; error: string }
  | { kind: 'retry'; at: number; error: string }
  | { kind: 'released' }
  | { kind: 'skipped'; reason: 'unknown' | 'finished' | 'busy' | 'lost' };

/** The simulated work failed (PROCESSING_FAILURE_RATE). */
export class ProcessingFailure extends Error {
  override name = 'ProcessingFailure';
}

/**
 * Processes one delivery of an order id: the same code behind the local consumer and the SQS handler.
 * Deliveries are at-least-once; each transition is a conditional write, so a duplicate or stale delivery
 * changes nothing.
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

  async process(orderId: string, signal?: AbortSignal): Promise<ProcessOutcome> {
    const order = await this.orders.get(orderId);
    if (!order) {
      this.logger.warn('delivery for an unknown order', { order_id: orderId });
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
      case 'claim':
        return this.attempt(order, now, signal);
    }
  }

  private async attempt(order: StoredOrder, now: number, signal?: AbortSignal): Promise<ProcessOutcome> {
    const claimed = await this.orders.claim(order, now, this.settings.leaseMs);
    if (!claimed) return { kind: 'skipped', reason: 'lost' };
    this.logger.info('order processing', { order_id: order.order_id, status: 'PROCESSING', attempt: claimed.attempts });
    try {
      await this.work(signal);
    } catch (error) {
      if (signal?.aborted) {
        await this.orders.release(claimed, this.now());
        this.logger.info('order released', { order_id: order.order_id, attempt: claimed.attempts });
        return { kind: 'released' };
      }
      const message = error instanceof Error ? error.message : String(error);
      const failedAt = this.now();
      if (claimed.attempts >= this.settings.maxAttempts) {
        return (await this.orders.fail(claimed, failedAt, message)) ? this.failed(claimed, message) : { kind: 'skipped', reason: 'lost' };
      }
      const { retryBaseMs, retryMaxMs } = this.settings;
      const at = failedAt + retryDelay(claimed.attempts, retryBaseMs, retryMaxMs, this.random);
      if (!(await this.orders.retryLater(claimed, failedAt, message, at))) return { kind: 'skipped', reason: 'lost' };
      this.logger.info('order attempt failed', { order_id: order.order_id, attempt: claimed.attempts, error: message, retry_at: new Date(at).toISOString() });
      await this.requeue(order.order_id, at);
      return { kind: 'retry', at, error: message };
    }
    if (!(await this.orders.complete(claimed, this.now()))) return { kind: 'skipped', reason: 'lost' };
    this.logger.info('order completed', { order_id: order.order_id, status: 'COMPLETED', attempt: claimed.attempts });
    return { kind: 'completed' };
  }

  /** A lost retry message is not a lost order: it is due in the store, where the sweeper finds it. */
  private async requeue(orderId: string, at: number): Promise<void> {
    try {
      await this.queue.send([orderId], { notBefore: at });
    } catch (error) {
      this.logger.warn('could not queue the retry; the sweeper will', { order_id: orderId, error: error as Error });
    }
  }

  private failed(order: StoredOrder, error: string): ProcessOutcome {
    this.logger.warn('order failed', { order_id: order.order_id, status: 'FAILED', attempt: order.attempts, error });
    return { kind: 'failed', error };
  }

  /** The simulated work: a uniform delay, failing at the configured rate; abortable for shutdown. */
  private work(signal?: AbortSignal): Promise<void> {
    const { minMs, maxMs, failureRate } = this.settings;
    const ms = minMs + this.random() * (maxMs - minMs);
    const fails = this.random() < failureRate;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        if (fails) reject(new ProcessingFailure('simulated processing failure'));
        else resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
