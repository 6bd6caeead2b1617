import { TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OrderConflict } from '../../lib/errors.ts';
import { readMetrics } from '../../lib/metrics.ts';
import type { Claimed } from '../../lib/processing.ts';
import type { MemoryQueue } from '../../lib/queue/memoryQueue.ts';
import type { Services } from '../../lib/services.ts';
import { startLocalWorkers, type LocalWorkers } from '../../local/workers.ts';
import { countByStatus, pollUntil, scanOrders, seededRandom, testServices, validOrder } from '../support.ts';

let workers: LocalWorkers | undefined;
afterEach(async () => {
  await workers?.stop(0);
  workers = undefined;
  vi.restoreAllMocks();
});

describe('creating orders', () => {
  it('stores the order durably before it resolves', async () => {
    const { orderService, store } = await testServices();
    const { created, order } = await orderService.create(validOrder({ order_id: 'DURABLE-1' }));

    expect(created).toBe(true);
    const { Item } = await store.documentClient.send(
      new GetCommand({ TableName: store.tableName, Key: { pk: 'ORDER#DURABLE-1', sk: 'ORDER' }, ConsistentRead: true }),
    );
    expect(Item).toMatchObject({ order_id: 'DURABLE-1', status: 'PENDING', user_id: 'USER001', total_amount: 99.99 });
    expect(order).toEqual({
      order_id: 'DURABLE-1',
      user_id: 'USER001',
      item_ids: [1, 2, 3],
      total_amount: 99.99,
      status: 'PENDING',
      attempts: 0,
      created_at: expect.any(String),
    });
  });

  it('replays an identical order instead of creating it twice', async () => {
    const { orderService, store } = await testServices();
    const first = await orderService.create(validOrder({ order_id: 'REPLAY-1' }));
    const again = await orderService.create(validOrder({ order_id: 'REPLAY-1' }));

    expect(again).toEqual({ created: false, order: first.order });
    expect((await readMetrics(store)).total_orders).toBe(1);
  });

  it('answers a replay with the order as it stands now, not as it was created', async () => {
    const { orderService, processor } = await testServices();
    await orderService.create(validOrder({ order_id: 'REPLAY-2' }));
    const claimed = await processor.begin('REPLAY-2');
    expect(claimed).toHaveProperty('order');
    expect(await processor.finish(claimed as Claimed, { kind: 'done', startedAt: Date.now(), endedAt: Date.now() })).toEqual({ kind: 'completed' });

    const again = await orderService.create(validOrder({ order_id: 'REPLAY-2' }));

    expect(again.created).toBe(false);
    expect(again.order).toMatchObject({ order_id: 'REPLAY-2', status: 'COMPLETED', attempts: 1 });
  });

  it('rejects a reused id with different content as a conflict', async () => {
    const { orderService } = await testServices();
    await orderService.create(validOrder({ order_id: 'CONFLICT-1' }));

    await expect(orderService.create(validOrder({ order_id: 'CONFLICT-1', total_amount: 5 }))).rejects.toBeInstanceOf(
      OrderConflict,
    );
  });

  it('settles replays and conflicts inside a concurrent group commit and stores the rest once', async () => {
    const { orderService, store } = await testServices();
    await orderService.create(validOrder({ order_id: 'TAKEN' }));
    const requests = [
      ...Array.from({ length: 150 }, (_, i) => validOrder({ order_id: `BATCH-${i}` })),
      validOrder({ order_id: 'TAKEN' }),
      validOrder({ order_id: 'TAKEN', user_id: 'SOMEONE-ELSE' }),
      validOrder({ order_id: 'BATCH-7' }),
      validOrder({ order_id: 'BATCH-8', total_amount: 1 }),
    ];

    const results = await Promise.allSettled(requests.map((body) => orderService.create(body)));

    const summary = results.map((r) => (r.status === 'fulfilled' ? (r.value.created ? 'created' : 'replayed') : (r.reason as Error).name));
    // Twins never share a batch, but two batches may be in flight at once, so either twin of a
    // concurrent pair may commit first: the outcomes are asserted per pair, not by position.
    const pair = (a: number, b: number) => [summary[a], summary[b]].sort();
    expect(summary.filter((_, i) => i < 150 && i !== 7 && i !== 8)).toEqual(Array(148).fill('created'));
    expect(summary.slice(150, 152)).toEqual(['replayed', 'OrderConflict']);
    expect(pair(7, 152)).toEqual(['created', 'replayed']);
    expect(pair(8, 153)).toEqual(['OrderConflict', 'created']);
    const orders = await scanOrders(store);
    expect(orders).toHaveLength(151);
    const winner = summary[8] === 'created' ? requests[8]! : requests[153]!;
    expect(orders.find((o) => o.order_id === 'BATCH-8')).toMatchObject({ total_amount: winner.total_amount });
    expect((await readMetrics(store)).status_counts.PENDING).toBe(151);
  });
});

