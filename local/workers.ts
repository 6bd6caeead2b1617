import { Consumer } from '../lib/consumer.ts';
import { CounterFolder } from '../lib/counters.ts';
import type { MemoryQueue } from '../lib/queue/memoryQueue.ts';
import type { Services } from '../lib/services.ts';
import { LocalSweeper } from '../lib/sweeper.ts';

/** How often the local runtimes fold the counter deltas into the totals (a metrics read then finds few). */
const FOLD_INTERVAL_MS = 1_000;

export interface LocalWorkers {
  /** Stops the sweeper, then the consumer (see Consumer.stop), then the counter folder. */
  stop(graceMs: number): Promise<void>;
}

/**
 * Starts the long-lived in-process consumer, the sweeper and the counter folder over the services'
 * in-memory queue. The first sweep re-queues whatever a previous run left due, so a restart loses nothing.
 */
export async function startLocalWorkers(services: Services): Promise<LocalWorkers> {
  const { queue, config, logger, orders, processor, store, gate } = services;
  // Not instanceof: under serverless-offline the services may come from another copy of this module.
  if (!('take' in queue)) throw new Error('The local runtimes need the in-memory queue');
  const memory = queue as MemoryQueue;
  const sweeper = new LocalSweeper(orders, memory, config.SWEEP_INTERVAL_MS, logger);
  const consumer = new Consumer(memory, processor, config.PROCESSING_CONCURRENCY, logger, () => sweeper.poke(), () => gate.bursting);
  const folder = new CounterFolder(store, FOLD_INTERVAL_MS, logger, gate);
  services.onBacklog = () => sweeper.noteBacklog();
  consumer.start();
  await Promise.all([sweeper.start(), folder.start()]);
  return {
    async stop(graceMs) {
      await sweeper.stop();
      await consumer.stop(graceMs);
      await folder.stop();
    },
  };
}
