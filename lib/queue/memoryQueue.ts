import { orderIdOf, type OrderQueue, type OrderRef, type SendOptions } from './port.ts';

// Per generation of `finished`: two are kept.
const MAX_FINISHED = 50_000;

/**
 * A bounded in-process queue of orders (ids, or the state a reader just saw). It holds no order data the
 * store does not have, refuses orders beyond its capacity, and ignores an order it already holds or that is
 * being processed, so the sweeper may offer the same order again without doubling the work.
 */
export class MemoryQueue implements OrderQueue {
  private readonly queued: OrderRef[] = [];
  private head = 0;
  /** Ids queued or being processed. */
  private readonly known = new Set<string>();
  /**
   * Ids whose processing here ended COMPLETED or FAILED, since the sweep under way began and during the one
   * before it (see `forgetFinished`): every one stays known for at least one whole sweep.
   */
  private finished = new Set<string>();
  private finishedBefore = new Set<string>();
  private readonly takers: ((order: OrderRef | undefined) => void)[] = [];
  private readonly delayed = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(readonly capacity: number) {}

  /** Orders waiting, not counting those being processed. */
  get size(): number {
    return this.queued.length - this.head;
  }

  /** How many more orders it takes now. */
  get room(): number {
    return this.closed ? 0 : this.capacity - this.size;
  }

  async send(orders: readonly OrderRef[], options: SendOptions = {}): Promise<number> {
    if (this.closed) return 0;
    if (options.notBefore === undefined) return this.offer(orders);
    // Always through a timer, even when already due: the delivery that asks for the retry ends first.
    const timer = setTimeout(() => {
      this.delayed.delete(timer);
      this.offer(orders);
    }, Math.max(0, options.notBefore - Date.now()));
    this.delayed.add(timer);
    return orders.length;
  }

  /** Synchronous send, for callers on the same thread. */
  offer(orders: readonly OrderRef[]): number {
    let accepted = 0;
    for (const order of orders) {
      if (this.room <= 0) break;
      const id = orderIdOf(order);
      if (this.known.has(id)) continue;
      this.known.add(id);
      accepted++;
      const taker = this.takers.shift();
      if (taker) taker(order);
      else this.queued.push(order);
    }
    return accepted;
  }

  /** True while the order is queued or being processed here. */
  holds(orderId: string): boolean {
    return this.known.has(orderId);
  }

  /** The next order, waiting for one; undefined once the queue is closed. */
  take(): Promise<OrderRef | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    if (this.size > 0) {
      const order = this.queued[this.head++]!;
      if (this.head > 1024 && this.head * 2 > this.queued.length) {
        this.queued.splice(0, this.head);
        this.head = 0;
      }
      return Promise.resolve(order);
    }
    return new Promise((resolve) => this.takers.push(resolve));
  }

  /**
   * Marks an order's processing as over, so it may be queued again later; `final` when it ended COMPLETED or
   * FAILED here, which spares the sweeper reading it back.
   */
  done(orderId: string, final = false): void {
    this.known.delete(orderId);
    if (!final) return;
    // Bounded: past this many (a sweeper that could not run), the sweeper reads them back instead.
    if (this.finished.size >= MAX_FINISHED) this.finished.clear();
    this.finished.add(orderId);
  }

  /** True when the order's processing ended COMPLETED or FAILED here lately. */
  hasFinished(orderId: string): boolean {
    return this.finished.has(orderId) || this.finishedBefore.has(orderId);
  }

  /** A sweep begins: the orders that finished before the last one began have had their sweep, and are forgotten. */
  forgetFinished(): void {
    this.finishedBefore = this.finished;
    this.finished = new Set();
  }

  /**
   * Stops handing out orders and drops delayed ones; waiting takers get undefined. Nothing is lost: what
   * was queued stays due in the store.
   */
  close(): void {
    this.closed = true;
    for (const timer of this.delayed) clearTimeout(timer);
    this.delayed.clear();
    for (const taker of this.takers.splice(0)) taker(undefined);
  }
}
