import { setTimeout as sleep } from 'node:timers/promises';
import { BatchWriteItemCommand, TransactWriteItemsCommand, type BatchWriteItemCommandOutput, UpdateTableCommand, type TableDescription, type WriteRequest } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { isCancelledOnlyBy, putDelta } from './counters.ts';
import { newMarkerRef, putMarker } from './markers.ts';
import { STATE_ITEM_ATTRIBUTES } from './orderWrites.ts';
import type { Store } from './store.ts';

/** What the earlier layout had: an index of unfinished orders over 4 partitions, 16 counter items. */
const OLD_DUE_INDEX = 'byDue';
const OLD_WORK_SHARDS = 4;
const OLD_COUNTER_ITEMS = 16;

export interface Upgrade {
  /** Unfinished orders now listed on due markers. */
  orders: number;
  /** Old counter items moved into deltas of this layout's shards. */
  counters: number;
  /** Orders whose life had begun, their state copied into the state table. */
  states: number;
}

/** True for a table an earlier version made: it still has the index of unfinished orders. */
export const isOldLayout = (table: TableDescription | undefined): boolean =>
  (table?.GlobalSecondaryIndexes ?? []).some((index) => index.IndexName === OLD_DUE_INDEX);

/**
 * Brings a table made by an earlier version to this layout, so that an upgrade loses nothing: its unfinished
 * orders (the entries of the `byDue` index) go on due markers, where the sweeper finds them; its counter items
 * beyond this layout's shards become deltas, which the folder folds (each moved in a transaction of its own,
 * so a second process upgrading at once cannot count one twice); then the index is deleted, last, so that an
 * upgrade cut short runs again at the next start (listing an order on two markers costs a read, nothing more).
 * Every process of the earlier version must be stopped first: one still writing would add orders to the index
 * after it was read, and counts to items being moved.
 */
export async function upgradeOldLayout(store: Store): Promise<Omit<Upgrade, 'states'>> {
  const { documentClient, tableName } = store;
  const ids: string[] = [];
  for (let shard = 0; shard < OLD_WORK_SHARDS; shard++) {
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await documentClient.send(
        new QueryCommand({
          TableName: tableName,
          IndexName: OLD_DUE_INDEX,
          KeyConditionExpression: 'due_shard = :shard',
          ExpressionAttributeValues: { ':shard': `WORK#${shard}` },
          ExclusiveStartKey,
        }),
      );
      for (const item of page.Items ?? []) ids.push(String(item.order_id));
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
  }
  const now = Date.now();
  for (let i = 0; i < ids.length; i += 98 * 25) {
    let requests: WriteRequest[] | undefined = [];
    for (let j = i; j < Math.min(ids.length, i + 98 * 25); j += 98) {
      requests.push({ PutRequest: { Item: putMarker(tableName, newMarkerRef(now, store.shards), ids.slice(j, j + 98)).Put!.Item! } });
    }
    for (let attempt = 0; requests && requests.length > 0; attempt++) {
      if (attempt > 0) await sleep(50 * attempt);
      const answer: BatchWriteItemCommandOutput = await documentClient.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: requests } }));
      requests = answer.UnprocessedItems?.[tableName];
    }
  }
  let counters = 0;
  for (let item = store.shards; item < OLD_COUNTER_ITEMS; item++) {
    const key = { pk: `METRICS#${item}`, sk: 'METRICS' };
    const { Item } = await documentClient.send(new GetCommand({ TableName: tableName, Key: key, ConsistentRead: true }));
    if (!Item) continue;
    const moves = Object.fromEntries(Object.entries(Item).filter(([, value]) => typeof value === 'number'));
    try {
      await documentClient.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            { Delete: { TableName: tableName, Key: { pk: { S: key.pk }, sk: { S: key.sk } }, ConditionExpression: 'attribute_exists(pk)' } },
            ...putDelta(tableName, item % store.shards, moves),
          ],
        }),
      );
      counters++;
    } catch (error) {
      // Another process upgrading at the same moment moved it first.
      if (!isCancelledOnlyBy(error, ['ConditionalCheckFailed', 'None'])) throw error;
    }
  }
  await documentClient.send(new UpdateTableCommand({ TableName: tableName, GlobalSecondaryIndexUpdates: [{ Delete: { IndexName: OLD_DUE_INDEX } }] }));
  return { orders: ids.length, counters };
}

/** The state table's record that the order table's states were copied into it. */
const MOVED_KEY = { pk: 'META', sk: 'STATES' };

/**
 * Brings the states of a table an earlier version wrote in its order items (status, attempts, lease, outcome)
 * into the state table, once: the orders whose life had begun (anything but a fresh PENDING order, which the
 * state table rightly knows nothing of). Each copy is conditioned on the order having no state yet, so one
 * this version already wrote is never replaced, and a second process copying at once changes nothing. A
 * table made by this version is scanned once, empty. Returns how many states were copied.
 */
export async function moveStates(store: Store): Promise<number> {
  const { documentClient, tableName, stateTableName } = store;
  const { Item: moved } = await documentClient.send(new GetCommand({ TableName: stateTableName, Key: MOVED_KEY, ConsistentRead: true }));
  if (moved) return 0;
  let copied = 0;
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await documentClient.send(
      new ScanCommand({
        TableName: tableName,
        FilterExpression: 'sk = :order AND (#status <> :pending OR attribute_exists(faults) OR attribute_exists(quarantined))',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':order': 'ORDER', ':pending': 'PENDING' },
        ConsistentRead: true,
        ExclusiveStartKey,
      }),
    );
    for (const item of page.Items ?? []) {
      const state = Object.fromEntries(STATE_ITEM_ATTRIBUTES.filter((name) => item[name] !== undefined).map((name) => [name, item[name]]));
      try {
        await documentClient.send(
          new PutCommand({ TableName: stateTableName, Item: { pk: item.pk, sk: item.sk, ...state }, ConditionExpression: 'attribute_not_exists(pk)' }),
        );
        copied++;
      } catch (error) {
        if (!(error instanceof Error && error.name === 'ConditionalCheckFailedException')) throw error;
      }
    }
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  await documentClient.send(new PutCommand({ TableName: stateTableName, Item: { ...MOVED_KEY, at: new Date().toISOString() } }));
  return copied;
}
