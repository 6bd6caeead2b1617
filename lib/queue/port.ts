/** Where order ids wait to be processed: in memory on one machine, SQS in the cloud. */
export interface OrderQueue {
  /**
   * Hands ids to the consumers and returns how many were newly accepted. Ids not accepted (a full queue,
   * a failed send) are not lost: their orders stay due in the store and the sweeper sends them again.
   */
  send(orderIds: readonly string[]): Promise<number>;
}
