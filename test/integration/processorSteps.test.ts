import { getEventListeners } from 'node:events';
import { BatchGetItemCommand, ThrottlingException, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LAPSE, orderKeyValue } from '../../lib/orderWrites.ts';
import type { OrderState } from '../../lib/orders.ts';
import { OrderProcessor, type Claimed, type ProcessingSettings } from '../../lib/processing.ts';
import { orderIdOf, type OrderQueue, type SendOptions } from '../../lib/queue/port.ts';
import type { Services } from '../../lib/services.ts';
import { orderKey } from '../../lib/store.ts';
import { intercept, seededRandom, testServices, throttleCompletions, validOrder } from '../support.ts';

// The processor's steps one by one against DynamoDB Local: a delivery of an order another worker holds, work
// stopped at shutdown, each outcome's write and what it sends to the queue, writes lost to another worker,
// faults, and the store being away while an outcome is recorded.

const WORK_MS = '5000';
const LOST = { kind: 'skipped', reason: 'lost' };

afterEach(() => {
  vi.restoreAllMocks();
});

/** A queue that records what it is sent (or refuses everything, when told). */
const recordingQueue = ({ refuse = false } = {}) => {
  const sent: ({ ids: string[] } & SendOptions)[] = [];
  const queue: OrderQueue = {
    send: (orders, options = {}) => {
      if (refuse) return Promise.reject(new Error('the queue is away'));
      sent.push({ ids: orders.map(orderIdOf), ...options });
      return Promise.resolve(orders.length);
    },
  };
  return { queue, sent };
};

/** A processor over the services' repository with its own queue, clock, randomness and settings. */
const processorOf = (
  services: Services,
  { queue = services.queue, now = Date.now, random = seededRandom(14), ...settings }: Partial<ProcessingSettings> & { queue?: OrderQueue; now?: () => number; random?: () => number } = {},
) =>
  new OrderProcessor(
    services.orders,
    queue,
    { minMs: 5, maxMs: 20, failureRate: 0, maxAttempts: 3, leaseMs: 30_000, retryBaseMs: 1_000, retryMaxMs: 1_000, poisonMaxTries: 3, ...settings },
    services.logger,
    random,
    now,
  );

/** Creates the order and claims it through `processor`. */
const claimNew = async (services: Services, processor: OrderProcessor, orderId: string): Promise<Claimed> => {
  await services.orderService.create(validOrder({ order_id: orderId }));
  const claimed = await processor.begin(orderId);
  if (!('order' in claimed)) throw new Error(`${orderId} should be claimed, not ${JSON.stringify(claimed)}`);
  return claimed;
};

describe('the processor, step by step', () => {
  it('skips a delivery of an order another worker holds under a live lease, and leaves it as it was', async () => {
    const { orderService, orders, processor } = await testServices();
    await orderService.create(validOrder({ order_id: 'HELD-1' }));
    const held = await processor.begin('HELD-1');
    expect(held).toMatchObject({ order: { status: 'PROCESSING', attempts: 1 } });

    expect(await processor.process('HELD-1')).toEqual({ kind: 'skipped', reason: 'busy' });
    expect(await orders.getState('HELD-1')).toMatchObject({ status: 'PROCESSING', attempts: 1 });
  });

  it('does not start work once stopped, stops work under way when told, and gives both claims back', async () => {
    const { orderService, orders, processor } = await testServices({ PROCESSING_MIN_MS: WORK_MS, PROCESSING_MAX_MS: WORK_MS });
    await orderService.create(validOrder({ order_id: 'STOP-1' }));
    await orderService.create(validOrder({ order_id: 'STOP-2' }));
    const first = await processor.begin('STOP-1');
    const second = await processor.begin('STOP-2');
    if (!('order' in first) || !('order' in second)) throw new Error('both orders should be claimed');

    const started = performance.now();
    expect(await processor.run(first, AbortSignal.abort())).toEqual({ kind: 'aborted' });
    const stop = new AbortController();
    const working = processor.run(second, stop.signal);
    stop.abort();
    expect(await working).toEqual({ kind: 'aborted' });
    // Well before the work's 5 s.
    expect(performance.now() - started).toBeLessThan(2_500);

    expect(await processor.finish(first, { kind: 'aborted' })).toEqual({ kind: 'released' });
    expect(await processor.finish(second, { kind: 'aborted' })).toEqual({ kind: 'released' });
    for (const id of ['STOP-1', 'STOP-2']) expect(await orders.getState(id)).toMatchObject({ status: 'PENDING', attempts: 0 });
  });

  it('leaves no listener on the shutdown signal once work has ended or stopped', async () => {
    // The local consumer passes one signal to every run of the process's life.
    const services = await testServices();
    const processor = processorOf(services);
    const shutdown = new AbortController();
    expect(await processor.run(await claimNew(services, processor, 'SIGNAL-1'), shutdown.signal)).toMatchObject({ kind: 'done' });
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);

    const slow = processorOf(services, { minMs: 5_000, maxMs: 5_000 });
    const working = slow.run(await claimNew(services, slow, 'SIGNAL-2'), shutdown.signal);
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(1);
    shutdown.abort();
    expect(await working).toEqual({ kind: 'aborted' });
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
  });
});

