/** The outcome of one item of a committed batch: a value, or the error that item alone met. */
export type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

export interface GroupCommitOptions<T, R> {
  /** Most items one commit may take. */
  maxBatch: number;
  /** Most commits under way at once; more arrivals wait and join the next batch. */
  maxInFlight: number;
  /** Items with the same key never share a batch (the later one waits for the next). */
  key: (item: T) => string;
  /** Writes a batch; returns one outcome per item, in order. Throwing fails the whole batch. */
  commit: (batch: T[]) => Promise<Settled<R>[]>;
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
  private readonly waiting: Waiting<T, R>[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(private readonly options: GroupCommitOptions<T, R>) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.options.maxInFlight || this.waiting.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.inFlight < this.options.maxInFlight && this.waiting.length > 0) {
      const batch = this.take();
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        this.schedule();
      });
    }
  }

  private take(): Waiting<T, R>[] {
    const batch: Waiting<T, R>[] = [];
    const keys = new Set<string>();
    const later: Waiting<T, R>[] = [];
    while (this.waiting.length > 0 && batch.length < this.options.maxBatch) {
      const next = this.waiting.shift()!;
      const key = this.options.key(next.item);
      if (keys.has(key)) later.push(next);
      else {
        keys.add(key);
        batch.push(next);
      }
    }
    this.waiting.unshift(...later);
    return batch;
  }

  private async run(batch: Waiting<T, R>[]): Promise<void> {
    try {
      const outcomes = await this.options.commit(batch.map((w) => w.item));
      batch.forEach((w, i) => {
        const outcome = outcomes[i];
        if (outcome?.ok) w.resolve(outcome.value);
        else w.reject(outcome ? outcome.error : new Error('commit returned no outcome'));
      });
    } catch (error) {
      for (const w of batch) w.reject(error);
    }
  }
}