describe('processing orders', () => {
  it('moves an order PENDING -> PROCESSING -> COMPLETED exactly once under duplicate deliveries', async () => {
    const { orderService, processor, store } = await testServices();
    await orderService.create(validOrder({ order_id: 'DUP-1' }));

    const outcomes = await Promise.all(Array.from({ length: 5 }, () => processor.process('DUP-1')));
    const again = await processor.process('DUP-1');

    expect(outcomes.filter((o) => o.kind === 'completed')).toHaveLength(1);
    expect(outcomes.filter((o) => o.kind === 'skipped')).toHaveLength(4);
    expect(again).toEqual({ kind: 'skipped', reason: 'finished' });
    const [order] = await scanOrders(store);
    expect(order).toMatchObject({ status: 'COMPLETED', attempts: 1, processing_ms: expect.any(Number) });
    expect(order).not.toHaveProperty('failures');
    expect((await readMetrics(store)).status_counts).toEqual({ PENDING: 0, PROCESSING: 0, COMPLETED: 1, FAILED: 0 });
  });

  it('leaves every order readable through orderSchema after each kind of hand-built write', async () => {
    const { orderService, orders } = await testServices();
    for (const id of ['W-DONE', 'W-FAIL', 'W-RETRY', 'W-LOST', 'W-BACK', 'W-SPENT', 'W-ASIDE']) await orderService.create(validOrder({ order_id: id, item_ids: ['sku', 7] }));
    const now = Date.now();
    const state = async (id: string) => (await orders.getStates([id]))[0]!;
    const claim = async (id: string) => (await orders.claim(await state(id), now, 30_000))!;

    expect(await orders.complete(await claim('W-DONE'), now + 250, now + 50)).toBe(true);
    expect(await orders.fail(await claim('W-FAIL'), now + 60, 'broken')).toBe(true);
    expect(await orders.retryLater(await claim('W-RETRY'), now + 70, 'try again', now + 5_000)).toBe(true);
    const lost = await orders.claim(await state('W-LOST'), now, 1);
    expect(await orders.claim(await state('W-LOST'), now + 10, 30_000, true)).toMatchObject({ attempts: 2, lapsed: 1, faults: 1 });
    expect(await orders.release(await claim('W-BACK'), now + 80)).toBe(true);
    expect(await orders.retryLater(await claim('W-SPENT'), now + 90, 'no luck', now + 95)).toBe(true);
    expect(await orders.exhaust(await state('W-SPENT'), now + 100, 'no luck')).toBe(true);
    for (let fault = 1; fault <= 3; fault++) await orders.noteFault('W-ASIDE', 'a fault', 3, now + fault);

    const iso = (ms: number) => new Date(ms).toISOString();
    const base = { user_id: 'USER001', item_ids: ['sku', 7], total_amount: 99.99, created_at: expect.any(String) };
    expect(await orders.get('W-DONE')).toEqual({ ...base, order_id: 'W-DONE', status: 'COMPLETED', attempts: 1, started_at: iso(now + 50), completed_at: iso(now + 250), processing_ms: 200 });
    expect(await orders.get('W-FAIL')).toEqual({
      ...base,
      order_id: 'W-FAIL',
      status: 'FAILED',
      attempts: 1,
      started_at: iso(now),
      failed_at: iso(now + 60),
      error: 'broken',
      failures: [{ attempt: 1, started_at: iso(now), at: iso(now + 60), error: 'broken' }],
    });
    expect(await orders.get('W-RETRY')).toEqual({
      ...base,
      order_id: 'W-RETRY',
      status: 'PROCESSING',
      attempts: 1,
      started_at: iso(now),
      due_at: now + 5_000,
      marker: expect.any(String),
      last_error: 'try again',
      failures: [{ attempt: 1, started_at: iso(now), at: iso(now + 70), error: 'try again' }],
    });
    expect(lost?.attempts).toBe(1);
    // Taken over once its lease ran out: the lapse is in the history, the claim is the next attempt.
    expect(await orders.get('W-LOST')).toEqual({
      ...base,
      order_id: 'W-LOST',
      status: 'PROCESSING',
      attempts: 2,
      started_at: iso(now + 10),
      due_at: now + 30_010,
      marker: expect.any(String),
      failures: [{ attempt: 1, started_at: iso(now), at: iso(now + 1), error: 'the lease ran out' }],
    });
    // Given back with its attempt: PENDING again, as before its claim.
    expect(await orders.get('W-BACK')).toEqual({ ...base, order_id: 'W-BACK', status: 'PENDING', attempts: 0, marker: expect.any(String) });
    expect(await orders.get('W-SPENT')).toEqual({
      ...base,
      order_id: 'W-SPENT',
      status: 'FAILED',
      attempts: 1,
      started_at: iso(now),
      failed_at: iso(now + 100),
      error: 'no luck',
      last_error: 'no luck',
      failures: [{ attempt: 1, started_at: iso(now), at: iso(now + 90), error: 'no luck' }],
    });
    // Set aside, it keeps its status; nothing the toolbox reads changed.
    expect(await orders.get('W-ASIDE')).toEqual({ ...base, order_id: 'W-ASIDE', status: 'PENDING', attempts: 0 });
    expect(await orders.getStates(['W-ASIDE'])).toEqual([expect.objectContaining({ faults: 3, quarantined: iso(now + 3) })]);
  });

  it('gives back an order claimed ahead that no worker could start with a whole work time of lease left, losing no attempt', async () => {
    // One worker, work as long as possible within the lease: an order claimed while another is worked on waits
    // longer than its lease allows, so it is given back and claimed again later.
    const services = await testServices({ PROCESSING_CONCURRENCY: '1', PROCESSING_MIN_MS: '150', PROCESSING_MAX_MS: '150', LEASE_MS: '200', SWEEP_INTERVAL_MS: '100' });
    workers = await startLocalWorkers(services);
    await Promise.all(Array.from({ length: 4 }, (_, i) => services.orderService.create(validOrder({ order_id: `LATE-${i}` }))));

    await pollUntil(async () => ((await readMetrics(services.store)).total_orders_processed === 4 ? true : undefined), { what: 'all four to complete' });
    for (let i = 0; i < 4; i++) expect(await services.orders.get(`LATE-${i}`)).toMatchObject({ status: 'COMPLETED', attempts: 1 });
  });

  /**
   * Starts two workers, each busy for far longer than the test, on 20 orders, and answers the orders' statuses
   * once `least` are PROCESSING: the two at work and those claimed ahead. `before` runs before the workers start.
   */
  const claimedAhead = async (least: number, before: (services: Services) => void = () => {}) => {
    const services = await testServices({ PROCESSING_CONCURRENCY: '2', PROCESSING_MIN_MS: '20000', PROCESSING_MAX_MS: '20000', LEASE_MS: '60000' });
    await Promise.all(Array.from({ length: 20 }, (_, i) => services.orderService.create(validOrder({ order_id: `AHEAD-${i}` }))));
    before(services);
    workers = await startLocalWorkers(services);
    return pollUntil(async () => {
      const counted = countByStatus(await scanOrders(services.store));
      return counted.PROCESSING! >= least ? counted : undefined;
    }, { what: 'the claims ahead' });
  };

  it('claims ahead of its workers up to four times their number in all, so that short work is not held up by claims', async () => {
    expect(await claimedAhead(8)).toMatchObject({ PENDING: 12, PROCESSING: 8 });
  });

  it('claims only twice its workers ahead in all while a burst of creates has the store', async () => {
    // The consumer is told a burst has the store, for the whole test (the gate itself goes on as usual).
    const counts = await claimedAhead(4, (services) => vi.spyOn(services.gate, 'bursting', 'get').mockReturnValue(true));
    expect(counts).toMatchObject({ PENDING: 16, PROCESSING: 4 });
  });

  it('does nothing for an unknown order', async () => {
    const { processor } = await testServices();
    expect(await processor.process('NOPE')).toEqual({ kind: 'skipped', reason: 'unknown' });
  });

  it('refuses stale writes: a lost lease cannot complete, a taken claim cannot be claimed again', async () => {
    const { orderService, orders, store } = await testServices();
    await orderService.create(validOrder({ order_id: 'STALE-1' }));
    const pending = (await orders.get('STALE-1'))!;
    const now = Date.now();

    const claimed = await orders.claim(pending, now, 1);
    expect(claimed?.attempts).toBe(1);
    expect(await orders.claim(pending, now, 1)).toBeUndefined();

    // The lease ran out; a second worker takes the order over as attempt 2.
    const expired = (await orders.get('STALE-1'))!;
    const takenOver = await orders.claim(expired, now + 10, 30_000);
    expect(takenOver?.attempts).toBe(2);
    expect(await orders.complete(claimed!, now + 20)).toBe(false);
    expect(await orders.complete(takenOver!, now + 20)).toBe(true);
    expect(await orders.complete(takenOver!, now + 30)).toBe(false);

    const metrics = await readMetrics(store);
    expect(metrics.status_counts).toEqual({ PENDING: 0, PROCESSING: 0, COMPLETED: 1, FAILED: 0 });
    expect(await orders.get('STALE-1')).toMatchObject({ status: 'COMPLETED', attempts: 2 });
  });

  it('lets no claim take a PROCESSING order before its lease ends, by the clock the claimer gives', async () => {
    const { orderService, orders } = await testServices();
    await orderService.create(validOrder({ order_id: 'LEASED-1' }));
    const now = Date.now();
    await orders.claim((await orders.getState('LEASED-1'))!, now, 30_000);
    const leased = (await orders.getState('LEASED-1'))!;

    expect(await orders.claim(leased, now + 29_999, 30_000, true)).toBeUndefined();
    expect(await orders.getState('LEASED-1')).toMatchObject({ attempts: 1, due_at: now + 30_000 });
    expect(await orders.claim(leased, now + 30_000, 30_000, true)).toMatchObject({ attempts: 2, due_at: now + 60_000 });
  });

  it('ends FAILED an order whose back-off ran out after its last allowed attempt failed, with that failure', async () => {
    const { orderService, orders, processor, store } = await testServices({ MAX_ATTEMPTS: '1' });
    await orderService.create(validOrder({ order_id: 'SPENT-1' }));
    // A second in the past, so its back-off is over by the processor's own clock.
    const now = Date.now() - 1_000;
    // Its failure was recorded as a retry (under a larger budget), and its back-off is over.
    const claimed = (await orders.claim((await orders.getState('SPENT-1'))!, now, 30_000))!;
    await orders.retryLater(claimed, now + 10, 'no luck', now + 20);

    expect(await processor.process('SPENT-1')).toEqual({ kind: 'failed', error: 'no luck' });
    expect(await orders.get('SPENT-1')).toMatchObject({ status: 'FAILED', error: 'no luck', attempts: 1, failures: [expect.objectContaining({ attempt: 1, error: 'no luck' })] });
    expect((await readMetrics(store)).status_counts).toEqual({ PENDING: 0, PROCESSING: 0, COMPLETED: 0, FAILED: 1 });
    expect(await processor.process('SPENT-1')).toEqual({ kind: 'skipped', reason: 'finished' });
  });

  it('commits concurrent transitions together, and answers a stale one false without failing the others', async () => {
    const { orderService, orders, store } = await testServices();
    const ids = Array.from({ length: 40 }, (_, i) => `BATCH-${i}`);
    await Promise.all(ids.map((id) => orderService.create(validOrder({ order_id: id }))));
    const pending = await Promise.all(ids.map(async (id) => (await orders.get(id))!));
    const now = Date.now();
    for (const order of pending.slice(0, 10)) expect(await orders.claim(order, now, 30_000)).toBeDefined();

    const send = vi.spyOn(store.documentClient, 'send');
    const claims = await Promise.all(pending.map((order) => orders.claim(order, now, 30_000)));

    // One transaction for all 40, cancelled by the 10 stale claims; then one for the other 30.
    expect(send.mock.calls.filter(([command]) => command instanceof TransactWriteItemsCommand)).toHaveLength(2);
    expect(claims.map((claimed) => claimed !== undefined)).toEqual([...Array(10).fill(false), ...Array(30).fill(true)]);
    const metrics = await readMetrics(store);
    expect(metrics.status_counts).toEqual({ PENDING: 0, PROCESSING: 40, COMPLETED: 0, FAILED: 0 });
    expect(metrics.status_counts).toEqual(countByStatus(await scanOrders(store)));
    for (const id of ids) expect(await orders.get(id)).toMatchObject({ status: 'PROCESSING', attempts: 1 });
  });

  it('keeps metrics equal to a full scan through retries and failures', async () => {
    // Which attempts fail is drawn at random: seeded, so some fail on every run (the processor takes
    // Math.random when it is made).
    vi.spyOn(Math, 'random').mockImplementation(seededRandom(14));
    const services = await testServices({
      PROCESSING_FAILURE_RATE: '0.3',
      MAX_ATTEMPTS: '2',
      RETRY_BASE_MS: '5',
      RETRY_MAX_MS: '20',
      PROCESSING_CONCURRENCY: '16',
    });
    workers = await startLocalWorkers(services);
    await Promise.all(Array.from({ length: 300 }, (_, i) => services.orderService.create(validOrder({ order_id: `M-${i}` }))));

    const metrics = await pollUntil(
      async () => {
        const m = await readMetrics(services.store);
        return m.status_counts.COMPLETED + m.status_counts.FAILED === 300 ? m : undefined;
      },
      { timeoutMs: 60_000, what: 'all 300 orders to finish' },
    );

    const orders = await scanOrders(services.store);
    const completed = orders.filter((o) => o.status === 'COMPLETED');
    expect(metrics.status_counts).toEqual(countByStatus(orders));
    expect(metrics.total_orders).toBe(orders.length);
    expect(metrics.total_orders_processed).toBe(completed.length);
    expect(metrics.status_counts.FAILED).toBeGreaterThan(0);
    expect(metrics.processing_time_histogram.reduce((sum, b) => sum + b.count, 0)).toBe(completed.length);
    const meanProcessing = completed.reduce((sum, o) => sum + o.processing_ms!, 0) / completed.length;
    expect(metrics.average_processing_time_ms).toBeCloseTo(meanProcessing, 0);
    for (const failed of orders.filter((o) => o.status === 'FAILED')) {
      expect(failed).toMatchObject({ attempts: 2, error: 'simulated processing failure', failed_at: expect.any(String) });
    }
  });

  it('feeds a backlog larger than the queue through the sweeper', async () => {
    const services = await testServices({ QUEUE_CAPACITY: '5', PROCESSING_CONCURRENCY: '4', SWEEP_INTERVAL_MS: '200' });
    workers = await startLocalWorkers(services);
    await Promise.all(Array.from({ length: 60 }, (_, i) => services.orderService.create(validOrder({ order_id: `B-${i}` }))));

    expect((services.queue as MemoryQueue).size).toBeLessThanOrEqual(5);
    const metrics = await pollUntil(
      async () => {
        const m = await readMetrics(services.store);
        return m.total_orders_processed === 60 ? m : undefined;
      },
      { timeoutMs: 30_000, what: 'the backlog to drain' },
    );
    expect(metrics.status_counts).toEqual({ PENDING: 0, PROCESSING: 0, COMPLETED: 60, FAILED: 0 });
  });

  it('re-queues orders left PENDING by an earlier run when the workers start', async () => {
    const earlier = await testServices();
    for (let i = 0; i < 10; i++) await earlier.orderService.create(validOrder({ order_id: `LEFT-${i}` }));

    // A new process on the same table: its queue starts empty.
    const services = await testServices({ TABLE_NAME: earlier.config.TABLE_NAME });
    workers = await startLocalWorkers(services);

    await pollUntil(async () => ((await readMetrics(services.store)).total_orders_processed === 10 ? true : undefined), {
      what: 'left-over orders to complete',
    });
  });
});
