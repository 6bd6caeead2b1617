import { Overloaded } from './errors.ts';
import type { StoreGate, Urgency } from './storeGate.ts';

/** The outcome of one item of a committed batch: a value, or the error that item alone met. */
export type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

export interface GroupCommitOptions<T, R> {
  /** Most weight one commit may take (a transaction holds 100 items). */
  maxBatch: number;
  /** The share of a commit an item takes; 1 when absent. */
  weight?: (item: T) => number;
  /** Most commits under way at once; more arrivals wait and join the next batch. */
  maxInFlight: number;
  /** Items with the same key never share a batch (the later one waits for the next). */
  key: (item: T) => string;
  /** Writes a batch; returns one outcome per item, in order. Throwing fails the whole batch. */
  commit: (batch: T[]) => Promise<Settled<R>[]>;
  /**
   * Settles, without a commit, an item waiting behind one of its key that has just been committed with
   * `value` (e.g. a create's replay); undefined leaves it to a commit of its own.
   */
  settleFollower?: (item: T, value: R) => Settled<R> | undefined;
  /** Most items waiting for a commit; beyond it `submit` rejects at once with Overloaded (load shedding). */
  maxWaiting?: number;
  /** Shared with the process's other writers: a batch is taken once the gate grants it a slot. */
  gate?: { store: StoreGate; urgency: Urgency };
}

interface Waiting<T, R> {
  item: T;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: items submitted while earlier commits are under way are gathered into one batch.
 * With a commit slot free, an item is sent at the next turn of the event loop, together with whatever
 * arrived in the same turn, so a lone request waits for nothing; under load batches fill up by themselves.
 */
export class GroupCommit<T, R> {
  /** Waiting items by key, each list in arrival order (with its own head, so a long one is not shifted). */
  private readonly byKey = new Map<string, { items: Waiting<T, R>[]; head: number }>();
  /** Keys with waiting items, in the order their turn comes. */
  private keys: string[] = [];
  private keysHead = 0;
  /** Keys that had an item in the last batch and more waiting: their turn comes first. */
  private next: string[] = [];
  private count = 0;
  private inFlight = 0;
  /** Commits started but still waiting for the gate: they will take items when it grants them. */
  private starting = 0;
  private scheduled = false;

  constructor(private readonly options: GroupCommitOptions<T, R>) {}

  /** Items waiting for a commit. */
  get waiting(): number {
    return this.count;
  }

  submit(item: T): Promise<R> {
    if (this.count >= (this.options.maxWaiting ?? Infinity)) return Promise.reject(new Overloaded());
    return new Promise<R>((resolve, reject) => {
      const key = this.options.key(item);
      let list = this.byKey.get(key);
      if (!list) {
        list = { items: [], head: 0 };
        this.byKey.set(key, list);
        this.keys.push(key);
      }
      // Items taken or settled are dropped now and then, so a key that never runs dry does not grow its list.
      if (list.head > 1024 && list.head * 2 > list.items.length) {
        list.items = list.items.slice(list.head);
        list.head = 0;
      }
      list.items.push({ item, resolve, reject });
      this.count++;
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.options.maxInFlight || this.count === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.inFlight < this.options.maxInFlight && this.count > this.starting * this.options.maxBatch) {
      this.inFlight++;
      this.starting++;
      void this.start().finally(() => {
        this.inFlight--;
        this.schedule();
      });
    }
  }

  private async start(): Promise<void> {
    const release = this.options.gate ? await this.options.gate.store.acquire(this.options.gate.urgency) : undefined;
    this.starting--;
    try {
      const batch = this.take();
      if (batch.length > 0) await this.run(batch);
    } finally {
      release?.();
    }
  }

  /**
   * The oldest item of each key in turn, up to the batch's weight: O(batch) whatever waits behind it.
   * A key whose next item waits for the next batch is first in line for it.
   */
  private take(): Waiting<T, R>[] {
    const { maxBatch, weight = () => 1 } = this.options;
    const batch: Waiting<T, R>[] = [];
    const again: string[] = [];
    const first = this.next;
    let used = 0;
    for (;;) {
      const fromFirst = first.length > 0;
      if (!fromFirst && this.keysHead >= this.keys.length) break;
      const key = fromFirst ? first[0]! : this.keys[this.keysHead]!;
      const list = this.byKey.get(key)!;
      if (list.head >= list.items.length) {
        // Its items were all settled as followers.
        if (fromFirst) first.shift();
        else this.keysHead++;
        this.byKey.delete(key);
        continue;
      }
      const item = list.items[list.head]!;
      const size = weight(item.item);
      if (batch.length > 0 && used + size > maxBatch) break;
      if (fromFirst) first.shift();
      else this.keysHead++;
      list.head++;
      this.count--;
      batch.push(item);
      used += size;
      if (list.head < list.items.length) again.push(key);
      else this.byKey.delete(key);
      if (used >= maxBatch) break;
    }
    this.next = [...first, ...again];
    if (this.keysHead > 1024 && this.keysHead * 2 > this.keys.length) {
      this.keys = this.keys.slice(this.keysHead);
      this.keysHead = 0;
    }
    return batch;
  }

  /**
   * The waiting items of a key just committed that `settleFollower` can answer from its value: many identical
   * requests then cost one commit, not one each. The list stays (maybe empty) while its key is in line.
   */
  private settleFollowers(committed: T, value: R): void {
    const settle = this.options.settleFollower;
    const list = settle && this.byKey.get(this.options.key(committed));
    if (!list) return;
    while (list.head < list.items.length) {
      const waiting = list.items[list.head]!;
      const outcome = settle(waiting.item, value);
      if (!outcome) return;
      list.head++;
      this.count--;
      if (outcome.ok) waiting.resolve(outcome.value);
      else waiting.reject(outcome.error);
    }
  }

  private async run(batch: Waiting<T, R>[]): Promise<void> {
    try {
      const outcomes = await this.options.commit(batch.map((w) => w.item));
      batch.forEach((w, i) => {
        const outcome = outcomes[i];
        if (outcome?.ok) {
          w.resolve(outcome.value);
          this.settleFollowers(w.item, outcome.value);
        } else w.reject(outcome ? outcome.error : new Error('commit returned no outcome'));
      });
    } catch (error) {
      for (const w of batch) w.reject(error);
    }
  }
}
