import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { createServices, installServices, type Services } from '../../lib/services.ts';
import { ensureTable } from '../../lib/store.ts';
import { createRequestListener } from '../../local/httpAdapter.ts';
import { httpFunctions } from '../../local/httpFunctions.ts';
import { pollUntil, scanOrders, testConfig, validOrder } from '../support.ts';

// Faults answered for what they are, through the real node:http adapter and the real SDK: a bug or an item the
// code cannot read is a 500, a store that is away, throttling, busy or too slow is a 503 with Retry-After.

const servers: Server[] = [];

afterEach(async () => {
  installServices(undefined);
  await Promise.all(
    servers.splice(0).map((server) => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    }),
  );
});

const listen = async (server: Server): Promise<string> => {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};

/** The service over HTTP, with these settings. */
const serve = async (env: Record<string, string> = {}, table = true): Promise<{ url: string; services: Services }> => {
  const services = createServices(testConfig(env));
  if (table) await ensureTable(services.store);
  installServices(services);
  const url = await listen(createServer(createRequestListener(httpFunctions, { logger: services.logger })));
  return { url, services };
};

/** A stand-in for DynamoDB's endpoint: answers every request as `answer` says (or never). */
const fakeDynamoDB = (answer: (res: ServerResponse) => void): Promise<string> => {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => answer(res));
  });
  return listen(server);
};

/** An error as DynamoDB sends it (JSON 1.0 protocol): the SDK turns `__type` into the error's name. */
const dynamoError = (status: number, type: string) => (res: ServerResponse) => {
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'fake' });
  res.end(JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message: `${type} from the fake store` }));
};

const get = async (url: string) => {
  const response = await fetch(url);
  return { status: response.status, retryAfter: response.headers.get('retry-after'), requestId: response.headers.get('x-request-id'), body: await response.json() };
};

describe('faults answered for what they are', () => {
  it('answers an order it cannot read (as an older version might have written it) with a 500 problem, not a 503', async () => {
    const { url, services } = await serve();
    await services.store.documentClient.send(
      new PutItemCommand({
        TableName: services.store.tableName,
        Item: {
          pk: { S: 'ORDER#OLD-1' },
          sk: { S: 'ORDER' },
          order_id: { S: 'OLD-1' },
          user_id: { S: 'USER-1' },
          item_ids: { L: [{ S: 'sku' }] },
          total_amount: { S: 'ninety-nine' },
          status: { S: 'SHIPPED' },
          attempts: { S: 'one' },
          created_at: { S: new Date().toISOString() },
        },
      }),
    );

    const answer = await get(`${url}/orders/OLD-1`);

    expect(answer.status).toBe(500);
    expect(answer.retryAfter).toBeNull();
    expect(answer.body).toEqual({
      type: 'about:blank',
      title: 'Internal error',
      status: 500,
      detail: expect.any(String),
      request_id: answer.requestId,
    });
  });

  it.each([
    ['TransactionInProgressException', 400, 503],
    ['ThrottlingException', 400, 503],
    ['ProvisionedThroughputExceededException', 400, 503],
    ['InternalServerError', 500, 503],
    ['ValidationException', 400, 500],
    ['ResourceNotFoundException', 400, 500],
  ])('answers the store saying %s (HTTP %i) with %i', async (type, status, expected) => {
    const endpoint = await fakeDynamoDB(dynamoError(status, type));
    const { url } = await serve({ DYNAMODB_ENDPOINT: endpoint }, false);

    const answer = await get(`${url}/orders/ANY-1`);

    expect(answer.status).toBe(expected);
    expect(answer.body).toMatchObject({ status: expected, request_id: answer.requestId });
    expect(answer.retryAfter).toBe(expected === 503 ? '1' : null);
  });

  it('answers within its deadline when the store accepts connections but never answers', async () => {
    const endpoint = await fakeDynamoDB(() => {});
    const { url } = await serve({ DYNAMODB_ENDPOINT: endpoint, REQUEST_DEADLINE_MS: '500' }, false);

    const started = performance.now();
    const answers = await Promise.all([get(`${url}/orders/ANY-1`), fetch(`${url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(validOrder({ order_id: 'HUNG-1' })),
    }).then(async (response) => ({ status: response.status, body: await response.json() }))]);
    const ms = performance.now() - started;

    expect(answers.map((answer) => answer.status)).toEqual([503, 503]);
    expect(answers[1]!.body).toMatchObject({ title: 'Service unavailable', detail: expect.stringMatching(/in time/) });
    expect(ms).toBeLessThan(2_000);
  });

  it('refuses creates beyond MAX_REQUESTS_IN_FLIGHT at once with 503, and stores those it took', async () => {
    // The store's one slot is held by the test, so no create can reach a commit: the first 50 wait, each one
    // after them is refused at once, however the 300 requests interleave. Then the slot is given back.
    const { url, services } = await serve({ MAX_REQUESTS_IN_FLIGHT: '50', STORE_MAX_IN_FLIGHT: '1', CREATE_BATCH_MAX: '10', REQUEST_DEADLINE_MS: '28000' });
    const releaseStore = await services.gate.acquire('urgent');
    let answered = 0;
    const post = (i: number) =>
      fetch(`${url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(validOrder({ order_id: `SHED-${i}` })) }).then(
        async (response) => {
          const answer = { id: `SHED-${i}`, status: response.status, retryAfter: response.headers.get('retry-after'), body: await response.json() };
          answered++;
          return answer;
        },
      );

    const all = Promise.all(Array.from({ length: 300 }, (_, i) => post(i)));
    try {
      await pollUntil(() => (answered === 250 && services.orderService.waitingCreates === 50 ? true : undefined), { intervalMs: 10, what: '250 refusals and 50 creates waiting' });
    } finally {
      releaseStore();
    }
    const answers = await all;

    const shed = answers.filter((answer) => answer.status === 503);
    const created = answers.filter((answer) => answer.status === 201);
    expect(shed).toHaveLength(250);
    expect(created).toHaveLength(50);
    for (const answer of shed) {
      expect(answer).toMatchObject({ retryAfter: '1', body: { title: 'Service unavailable', detail: expect.stringMatching(/Too many requests/) } });
    }
    const metrics = (await (await fetch(`${url}/metrics`)).json()) as { total_orders: number };
    expect(metrics.total_orders).toBe(50);
    const stored = (await scanOrders(services.store)).map((order) => order.order_id).sort();
    expect(stored).toEqual(created.map((answer) => answer.id).sort());
    expect(services.orderService.waitingCreates).toBe(0);
  });
});
