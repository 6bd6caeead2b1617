import { DynamoDBClient, PutItemCommand, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it, vi } from 'vitest';
import { markerKey, markerRange, newMarkerRef, type Marker } from '../../lib/markers.ts';
import { OrderRepository } from '../../lib/orders.ts';
import type { OrderQueue, OrderRef } from '../../lib/queue/port.ts';
import type { Store } from '../../lib/store.ts';
import { sweep } from '../../lib/sweeper.ts';
import { createServices } from '../../lib/services.ts';
import { ensureTable } from '../../lib/store.ts';
import { dynamodbEndpoint, testConfig, testServices } from '../support.ts';

const order = (orderId: string) => ({ order_id: orderId, user_id: 'USER001', item_ids: [1], total_amount: 5, created_at: new Date().toISOString() });

/** Every marker in the table, read shard by shard. */
const markersOf = async (store: Store): Promise<Marker[]> => {
  const markers: Marker[] = [];
  for (let shard = 0; shard < store.shards; shard++) {
    const { Items } = await store.documentClient.send(
      new QueryCommand({ TableName: store.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': markerRange(shard, 0).pk }, ConsistentRead: true }),
    );
    for (const item of Items ?? []) markers.push({ ref: `${shard}:${item.sk}`, ids: item.ids as string[] });
  }
  return markers;
};

/** A queue that takes everything and remembers what it got, in order. */
const recordingQueue = () => {
  const sent: string[] = [];
  const queue: OrderQueue = {
    send: async (orders: readonly OrderRef[]) => {
      for (const ref of orders) sent.push(typeof ref === 'string' ? ref : ref.order_id);
      return orders.length;
    },
  };
  return { queue, sent };
};

const everything = (now = Date.now()) => ({ createdBy: now, now, maxSend: 10_000, maxRead: 10_000 });

/**
 * Creates `count` orders one commit each, `<prefix>-0` first, through a repository whose marker shard is the
 * first one for the first `firstShardCount` creates and `thenRandom` (as its random draw) for the rest.
 */
const createOnShards = async (store: Store, prefix: string, count: number, firstShardCount: number, thenRandom: number) => {
  let creates = 0;
  const orders = new OrderRepository(store, { random: () => (creates < firstShardCount ? 0 : thenRandom) });
  for (; creates < count; creates++) await orders.createMany([order(`${prefix}-${creates}`)]);
  return orders;
};

describe('due markers', () => {
  it('marks a group commit of orders with one item, and a lone order with one that its final transition removes', async () => {
    const { orders, store } = await testServices();
    await orders.createMany(['M-1', 'M-2', 'M-3'].map(order));
    const [lone] = await orders.createMany([order('M-4')]);
    expect(lone).toMatchObject({ ok: true, value: { order: { marker: expect.any(String) } } });

    expect((await markersOf(store)).map((marker) => marker.ids).sort()).toEqual([['M-1', 'M-2', 'M-3'], ['M-4']]);
    expect(await orders.get('M-1')).not.toHaveProperty('marker');

    const claimed = await orders.claim((await orders.get('M-4'))!, Date.now(), 30_000);
    expect(await orders.complete(claimed!, Date.now())).toBe(true);
    expect((await markersOf(store)).map((marker) => marker.ids)).toEqual([['M-1', 'M-2', 'M-3']]);
  });

  it('deletes a group commit\'s marker with the transition that finishes the last of its orders, and not before', async () => {
    const { orders, store } = await testServices();
    await orders.createMany(['G-1', 'G-2', 'G-3'].map(order));
    const now = Date.now();
    const [first, second, third] = await Promise.all(['G-1', 'G-2', 'G-3'].map(async (id) => (await orders.claim((await orders.get(id))!, now, 30_000))!));
    expect(await orders.complete(first!, now)).toBe(true);
    expect((await markersOf(store)).map((marker) => marker.ids)).toEqual([['G-1', 'G-2', 'G-3']]);
    // A retry is no final transition: the marker stays for G-2.
    expect(await orders.retryLater(second!, now, 'again', now + 1_000)).toBe(true);
    expect(await markersOf(store)).toHaveLength(1);
    const [failed, completed] = await Promise.all([orders.fail(third!, now, 'broken'), orders.complete({ ...second!, failed_attempts: 1 }, now)]);
    expect([failed, completed]).toEqual([true, true]);
    expect(await markersOf(store)).toEqual([]);
  });

  it('leaves the marker of orders another process finished to the sweeper', async () => {
    const { orders, store } = await testServices();
    const elsewhere = new OrderRepository(store);
    await orders.createMany(['E-1', 'E-2'].map(order));
    const now = Date.now();
    expect(await elsewhere.complete((await elsewhere.claim((await orders.get('E-1'))!, now, 30_000))!, now)).toBe(true);
    expect(await orders.complete((await orders.claim((await orders.get('E-2'))!, now, 30_000))!, now)).toBe(true);
    expect((await markersOf(store)).map((marker) => marker.ids)).toEqual([['E-1', 'E-2']]);
    await sweep(orders, recordingQueue().queue, everything());
    expect(await markersOf(store)).toEqual([]);
  });

  it('sends the due orders, keeps a marker for the unfinished ones only, and deletes it once all are finished', async () => {
    const { store, orders: creator } = await testServices();
    // Another process works on them: the sweeper, not the creator's transitions, tidies their marker.
    const orders = new OrderRepository(store);
    await creator.createMany(['S-1', 'S-2', 'S-3', 'S-4'].map(order));
    const now = Date.now();
    for (const id of ['S-1', 'S-2']) {
      const claimed = await orders.claim((await orders.get(id))!, now, 30_000);
      expect(await orders.complete(claimed!, now)).toBe(true);
    }
    const leased = await orders.claim((await orders.get('S-3'))!, now, 60_000);

    const first = recordingQueue();
    expect(await sweep(orders, first.queue, everything(now + 1))).toBe(1);
    expect(first.sent).toEqual(['S-4']);
    expect((await markersOf(store)).map((marker) => marker.ids)).toEqual([['S-3', 'S-4']]);

    // Its lease ran out: S-3 is due again.
    const later = recordingQueue();
    await sweep(orders, later.queue, everything(now + 60_001));
    expect(later.sent.sort()).toEqual(['S-3', 'S-4']);

    expect(await orders.complete(leased!, now + 10)).toBe(true);
    const pending = await orders.claim((await orders.get('S-4'))!, now, 30_000);
    expect(await orders.fail(pending!, now + 20, 'broken')).toBe(true);
    const last = recordingQueue();
    expect(await sweep(orders, last.queue, everything(now + 60_001))).toBe(0);
    expect(await markersOf(store)).toEqual([]);
  });

  it('reads a marker item without its list of ids (nothing here writes one) as marking no order, which a sweep passes over', async () => {
    const { store, orders } = await testServices();
    const now = Date.now();
    await store.documentClient.send(new PutItemCommand({ TableName: store.tableName, Item: markerKey(newMarkerRef(now - 1_000, store.shards)) }));

    const visited: Marker[] = [];
    await orders.scanMarkers(now, (markers) => visited.push(...markers) > 0);
    expect(visited).toEqual([{ ref: expect.any(String), ids: [] }]);

    const queue = recordingQueue();
    expect(await sweep(orders, queue.queue, everything(now))).toBe(0);
    expect(queue.sent).toEqual([]);
  });

  it('leaves the orders this process holds alone: not read, not sent, still marked', async () => {
    const { orders, store } = await testServices();
    await orders.createMany(['H-1', 'H-2'].map(order));
    const { queue, sent } = recordingQueue();
    await sweep(orders, queue, { ...everything(), holds: (id) => id === 'H-1' });
    expect(sent).toEqual(['H-2']);
    expect((await markersOf(store)).map((marker) => marker.ids)).toEqual([['H-1', 'H-2']]);
  });

  it('takes a quarantined order off a shared marker without sending it, and sends the others', async () => {
    const { orders, store } = await testServices();
    await orders.createMany(['Q-1', 'Q-2'].map(order));
    expect(await orders.noteFault('Q-1', 'a fault', 1, Date.now())).toEqual({ kind: 'quarantined', faults: 1 });
    const { queue, sent } = recordingQueue();
    await sweep(orders, queue, everything());
    expect(sent).toEqual(['Q-2']);
    expect((await markersOf(store)).map((marker) => marker.ids)).toEqual([['Q-2']]);
  });

  it('stops after the page on which it has read maxRead orders', async () => {
    const { store } = await testServices({ WRITE_SHARDS: '2' });
    // Three orders on shard 0, then three on shard 1: a page each.
    const orders = await createOnShards(store, 'R', 6, 3, 1 / 2);
    const { queue, sent } = recordingQueue();
    await sweep(orders, queue, { ...everything(), maxRead: 1 });
    expect(sent.sort()).toEqual(['R-0', 'R-1', 'R-2']);
  });

  it('reads a page of every shard in turn, so a backlog in one shard does not hold back the others', async () => {
    const { store } = await testServices({ WRITE_SHARDS: '8' });
    // Shard 0 for the first 40 creates (a backlog), then shard 5 for one more.
    const orders = await createOnShards(store, 'F', 41, 40, 5 / 8);
    const { queue, sent } = recordingQueue();
    await orders.scanMarkers(Date.now(), async (markers) => {
      for (const marker of markers) await queue.send(marker.ids);
      return true;
    }, { pageSize: 10 });
    expect(sent.indexOf('F-40')).toBe(10);
    expect(sent).toHaveLength(41);
  });

  it('scans the markers created at or before a time, that time included, whatever the number of digits of the time', async () => {
    const { orders } = await testServices({ WRITE_SHARDS: '2' });
    const createdAt = (orderId: string, ms: number) => ({ ...order(orderId), created_at: new Date(ms).toISOString() });
    await orders.createMany([createdAt('T-5', 5)]);
    await orders.createMany([createdAt('T-1000', 1_000)]);
    await orders.createMany([createdAt('T-NOW', Date.now())]);
    const scanned = async (createdBy: number) => {
      const ids: string[] = [];
      await orders.scanMarkers(createdBy, (markers) => {
        ids.push(...markers.flatMap((marker) => marker.ids));
        return true;
      });
      return ids.sort();
    };

    expect(await scanned(4)).toEqual([]);
    expect(await scanned(5)).toEqual(['T-5']);
    expect(await scanned(999)).toEqual(['T-5']);
    expect(await scanned(1_000)).toEqual(['T-1000', 'T-5']);
    expect(await scanned(Date.now())).toEqual(['T-1000', 'T-5', 'T-NOW']);
  });

  it('deletes the markers a commit empties only as far as the transaction has room: never beyond its 100 items', async () => {
    // A client that waits for a slow store (a transaction of 100 items, a store shared with other test runs)
    // rather than giving up after 3 s as the service's does.
    const client = new DynamoDBClient({ region: 'us-east-1', endpoint: dynamodbEndpoint(), credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, requestHandler: { requestTimeout: 30_000 } });
    const { orders, store } = createServices(testConfig(), { documentClient: DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } }) });
    await ensureTable(store);
    // 48 group commits of two orders: 96 completions then fill one commit, and empty 48 markers.
    for (let i = 0; i < 48; i++) await orders.createMany([order(`R-${i}-a`), order(`R-${i}-b`)]);
    const now = Date.now();
    const claimed = await Promise.all(
      Array.from({ length: 48 }, (_, i) => [`R-${i}-a`, `R-${i}-b`]).flat().map(async (id) => (await orders.claim((await orders.get(id))!, now, 30_000))!),
    );
    const send = vi.spyOn(store.documentClient, 'send');

    const completed = await Promise.all(claimed.map((state) => orders.complete(state, now)));

    expect(completed.every((ok) => ok)).toBe(true);
    const transactions = send.mock.calls.map(([command]) => command).filter((command) => command instanceof TransactWriteItemsCommand);
    for (const transaction of transactions) expect(transaction.input.TransactItems!.length).toBeLessThanOrEqual(100);
    // The markers left are the sweeper's to prune; none lists an order of its own that is not finished.
    for (const marker of await markersOf(store)) expect(marker.ids).toHaveLength(2);
  });

  it('prunes more emptied markers than one batch write takes, and shrinks a marker already gone without bringing it back', async () => {
    const { orders, store } = await testServices({ WRITE_SHARDS: '1' });
    for (let i = 0; i < 30; i++) await orders.createMany([order(`P-${i}`)]);
    const markers: Marker[] = [];
    await orders.scanMarkers(Date.now(), (page) => {
      markers.push(...page);
      return true;
    });
    expect(markers).toHaveLength(30);

    await orders.pruneMarkers(markers.map((marker) => ({ marker, remaining: [] })));
    expect(await markersOf(store)).toEqual([]);

    await orders.pruneMarkers([{ marker: markers[0]!, remaining: ['P-0'] }]);
    expect(await markersOf(store)).toEqual([]);
  });
});
