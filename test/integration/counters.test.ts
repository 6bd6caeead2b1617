import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { foldAll, readCounters } from '../../lib/counters.ts';
import type { Store } from '../../lib/store.ts';
import { testServices } from '../support.ts';

const deltasLeft = async (store: Store): Promise<number> => {
  let count = 0;
  for (let shard = 0; shard < store.shards; shard++) {
    const { Count } = await store.documentClient.send(
      new QueryCommand({
        TableName: store.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :delta)',
        ExpressionAttributeValues: { ':pk': `DELTA#${shard}`, ':delta': 'd#' },
        ConsistentRead: true,
        Select: 'COUNT',
      }),
    );
    count += Count ?? 0;
  }
  return count;
};

const order = (orderId: string) => ({ order_id: orderId, user_id: 'USER001', item_ids: [1], total_amount: 5, created_at: new Date().toISOString() });

describe('counters', () => {
  it('puts one delta per transaction, and folds each into the totals exactly once, two folders at a time', async () => {
    const { orders, store } = await testServices();
    for (let batch = 0; batch < 30; batch++) await orders.createMany(Array.from({ length: 7 }, (_, i) => order(`C-${batch}-${i}`)));
    expect(await deltasLeft(store)).toBe(30);
    expect(await readCounters(store)).toEqual(new Map([['PENDING', 210]]));

    const [a, b] = await Promise.all([foldAll(store), foldAll(store)]);
    // Whatever the two folders raced for, every delta was folded by one of them and none twice.
    expect(await deltasLeft(store)).toBe(0);
    expect(a + b).toBe(30);
    expect(await readCounters(store)).toEqual(new Map([['PENDING', 210]]));
  });

  it('reads exact totals while deltas are folded and written under it', async () => {
    const { orders, store } = await testServices();
    let acknowledged = 0;
    let submitted = 0;
    let writing = true;
    const writer = (async () => {
      for (let batch = 0; writing; batch++) {
        submitted += 3;
        await orders.createMany([0, 1, 2].map((i) => order(`R-${batch}-${i}`)));
        acknowledged += 3;
      }
    })();
    const folder = (async () => {
      while (writing) await foldAll(store);
    })();
    const reads: { low: number; seen: number; high: number }[] = [];
    for (let i = 0; i < 40; i++) {
      const low = acknowledged;
      const seen = (await readCounters(store)).get('PENDING') ?? 0;
      reads.push({ low, seen, high: submitted });
    }
    writing = false;
    await Promise.all([writer, folder]);

    // Each read counts every order acknowledged before it began and none not yet submitted when it ended.
    expect(reads.filter(({ low, seen, high }) => seen < low || seen > high)).toEqual([]);
    expect(reads.at(-1)!.seen).toBeGreaterThan(0);
    await foldAll(store);
    expect((await readCounters(store)).get('PENDING')).toBe(acknowledged);
  });
});
