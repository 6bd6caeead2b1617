import type { Logger } from '@aws-lambda-powertools/logger';
import type { OrderRepository } from './orders.ts';
import type { OrderQueue } from './queue/port.ts';

export interface SweepOptions {
  /** Orders due at or before this moment are sent. */
  dueBy: number;
  /** Stop once this many ids were newly accepted by the queue. */
  maxSend: number;
  /** Stop after reading this many index entries (those already queued count too). */
  maxRead: number;
}

/**
 * Sends the ids of due orders (PENDING, retry due, or lease expired) to the queue, read from the sparse
 * work index: never a scan of the table. Returns how many ids the queue newly accepted.
 */
export async function sweep(orders: OrderRepository, queue: OrderQueue, options: SweepOptions): Promise<number> {
  let sent = 0;
  let read = 0;
  await orders.scanDue(options.dueBy, async (ids) => {
    read += ids.length;
    sent += await queue.send(ids);
    return sent < options.maxSend && read < options.maxRead;
  });
  return sent;
}

/** A bounded queue the local sweeper fills. */
export interface RoomyQueue extends OrderQueue {
  readonly capacity: number;
  readonly size: number;
  readonly room: number;
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
    this.running ??= this.once().finally(() => (this.running = undefined));
    return this.running;
  }

  private async once(): Promise<void> {
    const room = this.queue.room;
    if (room <= 0) return;
    this.backlog = false;
    try {
      const sent = await sweep(this.orders, this.queue, {
        dueBy: Date.now(),
        maxSend: room,
        maxRead: this.queue.capacity + room,
      });
      if (sent >= room) this.backlog = true;
      if (sent > 0) this.logger.debug('sweeper queued due orders', { count: sent });
    } catch (error) {
      this.backlog = true;
      this.logger.warn('sweep failed; will try again', { error: error as Error });
    }
  }
}
