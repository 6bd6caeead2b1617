import type { Context } from 'aws-lambda';
import { foldAll } from '../lib/counters.ts';
import { getServices } from '../lib/services.ts';
import { sweep } from '../lib/sweeper.ts';

/** Folding stops this long before the invocation's timeout. */
const MARGIN_MS = 15_000;
/** Between two passes over the shards: a shard is folded at most four times a second, so reads rarely race. */
const PAUSE_MS = 250;

/**
 * The scheduled sweeper, every minute: re-sends orders that are due and older than the grace period (a
 * lost send, an expired lease, a retry beyond what SQS can delay; a duplicate message changes nothing),
 * then folds the counter deltas into their totals until shortly before its timeout, so the folding runs
 * all the time and a metrics read finds few deltas.
 */
export const handler = async (_event?: unknown, context?: Context): Promise<{ sent: number; folded: number }> => {
  const { orders, queue, config, logger, store } = getServices();
  if (context) logger.addContext(context);
  const now = Date.now();
  const sent = await sweep(orders, queue, {
    createdBy: now - config.SWEEP_GRACE_MS,
    now,
    maxSend: 10_000,
    maxRead: 100_000,
    fromShard: Math.floor(Math.random() * store.shards),
  });
  let folded = await foldAll(store);
  const stopAt = now + (context?.getRemainingTimeInMillis() ?? 0) - MARGIN_MS;
  while (Date.now() < stopAt) {
    folded += await foldAll(store);
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
  }
  logger.info('sweep done', { sent, folded });
  return { sent, folded };
};
