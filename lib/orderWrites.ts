import type { AttributeValue, TransactWriteItem } from '@aws-sdk/client-dynamodb';
import type { OrderStatus } from './order.ts';
import { markerKey } from './markers.ts';

/**
 * The writes of an order's life, built straight as DynamoDB attribute values.
 *
 * Built by hand on purpose: they are the hot path (a create, a claim and a completion per order), and
 * dynamodb-toolbox's parsing of each write was a quarter of the service's CPU under load. Their expressions
 * are fixed strings; only values vary. The layout is the one `orderSchema` (lib/store.ts) declares, which
 * still reads every order: test/unit/orderWrites.test.ts parses each write's result against it.
 */

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
}

/** The attributes of `OrderState`, for reads that need no more (ProjectionExpression). */
export const ORDER_STATE_ATTRIBUTES = ['order_id', 'status', 'attempts', 'created_at', 'started_at', 'due_at', 'last_error', 'marker'] as const;

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

/** The order is as the worker read it, and free to be worked on (PENDING, or its lease is over). */
const seen = (state: OrderState, now: number): Condition =>
  state.status === 'PENDING'
    ? { expression: '#status = :seen_status AND attempts = :seen_attempts', values: { ':seen_status': S('PENDING'), ':seen_attempts': N(state.attempts) } }
    : {
        expression: '#status = :seen_status AND attempts = :seen_attempts AND due_at <= :now',
        values: { ':seen_status': S(state.status), ':seen_attempts': N(state.attempts), ':now': N(now) },
      };

/** The worker still holds the lease of its attempt: the attempt number is the lease token. */
const held = (state: OrderState): Condition => ({
  expression: '#status = :processing AND attempts = :attempt',
  values: { ':processing': S('PROCESSING'), ':attempt': N(state.attempts) },
});

// `status` and `error` are DynamoDB reserved words.
const NAMES = { '#status': 'status', '#error': 'error' };

const update = (
  tableName: string,
  orderId: string,
  expression: string,
  condition: Condition,
  values: Record<string, AttributeValue>,
): TransactWriteItem => ({
  Update: {
    TableName: tableName,
    Key: orderKeyValue(orderId),
    UpdateExpression: expression,
    ConditionExpression: condition.expression,
    ExpressionAttributeNames: expression.includes('#error') ? NAMES : { '#status': NAMES['#status'] },
    ExpressionAttributeValues: { ...condition.values, ...values },
  },
});

/**
 * PENDING -> PROCESSING, or a new attempt on a PROCESSING order whose lease ran out: the next attempt
 * number (SET, not ADD, so a repeated write means the same), its start and its lease end.
 */
export const claimOrder = (tableName: string, state: OrderState, now: number, leaseEnd: number): TransactWriteItem =>
  update(tableName, state.order_id, 'SET #status = :processing, attempts = :attempt, started_at = :at, due_at = :due', seen(state, now), {
    ':processing': S('PROCESSING'),
    ':attempt': N(state.attempts + 1),
    ':at': S(new Date(now).toISOString()),
    ':due': N(leaseEnd),
  });

/** A failed attempt, as recorded in the order's `failures`. */
export interface FailureEntry {
  attempt: number;
  started_at: string;
  at: string;
  error: string;
}

const failureValue = (entry: FailureEntry): AttributeValue =>
  ({ M: { attempt: N(entry.attempt), started_at: S(entry.started_at), at: S(entry.at), error: S(entry.error) } }) as AttributeValue;

const appendFailure = 'failures = list_append(if_not_exists(failures, :none), :failure)';

/** PROCESSING -> COMPLETED for the attempt that holds the lease; `startedAt` is when its work began. */
export const completeOrder = (tableName: string, state: OrderState, startedAt: number, now: number): TransactWriteItem[] => [
  update(tableName, state.order_id, 'SET #status = :completed, started_at = :started, completed_at = :at, processing_ms = :ms REMOVE due_at, marker', held(state), {
    ':completed': S('COMPLETED'),
    ':started': S(new Date(startedAt).toISOString()),
    ':at': S(new Date(now).toISOString()),
    ':ms': N(Math.max(0, now - startedAt)),
  }),
  ...deleteSoloMarker(tableName, state),
];

/**
 * PROCESSING -> FAILED with the error, recorded among the failures. `ownLease`: the worker holds the lease
 * of the attempt that failed; otherwise that attempt's lease ran out (the order is as `state` says).
 */
export const failOrder = (tableName: string, state: OrderState, failure: FailureEntry, ownLease: boolean, now: number): TransactWriteItem[] => [
  update(
    tableName,
    state.order_id,
    `SET #status = :failed, failed_at = :at, #error = :error, ${appendFailure} REMOVE due_at, marker`,
    ownLease ? held(state) : seen(state, now),
    { ':failed': S('FAILED'), ':at': S(failure.at), ':error': S(failure.error), ':none': L([]), ':failure': L([failureValue(failure)]) },
  ),
  ...deleteSoloMarker(tableName, state),
];

/** Records a failed attempt and makes the order due again at `retryAt` (its status stays PROCESSING). */
export const retryOrderLater = (tableName: string, state: OrderState, failure: FailureEntry, retryAt: number): TransactWriteItem =>
  update(tableName, state.order_id, `SET last_error = :error, due_at = :retry, ${appendFailure}`, held(state), {
    ':error': S(failure.error),
    ':retry': N(retryAt),
    ':none': L([]),
    ':failure': L([failureValue(failure)]),
  });

/**
 * Gives a claim back with its attempt (at shutdown, or when a worker got to an order claimed ahead too late in
 * its lease): an order claimed from PENDING is PENDING again, one taken over is due again at once.
 */
export const releaseOrder = (tableName: string, state: OrderState, now: number): TransactWriteItem =>
  state.attempts <= 1
    ? update(tableName, state.order_id, 'SET #status = :pending, attempts = :none REMOVE due_at, started_at', held(state), { ':pending': S('PENDING'), ':none': N(0) })
    : update(tableName, state.order_id, 'SET attempts = :previous, due_at = :now', held(state), { ':previous': N(state.attempts - 1), ':now': N(now) });

/** A final transition removes the marker that marked this order alone; a shared marker is the sweeper's to prune. */
const deleteSoloMarker = (tableName: string, state: OrderState): TransactWriteItem[] =>
  state.marker ? [{ Delete: { TableName: tableName, Key: markerKey(state.marker) } }] : [];
