import type { OrderState } from '../orderWrites.ts';

export interface SendOptions {
  /** Deliver no earlier than this time (epoch ms): the back-off of a retry. */
  notBefore?: number;
}

/**
 * An order to process: its id, or the state a reader just saw (an adapter that can carry it saves the
 * worker a read of the order; one that cannot sends the id).
 */
export type OrderRef = string | OrderState;

export const orderIdOf = (ref: OrderRef): string => (typeof ref === 'string' ? ref : ref.order_id);

/** Where orders wait to be processed: in memory on one machine, SQS in the cloud. */
export interface OrderQueue {
  /**
   * Hands orders to the consumers and returns how many were accepted. Orders not accepted (a full queue,
   * a failed send) are not lost: they stay due in the store and the sweeper sends them again.
   */
  send(orders: readonly OrderRef[], options?: SendOptions): Promise<number>;
}
