import { TransactWriteItemsCommand, UpdateItemCommand, type TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it, vi } from 'vitest';
import { readMetrics } from '../../lib/metrics.ts';
import { claimOrder, faultOrder, LAPSE, orderKeyValue, quarantineFaulted } from '../../lib/orderWrites.ts';
import type { Services } from '../../lib/services.ts';
import { countByStatus, intercept, scanOrders, testServices, validOrder } from '../support.ts';

// The repository's conditions and the writes around quarantine, against DynamoDB Local, with the clock given.

/** The ids the due markers list. */
const markedIds = async ({ orders }: Services) => {
  const ids: string[] = [];
  await orders.scanMarkers(Date.now() + 60_000, (markers) => {
    ids.push(...markers.flatMap((marker) => marker.ids));
    return true;
  });
  return ids;
};

/** An order whose lease ran out with no outcome twice: claimed, then taken over, each with a 1 ms lease. */
const lapsedTwice = async (services: Services, orderId: string, now: number) => {
  await services.orderService.create(validOrder({ order_id: orderId }));
  const first = (await services.orders.claim((await services.orders.getState(orderId))!, now, 1))!;
  return (await services.orders.claim(first, now + 10, 1, true))!;
};

describe('the repository conditions', () => {
  it('sets aside an order whose lease ran out once too often, off its marker and on the quarantine listing', async () => {
    const services = await testServices({ POISON_MAX_TRIES: '2' });
    const { orders, processor, store } = services;
    await lapsedTwice(services, 'LOOP-1', Date.now() - 1_000);
    expect(await markedIds(services)).toEqual(['LOOP-1']);

    expect(await processor.process('LOOP-1')).toEqual({ kind: 'quarantined', error: `${LAPSE} on 2 attempts with no outcome recorded` });

    expect(await orders.getState('LOOP-1')).toMatchObject({ status: 'PROCESSING', attempts: 2, lapsed: 2, faults: 2, quarantined: expect.any(String) });
    expect((await orders.get('LOOP-1'))?.failures).toEqual([
      expect.objectContaining({ attempt: 1, error: LAPSE }),
      expect.objectContaining({ attempt: 2, error: LAPSE }),
    ]);
    expect(await orders.listQuarantined()).toEqual([{ order_id: 'LOOP-1', at: expect.any(String), error: `${LAPSE} on 2 attempts with no outcome recorded` }]);
    expect(await markedIds(services)).toEqual([]);
    expect((await readMetrics(store)).quarantined).toBe(1);
    expect(await processor.process('LOOP-1')).toEqual({ kind: 'quarantined' });
  });

  it('requeues a quarantined order once: off the listing, its faults cleared, on a marker, then processed', async () => {
    const services = await testServices({ POISON_MAX_TRIES: '2' });
    const { orders, processor, store } = services;
    await lapsedTwice(services, 'LOOP-2', Date.now() - 1_000);
    await processor.process('LOOP-2');

    expect(await orders.requeue('LOOP-2', Date.now())).toBe(true);
    expect(await orders.requeue('LOOP-2', Date.now())).toBe(false);

    const requeued = await orders.getState('LOOP-2');
    expect(requeued).not.toHaveProperty('quarantined');
    expect(requeued).not.toHaveProperty('faults');
    expect(await orders.listQuarantined()).toEqual([]);
    expect(await markedIds(services)).toEqual(['LOOP-2']);
    expect((await readMetrics(store)).quarantined).toBe(0);
    expect(await processor.process('LOOP-2')).toEqual({ kind: 'completed' });
  });

  it('does not requeue an order that is not quarantined', async () => {
    const { orderService, orders } = await testServices();
    await orderService.create(validOrder({ order_id: 'FINE-1' }));
    expect(await orders.requeue('FINE-1', Date.now())).toBe(false);
  });

  it('gives a taken-over attempt back: the previous attempt, due at once, still PROCESSING', async () => {
    const services = await testServices();
    const now = Date.now();
    const second = await lapsedTwice(services, 'BACK-2', now);

    expect(await services.orders.release(second, now + 20)).toBe(true);

    expect(await services.orders.getState('BACK-2')).toMatchObject({ status: 'PROCESSING', attempts: 1, due_at: now + 20 });
    expect((await readMetrics(services.store)).status_counts).toMatchObject({ PENDING: 0, PROCESSING: 1 });
  });

  it('counts a failed last attempt in failed_attempts', async () => {
    const { orderService, orders } = await testServices();
    await orderService.create(validOrder({ order_id: 'FAIL-1' }));
    const now = Date.now();
    const claimed = (await orders.claim((await orders.getState('FAIL-1'))!, now, 30_000))!;

    expect(await orders.fail(claimed, now + 5, 'broken')).toBe(true);
    expect(await orders.getState('FAIL-1')).toMatchObject({ status: 'FAILED', failed_attempts: 1 });
  });

  it.each(['COMPLETED', 'FAILED'])('refuses to count a fault of, or set aside, an order that became %s after it was read', async (status) => {
    const { orderService, orders, processor, store } = await testServices({ PROCESSING_FAILURE_RATE: status === 'FAILED' ? '1' : '0', MAX_ATTEMPTS: '1' });
    await orderService.create(validOrder({ order_id: 'DONE-1' }));
    expect((await processor.process('DONE-1')).kind).toBe(status === 'FAILED' ? 'failed' : 'completed');
    const write = (items: TransactWriteItem[]) => store.documentClient.send(new TransactWriteItemsCommand({ TransactItems: items }));

    // As read before it finished: no faults yet.
    await expect(write(faultOrder(store, 'DONE-1', undefined, 'late fault', undefined))).rejects.toMatchObject({ name: 'TransactionCanceledException' });
    await expect(write(quarantineFaulted(store, 'DONE-1', undefined, 'late fault', Date.now(), undefined, 1))).rejects.toMatchObject({
      name: 'TransactionCanceledException',
    });
    expect(await orders.getState('DONE-1')).toMatchObject({ status });
    expect(await orders.getState('DONE-1')).not.toHaveProperty('faults');
  });

  it('takes over an order with a claim that is not told its last attempt lapsed as a new attempt alone, counting no lapse', async () => {
    const services = await testServices();
    const { orderService, orders, store } = services;
    await orderService.create(validOrder({ order_id: 'OVER-1' }));
    const now = Date.now();
    const first = (await orders.claim((await orders.getState('OVER-1'))!, now, 1))!;

    await store.documentClient.send(new TransactWriteItemsCommand({ TransactItems: [claimOrder(store, first, now + 10, now + 30_000)] }));

    const taken = await orders.getState('OVER-1');
    expect(taken).toMatchObject({ status: 'PROCESSING', attempts: 2, due_at: now + 30_000 });
    expect(taken).not.toHaveProperty('lapsed');
    expect(taken).not.toHaveProperty('faults');
    expect((await orders.get('OVER-1'))?.failures ?? []).toEqual([]);
  });

  it('passes on as it is a transition fault that is not even an Error, and commits the transitions beside it', async () => {
    const { orderService, orders, store } = await testServices();
    await orderService.create(validOrder({ order_id: 'ODD-1' }));
    await orderService.create(validOrder({ order_id: 'ODD-2' }));
    const [odd, fine] = [(await orders.getState('ODD-1'))!, (await orders.getState('ODD-2'))!];
    // A client (or a middleware of it) that rejects the transactions writing ODD-1 with undefined.
    intercept(store.documentClient, {
      before: (command) =>
        command instanceof TransactWriteItemsCommand && JSON.stringify(command.input).includes('ORDER#ODD-1') ? Promise.reject(undefined) : undefined,
    });

    const [oddClaim, fineClaim] = await Promise.allSettled([orders.claim(odd, Date.now(), 30_000), orders.claim(fine, Date.now(), 30_000)]);

    expect(oddClaim).toEqual({ status: 'rejected', reason: undefined });
    expect(fineClaim).toMatchObject({ status: 'fulfilled', value: { order_id: 'ODD-2', status: 'PROCESSING' } });
    vi.restoreAllMocks();
    expect(await orders.getState('ODD-1')).toMatchObject({ status: 'PENDING', attempts: 0 });
  });

  it('counts a fault of an order whose item has lost its status (what nothing else can read), as of any other', async () => {
    const { orderService, orders, store } = await testServices();
    await orderService.create(validOrder({ order_id: 'NOSTATUS-1' }));
    await store.documentClient.send(
      new UpdateItemCommand({ TableName: store.tableName, Key: orderKeyValue('NOSTATUS-1'), UpdateExpression: 'REMOVE #status', ExpressionAttributeNames: { '#status': 'status' } }),
    );

    expect(await orders.noteFault('NOSTATUS-1', 'unreadable', 3, Date.now())).toEqual({ kind: 'counted', faults: 1 });
    expect(await orders.noteFault('NOSTATUS-1', 'unreadable', 2, Date.now())).toEqual({ kind: 'quarantined', faults: 2 });
  });

  it('takes a quarantined order off the marker it had alone', async () => {
    const services = await testServices({ POISON_MAX_TRIES: '1' });
    await services.orderService.create(validOrder({ order_id: 'ALONE-1' }));
    expect(await markedIds(services)).toEqual(['ALONE-1']);

    expect(await services.orders.noteFault('ALONE-1', 'a fault', 1, Date.now())).toEqual({ kind: 'quarantined', faults: 1 });

    expect(await markedIds(services)).toEqual([]);
  });

  it.each(['COMPLETED', 'FAILED'])('answers a fault noted on a %s order as settled, at the cost of one read and no write', async (status) => {
    const { orderService, orders, processor, store } = await testServices({ PROCESSING_FAILURE_RATE: status === 'FAILED' ? '1' : '0', MAX_ATTEMPTS: '1' });
    await orderService.create(validOrder({ order_id: 'DONE-2' }));
    await processor.process('DONE-2');
    const send = vi.spyOn(store.documentClient, 'send');

    expect(await orders.noteFault('DONE-2', 'a late fault', 1, Date.now())).toEqual({ kind: 'settled' });

    expect(send.mock.calls.filter(([command]) => command instanceof TransactWriteItemsCommand)).toHaveLength(0);
    expect(await orders.getState('DONE-2')).toMatchObject({ status });
    expect(await orders.getState('DONE-2')).not.toHaveProperty('quarantined');
  });

  it('answers a fault noted on an order that does not exist as settled', async () => {
    const { orders } = await testServices();
    expect(await orders.noteFault('NEVER-1', 'a fault', 3, Date.now())).toEqual({ kind: 'settled' });
  });

  it('keeps the status counters equal to a scan when claims are given back, first attempts and later ones', async () => {
    const { orderService, orders, store } = await testServices();
    await orderService.create(validOrder({ order_id: 'GIVE-1' }));
    await orderService.create(validOrder({ order_id: 'GIVE-2' }));
    const now = Date.now();
    const first = (await orders.claim((await orders.getState('GIVE-1'))!, now, 1))!;
    expect(await orders.release(first, now)).toBe(true);
    const claimed = (await orders.claim((await orders.getState('GIVE-2'))!, now, 1))!;
    const second = (await orders.claim(claimed, now + 10, 30_000, true))!;
    expect(await orders.release(second, now + 20)).toBe(true);

    expect(await orders.getState('GIVE-1')).toMatchObject({ status: 'PENDING', attempts: 0 });
    expect(await orders.getState('GIVE-2')).toMatchObject({ status: 'PROCESSING', attempts: 1 });
    expect((await readMetrics(store)).status_counts).toEqual({ PENDING: 1, PROCESSING: 1, COMPLETED: 0, FAILED: 0 });
    expect((await readMetrics(store)).status_counts).toEqual(countByStatus(await scanOrders(store)));
  });

  it('deletes a group commit\'s marker when the last of its orders ends FAILED by an exhausted budget', async () => {
    const services = await testServices();
    const { orders } = services;
    const at = new Date().toISOString();
    await orders.createMany(['EX-1', 'EX-2'].map((order_id) => ({ order_id, user_id: 'USER001', item_ids: [1], total_amount: 5, created_at: at })));
    const now = Date.now();
    const [one, two] = await Promise.all(['EX-1', 'EX-2'].map(async (id) => (await orders.claim((await orders.getState(id))!, now, 1))!));
    expect(await orders.complete(one!, now)).toBe(true);
    expect(await markedIds(services)).toEqual(['EX-1', 'EX-2']);

    expect(await orders.exhaust(two!, now + 10, 'the retry budget was spent')).toBe(true);

    expect(await orders.getState('EX-2')).toMatchObject({ status: 'FAILED' });
    expect(await markedIds(services)).toEqual([]);
  });

  it('never makes a state item with a fault for an order that is not there', async () => {
    const { store } = await testServices();
    const write = (items: TransactWriteItem[]) => store.documentClient.send(new TransactWriteItemsCommand({ TransactItems: items }));

    await expect(write(faultOrder(store, 'GHOST-1', undefined, 'a fault', undefined))).rejects.toMatchObject({ name: 'TransactionCanceledException' });
    await expect(write(quarantineFaulted(store, 'GHOST-1', undefined, 'a fault', Date.now(), undefined, 1))).rejects.toMatchObject({
      name: 'TransactionCanceledException',
    });

    const { Item } = await store.documentClient.send(new GetCommand({ TableName: store.stateTableName, Key: { pk: 'ORDER#GHOST-1', sk: 'ORDER' }, ConsistentRead: true }));
    expect(Item).toBeUndefined();
  });

  it('keeps an order a fault was counted on before its first claim claimable, and on the marker it had alone', async () => {
    const services = await testServices();
    const { orderService, orders } = services;
    await orderService.create(validOrder({ order_id: 'EARLY-1' }));
    const created = (await orders.getState('EARLY-1'))!;

    expect(await orders.noteFault('EARLY-1', 'a fault', 3, Date.now())).toEqual({ kind: 'counted', faults: 1 });
    expect(await orders.getState('EARLY-1')).toMatchObject({ status: 'PENDING', attempts: 0, faults: 1, marker: created.marker });
    expect(await markedIds(services)).toEqual(['EARLY-1']);

    const now = Date.now();
    const claimed = await orders.claim((await orders.getState('EARLY-1'))!, now, 30_000);
    expect(claimed).toMatchObject({ status: 'PROCESSING', attempts: 1 });
    expect(await orders.claim((await orders.getState('EARLY-1'))!, now, 30_000)).toBeUndefined();
    expect(await orders.complete(claimed!, now + 5)).toBe(true);
    expect(await markedIds(services)).toEqual([]);
  });

  it('takes a claimed order off the marker it had alone when it completes, and a released one keeps it', async () => {
    const services = await testServices();
    const { orderService, orders } = services;
    await orderService.create(validOrder({ order_id: 'SOLO-1' }));
    const now = Date.now();
    const claimed = (await orders.claim((await orders.getState('SOLO-1'))!, now, 30_000))!;
    expect(await orders.release(claimed, now)).toBe(true);
    expect(await markedIds(services)).toEqual(['SOLO-1']);
    expect((await orders.getState('SOLO-1'))?.marker).toBe(claimed.marker);

    const again = (await orders.claim((await orders.getState('SOLO-1'))!, now + 1, 30_000))!;
    expect(await orders.complete(again, now + 5)).toBe(true);
    expect(await markedIds(services)).toEqual([]);
    expect(await orders.getState('SOLO-1')).not.toHaveProperty('marker');
  });
});
