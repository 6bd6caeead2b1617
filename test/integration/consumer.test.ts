import { afterEach, describe, expect, it, vi } from 'vitest';
import { Consumer } from '../../lib/consumer.ts';
import { StoreUnavailable } from '../../lib/errors.ts';
import type { Claimed, ProcessOutcome, WorkResult } from '../../lib/processing.ts';
import type { MemoryQueue } from '../../lib/queue/memoryQueue.ts';
import { orderIdOf } from '../../lib/queue/port.ts';
import { createServices, type Services } from '../../lib/services.ts';
import { pollUntil, testConfig, testServices, validOrder } from '../support.ts';

// The long-lived local consumer on its own (no sweeper, no counter folder): the services' in-memory queue, its
// real processor over DynamoDB Local. Orders reach it only as the test offers them.
let consumer: Consumer | undefined;
afterEach(async () => {
  await consumer?.stop(0);
  consumer = undefined;
  vi.restoreAllMocks();
});

/** Services, `count` new orders `<prefix>-<i>`, and a consumer of `concurrency` workers over their queue (not started). */
const setUp = async (prefix: string, count: number, { concurrency = 2, env = {} }: { concurrency?: number; env?: Record<string, string> } = {}) => {
  const services = await testServices(env);
  const ids = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
  for (const order_id of ids) await services.orderService.create(validOrder({ order_id }));
  const queue = services.queue as MemoryQueue;
  // The create hands each new order to the queue already: taken back out, the test offers them itself.
  while (queue.size > 0) queue.done(orderIdOf((await queue.take())!));
  let progress = 0;
  consumer = new Consumer(queue, services.processor, concurrency, services.logger, () => progress++);
  return { services, ids, queue, consumer, progress: () => progress };
};

const statuses = async (services: Services, ids: string[]) => (await services.orders.getStates(ids)).map((state) => state.status);

const until = <T>(probe: () => Promise<T | undefined> | T | undefined, what: string) => pollUntil(probe, { timeoutMs: 20_000, intervalMs: 20, what });

