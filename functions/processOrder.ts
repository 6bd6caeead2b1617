import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { parseOrderMessage } from '../lib/queue/sqsQueue.ts';
import { getServices } from '../lib/services.ts';

const processor = new BatchProcessor(EventType.SQS);

/**
 * One record: the same processing the local consumer runs. It throws only when the delivery should be
 * retried by SQS (the store is away, the message is unreadable); unknown or finished orders, duplicate
 * deliveries and failed attempts (already re-sent with their back-off) all end the message here.
 */
const recordHandler = async (record: SQSRecord): Promise<void> => {
  await getServices().processor.process(parseOrderMessage(record.body));
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
