import { TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import type { Logger } from '@aws-lambda-powertools/logger';
import { describe, expect, it, vi } from 'vitest';
import { OrderConflict, OrderNotFound, StoreUnavailable } from '../../lib/errors.ts';
import { OrderService, type OrderServiceOptions } from '../../lib/orderService.ts';
import { OrderRepository } from '../../lib/orders.ts';
import type { OrderQueue, OrderRef } from '../../lib/queue/port.ts';
import { StoreGate } from '../../lib/storeGate.ts';
import { createDocumentClient, createStore } from '../../lib/store.ts';
import { pollUntil, testServices, uniqueTable, validOrder } from '../support.ts';

// The order use-cases over DynamoDB Local, with a queue of the test's own: what a create hands the queue, and
// what it does when the queue will not take the order (the sweeper must be told, the client still answered).

/** A queue that records what it is sent and answers with `accept` (how many it took), or throws it. */
const recordingQueue = (accept: () => number | Error = () => 1) => {
  const sent: OrderRef[][] = [];
  const queue: OrderQueue = {
    send: async (orders) => {
      sent.push([...orders]);
      const answer = accept();
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
  return { queue, sent };
};

const warnings: unknown[][] = [];
const logger = { warn: (...args: unknown[]) => void warnings.push(args) } as unknown as Logger;

const service = async (queue: OrderQueue, options: Partial<OrderServiceOptions> = {}) => {
  const services = await testServices();
  return { orders: services.orders, store: services.store, orderService: new OrderService(services.orders, queue, logger, { maxBatch: 50, maxInFlight: 4, maxWaiting: 100, ...options }) };
};

describe('OrderService.create and the queue', () => {
  it('queues a new order with the state it was stored in, its own marker included, and tells no backlog', async () => {
    const { queue, sent } = recordingQueue();
    const onBacklog = vi.fn();
    const { orders, orderService } = await service(queue, { onBacklog });

    const { created, order } = await orderService.create(validOrder({ order_id: 'SVC-QUEUED' }));

    expect(created).toBe(true);
    const stored = (await orders.get('SVC-QUEUED'))!;
    expect(stored.marker).toEqual(expect.any(String));
    expect(sent).toEqual([[{ order_id: 'SVC-QUEUED', status: 'PENDING', attempts: 0, created_at: order.created_at, marker: stored.marker }]]);
    expect(onBacklog).not.toHaveBeenCalled();
  });

  it('does not queue a replay again', async () => {
    const { queue, sent } = recordingQueue();
    const { orderService } = await service(queue);

    await orderService.create(validOrder({ order_id: 'SVC-REPLAY' }));
    const replay = await orderService.create(validOrder({ order_id: 'SVC-REPLAY' }));

    expect(replay.created).toBe(false);
    expect(sent).toHaveLength(1);
  });

  it('answers creates of one id sent together from the first one stored: a replay if identical, else a conflict', async () => {
    const { queue, sent } = recordingQueue();
    // One commit at a time: the two behind the first wait for its outcome (with a commit slot free, the next
    // of the id would be committed beside it, and the store would settle them).
    const { orderService, store } = await service(queue, { maxInFlight: 1 });
    const send = vi.spyOn(store.documentClient, 'send');

    // Sent in one turn of the event loop.
    const [first, same, other] = await Promise.allSettled([
      orderService.create(validOrder({ order_id: 'SVC-TOGETHER' })),
      orderService.create(validOrder({ order_id: 'SVC-TOGETHER' })),
      orderService.create(validOrder({ order_id: 'SVC-TOGETHER', total_amount: 1 })),
    ]);

    expect(first).toMatchObject({ status: 'fulfilled', value: { created: true } });
    expect(same).toEqual({ status: 'fulfilled', value: { created: false, order: (first as PromiseFulfilledResult<{ order: unknown }>).value.order } });
    expect(other).toEqual({ status: 'rejected', reason: new OrderConflict('SVC-TOGETHER') });
    expect(sent).toHaveLength(1);
    // Answered without a transaction of their own.
    expect(send.mock.calls.filter(([command]) => command instanceof TransactWriteItemsCommand)).toHaveLength(1);
  });

  it('gives an order sent without an id one of its own', async () => {
    const { queue, sent } = recordingQueue();
    const { orders, orderService } = await service(queue);

    const { order } = await orderService.create(validOrder());

    expect(order.order_id).toMatch(/^[0-9A-Z]{26}$/);
    expect(await orders.get(order.order_id)).toMatchObject({ order_id: order.order_id, status: 'PENDING' });
    expect(sent).toEqual([[expect.objectContaining({ order_id: order.order_id })]]);
  });

  it('tells the backlog when the queue takes none of it, and still creates the order', async () => {
    const { queue } = recordingQueue(() => 0);
    const onBacklog = vi.fn();
    const { orders, orderService } = await service(queue, { onBacklog });

    expect((await orderService.create(validOrder({ order_id: 'SVC-FULL' }))).created).toBe(true);

    expect(onBacklog).toHaveBeenCalledTimes(1);
    expect(await orders.get('SVC-FULL')).toMatchObject({ status: 'PENDING' });
  });

  it('tells the backlog and warns when the queue fails, and still creates the order', async () => {
    const { queue } = recordingQueue(() => new Error('queue away'));
    const onBacklog = vi.fn();
    const { orders, orderService } = await service(queue, { onBacklog });
    warnings.length = 0;

    expect((await orderService.create(validOrder({ order_id: 'SVC-FAILED-SEND' }))).created).toBe(true);

    expect(onBacklog).toHaveBeenCalledTimes(1);
    expect(warnings).toEqual([['could not queue the order; the sweeper will', { order_id: 'SVC-FAILED-SEND', error: new Error('queue away') }]]);
    expect(await orders.get('SVC-FAILED-SEND')).toMatchObject({ status: 'PENDING' });
  });

  it('creates an order the queue refused with no one listening for a backlog', async () => {
    const { queue } = recordingQueue(() => 0);
    const { orderService } = await service(queue);

    expect((await orderService.create(validOrder({ order_id: 'SVC-NO-LISTENER' }))).created).toBe(true);
  });

  it('commits creates before background work while they pile up', async () => {
    const { queue } = recordingQueue();
    // A clock that never makes background work overdue, and a burst while any create waits: creates go first.
    const gate = new StoreGate({ capacity: 1, now: () => 0 });
    const { orders, orderService } = await service(queue, { gate });
    gate.watchCreates(() => orderService.waitingCreates, 0);
    const asked = vi.spyOn(gate, 'acquire');
    const hold = await gate.acquire('background');
    // Background work asks for the store before the create does, and looks for the order once it has it.
    const background = gate.acquire('background').then(async (release) => {
      const seen = await orders.get('SVC-URGENT');
      release();
      return seen;
    });
    let answered = false;
    void orderService.create(validOrder({ order_id: 'SVC-URGENT' })).then(() => (answered = true));
    await pollUntil(() => (asked.mock.calls.length === 3 ? true : undefined), { what: 'the create to ask the gate' });

    expect(answered).toBe(false);
    hold();
    await pollUntil(() => answered || undefined, { timeoutMs: 10_000, what: 'the create to be answered' });
    expect(await background).toMatchObject({ order_id: 'SVC-URGENT' });
  });
});

describe('OrderService.get', () => {
  // The store is away: an answer that needs no read of it shows that none was made.
  const away = () => {
    const store = createStore(createDocumentClient({ tableName: uniqueTable(), region: 'us-east-1', endpoint: 'http://127.0.0.1:1' }), uniqueTable());
    return new OrderService(new OrderRepository(store), recordingQueue().queue, logger, { maxBatch: 50, maxInFlight: 4, maxWaiting: 100 });
  };

  it.each([
    ['an id the pattern refuses', 'not an id!', 'not an id!'],
    ['an id of 65 characters', 'x'.repeat(65), 'x'.repeat(65)],
    ['no id', undefined, ''],
  ])('answers %s as not found without asking the store', async (_, orderId, named) => {
    const error = await away().get(orderId).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(OrderNotFound);
    expect((error as OrderNotFound).orderId).toBe(named);
  });

  it('asks the store about an id that could exist', async () => {
    await expect(away().get('ORD-1')).rejects.toBeInstanceOf(StoreUnavailable);
  });

  it('answers an id no order has as not found', async () => {
    const { orderService } = await service(recordingQueue().queue);

    await expect(orderService.get('SVC-NOBODY')).rejects.toEqual(new OrderNotFound('SVC-NOBODY'));
  });
});
