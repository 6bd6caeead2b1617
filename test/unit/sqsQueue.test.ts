import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseOrderMessage, SqsQueue } from '../../lib/queue/sqsQueue.ts';
import { awsError, LOOPBACK_CREDENTIALS, sqsAccepts, startAwsLoopback, type AwsAnswer, type AwsLoopback, type AwsRequest } from '../awsLoopback.ts';

type Entry = { Id: string; MessageBody: string; DelaySeconds: number };
const entriesOf = (request: AwsRequest) => request.body.Entries as Entry[];
const orderIdOf = (entry: Entry) => (JSON.parse(entry.MessageBody) as { order_id: string }).order_id;

const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/000000000000/orders';

/** What the stand-in answers next. */
let answer: (request: AwsRequest) => AwsAnswer;
let sqs: AwsLoopback;
let queue: SqsQueue;

beforeAll(async () => {
  sqs = await startAwsLoopback((request) => answer(request));
  // Two attempts per call: the SDK's own retry runs, and a refusal that lasts ends the call soon.
  queue = new SqsQueue(new SQSClient({ endpoint: sqs.endpoint, region: 'us-east-1', credentials: LOOPBACK_CREDENTIALS, maxAttempts: 2 }), QUEUE_URL);
});
afterAll(() => sqs.close());
beforeEach(() => {
  sqs.requests.length = 0;
  answer = (request) => sqsAccepts(request);
});

describe('SqsQueue, through the SDK against a stand-in for SQS', () => {
  it('sends one message per id, in batches of ten, to its queue', async () => {
    const ids = Array.from({ length: 23 }, (_, i) => `id-${i}`);

    expect(await queue.send(ids)).toBe(23);

    expect(sqs.requests.map((request) => request.target)).toEqual(Array(3).fill('AmazonSQS.SendMessageBatch'));
    expect(sqs.requests.map((request) => entriesOf(request).length)).toEqual([10, 10, 3]);
    expect(sqs.requests.every((request) => request.body.QueueUrl === QUEUE_URL)).toBe(true);
    expect(sqs.requests.flatMap((request) => entriesOf(request).map(orderIdOf))).toEqual(ids);
    expect(entriesOf(sqs.requests[0]!)[0]).toEqual({ Id: '0', MessageBody: '{"order_id":"id-0"}', DelaySeconds: 0 });
  });

  it('sends the order id of an order state as well', async () => {
    expect(await queue.send([{ order_id: 'ORD-1', status: 'PENDING', attempts: 0, created_at: new Date().toISOString() }])).toBe(1);
    expect(entriesOf(sqs.requests[0]!).map(orderIdOf)).toEqual(['ORD-1']);
  });

  it('counts only the messages SQS accepted when it refuses some entries of a batch', async () => {
    answer = (request) => sqsAccepts(request, (orderId) => orderId === 'id-3' || orderId === 'id-12');

    expect(await queue.send(Array.from({ length: 15 }, (_, i) => `id-${i}`))).toBe(13);
  });

  it('counts none when SQS refuses every entry and leaves the list of accepted ones out', async () => {
    answer = (request) => ({ body: { Failed: entriesOf(request).map((entry) => ({ Id: entry.Id, SenderFault: false, Code: 'InternalError' })) } });

    expect(await queue.send(['a', 'b'])).toBe(0);
  });

  it('delays a retry until its back-off ends, at most the 15 minutes SQS allows', async () => {
    await queue.send(['a'], { notBefore: Date.now() + 4_200 });
    await queue.send(['b'], { notBefore: Date.now() + 3_600_000 });
    await queue.send(['c'], { notBefore: Date.now() - 1_000 });

    expect(sqs.requests.map((request) => entriesOf(request)[0]?.DelaySeconds)).toEqual([5, 900, 0]);
  });

  it('sends a throttled batch again, as the SDK retries, and counts it once', async () => {
    let refusals = 1;
    answer = (request) => (refusals-- > 0 ? awsError(400, 'com.amazonaws.sqs#RequestThrottled') : sqsAccepts(request));

    expect(await queue.send(['a', 'b'])).toBe(2);
    expect(sqs.requests).toHaveLength(2);
  });

  it.each([
    ['throttling that lasts', awsError(400, 'com.amazonaws.sqs#RequestThrottled'), 'RequestThrottled'],
    ['a 500', awsError(500, 'com.amazonaws.sqs#InternalError'), 'InternalError'],
  ])('rejects on %s, once the SDK gave up retrying', async (_label, refusal, name) => {
    answer = () => refusal;

    await expect(queue.send(['a'])).rejects.toMatchObject({ name });
    expect(sqs.requests).toHaveLength(2);
  });

  it('sends nothing for no orders', async () => {
    expect(await queue.send([])).toBe(0);
    expect(sqs.requests).toEqual([]);
  });
});

describe('parseOrderMessage', () => {
  it('reads the order id of a message', () => {
    expect(parseOrderMessage('{"order_id":"ORD001"}')).toBe('ORD001');
  });

  it('refuses a body that is not JSON', () => {
    expect(() => parseOrderMessage('not json')).toThrow(SyntaxError);
  });

  it.each(['{}', '{"order_id":""}', '{"order_id":7}', 'null'])('refuses %s', (body) => {
    expect(() => parseOrderMessage(body)).toThrow('The message holds no order_id');
  });
});
