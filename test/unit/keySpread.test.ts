import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { OrderRepository, type OrderState } from '../../lib/orders.ts';
import { createStore } from '../../lib/store.ts';
import { seededRandom } from '../support.ts';

// One second of the cloud at 10 000 orders/s, through the repository's real write path; only DynamoDB is a
// stand-in that records each transaction (AWS cannot run here). Lambda runs one request per container, so
// every create is a transaction of its own; the SQS consumer gets batches of 10, so 10 claims, then 10
// completions, share a transaction.
const ORDERS_PER_SECOND = 10_000;
const SQS_BATCH = 10;
/** The cloud's WRITE_SHARDS (serverless.yml). */
const SHARDS = 128;
/** What DynamoDB allows one partition key, in writes (and write units) per second. */
const PARTITION_LIMIT = 1_000;
/** A fold (lib/counters.ts) takes 96 deltas of one shard and writes its record and deletes an old one. */
const FOLD_BATCH = 96;

const recordingStore = () => {
  const transactions: TransactWriteItem[][] = [];
  const client = {
    send: async (command: { input: { TransactItems?: TransactWriteItem[] } }) => {
      if (command.input.TransactItems) transactions.push(command.input.TransactItems);
      return {};
    },
  } as unknown as DynamoDBDocumentClient;
  return { store: createStore(client, 'orders', SHARDS), transactions };
};

/** The partition key an item is written under, named with its table (a partition belongs to one table). */
const keyOf = (item: TransactWriteItem) => {
  const write = (item.Put ?? item.Update ?? item.Delete ?? item.ConditionCheck)!;
  const key = item.Put ? { pk: item.Put.Item!.pk!, sk: item.Put.Item!.sk! } : (write as { Key: Record<string, { S?: string }> }).Key;
  return { pk: `${write.TableName} ${key.pk!.S!}`, sk: key.sk!.S! };
};

describe('the cloud key spread at 10 000 orders/s', () => {
  it('keeps every partition key under 1 000 writes/s, and no counter item is written by two transactions', async () => {
    const { store, transactions } = recordingStore();
    const orders = new OrderRepository(store, { random: seededRandom(42) });
    const now = Date.now();
    const created: OrderState[] = [];
    for (let i = 0; i < ORDERS_PER_SECOND; i++) {
      const [outcome] = await orders.createMany([{ order_id: `O${i}`, user_id: `U${i}`, item_ids: [1], total_amount: 1, created_at: new Date(now).toISOString() }]);
      if (!outcome?.ok) throw new Error('create failed');
      created.push(outcome.value.order);
    }
    for (let i = 0; i < ORDERS_PER_SECOND; i += SQS_BATCH) {
      const batch = created.slice(i, i + SQS_BATCH);
      const claimed = await Promise.all(batch.map((order) => orders.claim(order, now, 30_000)));
      await Promise.all(claimed.map((order) => orders.complete(order!, now + 5)));
    }

    // A creates is one transaction; the transitions of a batch of 10 share one.
    expect(transactions).toHaveLength(ORDERS_PER_SECOND + 2 * (ORDERS_PER_SECOND / SQS_BATCH));

    const writes = new Map<string, number>();
    const itemsWritten = new Map<string, number>();
    const deltas = new Map<string, number>();
    for (const transaction of transactions) {
      for (const item of transaction) {
        const { pk, sk } = keyOf(item);
        writes.set(pk, (writes.get(pk) ?? 0) + 1);
        itemsWritten.set(`${pk} ${sk}`, (itemsWritten.get(`${pk} ${sk}`) ?? 0) + 1);
        if (pk.startsWith('orders DELTA#')) deltas.set(pk, (deltas.get(pk) ?? 0) + 1);
      }
    }
    // The folder deletes each delta once, and per 96 deltas writes a record and deletes an old one.
    for (const [pk, count] of deltas) writes.set(pk, writes.get(pk)! + count + 2 * Math.ceil(count / FOLD_BATCH));

    const busiest = (prefix: string) => Math.max(...[...writes].filter(([pk]) => pk.startsWith(prefix)).map(([, count]) => count));
    const spread = { markers: busiest('orders DUE#'), deltas: busiest('orders DELTA#'), orders: busiest('orders ORDER#'), states: busiest('orders-states ORDER#') };
    // Transactional writes cost two write units each: under the limit in units, not only in writes.
    expect(2 * spread.markers).toBeLessThanOrEqual(PARTITION_LIMIT);
    expect(2 * spread.deltas).toBeLessThanOrEqual(PARTITION_LIMIT);
    // An order: its create in the order table, its claim and completion in the state table.
    expect([spread.orders, spread.states]).toEqual([1, 2]);
    expect(new Set([...writes.keys()].filter((pk) => pk.startsWith('orders DUE#'))).size).toBe(SHARDS);
    expect(new Set([...deltas.keys()]).size).toBe(SHARDS);

    // Apart from an order's state (claimed, then completed), every item is written once in the second: a marker
    // is put, then deleted with its order's final transition; a delta is a new item. No two transactions touch
    // a counter.
    const twice = [...itemsWritten].filter(([key, count]) => count > 1 && !(key.startsWith('orders-states ORDER#') && count === 2) && !(key.startsWith('orders DUE#') && count === 2));
    expect(twice).toEqual([]);
    expect([...itemsWritten.keys()].filter((key) => key.startsWith('orders METRICS#'))).toEqual([]);
    console.log(`[key spread] busiest partition keys at ${ORDERS_PER_SECOND} orders/s: ${JSON.stringify(spread)} writes/s`);
  });
});
