import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { orderIdOf, type OrderQueue, type OrderRef, type SendOptions } from './port.ts';

/** SQS takes at most 10 messages per batch and delays them by at most 15 minutes. */
const BATCH = 10;
const MAX_DELAY_S = 900;

/** The body of a queue message. */
export interface OrderMessage {
  order_id: string;
}

/** The SQS adapter of the queue port: one message per order id. */
export class SqsQueue implements OrderQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async send(orders: readonly OrderRef[], options: SendOptions = {}): Promise<number> {
    const orderIds = orders.map(orderIdOf);
    // A longer back-off than SQS can delay is left to the sweeper, which finds the order when it is due.
    const delay = options.notBefore === undefined ? 0 : Math.ceil((options.notBefore - Date.now()) / 1000);
    const DelaySeconds = Math.min(MAX_DELAY_S, Math.max(0, delay));
    let accepted = 0;
    for (let i = 0; i < orderIds.length; i += BATCH) {
      const chunk = orderIds.slice(i, i + BATCH);
      const { Successful } = await this.client.send(
        new SendMessageBatchCommand({
          QueueUrl: this.queueUrl,
          Entries: chunk.map((order_id, k) => ({
            Id: String(k),
            MessageBody: JSON.stringify({ order_id } satisfies OrderMessage),
            DelaySeconds,
          })),
        }),
      );
      accepted += Successful?.length ?? 0;
    }
    return accepted;
  }
}

/** Reads the order id out of a message body; throws on anything else (such a message ends in the DLQ). */
export const parseOrderMessage = (body: string): string => {
  const message: unknown = JSON.parse(body);
  const orderId = (message as Partial<OrderMessage> | null)?.order_id;
  if (typeof orderId !== 'string' || orderId === '') throw new Error('The message holds no order_id');
  return orderId;
};
