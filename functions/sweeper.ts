import type { Context } from 'aws-lambda';
import { getServices } from '../lib/services.ts';
import { sweep } from '../lib/sweeper.ts';

/**
 * The scheduled recovery sweeper: re-sends orders that are due and older than the grace period (a lost
 * send, an expired lease, a retry beyond what SQS can delay). A duplicate message changes nothing.
 */
export const handler = async (_event?: unknown, context?: Context): Promise<{ sent: number }> => {
  const { orders, queue, config, logger } = getServices();
  if (context) logger.addContext(context);
  const sent = await sweep(orders, queue, { dueBy: Date.now() - config.SWEEP_GRACE_MS, maxSend: 10_000, maxRead: 100_000 });
  logger.info('sweep done', { sent });
  return { sent };
};
