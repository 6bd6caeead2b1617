import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { handler as createOrder } from '../../functions/createOrder.ts';
import { handler as getMetrics } from '../../functions/getMetrics.ts';
import { handler as getStatus } from '../../functions/getStatus.ts';
import { handler as health } from '../../functions/health.ts';
import { handler as listOrders } from '../../functions/listOrders.ts';
import { hashKey } from '../../lib/auth.ts';
import type { HttpHandler } from '../../lib/http.ts';
import { installServices, type Services } from '../../lib/services.ts';
import { apiEvent, testServices, validOrder } from '../support.ts';

const KEY = 'op_reader-and-writer';
const API_KEYS = `all:orders:read+orders:write+metrics:read:${hashKey(KEY).toString('hex')}`;

/**
 * An event made by hand, as anyone can send to serverless-offline's invoke endpoint (or to Lambda's Invoke
 * API with IAM rights): a route key the function does not serve, with the path of one it does.
 */
const forged = (routeKey: string, headers: Record<string, string> = {}) =>
  apiEvent({
    routeKey,
    path: '/orders/FORGED-1',
    headers: { 'content-type': 'application/json', ...headers },
    query: { user_id: 'USER001' },
    pathParameters: { order_id: 'FORGED-1' },
    body: JSON.stringify(validOrder({ order_id: 'FORGED-2' })),
  });

const functions: [string, HttpHandler][] = [
  ['getStatus', getStatus],
  ['listOrders', listOrders],
  ['getMetrics', getMetrics],
  ['createOrder', createOrder],
];

describe.each([
  ['with API keys', { API_KEYS }, 401],
  ['with auth off', {}, 403],
])('a hand-made event for a route a function does not serve, %s', (_label, env, status) => {
  let services: Services;
  beforeAll(async () => {
    services = await testServices(env);
    installServices(services);
    await services.orderService.create(validOrder({ order_id: 'FORGED-1' }));
  });
  afterAll(() => installServices(undefined));

  it.each(functions)(`%s refuses the route key $default with ${status}, reading and writing nothing`, async (_name, handler) => {
    const answer = await handler(forged('$default'));

    expect(answer.statusCode).toBe(status);
    expect(answer.headers?.['content-type']).toBe('application/problem+json');
    expect(answer.body).not.toContain('USER001');
    expect(await services.orders.get('FORGED-2')).toBeUndefined();
  });

  it.each(functions)('%s refuses a route key it does not serve even with a key that has every scope', async (_name, handler) => {
    const answer = await handler(forged('GET /health', { authorization: `Bearer ${KEY}` }));

    expect(answer.statusCode).toBe(403);
    expect(JSON.parse(answer.body!)).toMatchObject({ title: 'Forbidden', detail: 'This function serves no such route' });
  });
});

describe('a Lambda function without API keys', () => {
  let services: Services;
  beforeAll(async () => {
    services = await testServices();
    installServices(services);
    await services.orderService.create(validOrder({ order_id: 'FORGED-1' }));
  });
  afterAll(() => installServices(undefined));
  afterEach(() => vi.unstubAllEnvs());

  /** The request each function serves, as API Gateway sends it. */
  const served: [string, HttpHandler, string][] = [
    ['getStatus', getStatus, 'GET /orders/{order_id}'],
    ['listOrders', listOrders, 'GET /orders'],
    ['getMetrics', getMetrics, 'GET /metrics'],
    ['createOrder', createOrder, 'POST /orders'],
  ];

  it.each(served)('%s fails closed: 401, whatever the Host, and nothing written', async (_name, handler, routeKey) => {
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'order-processing-staging-fn');

    const answer = await handler(forged(routeKey, { host: 'abc.execute-api.us-east-1.amazonaws.com' }));

    expect(answer.statusCode).toBe(401);
    expect(answer.headers?.['www-authenticate']).toBe('Bearer');
    expect(await services.orders.get('FORGED-2')).toBeUndefined();
  });

  it('serves its public route without a key', async () => {
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'order-processing-staging-health');

    expect((await health(forged('GET /health', { host: 'abc.execute-api.us-east-1.amazonaws.com' }))).statusCode).toBe(200);
  });

  it('is open under serverless-offline, which sets both variables, to a request addressed to this machine', async () => {
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'order-processing-local-getStatus');
    vi.stubEnv('IS_OFFLINE', 'true');

    expect((await getStatus(forged('GET /orders/{order_id}'))).statusCode).toBe(200);
  });
});
