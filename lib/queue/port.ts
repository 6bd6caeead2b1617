export interface SendOptions {
  /** Deliver no earlier than this time (epoch ms): the back-off of a retry. */
  notBefore?: number;
}

/** Where order ids wait to be processed: in memory on one machine, SQS in the cloud. */
export interface OrderQueue {
  /**
   * Hands ids to the consumers and returns how many were accepted. Ids not accepted (a full queue,
   * a failed send) are not lost: their orders stay due in the store and the sweeper sends them again.
   */
  send(orderIds: readonly string[], options?: SendOptions): Promise<number>;
}
