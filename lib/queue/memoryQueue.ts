import type { OrderQueue, SendOptions } from './port.ts';

/**
 * A bounded in-process queue of order ids. It holds only ids (the store holds the orders), refuses ids
 * beyond its capacity, and ignores an id it already holds or that is being processed, so the sweeper
 * may offer the same id again without doubling the work.
 */
export class MemoryQueue implements OrderQueue {
  private readonly ids: string[] = [];
  private head = 0;
  /** Ids queued or being processed. */
  private readonly known = new Set<string>();
  private readonly takers: ((id: string | undefined) => void)[] = [];
  private readonly delayed = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(readonly capacity: number) {}

  /** Ids waiting, not counting those being processed. */
  get size(): number {
    return this.ids.length - this.head;
  }

  /** How many more ids it takes now. */
  get room(): number {
    return this.closed ? 0 : this.capacity - this.size;
  }

  async send(orderIds: readonly string[], options: SendOptions = {}): Promise<number> {
    if (options.notBefore === undefined) return this.offer(orderIds);
    // Always through a timer, even when already due: the delivery that asks for the retry ends first.
    const timer = setTimeout(() => {
      this.delayed.delete(timer);
      this.offer(orderIds);
    }, Math.max(0, options.notBefore - Date.now()));
    this.delayed.add(timer);
    return orderIds.length;
  }

  /** Synchronous send, for callers on the same thread. */
  offer(orderIds: readonly string[]): number {
    let accepted = 0;
    for (const id of orderIds) {
      if (this.room <= 0) break;
      if (this.known.has(id)) continue;
      this.known.add(id);
      accepted++;
      const taker = this.takers.shift();
      if (taker) taker(id);
      else this.ids.push(id);
    }
    return accepted;
  }

  /** The next id, waiting for one; undefined once the queue is closed. */
  take(): Promise<string | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    if (this.size > 0) {
      const id = this.ids[this.head++]!;
      if (this.head > 1024 && this.head * 2 > this.ids.length) {
        this.ids.splice(0, this.head);
        this.head = 0;
      }
      return Promise.resolve(id);
    }
    return new Promise((resolve) => this.takers.push(resolve));
  }

  /** Marks an id's processing as over, so it may be queued again later. */
  done(orderId: string): void {
    this.known.delete(orderId);
  }

  /**
   * Stops handing out ids and drops delayed ones; waiting takers get undefined. Nothing is lost: what was
   * queued stays due in the store.
   */
  close(): void {
    this.closed = true;
    for (const timer of this.delayed) clearTimeout(timer);
    this.delayed.clear();
    for (const taker of this.takers.splice(0)) taker(undefined);
  }
}
