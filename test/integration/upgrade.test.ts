import { CreateTableCommand, DescribeTableCommand, ScalarAttributeType, ThrottlingException, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it, vi } from 'vitest';
import { readMetrics } from '../../lib/metrics.ts';
import { OrderRepository } from '../../lib/orders.ts';
import type { OrderQueue, OrderRef } from '../../lib/queue/port.ts';
import { createDocumentClient, createStore, ensureTable, ShardsMismatch, stateTableDefinition, tableDefinition, type Store } from '../../lib/store.ts';
import { sweep } from '../../lib/sweeper.ts';
import { countByStatus, dynamodbEndpoint, intercept, scanOrders, uniqueTable } from '../support.ts';

/**
 * A table as the version with the byDue index made it, with three orders and its 16 counter items in use, and
 * `waiting` more PENDING orders on the index.
 */
const oldTable = async (tableName: string, waiting = 0) => {
  const documentClient = createDocumentClient({ tableName, region: 'us-east-1', endpoint: dynamodbEndpoint() });
  await documentClient.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        ...['pk', 'sk', 'user_id', 'created_at', 'due_shard'].map((name) => ({ AttributeName: name, AttributeType: ScalarAttributeType.S })),
        { AttributeName: 'due_at', AttributeType: ScalarAttributeType.N },
      ],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
      GlobalSecondaryIndexes: [
        { IndexName: 'byUser', KeySchema: [{ AttributeName: 'user_id', KeyType: 'HASH' }, { AttributeName: 'created_at', KeyType: 'RANGE' }], Projection: { ProjectionType: 'ALL' } },
        { IndexName: 'byDue', KeySchema: [{ AttributeName: 'due_shard', KeyType: 'HASH' }, { AttributeName: 'due_at', KeyType: 'RANGE' }], Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['order_id', '_et'] } },
      ],
    }),
  );
  const now = Date.now();
  const at = new Date(now - 60_000).toISOString();
  const order = (id: string, fields: Record<string, unknown>) => ({
    pk: `ORDER#${id}`, sk: 'ORDER', _et: 'Order', order_id: id, user_id: 'USER001', item_ids: [1], total_amount: 5, created_at: at, ...fields,
  });
  const items = [
    order('OLD-PENDING', { status: 'PENDING', attempts: 0, due_shard: 'WORK#1', due_at: now - 60_000, history: [{ status: 'PENDING', at, attempt: 0 }] }),
    // Its worker crashed: the lease ran out a while ago.
    order('OLD-LEASED', { status: 'PROCESSING', attempts: 1, started_at: at, due_shard: 'WORK#2', due_at: now - 30_000, history: [] }),
    order('OLD-DONE', { status: 'COMPLETED', attempts: 1, started_at: at, completed_at: at, processing_ms: 100, history: [] }),
    { pk: 'METRICS#0', sk: 'METRICS', PENDING: 2 },
    { pk: 'METRICS#3', sk: 'METRICS', PENDING: 1 },
    { pk: 'METRICS#7', sk: 'METRICS', PENDING: -1, PROCESSING: 1 },
    { pk: 'METRICS#9', sk: 'METRICS', PENDING: -1, COMPLETED: 1, sum_processing_ms: 100, sum_turnaround_ms: 150, h_100: 1 },
    ...Array.from({ length: waiting }, (_, i) => order(`OLD-WAITING-${i}`, { status: 'PENDING', attempts: 0, due_shard: `WORK#${i % 4}`, due_at: now - 60_000, history: [] })),
  ];
  for (const Item of items) await documentClient.send(new PutCommand({ TableName: tableName, Item }));
  return createStore(documentClient, tableName);
};

