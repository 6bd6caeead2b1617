import type { Logger } from '@aws-lambda-powertools/logger';
import type { OrderRepository, OrderState } from './orders.ts';
import type { Marker } from './markers.ts';
import type { OrderQueue } from './queue/port.ts';

export interface SweepOptions {
  /** Markers of orders created at or before this moment are read. */
  createdBy: number;
  /** Orders whose lease or back-off ended by then are due (PENDING ones always are). */
  now: number;
  /** Stop once this many orders were newly accepted by the queue. */
  maxSend: number;
  /** Stop after reading this many of the markers' orders. */
  maxRead: number;
  /** Orders this process holds already (queued or at work): not read, not sent, kept on their markers. */
  holds?: (orderId: string) => boolean;
  /** Orders this process saw end COMPLETED or FAILED, or set aside: not read, and taken off their markers. */
  finished?: (orderId: string) => boolean;
  /** The marker shard to start from: each sweep starts elsewhere, so every shard gets its turn first. */
  fromShard?: number;
}

/** Finished, or set aside (quarantined orders wait for an operator, who puts them on a marker again). */
const isDone = (state: OrderState) => state.status === 'COMPLETED' || state.status === 'FAILED' || state.quarantined !== undefined;

/**
 * Due unless finished or visibly under a lease. An order whose state this version cannot read is sent too:
 * the worker counts that fault, and sets the order aside once it is one too many.
 */
const isDue = (state: OrderState, now: number) =>
  !isDone(state) && !(state.status === 'PROCESSING' && typeof state.due_at === 'number' && state.due_at > now);

/**
 * Sends the orders that are due (PENDING, a retry whose back-off is over, or a lease that ran out) to the
 * queue, as found through the due markers: never a scan of the table. Markers are read oldest first, a page
 * per shard in turn; each one is shrunk to its unfinished orders, and deleted when it has none left.
 * Quarantined orders are taken off their markers too. Returns how many orders the queue newly accepted.
 */
export async function sweep(orders: OrderRepository, queue: OrderQueue, options: SweepOptions): Promise<number> {
  const holds = options.holds ?? (() => false);
  const finished = options.finished ?? (() => false);
  let sent = 0;
  let read = 0;
  await orders.scanMarkers(
    options.createdBy,
    async (markers) => {
      const ids = [...new Set(markers.flatMap((marker) => marker.ids))];
      // Held now, not when the reads come back: an order let go meanwhile may need work again.
      const held = new Set(ids.filter(holds));
      // Asked as each page comes: an order that finished while the sweep went on is not read back either.
      const unknown = ids.filter((id) => !held.has(id) && !finished(id));
      read += unknown.length;
      const states = new Map((await orders.getStates(unknown)).map((state) => [state.order_id, state]));
      const due = [...states.values()].filter((state) => isDue(state, options.now));
      if (due.length > 0) sent += await queue.send(due);
      await orders.pruneMarkers(prunable(markers, (id) => !finished(id) && (held.has(id) || unfinished(states.get(id)))));
      return sent < options.maxSend && read < options.maxRead;
    },
    { from: options.fromShard ?? 0 },
  );
  return sent;
}

const unfinished = (state: OrderState | undefined) => state !== undefined && !isDone(state);

/** The markers that list orders `keep` lets go (finished, or gone), with the orders they should keep. */
const prunable = (markers: Marker[], keep: (orderId: string) => boolean) =>
  markers.flatMap((marker) => {
    const remaining = marker.ids.filter(keep);
    return remaining.length < marker.ids.length ? [{ marker, remaining }] : [];
  });

/** A bounded queue the local sweeper fills. */
export interface RoomyQueue extends OrderQueue {
  readonly capacity: number;
  readonly size: number;
  readonly room: number;
  holds(orderId: string): boolean;
  hasFinished(orderId: string): boolean;
  forgetFinished(): void;
}

/**
 * The local sweeper: sweeps at start, every `intervalMs`, and whenever the queue has drained to half
 * while a backlog is known to wait in the store (the queue was full when orders arrived, or the last
 * sweep filled it). That keeps the queue fed from a backlog of any size with bounded memory.
 */
export class LocalSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private backlog = true;
  private fromShard = 0;
  private stopped = false;

  constructor(
    private readonly orders: OrderRepository,
    private readonly queue: RoomyQueue,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {}

  start(): Promise<void> {
    this.timer = setInterval(() => void this.run(), this.intervalMs);
    this.timer.unref();
    return this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Tells the sweeper that orders are waiting in the store beyond what the queue holds. */
  noteBacklog(): void {
    this.backlog = true;
  }

  /** Refills the queue when it runs low and a backlog is known. */
  poke(): void {
    if (this.backlog && this.queue.size * 2 <= this.queue.capacity) void this.run();
  }

  /** One sweep at a time; a call during a sweep waits for it. */
  run(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.running ??= this.once().finally(() => (this.running = undefined));
    return this.running;
  }

  private async once(): Promise<void> {
    const room = this.queue.room;
    if (room <= 0) return;
    this.backlog = false;
    this.queue.forgetFinished();
    const now = Date.now();
    try {
      const sent = await sweep(this.orders, this.queue, {
        createdBy: now,
        now,
        maxSend: room,
        maxRead: this.queue.capacity + room,
        holds: (orderId) => this.queue.holds(orderId),
        finished: (orderId) => this.queue.hasFinished(orderId),
        fromShard: this.fromShard,
      });
      this.fromShard = this.fromShard + 1;
      if (sent >= room) this.backlog = true;
      if (sent > 0) this.logger.debug('sweeper queued due orders', { count: sent });
    } catch (error) {
      this.backlog = true;
      this.logger.warn('sweep failed; will try again', { error: error as Error });
    }
  }
}
