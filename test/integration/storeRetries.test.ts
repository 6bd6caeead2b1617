import { afterEach, describe, expect, it } from 'vitest';
import { OrderRepository, type OrderState, type RepositoryOptions } from '../../lib/orders.ts';
import { createServices } from '../../lib/services.ts';
import { startAwsLoopback, type AwsAnswer, type AwsLoopback, type AwsRequest } from '../awsLoopback.ts';
import { testConfig } from '../support.ts';

// The repository's transactions against a stand-in for DynamoDB (a loopback HTTP server speaking its JSON
// protocol), for answers DynamoDB Local never gives on demand: an outage, write conflicts that never end, and a
// writer that wins every race.

const stores: AwsLoopback[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()));
});

const standIn = async (answer: (request: AwsRequest) => AwsAnswer) => {
  const store = await startAwsLoopback(answer);
  stores.push(store);
  const services = createServices(testConfig({ DYNAMODB_ENDPOINT: store.endpoint }));
  const { orders } = services;
  const transactions = () => store.requests.filter((request) => request.target.endsWith('.TransactWriteItems')).length;
  const batchWrites = () => store.requests.filter((request) => request.target.endsWith('.BatchWriteItem')).length;
  const batchReads = () => store.requests.filter((request) => request.target.endsWith('.BatchGetItem')).length;
  /** A repository of its own over the same stand-in, with these options (a random number given). */
  const repository = (options: RepositoryOptions) => new OrderRepository(services.store, options);
  return { orders, repository, transactions, batchWrites, batchReads };
};

const pending = (orderId: string): OrderState => ({ order_id: orderId, status: 'PENDING', attempts: 0, created_at: new Date().toISOString() });

const DYNAMODB = 'com.amazonaws.dynamodb.v20120810';
/** The tables of a batch read, each with its keys: the order table first, then the state table. */
const tablesOf = (request: AwsRequest) => Object.entries(request.body.RequestItems as Record<string, { Keys: Record<string, { S: string }>[] }>);
const outage = (): AwsAnswer => ({ status: 500, body: { __type: `${DYNAMODB}#InternalServerError`, message: 'down' } });
const conflict = (): AwsAnswer => ({
  status: 400,
  body: {
    __type: `${DYNAMODB}#TransactionCanceledException`,
    Message: 'Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict, None]',
    CancellationReasons: [{ Code: 'TransactionConflict', Message: 'Transaction is ongoing for the item' }, { Code: 'None' }],
  },
});

