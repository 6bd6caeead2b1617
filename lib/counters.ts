import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AttributeValue, TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { GetCommand, QueryCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { Logger } from '@aws-lambda-powertools/logger';
import { StoreUnavailable } from './errors.ts';
import type { OrderStatus } from './order.ts';
import type { StoreGate } from './storeGate.ts';
import type { Store } from './store.ts';

/**
 * Exact metrics without a hot counter item.
 *
 * Every transaction that moves orders between statuses also puts one *delta* item with its counter moves
 * (`pk=DELTA#<shard>`, `sk=d#<time>#<random>`). A delta is a new item, so no two transactions ever write the
 * same item: in DynamoDB, transactions from many Lambda containers on a shared counter item cancel each other.
 *
 * A folder (the local workers every second, the scheduled sweeper in the cloud) moves deltas into the shard's
 * total (`pk=METRICS#<shard>`) in one transaction: it deletes up to 96 deltas, adds their sums to the total
 * and counts the fold in it (`_folds`, the condition that makes two folders take turns), and keeps a record
 * of what it folded (`sk=f#<fold number>`), deleting the record of the fold ten before. So each delta is
 * counted once in the total, and a reader can add the total, the deltas left and, from the records of folds
 * that ran while it read, the deltas it missed: an exact count in one pass, however often the folder runs.
 */

/** A counter per status, quarantined orders, sums for the averages, and one counter per histogram bucket (`h_<bound>`). */
export type CounterName = OrderStatus | 'quarantined' | 'sum_processing_ms' | 'sum_turnaround_ms' | `h_${number}`;
export type CounterMove = Partial<Record<CounterName, number>>;

/** Deltas one fold takes: with the total, its record and the old record it deletes, a transaction's 100 items. */
const FOLD_BATCH = 96;
/** Fold records kept: a read of a shard must end before twenty more folds of it, or it is read again. */
const RECORDS_KEPT = 20;
/** Reads of a shard that outlived the records they needed, before a reader gives up. */
const READ_ATTEMPTS = 5;
const FOLDS = '_folds';

type Counters = Record<string, unknown>;
interface Delta {
  sk: string;
  moves: Record<string, number>;
}

const totalKey = (shard: number) => ({ pk: `METRICS#${shard}`, sk: 'METRICS' });
const deltaPartition = (shard: number) => `DELTA#${shard}`;
const recordKey = (fold: number) => `f#${String(fold).padStart(12, '0')}`;

/** True when `error` is a cancelled transaction whose every reason is one of `codes`. */
export const isCancelledOnlyBy = (error: unknown, codes: string[]): boolean =>
  error instanceof Error &&
  error.name === 'TransactionCanceledException' &&
  ((error as Error & { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? []).every((reason) => codes.includes(reason.Code ?? 'None'));

/** The moves of several transitions committed together, as one. */
export const mergeMoves = (moves: CounterMove[]): CounterMove => {
  const merged: CounterMove = {};
  for (const move of moves) for (const [name, by] of Object.entries(move) as [CounterName, number][]) merged[name] = (merged[name] ?? 0) + by;
  return merged;
};

/** The counter half of a transaction: a new delta item on `shard`, or nothing when nothing moves. */
export const putDelta = (tableName: string, shard: number, move: CounterMove): TransactWriteItem[] => {
  const moved = Object.entries(move).filter(([, by]) => by !== 0);
  if (moved.length === 0) return [];
  const Item: Record<string, AttributeValue> = {
    pk: { S: deltaPartition(shard) },
    sk: { S: `d#${Date.now().toString(36)}#${randomBytes(6).toString('base64url')}` },
  };
  for (const [name, by] of moved) Item[name] = { N: String(by) };
  return [{ Put: { TableName: tableName, Item } }];
};

/** The counters an item holds (its number attributes, bookkeeping aside). */
const movesOf = (item: Counters): Record<string, number> => {
  const moves: Record<string, number> = {};
  for (const [name, value] of Object.entries(item)) if (typeof value === 'number' && name !== FOLDS) moves[name] = value;
  return moves;
};

const add = (totals: Map<string, number>, moves: Record<string, number>): void => {
  for (const [name, by] of Object.entries(moves)) totals.set(name, (totals.get(name) ?? 0) + by);
};

const readTotal = async (store: Store, shard: number): Promise<{ moves: Record<string, number>; folds: number }> => {
  const { Item } = await store.documentClient.send(new GetCommand({ TableName: store.tableName, Key: totalKey(shard), ConsistentRead: true }));
  return { moves: Item ? movesOf(Item) : {}, folds: Number(Item?.[FOLDS] ?? 0) };
};

/** Items of a shard's partition, in sort key order, from `after` or with `prefix`. */
const queryShard = async (store: Store, shard: number, range: { prefix: string } | { after: string }, limit?: number): Promise<Counters[]> => {
  const items: Counters[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await store.documentClient.send(
      new QueryCommand({
        TableName: store.tableName,
        KeyConditionExpression: 'prefix' in range ? 'pk = :pk AND begins_with(sk, :sk)' : 'pk = :pk AND sk > :sk',
        ExpressionAttributeValues: { ':pk': deltaPartition(shard), ':sk': 'prefix' in range ? range.prefix : range.after },
        ConsistentRead: true,
        ExclusiveStartKey,
        ...(limit && { Limit: limit }),
      }),
    );
    items.push(...(page.Items ?? []));
    ExclusiveStartKey = limit ? undefined : page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return items;
};

/**
 * Moves up to 96 deltas of `shard` into its total in one transaction. Returns how many it folded: 0 when
 * there were none, or when another folder folded this shard first (the next fold picks up the rest).
 */
export async function foldShard(store: Store, shard: number, gate?: StoreGate): Promise<number> {
  const { folds } = await readTotal(store, shard);
  const deltas = await queryShard(store, shard, { prefix: 'd#' }, FOLD_BATCH);
  if (deltas.length === 0) return 0;
  const sums = new Map<string, number>();
  for (const delta of deltas) add(sums, movesOf(delta));
  const names = [FOLDS, ...[...sums.keys()]];
  const values = [1, ...sums.values()];
  const record: Delta[] = deltas.map((delta) => ({ sk: String(delta.sk), moves: movesOf(delta) }));
  const release = await gate?.acquire('background');
  try {
    await store.documentClient.send(
      new TransactWriteCommand({
        TransactItems: [
          ...deltas.map((delta) => ({
            Delete: { TableName: store.tableName, Key: { pk: delta.pk, sk: delta.sk }, ConditionExpression: 'attribute_exists(pk)' },
          })),
          {
            Update: {
              TableName: store.tableName,
              Key: totalKey(shard),
              UpdateExpression: `ADD ${names.map((_, i) => `#c${i} :c${i}`).join(', ')}`,
              ConditionExpression: folds === 0 ? 'attribute_not_exists(#c0)' : '#c0 = :folds',
              ExpressionAttributeNames: Object.fromEntries(names.map((name, i) => [`#c${i}`, name])),
              ExpressionAttributeValues: { ...Object.fromEntries(values.map((by, i) => [`:c${i}`, by])), ...(folds > 0 && { ':folds': folds }) },
            },
          },
          { Put: { TableName: store.tableName, Item: { pk: deltaPartition(shard), sk: recordKey(folds + 1), deltas: record } } },
          ...(folds + 1 > RECORDS_KEPT ? [{ Delete: { TableName: store.tableName, Key: { pk: deltaPartition(shard), sk: recordKey(folds + 1 - RECORDS_KEPT) } } }] : []),
        ],
      }),
    );
  } catch (error) {
    // Another folder took these deltas or this shard's turn first; any other cancellation is a fault.
    if (isCancelledOnlyBy(error, ['ConditionalCheckFailed', 'TransactionConflict', 'None'])) return 0;
    throw error;
  } finally {
    release?.();
  }
  return deltas.length;
}

/**
 * Folds the deltas of every shard; returns how many. A shard is folded again only while its folds come back
 * full (a backlog).
 */
export async function foldAll(store: Store, gate?: StoreGate): Promise<number> {
  const folded = await Promise.all(
    Array.from({ length: store.shards }, async (_, shard) => {
      let count = 0;
      for (let step = FOLD_BATCH; step === FOLD_BATCH; count += step) step = await foldShard(store, shard, gate);
      return count;
    }),
  );
  return folded.reduce((a, b) => a + b, 0);
}

/**
 * One shard's counters, exact: its total, the deltas left, and the deltas folded since the total was read
 * but not seen among those left. Undefined when a record it needed was already deleted (read it again).
 */
const readShard = async (store: Store, shard: number): Promise<Map<string, number> | undefined> => {
  const total = await readTotal(store, shard);
  const left = await queryShard(store, shard, { prefix: 'd#' });
  const records = await queryShard(store, shard, { after: recordKey(total.folds) });
  if (records.some((record, i) => record.sk !== recordKey(total.folds + 1 + i))) return undefined;
  const counters = new Map<string, number>();
  add(counters, total.moves);
  const seen = new Set<string>();
  for (const delta of left) {
    seen.add(String(delta.sk));
    add(counters, movesOf(delta));
  }
  for (const record of records) for (const delta of record.deltas as Delta[]) if (!seen.has(delta.sk)) add(counters, delta.moves);
  return counters;
};

/**
 * Every counter, exact, summed over the shards. Its cost depends on the number of shards and of deltas not
 * folded yet (about a second of writes), never on the number of orders.
 */
export async function readCounters(store: Store): Promise<Map<string, number>> {
  const shards = await Promise.all(
    Array.from({ length: store.shards }, async (_, shard) => {
      for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
        if (attempt > 0) await sleep(50 * attempt);
        const counters = await readShard(store, shard);
        if (counters) return counters;
      }
      throw new StoreUnavailable(undefined, `The counters changed too fast to be read (shard ${shard}); retry shortly`);
    }),
  );
  const totals = new Map<string, number>();
  for (const counters of shards) for (const [name, value] of counters) totals.set(name, (totals.get(name) ?? 0) + value);
  return totals;
}

/** The local runtimes' folder: every shard, every `intervalMs`, one fold at a time. */
export class CounterFolder {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    private readonly intervalMs: number,
    private readonly logger: Logger,
    private readonly gate?: StoreGate,
  ) {}

  /** Folds what an earlier run left, then keeps folding. */
  async start(): Promise<void> {
    await this.fold();
    this.timer = setInterval(() => void this.fold(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One fold at a time: a tick that finds one running is skipped. */
  private fold(): Promise<void> {
    this.running ??= foldAll(this.store, this.gate)
      .then(() => undefined)
      .catch((error: unknown) => this.logger.warn('folding the counters failed; will try again', { error: error as Error }))
      .finally(() => (this.running = undefined));
    return this.running;
  }
}
