import { setMaxListeners } from 'node:events';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Claimed, OrderProcessor, ProcessOutcome } from './processing.ts';
import type { MemoryQueue } from './queue/memoryQueue.ts';
import { orderIdOf, type OrderRef } from './queue/port.ts';

/**
 * The long-lived local consumer. `concurrency` orders are worked on at once, and a worker waits on nothing
 * but the work: orders are claimed ahead (see `claimAhead`), and an outcome is
 * recorded after the worker has moved on to the next order. Claims and outcomes of many orders thus share
 * transactions, and the store's round trips overlap the work instead of adding to it.
 */
export class Consumer {
  private readonly abort = new AbortController();
  private readonly ready: Claimed[] = [];
  private claiming = 0;
  private working = 0;
  private finishing = 0;
  private feeding: Promise<void> = Promise.resolve();
  private stopping = false;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly queue: MemoryQueue,
    private readonly processor: OrderProcessor,
    private readonly concurrency: number,
    private readonly logger: Logger,
    /** Called after each delivery, e.g. to let the sweeper refill the queue. */
    private readonly onProgress: () => void = () => {},
    /** True while a burst of creates has the store (`StoreGate.bursting`). */
    private readonly bursting: () => boolean = () => false,
  ) {}

  start(): void {
    // Each order at work listens for the one shutdown signal: more than node's default of 10 is no leak.
    setMaxListeners(this.concurrency + 1, this.abort.signal);
    this.feeding = this.feed();
  }

  /**
   * Stops taking orders, gives back the leases of those claimed but not started, lets work under way
   * finish for up to `graceMs`, then aborts the rest (their leases are given back too, so they are due
   * again at once) and waits for every outcome to be recorded.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.queue.close();
    this.changed();
    await this.feeding;
    await this.until(() => this.claiming === 0);
    for (const claimed of this.ready.splice(0)) this.settle(claimed, { kind: 'aborted' });
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([this.until(() => this.working === 0), graceOver]);
    clearTimeout(timer);
    this.abort.abort(new Error('shutting down'));
    await this.until(() => this.working === 0 && this.finishing === 0);
  }

  /** Takes orders while there is room to claim ahead and outcomes are not piling up. */
  private async feed(): Promise<void> {
    for (;;) {
      await this.until(() => this.stopping || (this.claiming + this.ready.length < this.claimAhead() && this.finishing < 4 * this.concurrency));
      const ref = this.stopping ? undefined : await this.queue.take();
      if (ref === undefined) return;
      void this.claim(ref);
    }
  }

  /**
   * How many orders may be claimed ahead of a free worker: three times `concurrency`, plus the workers that are
   * idle. With short work claims are the bottleneck: the orders a worker pool gets through a second are at most
   * those claimed ahead over a claim's round trip, which under a steady load of creates (each commit waits its
   * turn behind theirs) is a fifth of a second or more; at twice `concurrency` that capped 32 workers near 300
   * orders/s. Bigger claim batches also cost the store less per order. During a burst of creates, claims wait
   * for the creates anyway, and claiming further ahead only makes the claim commits that do run longer, taking
   * the store from clients who are waiting: then once `concurrency` plus the idle workers. The lease of an
   * order claimed ahead starts at its claim; one that waited too long is given back (`late`).
   */
  private claimAhead(): number {
    return (this.bursting() ? 2 : 4) * this.concurrency - this.working;
  }

  private async claim(ref: OrderRef): Promise<void> {
    this.claiming++;
    try {
      const begun = await this.processor.begin(ref);
      if (!('order' in begun)) this.delivered(orderIdOf(ref), begun);
      else if (this.stopping) this.settle(begun, { kind: 'aborted' });
      else this.ready.push(begun);
    } catch (error) {
      // The order stays due in the store (PENDING, or PROCESSING with a lease that will run out).
      this.unrecorded('processing failed; the sweeper will retry', orderIdOf(ref), error);
      this.delivered(orderIdOf(ref));
    } finally {
      this.claiming--;
      this.startWork();
      this.changed();
    }
  }

  private startWork(): void {
    while (!this.stopping && this.working < this.concurrency && this.ready.length > 0) void this.work(this.ready.shift()!);
  }

  private async work(claimed: Claimed): Promise<void> {
    this.working++;
    const result = await this.processor.run(claimed, this.abort.signal);
    this.working--;
    this.startWork();
    this.settle(claimed, result);
    this.changed();
  }

  private settle(claimed: Claimed, result: Parameters<OrderProcessor['finish']>[1]): void {
    this.finishing++;
    this.processor
      .finish(claimed, result)
      .then(
        (outcome) => this.delivered(claimed.order.order_id, outcome),
        (error: unknown) => {
          this.unrecorded('recording the outcome failed; the sweeper will retry', claimed.order.order_id, error);
          this.delivered(claimed.order.order_id);
        },
      )
      .finally(() => {
        this.finishing--;
        this.changed();
      });
  }

  /** The store being away is expected now and then; anything else thrown this far is a bug. */
  private unrecorded(message: string, orderId: string, error: unknown): void {
    const level = (error as Error | undefined)?.name === 'StoreUnavailable' ? 'warn' : 'error';
    this.logger[level](message, { order_id: orderId, error: error as Error });
  }

  /** An order that ended here, or was set aside, is taken off its markers by the sweeper without a read. */
  private delivered(orderId: string, outcome?: ProcessOutcome): void {
    const final = outcome?.kind === 'completed' || outcome?.kind === 'failed' || outcome?.kind === 'quarantined';
    this.queue.done(orderId, final);
    this.onProgress();
    this.changed();
  }

  private changed(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Resolves once `ready` holds (checked again whenever a delivery moves on). */
  private async until(ready: () => boolean): Promise<void> {
    while (!ready()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}
