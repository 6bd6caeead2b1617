import { CreateTableCommand, DescribeTableCommand, type TableDescription } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createDocumentClient, createStore, ensureTable, type Store } from '../../lib/store.ts';
import { startSilentEndpoint } from '../awsLoopback.ts';
import { dynamodbEndpoint, intercept, pollUntil, uniqueTable } from '../support.ts';

// Making the tables at start-up against DynamoDB Local (lib/store.ts): their layout, a start that races another
// process's, a table not active yet, and a store that fails otherwise than by having no table.

afterEach(() => {
  vi.restoreAllMocks();
});

const newStore = (tableName = uniqueTable('store')): Store =>
  createStore(createDocumentClient({ tableName, region: 'us-east-1', endpoint: dynamodbEndpoint() }), tableName);

const isDescribe = (command: unknown, tableName: string) => command instanceof DescribeTableCommand && command.input.TableName === tableName;
const describeTable = async (store: Store, TableName: string) => (await store.documentClient.send(new DescribeTableCommand({ TableName }))).Table!;
const keysOf = (table: { KeySchema?: { AttributeName?: string; KeyType?: string }[] }) => table.KeySchema?.map(({ AttributeName, KeyType }) => [AttributeName, KeyType]);

describe('ensureTable', () => {
  it('makes the order table, with its user index of keys only, and the state table, with the same keys and no index', async () => {
    const store = newStore();

    expect(await ensureTable(store)).toBeUndefined();

    const orders = await describeTable(store, store.tableName);
    expect(keysOf(orders)).toEqual([['pk', 'HASH'], ['sk', 'RANGE']]);
    expect(orders.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
    expect(orders.AttributeDefinitions).toEqual(
      expect.arrayContaining(['pk', 'sk', 'user_id', 'created_at'].map((AttributeName) => ({ AttributeName, AttributeType: 'S' }))),
    );
    expect(orders.AttributeDefinitions).toHaveLength(4);
    expect(orders.GlobalSecondaryIndexes?.map((index) => [index.IndexName, keysOf(index), index.Projection?.ProjectionType])).toEqual([
      ['byUser', [['user_id', 'HASH'], ['created_at', 'RANGE']], 'KEYS_ONLY'],
    ]);
    const states = await describeTable(store, store.stateTableName);
    expect(states.TableName).toBe(`${store.tableName}-states`);
    expect(keysOf(states)).toEqual([['pk', 'HASH'], ['sk', 'RANGE']]);
    expect(states.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
    expect(states.GlobalSecondaryIndexes).toBeUndefined();
  });

  it('starts beside another process that creates each table first', async () => {
    const store = newStore();
    const other = newStore(store.tableName);
    // Each table is created by the other process between this one's look and its create.
    const spy = intercept(store.documentClient, {
      before: (command, send) =>
        command instanceof CreateTableCommand ? other.documentClient.send(new CreateTableCommand(command.input)).then(() => send(command)) : undefined,
    });

    expect(await ensureTable(store)).toBeUndefined();

    expect(spy.mock.calls.filter(([command]) => command instanceof CreateTableCommand)).toHaveLength(2);
    expect(await ensureTable(other)).toBeUndefined();
  });

  it('passes on a create the store refuses for another reason than the table being there', async () => {
    const store = newStore();
    const refusal = Object.assign(new Error('Subscriber limit exceeded: too many tables being created'), { name: 'LimitExceededException' });
    intercept(store.documentClient, { before: (command) => (command instanceof CreateTableCommand ? Promise.reject(refusal) : undefined) });

    await expect(ensureTable(store)).rejects.toBe(refusal);
  });

  it.each([
    ['the order table', (store: Store) => store.tableName],
    ['the state table', (store: Store) => store.stateTableName],
  ])('passes on a failure to describe %s that is not its absence, and creates nothing', async (_, table) => {
    const store = newStore();
    const denied = Object.assign(new Error('not authorized to describe'), { name: 'AccessDeniedException' });
    const spy = intercept(store.documentClient, { before: (command) => (isDescribe(command, table(store)) ? Promise.reject(denied) : undefined) });

    await expect(ensureTable(store)).rejects.toBe(denied);

    const created = spy.mock.calls.flatMap(([command]) => (command instanceof CreateTableCommand ? [command.input.TableName] : []));
    expect(created).not.toContain(table(store));
  });

  it.each([
    ['the order table', (store: Store, table: TableDescription) => (table.TableName === store.tableName ? { ...table, TableStatus: 'CREATING' as const } : table)],
    ['the state table', (store: Store, table: TableDescription) => (table.TableName === store.stateTableName ? { ...table, TableStatus: 'CREATING' as const } : table)],
    [
      'the user index',
      (_: Store, table: TableDescription) => ({ ...table, ...(table.GlobalSecondaryIndexes && { GlobalSecondaryIndexes: table.GlobalSecondaryIndexes.map((index) => ({ ...index, IndexStatus: 'CREATING' as const })) }) }),
    ],
  ])('waits while %s is not active yet', async (_, creating) => {
    const store = newStore();
    let active = false;
    const spy = intercept(store.documentClient, {
      after: (command, output) => (command instanceof DescribeTableCommand && !active ? { ...(output as object), Table: creating(store, (output as { Table: TableDescription }).Table) } : output),
    });
    const describes = () => spy.mock.calls.filter(([command]) => command instanceof DescribeTableCommand).length;
    let ready = false;
    const started = ensureTable(store).then(() => (ready = true));

    // Its first look at each table, then two rounds of waiting.
    await pollUntil(() => (describes() >= 6 ? true : undefined), { what: 'two rounds of waiting' });
    expect(ready).toBe(false);
    active = true;
    await started;
  });

  it('gives up after a minute on a table that never becomes active, naming both tables', async () => {
    const store = newStore();
    const now = Date.now.bind(Date);
    let ahead = 0;
    vi.spyOn(Date, 'now').mockImplementation(() => now() + ahead);
    let describes = 0;
    intercept(store.documentClient, {
      after: (command, output) => {
        if (!(command instanceof DescribeTableCommand)) return output;
        // After its first look at each table and a round of waiting, the clock is a minute on.
        if (++describes === 4) ahead = 61_000;
        const { Table } = output as { Table: TableDescription };
        return { ...(output as object), Table: Table.TableName === store.stateTableName ? { ...Table, TableStatus: 'CREATING' } : Table };
      },
    });

    await expect(ensureTable(store)).rejects.toThrow(`Tables ${store.tableName} and ${store.stateTableName} did not become active`);
  });

  it('fails a start whose record of the shards the store refuses, with that refusal', async () => {
    const store = newStore();
    const refusal = Object.assign(new Error('Rate of requests exceeds the allowed throughput.'), { name: 'ThrottlingException' });
    intercept(store.documentClient, { before: (command) => (command instanceof PutCommand && command.input.Item?.pk === 'META' ? Promise.reject(refusal) : undefined) });

    await expect(ensureTable(store)).rejects.toBe(refusal);
  });
});

describe('the DynamoDB client', () => {
  it('ends a call that a store accepts and never answers, within its attempts', async () => {
    const silent = await startSilentEndpoint();
    const client = createDocumentClient({ tableName: 't', region: 'us-east-1', endpoint: silent.endpoint });

    try {
      // Three attempts of 3 s each, with back-offs between them.
      const started = performance.now();
      await expect(client.send(new GetCommand({ TableName: 't', Key: { pk: 'a', sk: 'b' } }))).rejects.toMatchObject({ name: 'TimeoutError' });
      expect(performance.now() - started).toBeLessThan(15_000);
    } finally {
      await silent.close();
    }
  });
});