describe('the processor records an outcome', () => {
  it('records a failed attempt as a retry after its back-off, and sends the order again for then', async () => {
    const services = await testServices();
    const { queue, sent } = recordingQueue();
    const processor = processorOf(services, { queue, maxAttempts: 3, retryBaseMs: 1_000, retryMaxMs: 1_000 });
    const claimed = await claimNew(services, processor, 'RETRY-1');
    const endedAt = Date.now();

    const outcome = await processor.finish(claimed, { kind: 'error', error: 'no luck', endedAt });

    expect(outcome).toEqual({ kind: 'retry', at: expect.any(Number), error: 'no luck' });
    const { at } = outcome as { at: number };
    // Equal jitter on a 1 s back-off: between half of it and all of it.
    expect(at - endedAt).toBeGreaterThanOrEqual(500);
    expect(at - endedAt).toBeLessThanOrEqual(1_000);
    expect(await services.orders.getState('RETRY-1')).toMatchObject({ status: 'PROCESSING', attempts: 1, failed_attempts: 1, due_at: at, last_error: 'no luck' });
    expect(sent).toEqual([{ ids: ['RETRY-1'], notBefore: at }]);
  });

  it('records the retry even when the queue cannot take it: the order waits in the store, due at its back-off', async () => {
    const services = await testServices();
    const processor = processorOf(services, { queue: recordingQueue({ refuse: true }).queue });
    const claimed = await claimNew(services, processor, 'RETRY-2');

    const outcome = await processor.finish(claimed, { kind: 'error', error: 'no luck', endedAt: Date.now() });

    expect(outcome).toMatchObject({ kind: 'retry', error: 'no luck' });
    expect(await services.orders.getState('RETRY-2')).toMatchObject({ status: 'PROCESSING', failed_attempts: 1, due_at: (outcome as { at: number }).at });
  });

  it('sends a claim given back for want of lease again at once, and not one given back at shutdown', async () => {
    const services = await testServices();
    const { queue, sent } = recordingQueue();
    const processor = processorOf(services, { queue });
    const late = await claimNew(services, processor, 'LATE-1');
    const stopped = await claimNew(services, processor, 'STOPPED-1');

    const before = Date.now();
    expect(await processor.finish(late, { kind: 'late' })).toEqual({ kind: 'released' });
    expect(await processor.finish(stopped, { kind: 'aborted' })).toEqual({ kind: 'released' });

    expect(sent).toEqual([{ ids: ['LATE-1'], notBefore: expect.any(Number) }]);
    expect(sent[0]!.notBefore).toBeGreaterThanOrEqual(before);
    expect(sent[0]!.notBefore).toBeLessThanOrEqual(Date.now());
    for (const id of ['LATE-1', 'STOPPED-1']) expect(await services.orders.getState(id)).toMatchObject({ status: 'PENDING', attempts: 0 });
  });

  it('answers lost, and sends nothing, when another worker took the order over first: completion, retry or last failure', async () => {
    const services = await testServices();
    const { queue, sent } = recordingQueue();
    const mine = processorOf(services, { queue, maxAttempts: 2, leaseMs: 1_000 });
    const claimed = await claimNew(services, mine, 'TAKEN-1');
    // Another worker, whose clock is past this lease, takes the order over as attempt 2.
    const other = processorOf(services, { now: () => Date.now() + 60_000 });
    expect(await other.begin('TAKEN-1')).toMatchObject({ order: { attempts: 2 } });
    const now = Date.now();

    expect(await mine.finish(claimed, { kind: 'done', startedAt: now, endedAt: now })).toEqual(LOST);
    expect(await mine.finish(claimed, { kind: 'error', error: 'no luck', endedAt: now })).toEqual(LOST);
    const lastAttempt = processorOf(services, { queue, maxAttempts: 1 });
    expect(await lastAttempt.finish(claimed, { kind: 'error', error: 'no luck', endedAt: now })).toEqual(LOST);

    expect(sent).toEqual([]);
    const state = await services.orders.getState('TAKEN-1');
    expect(state).toMatchObject({ status: 'PROCESSING', attempts: 2, lapsed: 1 });
    expect(state?.failed_attempts).toBeUndefined();
  });

  it('tries an outcome\'s write again while the store is away and the lease lasts, and stops at the first wait that would reach its end', async () => {
    const services = await testServices();
    // A clock that stands still and no jitter: the waits are 50, 100, 200 and 400 ms, and the lease ends 200 ms
    // after the claim, so the third refusal's wait (200 ms) reaches it.
    const frozen = Date.now();
    const processor = processorOf(services, { now: () => frozen, random: () => 0, leaseMs: 200 });
    const claimed = await claimNew(services, processor, 'AWAY-1');
    const refused = throttleCompletions(services, () => true);

    await expect(processor.finish(claimed, { kind: 'done', startedAt: frozen, endedAt: frozen })).rejects.toMatchObject({ name: 'StoreUnavailable' });

    expect(refused()).toBe(3);
    // The store being away is no fault of the order's: none is counted, and it is due again once its lease ends.
    const state = await services.orders.getState('AWAY-1');
    expect(state).toMatchObject({ status: 'PROCESSING', attempts: 1, due_at: frozen + 200 });
    expect(state?.faults).toBeUndefined();
  });
});