describe('the local consumer', () => {
  it('works every order it is given, telling the queue which ended here and reporting each delivery', async () => {
    const { services, ids, queue, consumer, progress } = await setUp('CONS-DONE', 5);
    consumer.start();

    queue.offer([...ids, 'CONS-UNKNOWN']);

    await until(async () => ((await statuses(services, ids)).every((status) => status === 'COMPLETED') ? true : undefined), 'every order to complete');
    await until(() => (progress() === 6 ? true : undefined), 'six deliveries');
    expect(ids.map((id) => [queue.holds(id), queue.hasFinished(id)])).toEqual(ids.map(() => [false, true]));
    expect([queue.holds('CONS-UNKNOWN'), queue.hasFinished('CONS-UNKNOWN')]).toEqual([false, false]);
  });

  it('tells the queue an order set aside for an operator ended here', async () => {
    const { services, ids, queue, consumer, progress } = await setUp('CONS-ASIDE', 1);
    // Quarantined before this delivery (its one allowed fault): the delivery finds it set aside.
    expect(await services.orders.noteFault(ids[0]!, 'unreadable', 1, Date.now())).toMatchObject({ kind: 'quarantined' });
    consumer.start();

    queue.offer(ids);

    await until(() => (progress() === 1 ? true : undefined), 'its delivery');
    expect([queue.holds(ids[0]!), queue.hasFinished(ids[0]!)]).toEqual([false, true]);
  });

  it('tells the queue an order that failed for good ended here, and one to be retried did not', async () => {
    // Every attempt fails; the retry's back-off is far beyond the test.
    const failing = await setUp('CONS-FAIL', 1, { env: { PROCESSING_FAILURE_RATE: '1', MAX_ATTEMPTS: '1' } });
    failing.consumer.start();
    failing.queue.offer(failing.ids);
    await until(async () => ((await statuses(failing.services, failing.ids))[0] === 'FAILED' ? true : undefined), 'the order to fail');
    await until(() => (failing.progress() === 1 ? true : undefined), 'its delivery');
    expect(failing.queue.hasFinished(failing.ids[0]!)).toBe(true);
    await failing.consumer.stop(0);

    const retried = await setUp('CONS-RETRY', 1, { env: { PROCESSING_FAILURE_RATE: '1', MAX_ATTEMPTS: '3', RETRY_BASE_MS: '60000' } });
    retried.consumer.start();
    retried.queue.offer(retried.ids);
    await until(() => (retried.progress() === 1 ? true : undefined), 'its delivery');
    expect(await retried.services.orders.getState(retried.ids[0]!)).toMatchObject({ status: 'PROCESSING', failed_attempts: 1 });
    expect([retried.queue.holds(retried.ids[0]!), retried.queue.hasFinished(retried.ids[0]!)]).toEqual([false, false]);
  });

  it('works on no more orders at once than it has workers', async () => {
    const { services, ids, queue, consumer } = await setUp('CONS-WIDE', 8, { concurrency: 3, env: { PROCESSING_MIN_MS: '60', PROCESSING_MAX_MS: '60' } });
    const run = services.processor.run.bind(services.processor);
    let working = 0;
    let most = 0;
    vi.spyOn(services.processor, 'run').mockImplementation(async (claimed, signal): Promise<WorkResult> => {
      most = Math.max(most, ++working);
      try {
        return await run(claimed, signal);
      } finally {
        working--;
      }
    });
    consumer.start();

    queue.offer(ids);

    await until(async () => ((await statuses(services, ids)).every((status) => status === 'COMPLETED') ? true : undefined), 'every order to complete');
    expect(most).toBe(3);
  });

  it('on stop, lets work that ends within the grace period finish, and records it', async () => {
    const { services, ids, queue, consumer } = await setUp('CONS-GRACE', 1, { concurrency: 1, env: { PROCESSING_MIN_MS: '300', PROCESSING_MAX_MS: '300', LEASE_MS: '30000' } });
    consumer.start();
    queue.offer(ids);
    await until(async () => ((await statuses(services, ids))[0] === 'PROCESSING' ? true : undefined), 'the order to be claimed');

    await consumer.stop(20_000);

    expect(await services.orders.getState(ids[0]!)).toMatchObject({ status: 'COMPLETED', attempts: 1 });
  });

  it('on stop, gives back the orders claimed ahead at once and those still at work when the grace period ends, and records that before it resolves', async () => {
    // One worker on work far longer than the test: one order at work, the others claimed ahead of it.
    const { services, ids, queue, consumer } = await setUp('CONS-STOP', 3, { concurrency: 1, env: { PROCESSING_MIN_MS: '20000', PROCESSING_MAX_MS: '20000', LEASE_MS: '60000' } });
    consumer.start();
    queue.offer(ids);
    await until(async () => ((await statuses(services, ids)).every((status) => status === 'PROCESSING') ? true : undefined), 'all three to be claimed');

    const started = performance.now();
    await consumer.stop(200);
    const took = performance.now() - started;

    expect(took).toBeGreaterThanOrEqual(190);
    expect(took).toBeLessThan(10_000);
    expect(await services.orders.getStates(ids)).toEqual(ids.map(() => expect.objectContaining({ status: 'PENDING', attempts: 0 })));
    expect(await queue.take()).toBeUndefined();
  });

  it('takes no more orders once four times its workers of outcomes wait to be recorded', async () => {
    const { services, ids, queue, consumer } = await setUp('CONS-BOUND', 10, { concurrency: 2 });
    const finish = services.processor.finish.bind(services.processor);
    // Every outcome waits to be recorded until the test lets them all go.
    let letGo!: () => void;
    const recorded = new Promise<void>((resolve) => (letGo = resolve));
    let waiting = 0;
    vi.spyOn(services.processor, 'finish').mockImplementation(async (claimed: Claimed, result: WorkResult): Promise<ProcessOutcome> => {
      waiting++;
      await recorded;
      return finish(claimed, result);
    });
    consumer.start();
    try {
      // One at a time, each taken and worked until its outcome waits: the consumer had room for each when it
      // asked the queue for the next, the ninth too (asked for while seven waited).
      for (const [k, id] of ids.slice(0, 9).entries()) {
        queue.offer([id]);
        await until(() => (waiting === k + 1 ? true : undefined), `outcome ${k + 1} to wait`);
      }
      // With eight outcomes (4 x 2 workers) waiting before it, nobody is waiting for the tenth: it stays queued.
      queue.offer([ids[9]!]);
      expect(queue.size).toBe(1);
    } finally {
      letGo();
    }
    await until(async () => ((await statuses(services, ids)).every((status) => status === 'COMPLETED') ? true : undefined), 'every order to complete');
  });

  it('on stop, gives back an order whose claim ends after the stop began', async () => {
    const { services, ids, queue, consumer } = await setUp('CONS-LATE-CLAIM', 1, { concurrency: 1, env: { LEASE_MS: '30000' } });
    const begin = services.processor.begin.bind(services.processor);
    let claimMade!: () => void;
    const made = new Promise<void>((resolve) => (claimMade = resolve));
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    // The claim is written to the store; its answer reaches the consumer only once the stop has begun.
    vi.spyOn(services.processor, 'begin').mockImplementation(async (ref) => {
      const begun = await begin(ref);
      claimMade();
      await answered;
      return begun;
    });
    consumer.start();
    queue.offer(ids);
    await made;
    expect(await services.orders.getState(ids[0]!)).toMatchObject({ status: 'PROCESSING', attempts: 1 });

    const stopped = consumer.stop(20_000);
    answer();
    await stopped;

    expect(await services.orders.getState(ids[0]!)).toMatchObject({ status: 'PENDING', attempts: 0 });
  });

  it('reports a delivery whose claim failed, logging the store being away as a warning and anything else as an error', async () => {
    // Nothing listens on port 1: the store is away.
    const services = createServices(testConfig({ DYNAMODB_ENDPOINT: 'http://127.0.0.1:1' }));
    const queue = services.queue as MemoryQueue;
    const begin = services.processor.begin.bind(services.processor);
    const bug = new TypeError('a bug');
    vi.spyOn(services.processor, 'begin').mockImplementation((ref) => (orderIdOf(ref) === 'CONS-BUG' ? Promise.reject(bug) : begin(ref)));
    const warn = vi.spyOn(services.logger, 'warn').mockImplementation(() => {});
    const error = vi.spyOn(services.logger, 'error').mockImplementation(() => {});
    let progress = 0;
    consumer = new Consumer(queue, services.processor, 1, services.logger, () => progress++);
    consumer.start();

    queue.offer(['CONS-AWAY', 'CONS-BUG']);

    await until(() => (progress === 2 ? true : undefined), 'both deliveries');
    const message = 'processing failed; the sweeper will retry';
    expect(warn).toHaveBeenCalledWith(message, { order_id: 'CONS-AWAY', error: expect.any(StoreUnavailable) });
    expect(warn).not.toHaveBeenCalledWith(message, expect.objectContaining({ order_id: 'CONS-BUG' }));
    expect(error).toHaveBeenCalledWith(message, { order_id: 'CONS-BUG', error: bug });
    expect(error).not.toHaveBeenCalledWith(message, expect.objectContaining({ order_id: 'CONS-AWAY' }));
    // Neither ended here: both may be queued again (the sweeper finds them due in the store).
    expect(['CONS-AWAY', 'CONS-BUG'].map((id) => [queue.holds(id), queue.hasFinished(id)])).toEqual([
      [false, false],
      [false, false],
    ]);
  });
});
