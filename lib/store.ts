import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceNotFoundException,
  type CreateTableCommandInput,
  type KeySchemaElement,
  type Projection,
  type ScalarAttributeType,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { Entity } from 'dynamodb-toolbox/entity';
import { any } from 'dynamodb-toolbox/schema/any';
import { item } from 'dynamodb-toolbox/schema/item';
import { list } from 'dynamodb-toolbox/schema/list';
import { map } from 'dynamodb-toolbox/schema/map';
import { number } from 'dynamodb-toolbox/schema/number';
import { string } from 'dynamodb-toolbox/schema/string';
import { Table } from 'dynamodb-toolbox/table';
import type { Key } from 'dynamodb-toolbox/table';
import { ORDER_STATUSES } from './order.ts';
import { isOldLayout, moveStates, upgradeOldLayout, type Upgrade } from './upgrade.ts';

/** Where the table lives. */
export interface StoreConfig {
  tableName: string;
  region: string;
  /** DynamoDB Local or another compatible endpoint; AWS's own when absent. */
  endpoint?: string;
}

export const USER_INDEX = 'byUser';

/**
 * The table of what changes in an order's life (its status, attempts, lease, outcome), beside the table of the
 * orders themselves: see `createStore`.
 */
export const stateTableNameOf = (tableName: string) => `${tableName}-states`;

/** The table key of an order. */
export const orderKey = (orderId: string) => ({ pk: `ORDER#${orderId}`, sk: 'ORDER' });

/** One DynamoDB client per process: keep-alive sockets, short timeouts so an absent store fails fast. */
export const createDocumentClient = (config: StoreConfig): DynamoDBDocumentClient => {
  const client = new DynamoDBClient({
    region: config.region,
    ...(config.endpoint
      ? {
          endpoint: config.endpoint,
          // DynamoDB Local accepts any credentials; fixed ones keep every local client on one database.
          credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        }
      : {}),
    // Three tries of at most 3 s each: a call ends within a consumer Lambda's timeout, and an HTTP request
    // gets its answer from REQUEST_DEADLINE_MS (8 s) at the latest.
    maxAttempts: 3,
    requestHandler: {
      connectionTimeout: 1_000,
      requestTimeout: 3_000,
      // Without it, @smithy/node-http-handler 4.x only logs a warning when requestTimeout passes, and a store
      // that accepts the connection and never answers holds the call for good.
      throwOnRequestTimeout: true,
      httpAgent: { keepAlive: true, maxSockets: 128 },
      httpsAgent: { keepAlive: true, maxSockets: 128 },
    },
  });
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
};

/** A failed attempt, recorded on the failure path only (the happy path writes nothing of it). */
const failureEntry = map({
  attempt: number(),
  started_at: string(),
  at: string(),
  error: string(),
});

/**
 * The order item. The hot-path writes (create, claim, complete) are built by hand in lib/orderWrites.ts for
 * speed; test/unit/orderWrites.test.ts proves each of them parses against this schema.
 */
export const orderSchema = item({
  order_id: string().key(),
  user_id: string(),
  item_ids: list(any().castAs<string | number>()),
  total_amount: number(),
  status: string().enum(...ORDER_STATUSES),
  attempts: number(),
  created_at: string(),
  started_at: string().optional(),
  completed_at: string().optional(),
  failed_at: string().optional(),
  processing_ms: number().optional(),
  error: string().optional(),
  last_error: string().optional(),
  // While PROCESSING: when the lease (or the retry back-off) ends, and another worker may take the order.
  due_at: number().optional(),
  // The sort key of the due marker that lists this order alone: its final transition deletes the marker.
  marker: string().optional(),
  failures: list(failureEntry).optional(),
});

/**
 * Partitions the due markers (lib/markers.ts) and the counter deltas (lib/counters.ts) are spread over, when
 * WRITE_SHARDS is not set: one, because DynamoDB Local has no partitions to spread over and a metrics read or
 * a sweep reads every shard. The cloud sets 128 (serverless.yml): see README, "The cloud at 10 000 orders/s".
 */
export const DEFAULT_WRITE_SHARDS = 1;

/**
 * Builds the tables and the order entity over one document client. `shards` must be the same for every process
 * that shares the table: readers and sweepers read exactly that many.
 *
 * Two tables. The order table holds what a create writes once (the order, indexed by user for listing) and the
 * bookkeeping of batches (due markers, counter deltas, quarantine listings). The state table (no index) holds
 * what the transitions write, an item per order under the same key, written from its first claim on: a
 * transition there costs DynamoDB Local about a third less than on an item with an index entry (it rewrites
 * the entry on every update, keys changed or not), and each order's life is three writes. An order reads as its
 * order item overlaid by its state item (`overlayState`).
 */
export const createStore = (documentClient: DynamoDBDocumentClient, tableName: string, shards = DEFAULT_WRITE_SHARDS) => {
  const OrderTable = new Table({
    name: tableName,
    documentClient,
    partitionKey: { name: 'pk', type: 'string' },
    sortKey: { name: 'sk', type: 'string' },
    indexes: {
      [USER_INDEX]: {
        type: 'global',
        partitionKey: { name: 'user_id', type: 'string' },
        sortKey: { name: 'created_at', type: 'string' },
      },
    },
  });

  const OrderEntity = new Entity({
    name: 'Order',
    table: OrderTable,
    schema: orderSchema,
    timestamps: false,
    // One entity per table: the `_et` attribute would be one more attribute on every item for nothing.
    entityAttribute: false,
    computeKey: ({ order_id }: { order_id: string }) => orderKey(order_id),
  });

  return { documentClient, tableName, stateTableName: stateTableNameOf(tableName), shards, OrderTable, OrderEntity };
};