describe('the processor decides on a state another worker decided on first', () => {
  /** Two deliveries of the same state: the first acts on it, the second finds it changed. */
  const twice = async (processor: OrderProcessor, state: OrderState) => [await processor.begin(state), await processor.begin(state)];

  it('answers lost to the second claim', async () => {
    const services = await testServices();
    await services.orderService.create(validOrder({ order_id: 'RACE-CLAIM' }));
    const [first, second] = await twice(processorOf(services), (await services.orders.getState('RACE-CLAIM'))!);
    expect(first).toMatchObject({ order: { status: 'PROCESSING', attempts: 1 } });
    expect(second).toEqual(LOST);
  });

  it('answers lost to the second end of a spent budget', async () => {
    const services = await testServices();
    await services.orderService.create(validOrder({ order_id: 'RACE-SPENT' }));
    const now = Date.now() - 1_000;
    const claimed = (await services.orders.claim((await services.orders.getState('RACE-SPENT'))!, now, 30_000))!;
    await services.orders.retryLater(claimed, now + 10, 'no luck', now + 20);

    const [first, second] = await twice(processorOf(services, { maxAttempts: 1 }), (await services.orders.getState('RACE-SPENT'))!);
    expect(first).toEqual({ kind: 'failed', error: 'no luck' });
    expect(second).toEqual(LOST);
    expect(await services.orders.getState('RACE-SPENT')).toMatchObject({ status: 'FAILED', attempts: 1 });
  });

  it('answers lost to the second quarantine of a crash loop', async () => {
    const services = await testServices();
    await services.orderService.create(validOrder({ order_id: 'RACE-LOOP' }));
    const now = Date.now() - 1_000;
    const first = (await services.orders.claim((await services.orders.getState('RACE-LOOP'))!, now, 1))!;
    await services.orders.claim(first, now + 10, 1, true);

    const [aside, second] = await twice(processorOf(services, { poisonMaxTries: 2 }), (await services.orders.getState('RACE-LOOP'))!);
    expect(aside).toEqual({ kind: 'quarantined', error: `${LAPSE} on 2 attempts with no outcome recorded` });
    expect(second).toEqual(LOST);
    expect(await services.orders.listQuarantined()).toEqual([expect.objectContaining({ order_id: 'RACE-LOOP' })]);
  });
});

