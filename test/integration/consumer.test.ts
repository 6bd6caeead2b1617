import { afterEach, describe, expect, it, vi } from 'vitest';
import { Consumer } from '../../lib/consumer.ts';
import type { WorkResult } from '../../lib/processing.ts';
import type { MemoryQueue } from '../../lib/queue/memoryQueue.ts';
import { orderIdOf } from '../../lib/queue/port.ts';
import type { Services } from '../../lib/services.ts';
import { pollUntil, testServices, validOrder } from '../support.ts';

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
});
