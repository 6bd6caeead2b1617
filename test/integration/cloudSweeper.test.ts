import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { handler } from '../../functions/sweeper.ts';
import { readMetrics } from '../../lib/metrics.ts';
import { installServices, type Services } from '../../lib/services.ts';
import { LOOPBACK_CREDENTIALS, sqsAccepts, startAwsLoopback, type AwsLoopback } from '../awsLoopback.ts';
import { testServices } from '../support.ts';

// The scheduled sweeper of the cloud, with the composition root's own SQS adapter, its queue on a stand-in for
// SQS on loopback (the SDK sends to QueueUrl's host; AWS_ENDPOINT_URL_SQS agrees, or it warns). The table is on
// DynamoDB Local.
const GRACE_MS = 60_000;
/** The handler folds until this long before its timeout (functions/sweeper.ts). */
const MARGIN_MS = 15_000;

let sqs: AwsLoopback;
/** Order ids the stand-in refuses, entry by entry. */
let refused = new Set<string>();
let services: Services;

beforeAll(async () => {
  sqs = await startAwsLoopback((request) => sqsAccepts(request, (orderId) => refused.has(orderId)));
  vi.stubEnv('AWS_ENDPOINT_URL_SQS', sqs.endpoint);
  vi.stubEnv('AWS_ACCESS_KEY_ID', LOOPBACK_CREDENTIALS.accessKeyId);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', LOOPBACK_CREDENTIALS.secretAccessKey);
});
afterAll(async () => {
  installServices(undefined);
  vi.unstubAllEnvs();
  await sqs.close();
});
beforeEach(async () => {
  services = await testServices({ QUEUE_URL: `${sqs.endpoint}/000000000000/orders`, SWEEP_GRACE_MS: String(GRACE_MS), WRITE_SHARDS: '4' });
  installServices(services);
  sqs.requests.length = 0;
  refused = new Set();
});

/** Stores orders received `ageMs` ago, each in a create of its own (as Lambda does), without sending them. */
const storeOrders = async (ids: string[], ageMs: number) => {
  const created_at = new Date(Date.now() - ageMs).toISOString();
  for (const order_id of ids) await services.orders.createMany([{ order_id, user_id: 'U1', item_ids: [1], total_amount: 1, created_at }]);
};
const sentIds = () => sqs.requests.flatMap((request) => (request.body.Entries as { MessageBody: string }[]).map((entry) => (JSON.parse(entry.MessageBody) as { order_id: string }).order_id));
const invocation = (remainingMs: number) => ({ awsRequestId: 'sweep', functionName: 'sweeper', getRemainingTimeInMillis: () => remainingMs }) as Context;

describe('the cloud sweeper (functions/sweeper.ts)', () => {
  it('sends to SQS the orders older than the grace period, not the newer ones a create is still sending', async () => {
    await storeOrders(['OLD-1', 'OLD-2', 'OLD-3'], GRACE_MS + 5_000);
    await storeOrders(['NEW-1'], GRACE_MS - 5_000);

    const result = await handler(undefined, invocation(0));

    expect(result.sent).toBe(3);
    expect(sentIds().sort()).toEqual(['OLD-1', 'OLD-2', 'OLD-3']);
  });

  it('counts only what SQS accepted, and sends a refused order again on its next run', async () => {
    await storeOrders(['OLD-1', 'OLD-2'], GRACE_MS + 5_000);
    refused = new Set(['OLD-2']);

    expect((await handler(undefined, invocation(0))).sent).toBe(1);

    refused = new Set();
    sqs.requests.length = 0;
    expect((await handler(undefined, invocation(0))).sent).toBe(2);
    expect(sentIds()).toContain('OLD-2');
  });

  it('folds the counter deltas, and keeps folding until its margin before the timeout, not beyond', async () => {
    await storeOrders(['OLD-1', 'OLD-2'], GRACE_MS + 5_000);
    const started = Date.now();

    const result = await handler(undefined, invocation(MARGIN_MS + 600));

    const elapsed = Date.now() - started;
    expect(result.folded).toBe(2);
    expect(elapsed).toBeGreaterThanOrEqual(600);
    expect(elapsed).toBeLessThan(MARGIN_MS);
    expect((await readMetrics(services.store)).status_counts.PENDING).toBe(2);
  });
});
