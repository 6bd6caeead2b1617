import { randomUUID } from 'node:crypto';
import { TransactWriteCommand, type TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import { GetItemCommand } from 'dynamodb-toolbox/entity/actions/get';
import { PutTransaction } from 'dynamodb-toolbox/entity/actions/transactPut';
import { UpdateTransaction } from 'dynamodb-toolbox/entity/actions/transactUpdate';
import { isTransactionCancelled } from 'dynamodb-toolbox/entity/actions/transactWrite';
import type { Condition } from 'dynamodb-toolbox/entity/actions/parseCondition';
import { UpdateItemCommand } from 'dynamodb-toolbox/entity/actions/update';
import { $add, $append, $remove } from 'dynamodb-toolbox/entity/actions/update/symbols';
import { QueryCommand } from 'dynamodb-toolbox/table/actions/query';
import { OrderConflict, StoreUnavailable } from './errors.ts';
import { GroupCommit, type Settled } from './groupCommit.ts';
import { bucketAttribute } from './histogram.ts';
import { ORDER_VIEW_FIELDS, sameContent, type NewOrder, type Order, type OrderStatus } from './order.ts';
import { counterUpdate, mergeMoves, METRICS_SHARDS, type CounterMove } from './counters.ts';
import { DUE_INDEX, orderKey, USER_INDEX, WORK_SHARDS, type Store } from './store.ts';

/** A transition as recorded on the order itself. */
export interface HistoryEntry {
  status: OrderStatus;
  at: string;
  attempt: number;
  error?: string;
}

/** An order as stored: the public fields plus the bookkeeping of the work index. */
export interface StoredOrder extends Order {
  last_error?: string;
  due_shard?: string;
  due_at?: number;
  history: HistoryEntry[];
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

type OrderCondition = Condition<Store['OrderEntity']>;
type TransactWriteItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];
/** A toolbox-built write of a transaction (PutTransaction, UpdateTransaction). */
type TransactionPart = Parameters<typeof isTransactionCancelled>[1];
type CancellationReason = { Code?: string; FormattedItem?: unknown };

/** One status change of one order, with the counters it moves. */
interface Transition {
  orderId: string;
  transaction: TransactionPart;
  move: CounterMove;
}

const TRANSACTION_RETRIES = 8;
/** Transition commits under way at once; more transitions wait and join the next one. */
const TRANSITIONS_IN_FLIGHT = 4;

const iso = (ms: number) => new Date(ms).toISOString();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Spreads the work index over a few partitions, stable per order. */
const workShard = (orderId: string): string => {
  let hash = 0;
  for (let i = 0; i < orderId.length; i++) hash = (hash * 31 + orderId.charCodeAt(i)) | 0;
  return `WORK#${Math.abs(hash) % WORK_SHARDS}`;
};

/** Errors that say the store is away or overloaded, as opposed to a bug in the request. */
const isTransient = (error: unknown): boolean => {
  if (!(error instanceof Error)) return false;
  const meta = error as Error & { $fault?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
  if (meta.$fault === 'server' || meta.$retryable) return true;
  if (meta.$metadata?.httpStatusCode === undefined) return true; // never got an HTTP answer
  return /Throttl|ProvisionedThroughputExceeded|RequestLimitExceeded|TransactionConflict/.test(error.name);
};

/** Turns storage failures into domain errors: an absent store becomes StoreUnavailable. */
export const translateStoreError = (error: unknown): unknown =>
  error instanceof StoreUnavailable || !isTransient(error) ? error : new StoreUnavailable({ cause: error });

/**
 * The order repository: every write that changes an order's status also moves the metrics counters,
 * in the same DynamoDB transaction, conditioned on the status and attempt the writer saw.
 */
export class OrderRepository {
  /** Transactions of this process under way per counter shard. */
  private readonly shardWriters = new Array<number>(METRICS_SHARDS).fill(0);

  /**
   * Status changes of concurrent workers, committed together: a transaction costs the store about as much
   * for one order as for a few dozen (DynamoDB Local runs 110-170 small ones a second, one at a time).
   * An order whose condition failed is answered false alone; the others are committed again.
   */
  private readonly transitions = new GroupCommit<Transition, boolean>({
    maxBatch: 99,
    maxInFlight: TRANSITIONS_IN_FLIGHT,
    key: (transition) => transition.orderId,
    commit: (batch) =>
      this.commitSettling(batch, {
        write: (transition) => transition.transaction,
        move: (list) => mergeMoves(list.map((transition) => transition.move)),
        done: () => true,
        conditionFailed: () => ({ ok: true, value: false }),
      }),
  });

  constructor(
    private readonly store: Store,
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * Stores new orders in one transaction (a group commit): each put is conditioned on the id being free,
   * plus one counter update for the batch. An order whose id is taken is settled alone, as a replay
   * when its content matches and as a conflict otherwise; the rest are committed again.
   */
  async createMany(orders: OrderToCreate[]): Promise<Settled<CreateResult>[]> {
    const { OrderEntity } = this.store;
    return this.commitSettling<StoredOrder, CreateResult>(
      orders.map((order) => this.newStoredOrder(order)),
      {
        write: (stored) =>
          OrderEntity.build(PutTransaction)
            .item(stored)
            .options({ condition: { attr: 'order_id', exists: false }, returnValuesOnConditionFalse: 'ALL_OLD' }),
        move: (list) => ({ PENDING: list.length }),
        done: (stored) => ({ created: true, order: stored }),
        conditionFailed: (stored, reason) => {
          const existing = reason.FormattedItem as StoredOrder | undefined;
          return existing && sameContent(existing, stored)
            ? { ok: true, value: { created: false, order: existing } }
            : { ok: false, error: new OrderConflict(stored.order_id) };
        },
      },
    );
  }

  /**
   * Commits the writes of `items` in one transaction with their counter moves merged. When it is cancelled,
   * an item whose condition failed is settled alone by `conditionFailed` (the reason carries the stored
   * item when its write asked for it) and the rest are committed again, after a back-off when nothing
   * settled (a write conflict).
   */
  private async commitSettling<T, R>(
    items: T[],
    how: {
      write: (item: T) => TransactionPart;
      move: (items: T[]) => CounterMove;
      done: (item: T) => R;
      conditionFailed: (item: T, reason: CancellationReason) => Settled<R>;
    },
  ): Promise<Settled<R>[]> {
    const outcomes: Settled<R>[] = new Array(items.length);
    let pending = items.map((item, index) => ({ index, item }));
    for (let attempt = 0; pending.length > 0; attempt++) {
      const writes = pending.map(({ item }) => how.write(item));
      try {
        await this.write(writes, how.move(pending.map(({ item }) => item)));
        for (const { index, item } of pending) outcomes[index] = { ok: true, value: how.done(item) };
        return outcomes;
      } catch (error) {
        // Passing the writes lets the toolbox format the stored item a cancellation reason carries.
        if (!isTransactionCancelled(error, ...writes)) throw translateStoreError(error);
        const reasons: CancellationReason[] = error.CancellationReasons ?? [];
        const again = pending.filter(({ index, item }, k) => {
          const reason = reasons[k];
          if (reason?.Code !== 'ConditionalCheckFailed') return true;
          outcomes[index] = how.conditionFailed(item, reason);
          return false;
        });
        if (again.length === pending.length) await this.backOff(attempt, error);
        pending = again;
      }
    }
    return outcomes;
  }

  /** Reads one order; strongly consistent so a just-acknowledged order is always found. */
  async get(orderId: string): Promise<StoredOrder | undefined> {
    try {
      const { Item } = await this.store.OrderEntity.build(GetItemCommand)
        .key({ order_id: orderId })
        .options({ consistent: true })
        .send();
      return Item as StoredOrder | undefined;
    } catch (error) {
      throw translateStoreError(error);
    }
  }

  /** Proves the store answers: a strongly consistent read of a key no order can have. */
  async ping(): Promise<void> {
    await this.get('#health');
  }

  /**
   * PENDING -> PROCESSING, or a new attempt on a PROCESSING order whose lease ran out.
   * Returns the claimed order, or undefined when another worker changed it first.
   */
  async claim(order: StoredOrder, now: number, leaseMs: number): Promise<StoredOrder | undefined> {
    const attempt = order.attempts + 1;
    const at = iso(now);
    const update = {
      order_id: order.order_id,
      status: 'PROCESSING' as const,
      attempts: $add(1),
      started_at: at,
      due_at: now + leaseMs,
      history: $append([{ status: 'PROCESSING' as const, at, attempt }]),
    };
    const condition = this.seen(order, now);
    const claimed: StoredOrder = {
      ...order,
      status: 'PROCESSING',
      attempts: attempt,
      started_at: at,
      due_at: now + leaseMs,
      history: [...order.history, { status: 'PROCESSING', at, attempt }],
    };
    if (order.status === 'PENDING') {
      const transaction = this.store.OrderEntity.build(UpdateTransaction).item(update).options({ condition });
      return (await this.transition(order.order_id, transaction, { PENDING: -1, PROCESSING: 1 })) ? claimed : undefined;
    }
    return (await this.update(this.store.OrderEntity.build(UpdateItemCommand).item(update).options({ condition })))
      ? claimed
      : undefined;
  }

  /** PROCESSING -> COMPLETED for the attempt that holds the lease; false when the lease was lost. */
  async complete(order: StoredOrder, now: number): Promise<boolean> {
    const processingMs = Math.max(0, now - Date.parse(order.started_at ?? order.created_at));
    const turnaroundMs = Math.max(0, now - Date.parse(order.created_at));
    const at = iso(now);
    return this.finish(order, { status: 'COMPLETED', at, attempt: order.attempts }, { completed_at: at, processing_ms: processingMs }, this.held(order), {
      COMPLETED: 1,
      sum_processing_ms: processingMs,
      sum_turnaround_ms: turnaroundMs,
      [bucketAttribute(processingMs)]: 1,
    });
  }

  /** PROCESSING -> FAILED with the last error; `order` holds the lease, or its lease ran out on the last attempt. */
  async fail(order: StoredOrder, now: number, error: string, ownLease = true): Promise<boolean> {
    const at = iso(now);
    const condition = ownLease ? this.held(order) : this.seen(order, now);
    return this.finish(order, { status: 'FAILED', at, attempt: order.attempts, error }, { failed_at: at, error }, condition, { FAILED: 1 });
  }

  /** The final transition: leaves the work index, records itself, moves the order out of PROCESSING. */
  private finish(
    order: StoredOrder,
    entry: HistoryEntry & { status: 'COMPLETED' | 'FAILED' },
    fields: { completed_at: string; processing_ms: number } | { failed_at: string; error: string },
    condition: OrderCondition,
    counters: CounterMove,
  ): Promise<boolean> {
    const transaction = this.store.OrderEntity.build(UpdateTransaction)
      .item({
        order_id: order.order_id,
        status: entry.status,
        ...fields,
        due_shard: $remove(),
        due_at: $remove(),
        history: $append([entry]),
      })
      .options({ condition });
    return this.transition(order.order_id, transaction, { PROCESSING: -1, ...counters });
  }

  /** Records a failed attempt and makes the order due again at `retryAt` (its status stays PROCESSING). */
  async retryLater(order: StoredOrder, now: number, error: string, retryAt: number): Promise<boolean> {
    return this.update(
      this.store.OrderEntity.build(UpdateItemCommand)
        .item({
          order_id: order.order_id,
          last_error: error,
          due_at: retryAt,
          history: $append([{ status: 'PROCESSING' as const, at: iso(now), attempt: order.attempts, error }]),
        })
        .options({ condition: this.held(order) }),
    );
  }

  /** Gives a lease back (on shutdown) so the order is due again at once. */
  async release(order: StoredOrder, now: number): Promise<boolean> {
    return this.update(
      this.store.OrderEntity.build(UpdateItemCommand)
        .item({ order_id: order.order_id, due_at: now })
        .options({ condition: this.held(order) }),
    );
  }

  /**
   * Ids of orders due for work at `now` (PENDING, retry due, or lease expired), oldest first, read from
   * the sparse work index page by page; `visit` returns false to stop early.
   */
  async scanDue(now: number, visit: (orderIds: string[]) => boolean | Promise<boolean>, pageSize = 500): Promise<void> {
    const { OrderTable, OrderEntity } = this.store;
    for (let shard = 0; shard < WORK_SHARDS; shard++) {
      let exclusiveStartKey: Record<string, unknown> | undefined;
      do {
        let page;
        try {
          page = await OrderTable.build(QueryCommand)
            .entities(OrderEntity)
            .query({ index: DUE_INDEX, partition: `WORK#${shard}`, range: { lte: now } })
            .options({ limit: pageSize, attributes: ['order_id'], exclusiveStartKey })
            .send();
        } catch (error) {
          throw translateStoreError(error);
        }
        const ids = (page.Items ?? []).map((item) => item.order_id);
        if (ids.length > 0 && !(await visit(ids))) return;
        exclusiveStartKey = page.LastEvaluatedKey;
      } while (exclusiveStartKey);
    }
  }

  /**
   * A page of a user's orders, newest first, from the `byUser` index (a Query, never a Scan), starting
   * after `after`. `more` is true when at least one order follows the page.
   */
  async listByUser(userId: string, limit: number, after?: { created_at: string; order_id: string }): Promise<{ orders: Order[]; more: boolean }> {
    const { OrderTable, OrderEntity } = this.store;
    const orders: Order[] = [];
    let exclusiveStartKey: Record<string, unknown> | undefined = after && {
      ...orderKey(after.order_id),
      user_id: userId,
      created_at: after.created_at,
    };
    // One order beyond the page tells whether there is a next one; DynamoDB may stop short at 1 MB read.
    do {
      let page;
      try {
        page = await OrderTable.build(QueryCommand)
          .entities(OrderEntity)
          .query({ index: USER_INDEX, partition: userId })
          .options({ reverse: true, limit: limit + 1 - orders.length, attributes: [...ORDER_VIEW_FIELDS], exclusiveStartKey })
          .send();
      } catch (error) {
        throw translateStoreError(error);
      }
      orders.push(...((page.Items ?? []) as Order[]));
      exclusiveStartKey = page.LastEvaluatedKey;
    } while (exclusiveStartKey && orders.length <= limit);
    return { orders: orders.slice(0, limit), more: orders.length > limit };
  }

  private newStoredOrder(order: OrderToCreate): StoredOrder {
    return {
      order_id: order.order_id,
      user_id: order.user_id,
      item_ids: order.item_ids,
      total_amount: order.total_amount,
      status: 'PENDING',
      attempts: 0,
      created_at: order.created_at,
      due_shard: workShard(order.order_id),
      due_at: Date.parse(order.created_at),
      history: [{ status: 'PENDING', at: order.created_at, attempt: 0 }],
    };
  }

  /** The order is as the caller read it, and free to be worked on. */
  private seen(order: StoredOrder, now: number): OrderCondition {
    return {
      and: [
        { attr: 'status', eq: order.status },
        { attr: 'attempts', eq: order.attempts },
        { attr: 'due_at', lte: now },
      ],
    };
  }

  /** The caller still holds the lease of its attempt. */
  private held(order: StoredOrder): OrderCondition {
    return {
      and: [
        { attr: 'status', eq: 'PROCESSING' },
        { attr: 'attempts', eq: order.attempts },
      ],
    };
  }

  /**
   * One transaction: the toolbox-built order writes plus the counter update on a random shard, so the
   * metrics move exactly when the orders do. A client request token makes an SDK retry idempotent.
   */
  private async write(transactions: TransactionPart[], move: CounterMove): Promise<void> {
    const TransactItems = transactions.map((transaction) => {
      const { ToolboxItem: _parsed, ...item } = transaction.params();
      return item;
    });
    const shard = this.takeShard();
    try {
      TransactItems.push(counterUpdate(this.store.tableName, shard, move));
      await this.store.documentClient.send(new TransactWriteCommand({ ClientRequestToken: randomUUID(), TransactItems }));
    } finally {
      this.shardWriters[shard]!--;
    }
  }

  /**
   * The counter shard this process's transactions write least, from a random start: transactions on the
   * same item wait for each other (or conflict), so spreading them keeps the store busy in parallel.
   */
  private takeShard(): number {
    const start = Math.floor(this.random() * METRICS_SHARDS);
    let best = start;
    for (let i = 1; i < METRICS_SHARDS && this.shardWriters[best]! > 0; i++) {
      const shard = (start + i) % METRICS_SHARDS;
      if (this.shardWriters[shard]! < this.shardWriters[best]!) best = shard;
    }
    this.shardWriters[best]!++;
    return best;
  }

  /**
   * Runs a transition with its counter move, in the next transition commit; false when its condition
   * failed, retrying write conflicts.
   */
  private transition(orderId: string, transaction: TransactionPart, move: CounterMove): Promise<boolean> {
    return this.transitions.submit({ orderId, transaction, move });
  }

  private async update(command: { send: () => Promise<unknown> }): Promise<boolean> {
    try {
      await command.send();
      return true;
    } catch (error) {
      if (error instanceof Error && error.name === 'ConditionalCheckFailedException') return false;
      throw translateStoreError(error);
    }
  }

  /** Waits before retrying a cancelled transaction (write conflicts); gives up as unavailable. */
  private async backOff(attempt: number, error: unknown): Promise<void> {
    if (attempt >= TRANSACTION_RETRIES) throw new StoreUnavailable({ cause: error });
    await sleep(this.random() * Math.min(1_000, 10 * 2 ** attempt));
  }
}
