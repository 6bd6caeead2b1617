import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { handler } from '../../functions/processOrder.ts';
import { readMetrics } from '../../lib/metrics.ts';
import { installServices, type Services } from '../../lib/services.ts';
import { testServices, validOrder } from '../support.ts';

// The SQS consumer is invoked with real SQSEvent shapes against DynamoDB Local; only SQS itself (which
// cannot run here) is absent: retries go to the in-memory adapter of the same queue port.
const record = (body: string, messageId: string = crypto.randomUUID()): SQSRecord => ({
  messageId,
  receiptHandle: `handle-${messageId}`,
  body,
  attributes: {
    ApproximateReceiveCount: '1',
    SentTimestamp: String(Date.now()),
    SenderId: 'AIDAEXAMPLE',
    ApproximateFirstReceiveTimestamp: String(Date.now()),
  },
  messageAttributes: {},
  md5OfBody: '',
  eventSource: 'aws:sqs',
  eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:order-processing-test',
  awsRegion: 'us-east-1',
});
const event = (...records: SQSRecord[]): SQSEvent => ({ Records: records });
const context = { awsRequestId: 'test', functionName: 'processOrder', getRemainingTimeInMillis: () => 30_000 } as Context;
const message = (orderId: string) => JSON.stringify({ order_id: orderId });

// Each test on a table of its own: any one runs alone (`-t`).
let services: Services;
beforeEach(async () => {
  services = await testServices();
  installServices(services);
});
afterEach(() => installServices(undefined));

describe('processOrder (SQS batch)', () => {
  it('completes every good record of a batch', async () => {
    for (const id of ['SQS-1', 'SQS-2', 'SQS-3']) await services.orderService.create(validOrder({ order_id: id }));

    const response = await handler(event(record(message('SQS-1')), record(message('SQS-2')), record(message('SQS-3'))), context);

    expect(response).toEqual({ batchItemFailures: [] });
    for (const id of ['SQS-1', 'SQS-2', 'SQS-3']) expect((await services.orders.get(id))?.status).toBe('COMPLETED');
  });

  it('ends the message of an unknown or already completed order instead of retrying it', async () => {
    await services.orderService.create(validOrder({ order_id: 'SQS-1' }));
    await handler(event(record(message('SQS-1'))), context);

    const response = await handler(event(record(message('NO-SUCH-ORDER')), record(message('SQS-1'))), context);

    expect(response).toEqual({ batchItemFailures: [] });
    expect((await services.orders.get('SQS-1'))?.attempts).toBe(1);
  });

  it('reports a failing record alone and completes the others', async () => {
    await services.orderService.create(validOrder({ order_id: 'SQS-4' }));
    const bad = record('not json', 'bad-message');

    const response = await handler(event(record(message('SQS-4')), bad, record('{"order":"x"}', 'no-id')), context);

    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'bad-message' }, { itemIdentifier: 'no-id' }] });
    expect((await services.orders.get('SQS-4'))?.status).toBe('COMPLETED');
    expect((await readMetrics(services.store)).status_counts).toEqual({ PENDING: 0, PROCESSING: 0, COMPLETED: 1, FAILED: 0 });
  });

  it('fails the record of an unreadable order, quarantines the order at its POISON_MAX_TRIES-th try, and keeps failing it so SQS moves it to the dead-letter queue', async () => {
    await services.orderService.create(validOrder({ order_id: 'SQS-POISON' }));
    // An older version stored attempts as text.
    await services.store.documentClient.send(
      new UpdateItemCommand({
        TableName: services.store.tableName,
        Key: { pk: { S: 'ORDER#SQS-POISON' }, sk: { S: 'ORDER' } },
        UpdateExpression: 'SET attempts = :text',
        ExpressionAttributeValues: { ':text': { S: 'x' } },
      }),
    );
    const tries = services.config.POISON_MAX_TRIES;

    for (let receive = 1; receive <= tries + 1; receive++) {
      const good = `SQS-GOOD-${receive}`;
      await services.orderService.create(validOrder({ order_id: good }));
      const response = await handler(event(record(message('SQS-POISON'), `poison-${receive}`), record(message(good))), context);
      expect(response, `receive ${receive}`).toEqual({ batchItemFailures: [{ itemIdentifier: `poison-${receive}` }] });
      expect((await services.orders.get(good))?.status).toBe('COMPLETED');
      const quarantined = (await readMetrics(services.store)).quarantined;
      expect(quarantined, `receive ${receive}`).toBe(receive >= tries ? 1 : 0);
    }
    expect((await services.orders.getStates(['SQS-POISON']))[0]).toMatchObject({ faults: tries, quarantined: expect.any(String) });
  });
});