describe('upgrading a table of the earlier layout', () => {
  it('lists its unfinished orders on due markers, folds its counter items in and drops the byDue index, once', async () => {
    const store = await oldTable(uniqueTable('old-layout'));

    expect(await ensureTable(store)).toEqual({ orders: 2, counters: 3, states: 2 });

    const metrics = await readMetrics(store);
    expect(metrics.status_counts).toEqual({ PENDING: 1, PROCESSING: 1, COMPLETED: 1, FAILED: 0 });
    expect(metrics.status_counts).toEqual(countByStatus(await scanOrders(store)));
    expect(metrics.average_processing_time_ms).toBe(100);

    const sent: string[] = [];
    const queue: OrderQueue = { send: async (refs: readonly OrderRef[]) => sent.push(...refs.map((ref) => (typeof ref === 'string' ? ref : ref.order_id))) };
    const orders = new OrderRepository(store);
    const now = Date.now();
    await sweep(orders, queue, { createdBy: now, now, maxSend: 100, maxRead: 100 });
    expect(sent.sort()).toEqual(['OLD-LEASED', 'OLD-PENDING']);
    expect(await orders.get('OLD-PENDING')).toMatchObject({ order_id: 'OLD-PENDING', status: 'PENDING', attempts: 0 });

    const { Table } = await store.documentClient.send(new DescribeTableCommand({ TableName: store.tableName }));
    expect(Table?.GlobalSecondaryIndexes?.map((index) => index.IndexName)).toEqual(['byUser']);
    expect(await ensureTable(store)).toBeUndefined();
    expect((await readMetrics(store)).status_counts).toEqual({ PENDING: 1, PROCESSING: 1, COMPLETED: 1, FAILED: 0 });
  });

  it('fails an upgrade whose move of a counter item the store refuses, and moves it at the next start', async () => {
    const store = await oldTable(uniqueTable('old-refused'));
    const refusal = new ThrottlingException({ message: 'Rate of requests exceeds the allowed throughput.', $metadata: { httpStatusCode: 400 } });
    const spy = intercept(store.documentClient, { before: (command) => (command instanceof TransactWriteItemsCommand ? Promise.reject(refusal) : undefined) });

    await expect(ensureTable(store)).rejects.toBe(refusal);
    spy.mockRestore();

    expect(await ensureTable(store)).toMatchObject({ counters: 3 });
    expect((await readMetrics(store)).status_counts).toEqual({ PENDING: 1, PROCESSING: 1, COMPLETED: 1, FAILED: 0 });
  });

  it('lists more unfinished orders than a marker holds on several markers, each order once', async () => {
    const store = await oldTable(uniqueTable('old-many'), 194);

    expect(await ensureTable(store)).toMatchObject({ orders: 196 });

    const listed: string[][] = [];
    await new OrderRepository(store).scanMarkers(Date.now(), (markers) => {
      listed.push(...markers.map((marker) => marker.ids));
      return true;
    });
    // As many ids a marker as the largest group commit of creates lists (CREATE_BATCH_MAX, 98).
    expect(listed.map((ids) => ids.length)).toEqual([98, 98]);
    expect(listed.flat().sort()).toEqual(['OLD-LEASED', 'OLD-PENDING', ...Array.from({ length: 194 }, (_, i) => `OLD-WAITING-${i}`)].sort());
  });
});

describe('upgrading a table whose orders hold their own states', () => {
  it('copies the states of the orders whose life had begun into the state table, once, and their transitions go on from there', async () => {
    const tableName = uniqueTable('one-table');
    const store = createStore(createDocumentClient({ tableName, region: 'us-east-1', endpoint: dynamodbEndpoint() }), tableName);
    await store.documentClient.send(new CreateTableCommand(tableDefinition(store)));
    const now = Date.now();
    const at = new Date(now - 60_000).toISOString();
    const order = (id: string, fields: Record<string, unknown>) => ({
      pk: `ORDER#${id}`, sk: 'ORDER', order_id: id, user_id: 'USER001', item_ids: [1], total_amount: 5, created_at: at, attempts: 0, ...fields,
    });
    for (const Item of [
      order('PREV-PENDING', { status: 'PENDING', marker: '0:1#solo' }),
      order('PREV-FAULTED', { status: 'PENDING', marker: '0:2#solo', faults: 1, fault: 'a fault' }),
      // Its worker crashed: the lease ran out a while ago.
      order('PREV-LEASED', { status: 'PROCESSING', attempts: 1, started_at: at, due_at: now - 30_000 }),
      order('PREV-DONE', { status: 'COMPLETED', attempts: 1, started_at: at, completed_at: at, processing_ms: 100 }),
    ]) {
      await store.documentClient.send(new PutCommand({ TableName: tableName, Item }));
    }

    expect(await ensureTable(store)).toEqual({ orders: 0, counters: 0, states: 3 });

    const orders = new OrderRepository(store);
    expect(await orders.getState('PREV-PENDING')).toMatchObject({ status: 'PENDING', attempts: 0, marker: '0:1#solo' });
    expect(await orders.getState('PREV-FAULTED')).toMatchObject({ status: 'PENDING', attempts: 0, marker: '0:2#solo', faults: 1 });
    expect(await orders.get('PREV-DONE')).toMatchObject({ status: 'COMPLETED', processing_ms: 100 });
    const leased = (await orders.getState('PREV-LEASED'))!;
    expect(leased).toMatchObject({ status: 'PROCESSING', attempts: 1 });
    const taken = await orders.claim(leased, now, 30_000, true);
    expect(taken).toMatchObject({ attempts: 2, lapsed: 1 });
    expect(await orders.complete(taken!, now + 10)).toBe(true);
    expect(await orders.get('PREV-LEASED')).toMatchObject({ status: 'COMPLETED', attempts: 2 });

    expect(await ensureTable(store)).toBeUndefined();
    expect(await orders.get('PREV-LEASED')).toMatchObject({ status: 'COMPLETED', attempts: 2 });
  });
});

