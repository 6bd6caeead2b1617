import type { AttributeValue, TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { ORDER_STATUSES, type OrderStatus } from './order.ts';
import { markerKey, putMarker } from './markers.ts';

/**
 * The writes of an order's life, built straight as DynamoDB attribute values.
 *
 * Built by hand on purpose: they are the hot path (a create, a claim and a completion per order), and
 * dynamodb-toolbox's parsing of each write was a quarter of the service's CPU under load. Their expressions
 * are fixed strings; only values vary. The layout is the one `orderSchema` (lib/store.ts) declares, which
 * still reads every order: test/unit/orderWrites.test.ts parses each write's result against it.
 *
 * A create puts the order in the order table; every later write of its life goes to its item in the state
 * table (see `createStore`), which the first claim (or fault) creates. An order with no state item yet is
 * PENDING, as its create left it: the conditions below take an absent state item for that.
 */

/** Where the writes go: the order table, and the state table of what changes in an order's life. */
export interface Tables {
  tableName: string;
  stateTableName: string;
}

export const S = (value: string): AttributeValue.SMember => ({ S: value });
export const N = (value: number): AttributeValue.NMember => ({ N: String(value) });
const L = (values: AttributeValue[]): AttributeValue.LMember => ({ L: values });

/** The table key of an order, as attribute values. */
export const orderKeyValue = (orderId: string) => ({ pk: S(`ORDER#${orderId}`), sk: S('ORDER') });

/** The fields of an order a worker needs to decide and make its next transition. */
export interface OrderState {
  order_id: string;
  status: OrderStatus;
  attempts: number;
  created_at: string;
  started_at?: string;
  /** While PROCESSING: when the lease (or the retry back-off) ends. */
  due_at?: number;
  last_error?: string;
  /** The sort key of the due marker that lists this order alone. */
  marker?: string;
  /** Attempts whose work failed (the retry budget), and attempts whose lease ran out with no outcome. */
  failed_attempts?: number;
  lapsed?: number;
  /** Tries that ended in a fault or a lapse since the order was last requeued; when it was quarantined. */
  faults?: number;
  quarantined?: string;
}

/** An order whose stored state this version cannot read (an older version wrote it differently): a fault. */
export class UnreadableOrder extends Error {
  override name = 'UnreadableOrder';
  constructor(orderId: string, fields: string[]) {
    super(`Order ${orderId} cannot be read: ${fields.join(', ')} ${fields.length === 1 ? 'is' : 'are'} not as this version stores ${fields.length === 1 ? 'it' : 'them'}`);
  }
}

const isCount = (value: unknown) => Number.isSafeInteger(value) && (value as number) >= 0;
const isTime = (value: unknown) => typeof value === 'string' && !Number.isNaN(Date.parse(value));

/**
 * Checks an order's state as read without a schema (a projection, or what the queue carried): every transition
 * is computed from these fields, so one of another type is a fault to count, not a value to guess from.
 */
export const checkState = (state: OrderState): OrderState => {
  const optional = (value: unknown, check: (value: unknown) => boolean) => value === undefined || check(value);
  const bad = Object.entries({
    order_id: typeof state.order_id === 'string',
    status: (ORDER_STATUSES as readonly unknown[]).includes(state.status),
    attempts: isCount(state.attempts),
    created_at: isTime(state.created_at),
    started_at: optional(state.started_at, isTime),
    due_at: optional(state.due_at, Number.isFinite),
    last_error: optional(state.last_error, (value) => typeof value === 'string'),
    marker: optional(state.marker, (value) => typeof value === 'string'),
    failed_attempts: optional(state.failed_attempts, isCount),
    lapsed: optional(state.lapsed, isCount),
    faults: optional(state.faults, isCount),
  })
    .filter(([, ok]) => !ok)
    .map(([field]) => field);
  if (bad.length > 0) throw new UnreadableOrder(String(state.order_id), bad);
  return state;
};

/**
 * An order as it stands: its order item overlaid by its state item, as stored (attribute values). Once there,
 * the state item says which marker the order is on: the write that made it copied the marker the create set,
 * and a final transition or a quarantine removes it there. No order item, no order.
 */
export const overlayState = (
  order: Record<string, AttributeValue> | undefined,
  state: Record<string, AttributeValue> | undefined,
): Record<string, AttributeValue> | undefined => {
  if (!order || !state) return order;
  const { marker: _created, ...rest } = order;
  return { ...rest, ...state };
};

/** What the state table holds of an order: everything its transitions change (the upgrade copies these). */
export const STATE_ITEM_ATTRIBUTES = [
  'status',
  'attempts',
  'started_at',
  'completed_at',
  'failed_at',
  'processing_ms',
  'error',
  'last_error',
  'due_at',
  'marker',
  'failures',
  'failed_attempts',
  'lapsed',
  'faults',
  'fault',
  'quarantined',
];

/** The attributes of `OrderState`, for reads that need no more (ProjectionExpression). */
export const ORDER_STATE_ATTRIBUTES = [
  'order_id',
  'status',
  'attempts',
  'created_at',
  'started_at',
  'due_at',
  'last_error',
  'marker',
  'failed_attempts',
  'lapsed',
  'faults',
  'quarantined',
] as const;

export interface NewOrderItem {
  order_id: string;
  user_id: string;
  item_ids: (string | number)[];
  total_amount: number;
  created_at: string;
  marker?: string;
}

/** The put of a new order, conditioned on its id being free; a cancellation returns the stored order. */
export const putNewOrder = (tableName: string, order: NewOrderItem): TransactWriteItem => ({
  Put: {
    TableName: tableName,
    Item: {
      ...orderKeyValue(order.order_id),
      order_id: S(order.order_id),
      user_id: S(order.user_id),
      item_ids: L(order.item_ids.map((id) => (typeof id === 'number' ? N(id) : S(id)))),
      total_amount: N(order.total_amount),
      status: S('PENDING'),
      attempts: N(0),
      created_at: S(order.created_at),
      ...(order.marker && { marker: S(order.marker) }),
    },
    ConditionExpression: 'attribute_not_exists(pk)',
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
  },
});

type Condition = { expression: string; values: Record<string, AttributeValue> };

/**
 * The order is as the worker read it, and free to be worked on (PENDING, or its lease is over). A quarantined
 * order is never free: it waits for an operator. A state item with no status is one only faults were counted on.
 */
const seen = (state: OrderState, now: number): Condition =>
  state.status === 'PENDING'
    ? {
        expression: '(attribute_not_exists(#status) OR (#status = :seen_status AND attempts = :seen_attempts)) AND attribute_not_exists(quarantined)',
        values: { ':seen_status': S('PENDING'), ':seen_attempts': N(state.attempts) },
      }
    : {
        expression: '#status = :seen_status AND attempts = :seen_attempts AND due_at <= :now AND attribute_not_exists(quarantined)',
        values: { ':seen_status': S(state.status), ':seen_attempts': N(state.attempts), ':now': N(now) },
      };

/** The worker still holds the lease of its attempt (the attempt number is the lease token), and it was not set aside. */
const held = (state: OrderState): Condition => ({
  expression: '#status = :processing AND attempts = :attempt AND attribute_not_exists(quarantined)',
  values: { ':processing': S('PROCESSING'), ':attempt': N(state.attempts) },
});

// `status` and `error` are DynamoDB reserved words.
const NAMES = { '#status': 'status', '#error': 'error' };

/** An update of the order's state item. */
const update = (
  { stateTableName }: Tables,
  orderId: string,
  expression: string,
  condition: Condition,
  values: Record<string, AttributeValue>,
): TransactWriteItem => ({
  Update: {
    TableName: stateTableName,
    Key: orderKeyValue(orderId),
    UpdateExpression: expression,
    ConditionExpression: condition.expression,
    ExpressionAttributeNames: expression.includes('#error') ? NAMES : { '#status': NAMES['#status'] },
    ExpressionAttributeValues: { ...condition.values, ...values },
  },
});

/** A failed attempt, as recorded in the order's `failures`: its work failed, or its lease ran out (`LAPSE`). */
export interface FailureEntry {
  attempt: number;
  started_at: string;
  at: string;
  error: string;
}

/** The error recorded for an attempt whose lease ran out before any outcome was recorded. */
export const LAPSE = 'the lease ran out';

const failureValue = (entry: FailureEntry): AttributeValue =>
  ({ M: { attempt: N(entry.attempt), started_at: S(entry.started_at), at: S(entry.at), error: S(entry.error) } }) as AttributeValue;

const appendFailure = 'failures = list_append(if_not_exists(failures, :none), :failure)';

/** The history entry of the order's last attempt, cut off when its lease ran out. */
const lapseOf = (state: OrderState): FailureEntry => ({
  attempt: state.attempts,
  started_at: state.started_at ?? state.created_at,
  at: new Date(state.due_at ?? 0).toISOString(),
  error: LAPSE,
});

/** Records the lapse of the last attempt: in the history, and as a fault (a crash loop ends in quarantine). */
const lapseValues = (state: OrderState): Record<string, AttributeValue> => ({
  ':lapsed': N((state.lapsed ?? 0) + 1),
  ':faults': N((state.faults ?? 0) + 1),
  ':none': L([]),
  ':failure': L([failureValue(lapseOf(state))]),
});

/**
 * PENDING -> PROCESSING, or a new attempt on a PROCESSING order whose lease or back-off ran out: the next
 * attempt number (SET, not ADD, so a repeated write means the same), its start and its lease end. `lapsed`:
 * the last attempt's lease ran out with no outcome, which the same write records. The order's solo marker
 * comes along (see `overlayState`).
 */
export const claimOrder = (tables: Tables, state: OrderState, now: number, leaseEnd: number, lapsed = false): TransactWriteItem =>
  update(
    tables,
    state.order_id,
    `SET #status = :processing, attempts = :attempt, started_at = :at, due_at = :due${state.marker ? ', marker = :marker' : ''}${
      lapsed ? `, lapsed = :lapsed, faults = :faults, ${appendFailure}` : ''
    }`,
    seen(state, now),
    {
      ':processing': S('PROCESSING'),
      ':attempt': N(state.attempts + 1),
      ':at': S(new Date(now).toISOString()),
      ':due': N(leaseEnd),
      ...(state.marker && { ':marker': S(state.marker) }),
      ...(lapsed ? lapseValues(state) : {}),
    },
  );

/** PROCESSING -> COMPLETED for the attempt that holds the lease; `startedAt` is when its work began. */
export const completeOrder = (tables: Tables, state: OrderState, startedAt: number, now: number): TransactWriteItem[] => [
  update(tables, state.order_id, 'SET #status = :completed, started_at = :started, completed_at = :at, processing_ms = :ms REMOVE due_at, marker', held(state), {
    ':completed': S('COMPLETED'),
    ':started': S(new Date(startedAt).toISOString()),
    ':at': S(new Date(now).toISOString()),
    ':ms': N(Math.max(0, now - startedAt)),
  }),
  ...deleteSoloMarker(tables, state),
];

/** PROCESSING -> FAILED for the attempt that holds the lease: its work failed, the last the budget allows. */
export const failOrder = (tables: Tables, state: OrderState, failure: FailureEntry): TransactWriteItem[] => [
  update(
    tables,
    state.order_id,
    `SET #status = :failed, failed_at = :at, #error = :error, failed_attempts = :failed_attempts, ${appendFailure} REMOVE due_at, marker`,
    held(state),
    {
      ':failed': S('FAILED'),
      ':at': S(failure.at),
      ':error': S(failure.error),
      ':failed_attempts': N((state.failed_attempts ?? 0) + 1),
      ':none': L([]),
      ':failure': L([failureValue(failure)]),
    },
  ),
  ...deleteSoloMarker(tables, state),
];

/**
 * PROCESSING -> FAILED for an order waiting for a retry that its budget no longer allows (MAX_ATTEMPTS was
 * lowered): its last failure is recorded already.
 */
export const exhaustOrder = (tables: Tables, state: OrderState, error: string, now: number): TransactWriteItem[] => [
  update(tables, state.order_id, 'SET #status = :failed, failed_at = :at, #error = :error REMOVE due_at, marker', seen(state, now), {
    ':failed': S('FAILED'),
    ':at': S(new Date(now).toISOString()),
    ':error': S(error),
  }),
  ...deleteSoloMarker(tables, state),
];

/** Records a failed attempt and makes the order due again at `retryAt` (its status stays PROCESSING). */
export const retryOrderLater = (tables: Tables, state: OrderState, failure: FailureEntry, retryAt: number): TransactWriteItem =>
  update(tables, state.order_id, `SET last_error = :error, due_at = :retry, failed_attempts = :failed_attempts, ${appendFailure}`, held(state), {
    ':error': S(failure.error),
    ':retry': N(retryAt),
    ':failed_attempts': N((state.failed_attempts ?? 0) + 1),
    ':none': L([]),
    ':failure': L([failureValue(failure)]),
  });

/**
 * Gives a claim back with its attempt (at shutdown, or when a worker got to an order claimed ahead too late in
 * its lease): an order claimed from PENDING is PENDING again, one taken over is due again at once.
 */
export const releaseOrder = (tables: Tables, state: OrderState, now: number): TransactWriteItem =>
  state.attempts <= 1
    ? update(tables, state.order_id, 'SET #status = :pending, attempts = :none REMOVE due_at, started_at', held(state), { ':pending': S('PENDING'), ':none': N(0) })
    : update(tables, state.order_id, 'SET attempts = :previous, due_at = :now', held(state), { ':previous': N(state.attempts - 1), ':now': N(now) });

/** A final transition removes the marker that marked this order alone; a shared marker is the sweeper's to prune. */
const deleteSoloMarker = ({ tableName }: Tables, state: OrderState): TransactWriteItem[] =>
  state.marker ? [{ Delete: { TableName: tableName, Key: markerKey(state.marker) } }] : [];

/**
 * Quarantine: an order set aside after POISON_MAX_TRIES tries that ended in a fault (it could not be read,
 * the store refused its write, a bug) or in a lapsed lease (a crash loop). It keeps its status; it is taken
 * off its due marker, so no sweeper sends it again, and listed under `QUARANTINE#<shard>` for operators,
 * until `requeueOrder`. These writes read and condition on attributes of their own only, never on the ones
 * an older version may have written differently, so an item nothing else can parse can still be set aside.
 */

/** FNV-1a: the quarantine shard of an order, known from its id alone. */
const shardOf = (orderId: string, shards: number): number => {
  let hash = 0x811c9dc5;
  for (let i = 0; i < orderId.length; i++) hash = Math.imul(hash ^ orderId.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % shards;
};

/** The partition listing the quarantined orders of a shard. */
export const quarantinePartition = (shard: number) => `QUARANTINE#${shard}`;

const quarantineKey = (orderId: string, shards: number) => ({ pk: S(quarantinePartition(shardOf(orderId, shards))), sk: S(orderId) });

/** The order is not finished, is not set aside, and has the fault count the writer read. */
const faultable = (seenFaults: number | undefined): Condition => ({
  expression: `attribute_not_exists(quarantined) AND (attribute_not_exists(#status) OR NOT (#status IN (:completed, :failed))) AND ${
    seenFaults === undefined ? 'attribute_not_exists(faults)' : 'faults = :seen_faults'
  }`,
  values: { ':completed': S('COMPLETED'), ':failed': S('FAILED'), ...(seenFaults !== undefined && { ':seen_faults': N(seenFaults) }) },
});

/**
 * The order exists: a fault may be the first write to its state item, which must never be made for an order
 * that is not there.
 */
const orderExists = ({ tableName }: Tables, orderId: string): TransactWriteItem => ({
  ConditionCheck: { TableName: tableName, Key: orderKeyValue(orderId), ConditionExpression: 'attribute_exists(pk)' },
});

/** Counts one more fault of the order, with its error. `marker`: its solo marker, as read (see `overlayState`). */
export const faultOrder = (tables: Tables, orderId: string, seenFaults: number | undefined, error: string, marker: string | undefined): TransactWriteItem[] => [
  update(tables, orderId, `SET faults = :faults, fault = :fault${marker ? ', marker = :marker' : ''}`, faultable(seenFaults), {
    ':faults': N((seenFaults ?? 0) + 1),
    ':fault': S(error),
    ...(marker && { ':marker': S(marker) }),
  }),
  orderExists(tables, orderId),
];

/** What setting an order aside writes besides the order: its listing, and no solo marker any more. */
const setAside = ({ tableName }: Tables, orderId: string, shards: number, error: string, now: number, marker: string | undefined): TransactWriteItem[] => [
  {
    Put: {
      TableName: tableName,
      Item: { ...quarantineKey(orderId, shards), order_id: S(orderId), at: S(new Date(now).toISOString()), error: S(error) },
    },
  },
  ...(marker ? [{ Delete: { TableName: tableName, Key: markerKey(marker) } }] : []),
];

/** Counts the `maxFaults`-th fault and sets the order aside. `marker`: its solo marker, as read. */
export const quarantineFaulted = (
  tables: Tables,
  orderId: string,
  seenFaults: number | undefined,
  error: string,
  now: number,
  marker: string | undefined,
  shards: number,
): TransactWriteItem[] => [
  update(tables, orderId, 'SET faults = :faults, fault = :fault, quarantined = :at REMOVE marker', faultable(seenFaults), {
    ':faults': N((seenFaults ?? 0) + 1),
    ':fault': S(error),
    ':at': S(new Date(now).toISOString()),
  }),
  orderExists(tables, orderId),
  ...setAside(tables, orderId, shards, error, now, marker),
];

/** Records the lapse of the last attempt, once too many (a crash loop), and sets the order aside. */
export const quarantineLapsed = (tables: Tables, state: OrderState, error: string, now: number, shards: number): TransactWriteItem[] => [
  update(
    tables,
    state.order_id,
    `SET lapsed = :lapsed, faults = :faults, fault = :fault, quarantined = :at, ${appendFailure} REMOVE marker`,
    seen(state, now),
    { ...lapseValues(state), ':fault': S(error), ':at': S(new Date(now).toISOString()) },
  ),
  ...setAside(tables, state.order_id, shards, error, now, state.marker),
];

/**
 * Takes an order out of quarantine (after a fix): its faults count from zero again, and a new due marker of
 * its own (`marker`) lists it, so a sweeper sends it.
 */
export const requeueOrder = (tables: Tables, orderId: string, marker: string, shards: number): TransactWriteItem[] => [
  {
    Update: {
      TableName: tables.stateTableName,
      Key: orderKeyValue(orderId),
      UpdateExpression: 'SET marker = :marker REMOVE quarantined, faults, fault',
      ConditionExpression: 'attribute_exists(quarantined)',
      ExpressionAttributeValues: { ':marker': S(marker) },
    },
  },
  putMarker(tables.tableName, marker, [orderId]),
  { Delete: { TableName: tables.tableName, Key: quarantineKey(orderId, shards) } },
];
