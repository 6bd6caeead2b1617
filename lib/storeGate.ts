/** How urgent a write to the store is: a client waits on `urgent` ones. */
export type Urgency = 'urgent' | 'background';

interface Waiter {
  since: number;
  grant: () => void;
}

export interface StoreGateOptions {
  /** Transactions in flight at once. */
  capacity: number;
  /** Longest background work yields to a burst before it gets a slot anyway. */
  maxDelayMs?: number;
  now?: () => number;
}

/**
 * Limits the transactions a process has in flight to the store, in the order they asked, except during a
 * burst of creates: while more creates wait than one transaction takes (`burst`), background work (claims,
 * completions, folds) yields to them, for at most `maxDelayMs` at a time.
 *
 * DynamoDB Local runs one transaction at a time on a JVM that shares two cores with everything else, so
 * processing the orders of a burst while it arrives takes the store's time away from the clients who are
 * waiting. Under a steady load, where creates never pile up, both get their turn.
 */
export class StoreGate {
  private inUse = 0;
  private readonly urgent: Waiter[] = [];
  private readonly background: Waiter[] = [];
  private burst: () => boolean = () => false;
  private readonly capacity: number;
  private readonly maxDelayMs: number;
  private readonly now: () => number;

  constructor({ capacity, maxDelayMs = 1_000, now = () => performance.now() }: StoreGateOptions) {
    this.capacity = capacity;
    this.maxDelayMs = maxDelayMs;
    this.now = now;
  }

  /** True while creates wait beyond one transaction's worth: background work yields to them. */
  get bursting(): boolean {
    return this.burst();
  }

  /** Tells the gate how to recognise a burst: `waiting()` creates not yet in a transaction, above `threshold`. */
  watchCreates(waiting: () => number, threshold: number): void {
    this.burst = () => waiting() > threshold;
  }

  /** Waits for a slot; resolves with the function that gives it back (calling it twice is harmless). */
  acquire(urgency: Urgency): Promise<() => void> {
    return new Promise((resolve) => {
      const grant = () => {
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.inUse--;
          this.next();
        });
      };
      (urgency === 'urgent' ? this.urgent : this.background).push({ since: this.now(), grant });
      this.next();
    });
  }

  private next(): void {
    while (this.inUse < this.capacity) {
      const waiter = this.pick();
      if (!waiter) return;
      this.inUse++;
      waiter.grant();
    }
  }

  private pick(): Waiter | undefined {
    const [urgent, background] = [this.urgent[0], this.background[0]];
    if (!background) return this.urgent.shift();
    const overdue = this.now() - background.since >= this.maxDelayMs;
    if (!overdue && this.burst()) return this.urgent.shift();
    return !urgent || background.since <= urgent.since ? this.background.shift() : this.urgent.shift();
  }
}
