import { ThrottlingException, TransactionCanceledException, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import type { Logger } from '@aws-lambda-powertools/logger';
import { GetCommand, QueryCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { CounterFolder, foldAll, foldShard, putDelta, readCounters } from '../../lib/counters.ts';
import { StoreUnavailable } from '../../lib/errors.ts';
import type { StoreGate } from '../../lib/storeGate.ts';
import { createDocumentClient, createStore, type Store } from '../../lib/store.ts';
import { dynamodbEndpoint, intercept, pollUntil, testServices, uniqueTable } from '../support.ts';

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

  it('keeps the records of its last twenty folds only', async () => {
    const { store } = await testServices();
    for (let fold = 1; fold <= 25; fold++) {
      await addDelta(store);
      expect(await foldShard(store, 0)).toBe(1);
    }

    expect(await recordsKept(store)).toEqual(Array.from({ length: 20 }, (_, i) => `f#${String(i + 6).padStart(12, '0')}`));
    expect(await readCounters(store)).toEqual(new Map([['PENDING', 25]]));
  });

  it('folds nothing and throws nothing when another folder took the shard\'s turn first, and counts each delta once', async () => {
    const { store } = await testServices();
    for (let i = 0; i < 3; i++) await addDelta(store);
    let other: number | undefined;
    // The other folder folds between this one's reads and its write (while this one waits for the gate).
    const overtaken = { acquire: async () => ((other = await foldShard(store, 0)), () => {}) } as unknown as StoreGate;

    expect(await foldShard(store, 0, overtaken)).toBe(0);
    expect(other).toBe(3);
    expect(await deltasLeft(store)).toBe(0);
    expect(await readCounters(store)).toEqual(new Map([['PENDING', 3]]));
  });

  it('throws a fold the store refuses for throttling, and leaves its deltas to the next fold', async () => {
    const { store } = await testServices();
    for (let i = 0; i < 2; i++) await addDelta(store);
    let transactions = 0;
    // The store refuses the first fold's transaction, as DynamoDB does when throttling.
    intercept(store.documentClient, {
      before: (command) =>
        command instanceof TransactWriteCommand && ++transactions === 1
          ? Promise.reject(new TransactionCanceledException({ message: 'throttled', $metadata: {}, CancellationReasons: [{ Code: 'ThrottlingError' }] }))
          : undefined,
    });

    await expect(foldAll(store)).rejects.toMatchObject({ name: 'TransactionCanceledException' });
    expect(await deltasLeft(store)).toBe(2);
    expect(await foldAll(store)).toBe(2);
    expect(await readCounters(store)).toEqual(new Map([['PENDING', 2]]));
  });

  describe('a read that folds overtake', () => {
    /**
     * The store as a reader sees it, with `overtake(read)` run (by another client) after each read of the shard's
     * total answers and before the reader reads on: folds that run while it reads.
     */
    const overtakenReader = (store: Store, overtake: (read: number) => Promise<void>): Store => {
      const client = createDocumentClient({ tableName: store.tableName, region: 'us-east-1', endpoint: dynamodbEndpoint() });
      let reads = 0;
      intercept(client, {
        after: async (command, answer) => {
          if (command instanceof GetCommand && String(command.input.Key?.pk).startsWith('METRICS#')) await overtake(++reads);
          return answer;
        },
      });
      return createStore(client, store.tableName, store.shards);
    };

    /** `count` folds of a new delta each. */
    const folds = async (store: Store, count: number) => {
      for (let i = 0; i < count; i++) {
        await addDelta(store);
        await foldShard(store, 0);
      }
    };

    it('counts each delta once when folds run under it, and reads again when it missed records already deleted', async () => {
      const { store } = await testServices();
      await folds(store, 2);
      // The first read is overtaken by more folds than records are kept, the others by two each.
      const reader = overtakenReader(store, (read) => folds(store, read === 1 ? 21 : 2));

      const counted = (await readCounters(reader)).get('PENDING');

      // The second read began after 23 folds and two more ran under it.
      expect(counted).toBe(2 + 21 + 2);
      expect(await readCounters(store)).toEqual(new Map([['PENDING', 2 + 21 + 2]]));
    });

    it('gives up as unavailable, naming the shard, when more folds than records are kept overtake each of its reads', async () => {
      const { store } = await testServices();
      const reader = overtakenReader(store, () => folds(store, 21));

      const error = await readCounters(reader).then(() => undefined, (thrown: unknown) => thrown);

      expect(error).toBeInstanceOf(StoreUnavailable);
      expect((error as Error).message).toBe('The counters changed too fast to be read (shard 0); retry shortly');
    });
  });

  it('takes a fold cancelled by a write conflict for a lost turn: nothing folded, nothing thrown, the deltas left to the next', async () => {
    const { store } = await testServices();
    await addDelta(store);
    let transactions = 0;
    // DynamoDB cancels one of two transactions on the same items at once; DynamoDB Local runs them one at a time.
    intercept(store.documentClient, {
      before: (command) =>
        command instanceof TransactWriteCommand && ++transactions === 1
          ? Promise.reject(new TransactionCanceledException({ message: 'conflict', $metadata: {}, CancellationReasons: [{ Code: 'TransactionConflict' }, { Code: 'None' }] }))
          : undefined,
    });

    expect(await foldShard(store, 0)).toBe(0);
    expect(await foldShard(store, 0)).toBe(1);
    expect(await readCounters(store)).toEqual(new Map([['PENDING', 1]]));
  });

  it('folds on its interval, and goes on after a fold failed, logging the failure as a warning', async () => {
    const { store } = await testServices();
    await addDelta(store);
    let reads = 0;
    // The store refuses the first fold's first read, as DynamoDB does when throttling.
    intercept(store.documentClient, {
      before: (command) => (command instanceof GetCommand && ++reads === 1 ? Promise.reject(new ThrottlingException({ message: 'throttled', $metadata: {} })) : undefined),
    });
    const warnings: string[] = [];
    const logger = { warn: (message: string) => void warnings.push(message) } as unknown as Logger;
    const folder = new CounterFolder(store, 50, logger);

    await folder.start();
    expect(warnings).toEqual(['folding the counters failed; will try again']);
    await pollUntil(async () => ((await deltasLeft(store)) === 0 ? true : undefined), { timeoutMs: 10_000, intervalMs: 20, what: 'a later fold' });
    await addDelta(store);
    await pollUntil(async () => ((await deltasLeft(store)) === 0 ? true : undefined), { timeoutMs: 10_000, intervalMs: 20, what: 'the fold after it' });
    await folder.stop();

    expect(await readCounters(store)).toEqual(new Map([['PENDING', 2]]));
  });

  it('starts though the store is away, logging the failed fold as a warning', async () => {
    const warnings: string[] = [];
    const logger = { warn: (message: string) => void warnings.push(message) } as unknown as Logger;
    const away = createStore(createDocumentClient({ tableName: uniqueTable(), region: 'us-east-1', endpoint: 'http://127.0.0.1:1' }), uniqueTable());
    const folder = new CounterFolder(away, 3_600_000, logger);

    await folder.start();
    await folder.stop();

    expect(warnings).toEqual(['folding the counters failed; will try again']);
  });
});

/** One counter delta on shard 0, as a transaction that moves an order writes it. */
const addDelta = async (store: Store) => {
  await store.documentClient.send(new TransactWriteItemsCommand({ TransactItems: putDelta(store.tableName, 0, { PENDING: 1 }) }));
};

/** The sort keys of the fold records kept on shard 0. */
const recordsKept = async (store: Store): Promise<string[]> => {
  const { Items } = await store.documentClient.send(
    new QueryCommand({
      TableName: store.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :f)',
      ExpressionAttributeValues: { ':pk': 'DELTA#0', ':f': 'f#' },
      ConsistentRead: true,
    }),
  );
  return (Items ?? []).map((item) => String(item.sk));
};
