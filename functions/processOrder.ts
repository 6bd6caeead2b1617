import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { parseOrderMessage } from '../lib/queue/sqsQueue.ts';
import { getServices } from '../lib/services.ts';

const processor = new BatchProcessor(EventType.SQS);

/**
 * One record: the same processing the local consumer runs. It throws when the delivery should be retried by
 * SQS (the store is away, the message is unreadable, the try ended in a fault) and when the order is
 * quarantined: SQS then delivers the message again after its visibility timeout and, after the queue's
 * maxReceiveCount receives, moves it to the dead-letter queue, whose alarm pages an operator. (The order is
 * safe in the table either way; POISON_MAX_TRIES is below maxReceiveCount, so it is set aside first.)
 * Unknown or finished orders, duplicate deliveries and failed attempts (already re-sent with their back-off)
 * all end the message here.
 */
const recordHandler = async (record: SQSRecord): Promise<void> => {
  const orderId = parseOrderMessage(record.body);
  const outcome = await getServices().processor.process(orderId);
  if (outcome.kind === 'faulted') throw new Error(`Order ${orderId} could not be processed (${outcome.faults} faults): ${outcome.error}`);
  if (outcome.kind === 'quarantined') throw new Error(`Order ${orderId} is quarantined: its message goes to the dead-letter queue`);
};

/**
 * The SQS consumer: a failing record is reported alone in batchItemFailures, the rest complete. Each log
 * line of the invocation carries its request id and cold start (Lambda runs one invocation at a time per
 * environment, so the context can sit on the shared logger).
 */
export const handler = (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  getServices().logger.addContext(context);
  return processPartialResponse(event, recordHandler, processor, { context, throwOnFullBatchFailure: false });
};
