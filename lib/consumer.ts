import { setMaxListeners } from 'node:events';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { OrderProcessor } from './processing.ts';
import type { MemoryQueue } from './queue/memoryQueue.ts';

/**
 * The long-lived local consumer: a fixed number of workers take ids from the in-memory queue and hand
 * them to the processor (which queues a failed attempt again for when its back-off ends).
 */
export class Consumer {
  private readonly abort = new AbortController();
  private workers: Promise<void>[] = [];

  constructor(
    private readonly queue: MemoryQueue,
    private readonly processor: OrderProcessor,
    private readonly concurrency: number,
    private readonly logger: Logger,
    /** Called after each delivery, e.g. to let the sweeper refill the queue. */
    private readonly onProgress: () => void = () => {},
  ) {}

  start(): void {
    // Each delivery under way listens for the one shutdown signal: more than node's default of 10 is no leak.
    setMaxListeners(this.concurrency + 1, this.abort.signal);
    this.workers = Array.from({ length: this.concurrency }, () => this.work());
  }

  /**
   * Stops taking work, lets deliveries under way finish for up to `graceMs`, then aborts the rest,
   * whose leases are released so that they are due again at once.
   */
  async stop(graceMs: number): Promise<void> {
    this.queue.close();
    const all = Promise.all(this.workers);
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([all, graceOver]);
    clearTimeout(timer);
    this.abort.abort(new Error('shutting down'));
    await all;
  }

  private async work(): Promise<void> {
    for (let id = await this.queue.take(); id !== undefined; id = await this.queue.take()) {
      try {
        await this.processor.process(id, this.abort.signal);
      } catch (error) {
        // The order stays due in the store (PENDING, or PROCESSING with a lease that will run out).
        this.logger.error('processing failed; the sweeper will retry', { order_id: id, error: error as Error });
      } finally {
        this.queue.done(id);
        this.onProgress();
      }
    }
  }
}