/** A table of the one-table layout (orders holding their own states), with these order items in it. */
const oneTable = async (prefix: string, items: Record<string, unknown>[]): Promise<Store> => {
  const tableName = uniqueTable(prefix);
  const store = createStore(createDocumentClient({ tableName, region: 'us-east-1', endpoint: dynamodbEndpoint() }), tableName);
  await store.documentClient.send(new CreateTableCommand(tableDefinition(store)));
  const at = new Date(Date.now() - 60_000).toISOString();
  for (const fields of items) {
    const id = String(fields.order_id);
    const Item = { pk: `ORDER#${id}`, sk: 'ORDER', user_id: 'USER001', item_ids: [1], total_amount: 5, created_at: at, attempts: 0, ...fields };
    await store.documentClient.send(new PutCommand({ TableName: tableName, Item }));
  }
  return store;
};

describe('copying the states of a one-table layout', () => {
  it('keeps a state this version already wrote, and copies the others', async () => {
    const store = await oneTable('kept-state', [
      { order_id: 'PREV-1', status: 'PROCESSING', attempts: 1, due_at: 1 },
      { order_id: 'PREV-2', status: 'COMPLETED', attempts: 1 },
    ]);
    await store.documentClient.send(new CreateTableCommand(stateTableDefinition(store)));
    await store.documentClient.send(new PutCommand({ TableName: store.stateTableName, Item: { pk: 'ORDER#PREV-1', sk: 'ORDER', status: 'PROCESSING', attempts: 2, due_at: 2 } }));

    expect(await ensureTable(store)).toEqual({ orders: 0, counters: 0, states: 1 });

    const orders = new OrderRepository(store);
    expect(await orders.getState('PREV-1')).toMatchObject({ status: 'PROCESSING', attempts: 2, due_at: 2 });
    expect(await orders.getState('PREV-2')).toMatchObject({ status: 'COMPLETED', attempts: 1 });
  });

  it('copies the states of every page of the scan', async () => {
    // Twelve orders of 100 kB each: DynamoDB answers a scan 1 MB at a time.
    const store = await oneTable(
      'paged-states',
      Array.from({ length: 12 }, (_, i) => ({ order_id: `BIG-${i}`, status: 'FAILED', attempts: 1, error: 'x'.repeat(100_000) })),
    );
    const send = vi.spyOn(store.documentClient, 'send');

    expect(await ensureTable(store)).toEqual({ orders: 0, counters: 0, states: 12 });

    expect(send.mock.calls.filter(([command]) => command instanceof ScanCommand).length).toBeGreaterThan(1);
    const states = await new OrderRepository(store).getStates(Array.from({ length: 12 }, (_, i) => `BIG-${i}`));
    expect(states.map((state) => state.status)).toEqual(Array(12).fill('FAILED'));
  });

  it('fails a start whose copy of a state the store refuses, and copies it at the next start', async () => {
    const store = await oneTable('refused-copy', [{ order_id: 'PREV-4', status: 'COMPLETED', attempts: 1 }]);
    const refusal = new ThrottlingException({ message: 'Rate of requests exceeds the allowed throughput.', $metadata: { httpStatusCode: 400 } });
    const spy = intercept(store.documentClient, {
      before: (command) =>
        command instanceof PutCommand && command.input.TableName === store.stateTableName && command.input.Item?.pk === 'ORDER#PREV-4'
          ? Promise.reject(refusal)
          : undefined,
    });

    await expect(ensureTable(store)).rejects.toBe(refusal);
    spy.mockRestore();

    expect(await ensureTable(store)).toEqual({ orders: 0, counters: 0, states: 1 });
    expect(await new OrderRepository(store).getState('PREV-4')).toMatchObject({ status: 'COMPLETED', attempts: 1 });
  });

  it('scans the order table once: a later start finds the states moved and reads nothing more', async () => {
    const store = await oneTable('moved-once', [{ order_id: 'PREV-3', status: 'COMPLETED', attempts: 1 }]);
    expect(await ensureTable(store)).toEqual({ orders: 0, counters: 0, states: 1 });
    const send = vi.spyOn(store.documentClient, 'send');

    expect(await ensureTable(store)).toBeUndefined();

    expect(send.mock.calls.filter(([command]) => command instanceof ScanCommand)).toHaveLength(0);
  });
});

describe('the shards of a table', () => {
  it('refuses a process whose WRITE_SHARDS differs from the table\'s, naming the right number', async () => {
    const tableName = uniqueTable('shards');
    const documentClient = createDocumentClient({ tableName, region: 'us-east-1', endpoint: dynamodbEndpoint() });
    await ensureTable(createStore(documentClient, tableName, 4));

    await expect(ensureTable(createStore(documentClient, tableName, 1))).rejects.toThrow(new ShardsMismatch(`Table ${tableName} spreads its due markers and counter deltas over 4 shards: set WRITE_SHARDS=4 (it is 1 here).`));
    await expect(ensureTable(createStore(documentClient, tableName, 4))).resolves.toBeUndefined();
  });
});
