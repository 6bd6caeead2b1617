import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type AttributeValue,
  type BatchGetItemCommandOutput,
  type KeysAndAttributes,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import { QueryCommand as DocumentQueryCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { isThrottlingError, isTransientError } from '@smithy/core/retry';
import { EntityFormatter } from 'dynamodb-toolbox/entity/actions/format';
import { isCancelledOnlyBy, mergeMoves, putDelta, type CounterMove } from './counters.ts';
import { OrderConflict, StoreUnavailable } from './errors.ts';
import { GroupCommit, type Settled } from './groupCommit.ts';
import { bucketAttribute } from './histogram.ts';
import { markerKey, markerRange, newMarkerRef, putMarker, toMarker, type Marker } from './markers.ts';
import { sameContent, type NewOrder, type Order } from './order.ts';
import {
  claimOrder,
  completeOrder,
  exhaustOrder,
  failOrder,
  faultOrder,
  ORDER_STATE_ATTRIBUTES,
  orderKeyValue,
  overlayState,
  putNewOrder,
  quarantineFaulted,
  quarantineLapsed,
  quarantinePartition,
  releaseOrder,
  requeueOrder,
  retryOrderLater,
  type FailureEntry,
  type OrderState,
} from './orderWrites.ts';
import type { StoreGate } from './storeGate.ts';
import { orderKey, USER_INDEX, type Store } from './store.ts';

export type { FailureEntry, OrderState } from './orderWrites.ts';

/** An order as stored: the public fields plus the bookkeeping of its processing. */
export interface StoredOrder extends Order {
  last_error?: string;
  due_at?: number;
  marker?: string;
  failures?: FailureEntry[];
  failed_attempts?: number;
  lapsed?: number;
  faults?: number;
  /** The error of the last fault (see `noteFault`). */
  fault?: string;
  quarantined?: string;
}

/**
 * What counting a fault came to: the order stays due (`counted`), this call set it aside (`quarantined`), it
 * was set aside already (`aside`), or it is finished or gone (`settled`).
 */
export type FaultOutcome = { kind: 'counted' | 'quarantined'; faults: number } | { kind: 'aside' } | { kind: 'settled' };

/** A quarantined order, as listed for operators. */
export interface QuarantineEntry {
  order_id: string;
  at: string;
  error: string;
}

/** A new order with the moment it was received. */
export interface OrderToCreate extends NewOrder {
  created_at: string;
}

export interface CreateResult {
  /** False when the same order was already stored (an idempotent replay). */
  created: boolean;
  order: StoredOrder;
}

/** One status change of one order: its writes (the order, and maybe its marker) and the counters it moves. */
interface Transition {
  orderId: string;
  writes: TransactWriteItem[];
  move: CounterMove;
  /** To COMPLETED or FAILED: the order leaves its due marker. */
  final: boolean;
}

/** The orders of a shared due marker this process created that have not finished yet. */
interface MarkerTally {
  ref: string;
  left: Set<string>;
}

type CancellationReason = { Code?: string; Item?: Record<string, AttributeValue> };

const TRANSACTION_RETRIES = 8;
/** Cancellation reasons a transaction's items may give: their condition failed, or try again. */
const SETTLED_OR_RETRIED = ['None', 'ConditionalCheckFailed', 'TransactionConflict', 'ThrottlingError', 'ProvisionedThroughputExceeded'];
/** Transition commits under way at once; more transitions wait and join the next one. */
const TRANSITIONS_IN_FLIGHT = 4;
/** A transaction holds 100 items; one is the counter delta. */
const TRANSACTION_ITEMS = 99;
/** Transitions per commit: the few items left are for the due markers they empty. */
const TRANSITION_ITEMS = TRANSACTION_ITEMS - 3;
/** Orders whose shared marker is tallied at most (the oldest are forgotten first; the sweeper prunes theirs). */
const MAX_TALLIED = 20_000;

const iso = (ms: number) => new Date(ms).toISOString();
/** A read of only these attributes (names escaped: some, like `status`, are reserved words). */
const projection = (attributes: readonly string[]) => ({
  ProjectionExpression: attributes.map((_, k) => `#a${k}`).join(', '),
  ExpressionAttributeNames: Object.fromEntries(attributes.map((name, k) => [`#a${k}`, name])),
});

type SdkError = Parameters<typeof isTransientError>[0];

/**
 * The one classification of what a store call threw: the store is away, overloaded, throttling or busy with
 * the same transaction (the SDK's own tests of transient and throttling errors: network codes, timeouts, 5xx,
 * throttling names, TransactionInProgressException) means StoreUnavailable, a 503 the client may retry.
 * Anything else (a bug, an item that cannot be parsed, a request DynamoDB rejects) is a fault: passed on
 * as it is, to end as a 500 with its stack logged, never disguised as an outage. Failed conditions never
 * get here: the writes settle them as domain outcomes.
 */
export const isStoreUnavailable = (error: unknown): boolean =>
  error instanceof Error &&
  (error.name === 'StoreUnavailable' ||
    isThrottlingError(error as SdkError) ||
    isTransientError(error as SdkError) ||
    isCancelledOnlyBy(error, ['None', 'TransactionConflict', 'ThrottlingError', 'ProvisionedThroughputExceeded']));

/** Turns storage failures into domain errors: a store that is away becomes StoreUnavailable; faults stay as they are. */
export const translateStoreError = (error: unknown): unknown =>
  error instanceof StoreUnavailable || !isStoreUnavailable(error) ? error : new StoreUnavailable({ cause: error });

/** The counters a completion moves: out of PROCESSING, into COMPLETED, the sums and the histogram. */
const completionMove = (processingMs: number, turnaroundMs: number): CounterMove => ({
  PROCESSING: -1,
  COMPLETED: 1,
  sum_processing_ms: processingMs,
  sum_turnaround_ms: turnaroundMs,
  [bucketAttribute(processingMs)]: 1,
});

export interface RepositoryOptions {
  /** Shared with the creates' group commit: transitions are background work. */
  gate?: StoreGate;
  random?: () => number;
}

/**
 * The order repository: every write that changes an order's status also puts the counter delta it moves,
 * in the same DynamoDB transaction, conditioned on the status and attempt the writer saw.
 */
export class OrderRepository {
  private readonly random: () => number;

  /**
   * Status changes of concurrent workers, committed together: a transaction costs the store about as much
   * for one order as for a few dozen (DynamoDB Local runs them one at a time). An order whose condition
   * failed is answered false alone; the others are committed again.
   */
  private readonly transitions: GroupCommit<Transition, boolean>;

  /**
   * The shared due markers of orders created here, by order id. The transition commit that finishes a marker's
   * last orders deletes it too, so the sweeper has nothing left to prune: on DynamoDB Local a sweeper's batch
   * write waits behind the transactions item by item, and on DynamoDB it costs a write per marker anyway.
   */
  private readonly tallies = new Map<string, MarkerTally>();

  constructor(
    private readonly store: Store,
    options: RepositoryOptions = {},
  ) {
    this.random = options.random ?? Math.random;
    this.transitions = new GroupCommit<Transition, boolean>({
      maxBatch: TRANSITION_ITEMS,
      weight: (transition) => transition.writes.length,
      maxInFlight: TRANSITIONS_IN_FLIGHT,
      key: (transition) => transition.orderId,
      ...(options.gate && { gate: { store: options.gate, urgency: 'background' as const } }),
      commit: (batch) => this.commitTransitions(batch),
    });
  }

  /**
   * Commits transitions in one transaction. When the store refuses it for a reason other than being away (one
   * order's write is malformed), the batch is halved until that transition fails alone: a poison order never
   * fails the others committed with it.
   */
  private async commitTransitions(batch: Transition[]): Promise<Settled<boolean>[]> {
    try {
      return await this.commitSettling(batch, {
        write: (pending) => {
          const writes = pending.flatMap((transition) => transition.writes);
          return {
            items: [...writes, ...this.delta(mergeMoves(pending.map((t) => t.move))), ...this.emptiedMarkers(pending, TRANSACTION_ITEMS - writes.length)],
            owners: pending.flatMap((transition, k) => transition.writes.map(() => k)),
          };
        },
        done: (transition) => {
          if (transition.final) this.untally(transition.orderId);
          return true;
        },
        conditionFailed: () => ({ ok: true, value: false }),
      });
    } catch (error) {
      if ((error as Error | undefined)?.name === 'StoreUnavailable') throw error;
      if (batch.length === 1) return [{ ok: false, error }];
      const half = Math.ceil(batch.length / 2);
      return [...(await this.commitTransitions(batch.slice(0, half))), ...(await this.commitTransitions(batch.slice(half)))];
    }
  }

  /**
   * Stores new orders in one transaction (a group commit): each put is conditioned on the id being free,
   * plus the batch's due marker and its counter delta. An order whose id is taken is settled alone, as a
   * replay when its content matches and as a conflict otherwise; the rest are committed again.
   */
  async createMany(orders: OrderToCreate[]): Promise<Settled<CreateResult>[]> {
    const { tableName } = this.store;
    const outcomes = await this.commitSettling<OrderToCreate, CreateResult, MarkerTally>(orders, {
      write: (pending) => {
        const marker = newMarkerRef(Date.parse(pending[0]!.created_at), this.store.shards, this.random);
        const solo = pending.length === 1 ? marker : undefined;
        const ids = pending.map((order) => order.order_id);
        return {
          items: [
            ...pending.map((order) => putNewOrder(tableName, { ...order, marker: solo })),
            putMarker(tableName, marker, ids),
            ...this.delta({ PENDING: pending.length }),
          ],
          owners: pending.map((_, k) => k),
          context: { ref: marker, left: new Set(ids) },
        };
      },
      done: (order, tally) => {
        if (tally!.left.size > 1) this.tally(order.order_id, tally!);
        return { created: true, order: newStoredOrder(order, tally!.left.size === 1 ? tally!.ref : undefined) };
      },
      conditionFailed: (order, reason) => {
        const existing = reason.Item && (unmarshall(reason.Item) as StoredOrder);
        return existing && sameContent(existing, order)
          ? { ok: true, value: { created: false, order: existing } }
          : { ok: false, error: new OrderConflict(order.order_id) };
      },
    });
    // A replay is answered with the order as it stands: the cancellation gave its order item, not its state.
    // Should that read fail, the replays fail with it, not the new orders committed beside them.
    const replays = outcomes.flatMap((outcome, k) => (outcome.ok && !outcome.value.created ? [k] : []));
    if (replays.length === 0) return outcomes;
    try {
      const current = await this.readOrders(replays.map((k) => orders[k]!.order_id));
      for (const k of replays) {
        const item = current.get(orders[k]!.order_id);
        if (item) (outcomes[k] as { value: CreateResult }).value.order = this.format(item);
      }
    } catch (error) {
      for (const k of replays) outcomes[k] = { ok: false, error };
    }
    return outcomes;
  }

  /**
   * Commits the writes of `items` in one transaction. When it is cancelled, an item whose condition failed
   * is settled alone by `conditionFailed` (the reason carries the stored item when its write asked for it)
   * and the rest are committed again, after a back-off when nothing settled (a write conflict).
   * `write` returns the transaction's items and, for each, the index of the pending item it belongs to.
   */
  private async commitSettling<T, R, C = undefined>(
    items: T[],
    how: {
      write: (pending: T[]) => { items: TransactWriteItem[]; owners: number[]; context?: C };
      done: (item: T, context: C | undefined) => R;
      conditionFailed: (item: T, reason: CancellationReason) => Settled<R>;
    },
  ): Promise<Settled<R>[]> {
    // Stryker disable next-line ArrayDeclaration: every index is set before the array is returned, so it ends as long without the length given
    const outcomes: Settled<R>[] = new Array(items.length);
    let pending = items.map((item, index) => ({ index, item }));
    for (let attempt = 0; pending.length > 0; attempt++) {
      const { items: writes, owners, context } = how.write(pending.map(({ item }) => item));
      try {
        await this.store.documentClient.send(new TransactWriteItemsCommand({ ClientRequestToken: randomUUID(), TransactItems: writes }));
        for (const { index, item } of pending) outcomes[index] = { ok: true, value: how.done(item, context) };
        return outcomes;
      } catch (error) {
        // A failed condition settles its item; a conflict or throttling is retried; anything else is a fault.
        if (!isCancelledOnlyBy(error, SETTLED_OR_RETRIED)) throw translateStoreError(error);
        // Stryker disable next-line ArrayDeclaration: only reached with no reasons at all; a list of a string in their place sets nothing (a string has no Code)
        const reasons = (error as Error & { CancellationReasons?: CancellationReason[] }).CancellationReasons ?? [];
        const failed = new Map<number, CancellationReason>();
        reasons.forEach((reason, k) => {
          const owner = owners[k];
          if (
            // Stryker disable next-line OptionalChaining: isCancelledOnlyBy above read every reason's Code, so none is null here
            reason?.Code === 'ConditionalCheckFailed' &&
            // Stryker disable next-line ConditionalExpression: a reason with no owner (the counter delta, a marker) would be set under the key undefined, which failed.get(k) never reads (k is a number)
            owner !== undefined
          )
            failed.set(owner, reason);
        });
        const again = pending.filter(({ index, item }, k) => {
          const reason = failed.get(k);
          if (!reason) return true;
          outcomes[index] = how.conditionFailed(item, reason);
          return false;
        });
        if (again.length === pending.length) await this.backOff(attempt, error);
        pending = again;
      }
    }
    return outcomes;
  }

  private tally(orderId: string, tally: MarkerTally): void {
    if (this.tallies.size >= MAX_TALLIED) this.tallies.delete(this.tallies.keys().next().value!);
    this.tallies.set(orderId, tally);
  }

  private untally(orderId: string): void {
    this.tallies.get(orderId)?.left.delete(orderId);
    this.tallies.delete(orderId);
  }

  /** Deletes of the tallied markers whose orders left all finish in `pending`, as many as `room` takes. */
  private emptiedMarkers(pending: Transition[], room: number): TransactWriteItem[] {
    const finishing = new Set(pending.filter((transition) => transition.final).map((transition) => transition.orderId));
    // Each marker is checked once, not once per order of it finishing here (up to 96 per commit).
    const checked = new Set<MarkerTally>();
    const emptied: MarkerTally[] = [];
    for (const orderId of finishing) {
      const tally = this.tallies.get(orderId);
      if (!tally || checked.has(tally)) continue;
      checked.add(tally);
      if (emptied.length < room && [...tally.left].every((id) => finishing.has(id))) emptied.push(tally);
    }
    return emptied.map((tally) => ({ Delete: { TableName: this.store.tableName, Key: markerKey(tally.ref) } }));
  }

  /** The counter delta of a transaction, on a random shard. */
  private delta(move: CounterMove): TransactWriteItem[] {
    return putDelta(this.store.tableName, Math.floor(this.random() * this.store.shards), move);
  }

  /** Reads one order; strongly consistent so a just-acknowledged order is always found. */
  async get(orderId: string): Promise<StoredOrder | undefined> {
    const item = (await this.readOrders([orderId])).get(orderId);
    return item && this.format(item);
  }

  /** An order as read, parsed by the order schema (which leaves out the attributes it does not declare). */
  private format(item: Record<string, AttributeValue>): StoredOrder {
    return new EntityFormatter(this.store.OrderEntity).format(unmarshall(item)) as StoredOrder;
  }

  /** What a worker needs of one order, strongly consistent, as stored: no schema parses it (see `checkState`). */
  async getState(orderId: string): Promise<OrderState | undefined> {
    const item = await this.readRaw(orderId, [...ORDER_STATE_ATTRIBUTES]);
    return item && (unmarshall(item) as OrderState);
  }

  /** What a worker needs of these orders, strongly consistent; unknown ids are left out. */
  async getStates(orderIds: readonly string[]): Promise<OrderState[]> {
    return [...(await this.readOrders(orderIds, ORDER_STATE_ATTRIBUTES)).values()].map((item) => unmarshall(item) as OrderState);
  }

  /**
   * Orders as they stand (`overlayState`), by id, strongly consistent, raw (an item that may not parse is read
   * too): both tables in each read, 50 orders a read. `attributes`: only these. Unknown ids are left out.
   */
  private async readOrders(orderIds: readonly string[], attributes?: readonly string[]): Promise<Map<string, Record<string, AttributeValue>>> {
    const { tableName, stateTableName, documentClient } = this.store;
    const orders = new Map<string, Record<string, AttributeValue>>();
    const states = new Map<string, Record<string, AttributeValue>>();
    // The key comes along to tell the items apart (it is not handed on when only some attributes were asked for).
    const read = (keys: Record<string, AttributeValue>[]): KeysAndAttributes => ({ Keys: keys, ConsistentRead: true, ...(attributes && projection(['pk', ...attributes])) });
    for (let i = 0; i < orderIds.length; i += 50) {
      const keys = orderIds.slice(i, i + 50).map(orderKeyValue);
      let request: Record<string, KeysAndAttributes> | undefined = { [tableName]: read(keys), [stateTableName]: read(keys) };
      for (let attempt = 0; request && Object.keys(request).length > 0; attempt++) {
        // backOff gives up (StoreUnavailable) once the retries are spent.
        if (attempt > 0) await this.backOff(attempt - 1, undefined);
        let answer: BatchGetItemCommandOutput;
        try {
          answer = await documentClient.send(new BatchGetItemCommand({ RequestItems: request }));
        } catch (error) {
          throw translateStoreError(error);
        }
        for (const item of answer.Responses?.[tableName] ?? []) orders.set(item.pk!.S!, item);
        for (const item of answer.Responses?.[stateTableName] ?? []) states.set(item.pk!.S!, item);
        request = answer.UnprocessedKeys;
      }
    }
    const found = new Map<string, Record<string, AttributeValue>>();
    for (const [pk, order] of orders) {
      const item = overlayState(order, states.get(pk))!;
      if (attributes && !attributes.includes('pk')) delete item.pk;
      found.set(pk.slice('ORDER#'.length), item);
    }
    return found;
  }

  /** Proves the store answers: a strongly consistent read of a key no order can have. */
  async ping(): Promise<void> {
    await this.get('#health');
  }

  /**
   * PENDING -> PROCESSING, or a new attempt on a PROCESSING order whose lease or back-off ran out; `lapsed`
   * when its last attempt's lease ran out with no outcome, which is recorded with the claim.
   * Returns the claimed order, or undefined when another worker changed it first.
   */
  async claim(order: OrderState, now: number, leaseMs: number, lapsed = false): Promise<OrderState | undefined> {
    const claimed: OrderState = {
      ...order,
      status: 'PROCESSING',
      attempts: order.attempts + 1,
      started_at: iso(now),
      due_at: now + leaseMs,
      ...(lapsed && { lapsed: (order.lapsed ?? 0) + 1, faults: (order.faults ?? 0) + 1 }),
    };
    const move: CounterMove = order.status === 'PENDING' ? { PENDING: -1, PROCESSING: 1 } : {};
    const ok = await this.transition(order.order_id, [claimOrder(this.store, order, now, now + leaseMs, lapsed)], move);
    return ok ? claimed : undefined;
  }

  /**
   * PROCESSING -> COMPLETED for the attempt that holds the lease; false when the lease was lost.
   * `workStartedAt` is when the work began (the claim's time unless told).
   */
  async complete(order: OrderState, now: number, workStartedAt = Date.parse(order.started_at ?? order.created_at)): Promise<boolean> {
    const processingMs = Math.max(0, now - workStartedAt);
    const turnaroundMs = Math.max(0, now - Date.parse(order.created_at));
    return this.transition(order.order_id, completeOrder(this.store, order, workStartedAt, now), completionMove(processingMs, turnaroundMs), true);
  }

  /** PROCESSING -> FAILED with the error of the attempt that holds the lease. */
  async fail(order: OrderState, now: number, error: string): Promise<boolean> {
    return this.transition(order.order_id, failOrder(this.store, order, this.failure(order, now, error)), { PROCESSING: -1, FAILED: 1 }, true);
  }

  /** PROCESSING -> FAILED for an order waiting for a retry its budget no longer allows (its failure is recorded). */
  async exhaust(order: OrderState, now: number, error: string): Promise<boolean> {
    return this.transition(order.order_id, exhaustOrder(this.store, order, error, now), { PROCESSING: -1, FAILED: 1 }, true);
  }

  /** Records a failed attempt and makes the order due again at `retryAt` (its status stays PROCESSING). */
  async retryLater(order: OrderState, now: number, error: string, retryAt: number): Promise<boolean> {
    return this.transition(order.order_id, [retryOrderLater(this.store, order, this.failure(order, now, error), retryAt)], {});
  }

  /** Gives a claim back with its attempt, so the order is due again at once (see `releaseOrder`). */
  async release(order: OrderState, now: number): Promise<boolean> {
    const move: CounterMove = order.attempts <= 1 ? { PROCESSING: -1, PENDING: 1 } : {};
    return this.transition(order.order_id, [releaseOrder(this.store, order, now)], move);
  }

  /**
   * Counts a try at the order that ended in a fault (it could not be read, the store refused its write, a
   * bug), and sets the order aside at the `maxFaults`-th (see lib/orderWrites.ts, Quarantine). It reads and
   * writes attributes of its own only, so an item nothing else can parse is counted too.
   */
  async noteFault(orderId: string, error: string, maxFaults: number, now: number): Promise<FaultOutcome> {
    const { shards } = this.store;
    // A race with another writer of the order: read again; a few in a row mean it is being handled elsewhere.
    for (let race = 0; race < 3; race++) {
      const item = await this.readRaw(orderId, ['faults', 'quarantined', 'status', 'marker']);
      if (item?.quarantined) return { kind: 'aside' };
      if (!item || item.status?.S === 'COMPLETED' || item.status?.S === 'FAILED') return { kind: 'settled' };
      const seen = item.faults?.N === undefined ? undefined : Number(item.faults.N);
      const faults = (seen ?? 0) + 1;
      if (faults < maxFaults) {
        if (await this.transition(orderId, faultOrder(this.store, orderId, seen, error, item.marker?.S), {})) return { kind: 'counted', faults };
      } else if (await this.transition(orderId, quarantineFaulted(this.store, orderId, seen, error, now, item.marker?.S, shards), { quarantined: 1 })) {
        return { kind: 'quarantined', faults };
      }
    }
    return { kind: 'settled' };
  }

  /** Sets aside an order whose lease ran out once too often (a crash loop), recording that lapse. */
  async quarantineLapsed(order: OrderState, now: number, error: string): Promise<boolean> {
    return this.transition(order.order_id, quarantineLapsed(this.store, order, error, now, this.store.shards), { quarantined: 1 });
  }

  /**
   * Takes an order out of quarantine, to be tried again after a fix: on a due marker of its own, which a
   * sweeper finds. False when it was not quarantined.
   */
  async requeue(orderId: string, now: number): Promise<boolean> {
    const marker = newMarkerRef(now, this.store.shards, this.random);
    return this.transition(orderId, requeueOrder(this.store, orderId, marker, this.store.shards), { quarantined: -1 });
  }

  /** Every quarantined order, from the quarantine listings (a Query per shard, never a scan of the orders). */
  async listQuarantined(): Promise<QuarantineEntry[]> {
    const entries: QuarantineEntry[] = [];
    try {
      for (let shard = 0; shard < this.store.shards; shard++) {
        let ExclusiveStartKey: Record<string, AttributeValue> | undefined;
        do {
          const page = await this.store.documentClient.send(
            new QueryCommand({
              TableName: this.store.tableName,
              KeyConditionExpression: 'pk = :pk',
              ExpressionAttributeValues: { ':pk': { S: quarantinePartition(shard) } },
              ConsistentRead: true,
              ExclusiveStartKey,
            }),
          );
          for (const item of page.Items ?? []) entries.push({ order_id: item.order_id!.S!, at: item.at!.S!, error: item.error!.S! });
          ExclusiveStartKey = page.LastEvaluatedKey;
        } while (ExclusiveStartKey);
      }
    } catch (error) {
      throw translateStoreError(error);
    }
    return entries;
  }

  /** Some attributes of an order as stored, whatever their types: for an item that may not parse. */
  private async readRaw(orderId: string, attributes: string[]): Promise<Record<string, AttributeValue> | undefined> {
    return (await this.readOrders([orderId], attributes)).get(orderId);
  }

  private failure(order: OrderState, now: number, error: string): FailureEntry {
    return { attempt: order.attempts, started_at: order.started_at ?? order.created_at, at: iso(now), error };
  }

  /**
   * Due markers created at or before `createdBy`, a page per shard in turn (so no shard waits for another's
   * backlog), starting at shard `from`; `visit` returns false to stop.
   */
  async scanMarkers(createdBy: number, visit: (markers: Marker[]) => boolean | Promise<boolean>, { from = 0, pageSize = 25 } = {}): Promise<void> {
    const cursors = new Map<number, Record<string, AttributeValue> | undefined>(
      Array.from({ length: this.store.shards }, (_, i) => [(from + i) % this.store.shards, undefined]),
    );
    while (cursors.size > 0) {
      for (const [shard, ExclusiveStartKey] of cursors) {
        const { pk, before } = markerRange(shard, createdBy);
        let page;
        try {
          page = await this.store.documentClient.send(
            new QueryCommand({
              TableName: this.store.tableName,
              KeyConditionExpression: 'pk = :pk AND sk < :before',
              ExpressionAttributeValues: { ':pk': { S: pk }, ':before': { S: before } },
              ConsistentRead: true,
              Limit: pageSize,
              ExclusiveStartKey,
            }),
          );
        } catch (error) {
          throw translateStoreError(error);
        }
        if (page.LastEvaluatedKey) cursors.set(shard, page.LastEvaluatedKey);
        else cursors.delete(shard);
        const markers = (page.Items ?? []).map(toMarker);
        if (markers.length > 0 && !(await visit(markers))) return;
      }
    }
  }

  /**
   * Keeps only `remaining` of a marker's orders (the others are finished), or deletes it when none remain.
   * Safe whatever else runs: a finished order never needs work again, and a marker already gone stays gone.
   */
  async pruneMarkers(pruned: { marker: Marker; remaining: string[] }[]): Promise<void> {
    const { tableName, documentClient } = this.store;
    const emptied = pruned.filter(({ remaining }) => remaining.length === 0).map(({ marker }) => marker);
    try {
      for (let i = 0; i < emptied.length; i += 25) {
        let requests: { DeleteRequest: { Key: Record<string, AttributeValue> } }[] | undefined = emptied
          .slice(i, i + 25)
          .map((marker) => ({ DeleteRequest: { Key: markerKey(marker.ref) } }));
        for (let attempt = 0; requests && requests.length > 0; attempt++) {
          if (attempt > 0) await this.backOff(attempt - 1, undefined);
          const answer = await documentClient.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: requests } }));
          requests = answer.UnprocessedItems?.[tableName] as typeof requests;
        }
      }
      for (const { marker, remaining } of pruned.filter(({ remaining }) => remaining.length > 0)) {
        await documentClient
          .send(
            new UpdateItemCommand({
              TableName: tableName,
              Key: markerKey(marker.ref),
              UpdateExpression: 'SET ids = :ids',
              ConditionExpression: 'attribute_exists(pk)',
              ExpressionAttributeValues: { ':ids': { L: remaining.map((id) => ({ S: id })) } },
            }),
          )
          .catch((error: unknown) => {
            // Deleted meanwhile (its last order finished): nothing left to shrink.
            if (!(error instanceof Error && error.name === 'ConditionalCheckFailedException')) throw error;
          });
      }
    } catch (error) {
      throw translateStoreError(error);
    }
  }

  /**
   * A page of a user's orders, newest first, from the `byUser` index (a Query, never a Scan), starting
   * after `after`. `more` is true when at least one order follows the page. The index holds keys only: the
   * page's orders are then read by key, strongly consistent.
   */
  async listByUser(userId: string, limit: number, after?: { created_at: string; order_id: string }): Promise<{ orders: Order[]; more: boolean }> {
    const { documentClient, tableName } = this.store;
    const keys: { order_id: string }[] = [];
    let ExclusiveStartKey: Record<string, unknown> | undefined = after && {
      ...orderKey(after.order_id),
      user_id: userId,
      created_at: after.created_at,
    };
    try {
      // One order beyond the page tells whether there is a next one; DynamoDB may stop short at 1 MB read.
      do {
        const page = await documentClient.send(
          new DocumentQueryCommand({
            TableName: tableName,
            IndexName: USER_INDEX,
            KeyConditionExpression: 'user_id = :user',
            ExpressionAttributeValues: { ':user': userId },
            ScanIndexForward: false,
            Limit: limit + 1 - keys.length,
            ExclusiveStartKey,
          }),
        );
        for (const item of page.Items ?? []) keys.push({ order_id: String(item.pk).slice('ORDER#'.length) });
        ExclusiveStartKey = page.LastEvaluatedKey;
      } while (ExclusiveStartKey && keys.length <= limit);
      const shown = keys.slice(0, limit);
      const read = await this.readOrders(shown.map((key) => key.order_id));
      const orders = shown.flatMap((key) => {
        const item = read.get(key.order_id);
        return item ? [this.format(item)] : [];
      });
      return { orders, more: keys.length > limit };
    } catch (error) {
      throw translateStoreError(error);
    }
  }

  /**
   * Runs a transition with its counter move in the next transition commit; false when its condition
   * failed, retrying write conflicts.
   */
  private transition(orderId: string, writes: TransactWriteItem[], move: CounterMove, final = false): Promise<boolean> {
    return this.transitions.submit({ orderId, writes, move, final });
  }

  /** Waits before retrying a cancelled transaction (write conflicts); gives up as unavailable. */
  private async backOff(attempt: number, error: unknown): Promise<void> {
    if (attempt >= TRANSACTION_RETRIES) throw new StoreUnavailable({ cause: error });
    await sleep(this.random() * Math.min(1_000, 10 * 2 ** attempt));
  }
}

/** The stored form of a new order, as its create wrote it. */
const newStoredOrder = (order: OrderToCreate, marker: string | undefined): StoredOrder => ({
  order_id: order.order_id,
  user_id: order.user_id,
  item_ids: order.item_ids,
  total_amount: order.total_amount,
  status: 'PENDING',
  attempts: 0,
  created_at: order.created_at,
  ...(marker && { marker }),
});