describe('the processor meets a fault', () => {
  /** The state as the queue carried it, in a shape this version cannot read. */
  const unreadable = (state: OrderState) => ({ ...state, attempts: 'x' as unknown as number });

  it('counts it against the order when the store refuses an outcome\'s write, and the order stays due', async () => {
    const services = await testServices();
    const processor = processorOf(services);
    const claimed = await claimNew(services, processor, 'REFUSED-1');
    // Its history is no longer a list: appending the failure is refused.
    await services.store.documentClient.send(
      new UpdateItemCommand({
        TableName: services.store.stateTableName,
        Key: orderKeyValue('REFUSED-1'),
        UpdateExpression: 'SET failures = :text',
        ExpressionAttributeValues: { ':text': { S: 'not a list' } },
      }),
    );

    const outcome = await processor.finish(claimed, { kind: 'error', error: 'no luck', endedAt: Date.now() });

    expect(outcome).toEqual({ kind: 'faulted', error: expect.stringMatching(/^ValidationException: /), faults: 1 });
    expect(await services.orders.getState('REFUSED-1')).toMatchObject({ status: 'PROCESSING', attempts: 1, faults: 1 });
  });

  it('sets the order aside at the last fault allowed, answering the error it stored', async () => {
    const services = await testServices();
    await services.orderService.create(validOrder({ order_id: 'POISON-1' }));

    const outcome = await processorOf(services, { poisonMaxTries: 1 }).begin(unreadable((await services.orders.getState('POISON-1'))!));

    const [listed] = await services.orders.listQuarantined();
    expect(listed).toMatchObject({ order_id: 'POISON-1', error: expect.stringMatching(/^UnreadableOrder: .*attempts/) });
    expect(outcome).toEqual({ kind: 'quarantined', error: listed!.error });
  });

  it('answers lost for an unreadable delivery of an order that has finished since, counting nothing', async () => {
    const services = await testServices();
    const processor = processorOf(services);
    await services.orderService.create(validOrder({ order_id: 'DONE-1' }));
    const stale = (await services.orders.getState('DONE-1'))!;
    expect(await processor.process('DONE-1')).toEqual({ kind: 'completed' });

    expect(await processor.begin(unreadable(stale))).toEqual(LOST);
    const state = await services.orders.getState('DONE-1');
    expect(state).toMatchObject({ status: 'COMPLETED' });
    expect(state?.faults).toBeUndefined();
  });

  it('keeps at most 500 characters of a fault\'s error, in the outcome and on the order', async () => {
    const services = await testServices();
    // An id far longer than the API takes, so the error naming it is too (stored as a create would).
    const orderId = `LONG-${'x'.repeat(600)}`;
    await services.orders.createMany([{ order_id: orderId, user_id: 'U1', item_ids: [1], total_amount: 1, created_at: new Date().toISOString() }]);

    const outcome = await processorOf(services).begin(unreadable((await services.orders.getState(orderId))!));

    expect(outcome).toEqual({ kind: 'faulted', error: expect.stringMatching(/^UnreadableOrder: Order LONG-x+$/), faults: 1 });
    const { error } = outcome as { error: string };
    expect(error).toHaveLength(500);
    const { Item } = await services.store.documentClient.send(new GetCommand({ TableName: services.store.stateTableName, Key: orderKey(orderId), ConsistentRead: true }));
    expect(Item).toMatchObject({ faults: 1, fault: error });
  });

  it('throws a store outage on, counting no fault against the order', async () => {
    const services = await testServices();
    await services.orderService.create(validOrder({ order_id: 'OUTAGE-1' }));
    // The read of the delivered order is throttled; DynamoDB Local answers everything after it.
    let refused = 0;
    intercept(services.store.documentClient, {
      before: (command) => {
        if (!(command instanceof BatchGetItemCommand) || refused > 0) return undefined;
        refused++;
        return Promise.reject(new ThrottlingException({ message: 'Rate of requests exceeds the allowed throughput.', $metadata: { httpStatusCode: 400 } }));
      },
    });

    await expect(processorOf(services).begin('OUTAGE-1')).rejects.toMatchObject({ name: 'StoreUnavailable' });

    expect(refused).toBe(1);
    const state = await services.orders.getState('OUTAGE-1');
    expect(state).toMatchObject({ status: 'PENDING', attempts: 0 });
    expect(state?.faults).toBeUndefined();
  });
});