export type Store = ReturnType<typeof createStore>;

/**
 * Creates the tables when they are missing, and waits until they are active. A table an earlier version made
 * is brought to this layout first (lib/upgrade.ts); what that did is returned, to be logged.
 */
export async function ensureTable(store: Store): Promise<Upgrade | undefined> {
  const client = store.documentClient;
  let upgrade: Upgrade = { orders: 0, counters: 0, states: 0 };
  const describe = async (TableName: string) => (await client.send(new DescribeTableCommand({ TableName }))).Table;
  try {
    if (isOldLayout(await describe(store.tableName))) upgrade = { ...upgrade, ...(await upgradeOldLayout(store)) };
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
    await createTable(store, tableDefinition(store));
  }
  await describe(store.stateTableName).catch(async (error: unknown) => {
    if (!(error instanceof ResourceNotFoundException)) throw error;
    await createTable(store, stateTableDefinition(store));
  });
  for (const deadline = Date.now() + 60_000; ; ) {
    const described = await Promise.all([describe(store.tableName), describe(store.stateTableName)]);
    // An index being deleted (an upgrade) fails writes in DynamoDB Local: wait for it too.
    const active = (table: TableDescription | undefined) =>
      table?.TableStatus === 'ACTIVE' && (table.GlobalSecondaryIndexes ?? []).every((index) => index.IndexStatus === 'ACTIVE');
    if (described.every(active)) break;
    if (Date.now() > deadline) throw new Error(`Tables ${store.tableName} and ${store.stateTableName} did not become active`);
    await sleep(200);
  }
  await checkShards(store);
  upgrade.states = await moveStates(store);
  return upgrade.orders + upgrade.counters + upgrade.states > 0 ? upgrade : undefined;
}

/** The table's shard count does not match this process's WRITE_SHARDS. */
export class ShardsMismatch extends Error {
  override name = 'ShardsMismatch';
}

/**
 * The table remembers how many shards its markers and deltas are spread over: a process with another
 * WRITE_SHARDS would neither sweep nor count what lies beyond its own, so it is refused.
 */
const checkShards = async (store: Store): Promise<void> => {
  const Key = { pk: 'META', sk: 'META' };
  try {
    await store.documentClient.send(
      new PutCommand({ TableName: store.tableName, Item: { ...Key, write_shards: store.shards }, ConditionExpression: 'attribute_not_exists(pk)' }),
    );
  } catch (error) {
    if (!(error instanceof Error && error.name === 'ConditionalCheckFailedException')) throw error;
    const { Item } = await store.documentClient.send(new GetCommand({ TableName: store.tableName, Key, ConsistentRead: true }));
    const shards = Number(Item?.write_shards);
    if (shards !== store.shards) {
      throw new ShardsMismatch(`Table ${store.tableName} spreads its due markers and counter deltas over ${shards} shards: set WRITE_SHARDS=${shards} (it is ${store.shards} here).`);
    }
  }
};

/**
 * Projection per index. The user index holds keys only: a transition never changes them, so it never
 * rewrites an index entry (with ALL, every status change did); GET /orders reads the orders by key.
 */
const PROJECTIONS: Record<string, Projection> = {
  [USER_INDEX]: { ProjectionType: 'KEYS_ONLY' },
};

/** The CreateTable input, derived from the toolbox Table so keys and indexes are defined once. */
export const tableDefinition = ({ OrderTable, tableName }: Store): CreateTableCommandInput => {
  const keyType = (type: string): ScalarAttributeType => (type === 'number' ? 'N' : type === 'binary' ? 'B' : 'S');
  const attributes = new Map<string, ScalarAttributeType>();
  const keySchema = (partition: Key, sort?: Key): KeySchemaElement[] => {
    attributes.set(partition.name, keyType(partition.type));
    if (sort) attributes.set(sort.name, keyType(sort.type));
    return [
      { AttributeName: partition.name, KeyType: 'HASH' },
      ...(sort ? [{ AttributeName: sort.name, KeyType: 'RANGE' as const }] : []),
    ];
  };
  const KeySchema = keySchema(OrderTable.partitionKey, OrderTable.sortKey);
  const GlobalSecondaryIndexes = Object.entries(OrderTable.indexes).map(([IndexName, index]) => ({
    IndexName,
    KeySchema: keySchema(index.partitionKey, index.sortKey),
    Projection: PROJECTIONS[IndexName],
  }));
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [...attributes].map(([AttributeName, AttributeType]) => ({ AttributeName, AttributeType })),
    KeySchema,
    GlobalSecondaryIndexes,
  };
};

/** The state table: the orders' keys, no index (see `createStore`). */
export const stateTableDefinition = ({ stateTableName }: Store): CreateTableCommandInput => ({
  TableName: stateTableName,
  BillingMode: 'PAY_PER_REQUEST',
  AttributeDefinitions: [
    { AttributeName: 'pk', AttributeType: 'S' },
    { AttributeName: 'sk', AttributeType: 'S' },
  ],
  KeySchema: [
    { AttributeName: 'pk', KeyType: 'HASH' },
    { AttributeName: 'sk', KeyType: 'RANGE' },
  ],
});

const createTable = async (store: Store, definition: CreateTableCommandInput): Promise<void> => {
  try {
    await store.documentClient.send(new CreateTableCommand(definition));
  } catch (error) {
    // Another process created it first: fine.
    if (!(error instanceof Error && error.name === 'ResourceInUseException')) throw error;
  }
};
