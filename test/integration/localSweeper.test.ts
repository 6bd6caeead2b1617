import { QueryCommand, ThrottlingException } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OrderRepository } from '../../lib/orders.ts';
import { MemoryQueue } from '../../lib/queue/memoryQueue.ts';
import { orderIdOf } from '../../lib/queue/port.ts';
import { LocalSweeper } from '../../lib/sweeper.ts';
import type { Services } from '../../lib/services.ts';
import { intercept, pollUntil, testServices } from '../support.ts';

// The local sweeper's refill, with its interval timer out of the way (an hour): whatever fills the queue
// here is a sweep at start or one a poke asked for.
const NEVER_MS = 3_600_000;
const CAPACITY = 4;

let sweeper: LocalSweeper | undefined;
afterEach(async () => {
  await sweeper?.stop();
  sweeper = undefined;
  vi.restoreAllMocks();
});

/** A backlog of `count` orders stored (as a create would) but in no queue. */
const backlog = async (services: Services, count: number) => {
  const created_at = new Date().toISOString();
  const ids = Array.from({ length: count }, (_, i) => `BACKLOG-${i}`);
  for (const order_id of ids) await services.orders.createMany([{ order_id, user_id: 'U1', item_ids: [1], total_amount: 1, created_at }]);
  return ids;
};

const start = async (count: number) => {
  const services = await testServices();
  const ids = await backlog(services, count);
  const queue = new MemoryQueue(CAPACITY);
  sweeper = new LocalSweeper(services.orders, queue, NEVER_MS, services.logger);
  await sweeper.start();
  /** Takes `n` orders out of the queue, as workers would. */
  const take = async (n: number) => Promise.all(Array.from({ length: n }, async () => orderIdOf((await queue.take())!)));
  /** Workers that let their orders go unfinished (as at shutdown): the orders are due again. */
  const letGo = (taken: string[]) => taken.forEach((id) => queue.done(id));
  return { ids, queue, sweeper, take, letGo };
};

describe('the local sweeper', () => {
  it('fills the queue at start, and refills it from the backlog when a poke finds it drained to half', async () => {
    const { ids, queue, sweeper, take } = await start(10);
    expect(queue.size).toBe(CAPACITY);

    const taken = await take(CAPACITY / 2);
    sweeper.poke();

    await pollUntil(() => (queue.size === CAPACITY ? true : undefined), { timeoutMs: 10_000, what: 'the poke to refill the queue' });
    const all = [...taken, ...(await take(CAPACITY))];
    expect(new Set(all).size).toBe(all.length);
    expect(all.every((id) => ids.includes(id))).toBe(true);
  });

  it('leaves a queue more than half full alone when poked', async () => {
    const { queue, sweeper, take } = await start(10);
    await take(1);

    sweeper.poke();
    // A sweep the poke started would be awaited here.
    await sweeper.stop();

    expect(queue.size).toBe(CAPACITY - 1);
  });

  it('sweeps on a poke only while a backlog is known: not after a sweep that found less than the queue takes', async () => {
    const { queue, sweeper, take, letGo } = await start(CAPACITY - 1);
    letGo(await take(CAPACITY - 1));

    sweeper.poke();
    await sweeper.stop();

    expect(queue.size).toBe(0);
  });

  it('sweeps again on a poke once told of a backlog', async () => {
    const { queue, sweeper, take, letGo } = await start(CAPACITY - 1);
    letGo(await take(CAPACITY - 1));

    sweeper.noteBacklog();
    sweeper.poke();
    await sweeper.stop();

    expect(queue.size).toBe(CAPACITY - 1);
  });

  it('sweeps nothing once stopped, whether poked or run', async () => {
    const { queue, sweeper, take, letGo } = await start(10);
    letGo(await take(CAPACITY));
    await sweeper.stop();

    sweeper.noteBacklog();
    sweeper.poke();
    await sweeper.run();

    expect(queue.size).toBe(0);
  });

  it('sweeps again on a poke after a sweep that failed, as it does for a known backlog', async () => {
    const services = await testServices();
    await backlog(services, CAPACITY);
    let queries = 0;
    // The store refuses the first sweep's first read of the markers, as DynamoDB does when throttling.
    intercept(services.store.documentClient, {
      before: (command) =>
        command instanceof QueryCommand && ++queries === 1
          ? Promise.reject(new ThrottlingException({ message: 'Rate of requests exceeds the allowed throughput.', $metadata: {} }))
          : undefined,
    });
    const queue = new MemoryQueue(CAPACITY);
    sweeper = new LocalSweeper(services.orders, queue, NEVER_MS, services.logger);
    await sweeper.start();
    expect(queue.size).toBe(0);

    sweeper.poke();

    await pollUntil(() => (queue.size === CAPACITY ? true : undefined), { timeoutMs: 10_000, what: 'the poke to sweep again' });
  });

  it('starts each sweep at the next shard, so a queue smaller than one shard\'s backlog still gets every shard\'s orders', async () => {
    const services = await testServices({ WRITE_SHARDS: '2' });
    const created_at = new Date().toISOString();
    // Ten orders on each shard's markers: a repository whose chance always picks that shard.
    for (const shard of [0, 1]) {
      const onShard = new OrderRepository(services.store, { random: () => (shard + 0.5) / 2 });
      for (let i = 0; i < 10; i++) await onShard.createMany([{ order_id: `SHARD${shard}-${i}`, user_id: 'U1', item_ids: [1], total_amount: 1, created_at }]);
    }
    const queue = new MemoryQueue(2);
    sweeper = new LocalSweeper(services.orders, queue, NEVER_MS, services.logger);
    await sweeper.start();
    const take = async () => [orderIdOf((await queue.take())!), orderIdOf((await queue.take())!)];

    const first = await take();
    sweeper.poke();
    await pollUntil(() => (queue.size === 2 ? true : undefined), { timeoutMs: 10_000, what: 'the second sweep' });
    const second = await take();
    sweeper.poke();
    await pollUntil(() => (queue.size === 2 ? true : undefined), { timeoutMs: 10_000, what: 'the third sweep' });
    const third = await take();

    expect([first, second, third].map((ids) => ids.map((id) => id.split('-')[0]))).toEqual([
      ['SHARD0', 'SHARD0'],
      ['SHARD1', 'SHARD1'],
      ['SHARD0', 'SHARD0'],
    ]);
  });
});