describe('transitions against a store that is away or always busy', () => {
  it('fails transitions committed together during an outage as unavailable, with the calls of one commit (no search for a poison order)', async () => {
    const one = await standIn(outage);
    await expect(one.orders.claim(pending('OUT-0'), Date.now(), 30_000)).rejects.toMatchObject({ name: 'StoreUnavailable' });
    const callsForOne = one.transactions();
    expect(callsForOne).toBeGreaterThan(0);

    const eight = await standIn(outage);
    const claims = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => eight.orders.claim(pending(`OUT-${i}`), Date.now(), 30_000)));

    for (const claim of claims) expect(claim).toMatchObject({ status: 'rejected', reason: { name: 'StoreUnavailable' } });
    expect(eight.transactions()).toBe(callsForOne);
  });

  it('gives up on a transaction that keeps meeting write conflicts, as unavailable, after a bounded number of tries', async () => {
    const { orders, transactions } = await standIn(conflict);

    await expect(orders.claim(pending('BUSY-1'), Date.now(), 30_000)).rejects.toMatchObject({ name: 'StoreUnavailable' });
    // Nine tries (the first and eight retries), each maybe retried by the SDK itself (3 attempts).
    expect(transactions()).toBeGreaterThanOrEqual(9);
    expect(transactions()).toBeLessThanOrEqual(27);
  });

  it('waits between tries random x 10 ms x 2^try, at most a second, and gives up with the last conflict as the cause', async () => {
    const { repository } = await standIn(conflict);
    // Nearly 1: the waits are close to their bounds, 10 + 20 + ... + 640 + 1 000 ms = 2.27 s in all.
    const orders = repository({ random: () => 0.999 });

    const started = performance.now();
    const given = await orders.claim(pending('BUSY-2'), Date.now(), 30_000).catch((error: unknown) => error);
    const waited = performance.now() - started;

    expect(given).toMatchObject({ name: 'StoreUnavailable', cause: { name: 'TransactionCanceledException' } });
    expect(waited).toBeGreaterThanOrEqual(2_260);
    // Eight waits of a second each (no doubling from 10 ms) would be 8 s; the calls themselves are loopback.
    expect(waited).toBeLessThan(7_000);
  });

  it('settles a transaction whose conditions fail one an answer, however many answers that takes (only answers that settle nothing are retries)', async () => {
    // Each answer cancels the transaction on its first order's condition (another writer took that id just
    // before), the others' reasons None: nine orders, nine answers, each settling one.
    const firstTaken = (request: AwsRequest): AwsAnswer => {
      const items = request.body.TransactItems as unknown[];
      return {
        status: 400,
        body: {
          __type: `${DYNAMODB}#TransactionCanceledException`,
          Message: 'Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None]',
          CancellationReasons: items.map((_, k) => (k === 0 ? { Code: 'ConditionalCheckFailed', Message: 'The conditional request failed' } : { Code: 'None' })),
        },
      };
    };
    const { orders, transactions } = await standIn(firstTaken);
    const created_at = new Date().toISOString();
    const ids = Array.from({ length: 9 }, (_, i) => `TAKEN-${i}`);

    const outcomes = await orders.createMany(ids.map((order_id) => ({ order_id, user_id: 'U1', item_ids: [1], total_amount: 1, created_at })));

    expect(outcomes).toEqual(ids.map((id) => ({ ok: false, error: expect.objectContaining({ name: 'OrderConflict', message: expect.stringContaining(id) }) })));
    expect(transactions()).toBe(9);
  });

  it('gives up counting a fault after three races lost to another writer, as settled', async () => {
    const raced = (request: AwsRequest): AwsAnswer =>
      request.target.endsWith('.BatchGetItem')
        ? { body: { Responses: { [tablesOf(request)[0]![0]]: [{ pk: { S: 'ORDER#RACED-1' }, status: { S: 'PROCESSING' }, faults: { N: '1' } }] } } }
        : {
            status: 400,
            body: {
              __type: `${DYNAMODB}#TransactionCanceledException`,
              Message: 'Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed]',
              CancellationReasons: [{ Code: 'ConditionalCheckFailed', Message: 'The conditional request failed' }],
            },
          };
    const { orders, batchReads } = await standIn(raced);

    expect(await orders.noteFault('RACED-1', 'a fault', 3, Date.now())).toEqual({ kind: 'settled' });
    expect(batchReads()).toBe(3);
  });

  it('answers reads from a store that is away as unavailable', async () => {
    const { orders } = await standIn(outage);

    // The health check's read too.
    await expect(orders.ping()).rejects.toMatchObject({ name: 'StoreUnavailable' });
    await expect(orders.getState('ANY-1')).rejects.toMatchObject({ name: 'StoreUnavailable' });
    await expect(orders.getStates(['ANY-1', 'ANY-2'])).rejects.toMatchObject({ name: 'StoreUnavailable' });
    await expect(orders.listQuarantined()).rejects.toMatchObject({ name: 'StoreUnavailable' });
    await expect(orders.listByUser('U1', 10)).rejects.toMatchObject({ name: 'StoreUnavailable' });
    await expect(orders.noteFault('ANY-1', 'a fault', 3, Date.now())).rejects.toMatchObject({ name: 'StoreUnavailable' });
    await expect(orders.scanMarkers(Date.now(), () => true)).rejects.toMatchObject({ name: 'StoreUnavailable' });
    await expect(orders.pruneMarkers([{ marker: { ref: '0:1#x', ids: ['A', 'B'] }, remaining: ['A'] }])).rejects.toMatchObject({ name: 'StoreUnavailable' });
  });

  it('retries marker deletes the store leaves unprocessed, and gives up as unavailable after eight retries', async () => {
    // Every delete is sent back unprocessed, as DynamoDB does under throttling.
    const unprocessed = (request: AwsRequest): AwsAnswer => ({ body: { UnprocessedItems: request.body.RequestItems } });
    const { orders, batchWrites } = await standIn(unprocessed);

    await expect(orders.pruneMarkers([{ marker: { ref: '0:1#x', ids: ['A'] }, remaining: [] }])).rejects.toMatchObject({ name: 'StoreUnavailable' });
    expect(batchWrites()).toBe(9);
  });

  it('reads again the orders the store leaves unprocessed, until every one is read', async () => {
    // The first read comes back with the last key of the order table unprocessed, as DynamoDB does under
    // throttling; the orders have no state items (none was claimed).
    const orderOf = (key: Record<string, { S: string }>) => ({ pk: key.pk!, order_id: { S: key.pk!.S.slice('ORDER#'.length) }, status: { S: 'PENDING' }, attempts: { N: '0' } });
    let first = true;
    const partly = (request: AwsRequest): AwsAnswer => {
      const [[table, { Keys }], ...states] = tablesOf(request) as [[string, { Keys: Record<string, { S: string }>[] }], ...[string, unknown][]];
      const read = first ? Keys.slice(0, -1) : Keys;
      const left = first ? Keys.slice(-1) : [];
      first = false;
      return {
        body: {
          Responses: { [table]: read.map(orderOf), ...Object.fromEntries(states.map(([name]) => [name, []])) },
          UnprocessedKeys: left.length > 0 ? { [table]: { Keys: left } } : {},
        },
      };
    };
    const { orders, batchReads } = await standIn(partly);

    const states = await orders.getStates(['PART-1', 'PART-2', 'PART-3']);

    expect(states.map((state) => state.order_id).sort()).toEqual(['PART-1', 'PART-2', 'PART-3']);
    expect(batchReads()).toBe(2);
  });

  it('fails a replay whose order cannot be read as it stands, and not the new order committed beside it', async () => {
    // The first transaction is cancelled for the replay (its id is taken, by the same order); the new order is
    // committed again alone. Reading the replay's order back then meets an outage.
    const created_at = new Date().toISOString();
    const stored = { pk: { S: 'ORDER#SAME-1' }, sk: { S: 'ORDER' }, order_id: { S: 'SAME-1' }, user_id: { S: 'U1' }, item_ids: { L: [{ N: '1' }] }, total_amount: { N: '1' }, status: { S: 'PENDING' }, attempts: { N: '0' }, created_at: { S: created_at } };
    let transactions = 0;
    const replayed = (request: AwsRequest): AwsAnswer => {
      if (request.target.endsWith('.BatchGetItem')) return outage();
      if (transactions++ > 0) return { body: {} };
      return {
        status: 400,
        body: {
          __type: `${DYNAMODB}#TransactionCanceledException`,
          Message: 'Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None, None, None]',
          CancellationReasons: [{ Code: 'ConditionalCheckFailed', Item: stored }, { Code: 'None' }, { Code: 'None' }, { Code: 'None' }],
        },
      };
    };
    const { orders } = await standIn(replayed);

    const [replay, created] = await orders.createMany([
      { order_id: 'SAME-1', user_id: 'U1', item_ids: [1], total_amount: 1, created_at },
      { order_id: 'NEW-1', user_id: 'U1', item_ids: [1], total_amount: 1, created_at },
    ]);

    expect(replay).toMatchObject({ ok: false, error: { name: 'StoreUnavailable' } });
    expect(created).toMatchObject({ ok: true, value: { created: true, order: { order_id: 'NEW-1', status: 'PENDING' } } });
  });

  it('gives up reading orders the store keeps leaving unprocessed, as unavailable, after eight retries', async () => {
    const unprocessed = (request: AwsRequest): AwsAnswer => ({ body: { Responses: {}, UnprocessedKeys: request.body.RequestItems } });
    const { orders, batchReads } = await standIn(unprocessed);

    await expect(orders.getStates(['SLOW-1', 'SLOW-2'])).rejects.toMatchObject({ name: 'StoreUnavailable' });
    expect(batchReads()).toBe(9);
  });
});
