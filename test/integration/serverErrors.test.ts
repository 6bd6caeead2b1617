import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../../lib/auth.ts';
import { openApiDocument } from '../../lib/openapi.ts';
import { createServices, installServices, type Services } from '../../lib/services.ts';
import { OpenApiValidator, type Answer } from '../openapiValidator.ts';
import { serveInProcess, testConfig, validOrder } from '../support.ts';

// The answers the contract suite cannot provoke in a healthy service without API keys (5xx, 401, 403),
// through the real node:http adapter on a port-0 server, held to the OpenAPI document like every other answer.
const validator = new OpenApiValidator(openApiDocument());
let url: string;
let services: Services;
let close: () => Promise<void>;

beforeAll(async () => {
  // Nothing listens on port 1: every store call fails as it does when DynamoDB is away.
  services = createServices(testConfig({ DYNAMODB_ENDPOINT: 'http://127.0.0.1:1' }));
  ({ url, close } = await serveInProcess(services));
});

afterAll(() => close());

const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> => {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const contentType = response.headers.get('content-type') ?? '';
  return { method, path: path.split('?')[0]!, status: response.status, contentType, headers: response.headers, body: await response.json() };
};

describe('server errors, as the OpenAPI document says', () => {
  it.each([
    ['POST', '/orders', validOrder()],
    ['GET', '/orders?user_id=USER001', undefined],
    ['GET', '/orders/ORD001', undefined],
    ['GET', '/orders/ORD001/status', undefined],
    ['GET', '/metrics', undefined],
    ['GET', '/health', undefined],
  ])('answers %s %s with 503 and Retry-After while the store is away', async (method, path, body) => {
    const answer = await call(method, path, body);

    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('1');
    expect(answer.body).toEqual({
      type: 'about:blank',
      title: 'Service unavailable',
      status: 503,
      detail: expect.any(String),
      request_id: answer.headers.get('x-request-id'),
    });
    expect(validator.check(answer)).toEqual([]);
  });

  it('answers an unexpected failure with a 500 that carries only the request id', async () => {
    const original = services.orderService.get;
    services.orderService.get = () => Promise.reject(new TypeError('secret internal detail'));
    try {
      const answer = await call('GET', '/orders/ORD001');

      expect(answer.status).toBe(500);
      expect(JSON.stringify(answer.body)).not.toContain('secret');
      expect(answer.body).toMatchObject({ status: 500, request_id: answer.headers.get('x-request-id') });
      expect(validator.check(answer)).toEqual([]);
    } finally {
      services.orderService.get = original;
    }
  });
});

describe('answers without a valid API key, as the OpenAPI document says', () => {
  const reader = 'op_reader-key-for-tests';

  beforeAll(() => {
    const withKeys = createServices(
      testConfig({ DYNAMODB_ENDPOINT: 'http://127.0.0.1:1', API_KEYS: `reader:orders:read:${hashKey(reader).toString('hex')}` }),
    );
    installServices(withKeys);
  });

  afterAll(() => installServices(services));

  it.each([
    ['POST', '/orders', validOrder()],
    ['GET', '/orders?user_id=USER001', undefined],
    ['GET', '/orders/ORD001', undefined],
    ['GET', '/metrics', undefined],
  ])('answers %s %s without a key with 401 and a Bearer challenge', async (method, path, body) => {
    const answer = await call(method, path, body);

    expect(answer.status).toBe(401);
    expect(answer.headers.get('www-authenticate')).toBe('Bearer');
    expect(validator.check(answer)).toEqual([]);
  });

  it('answers a key without the scope with 403', async () => {
    const answer = await call('GET', '/metrics', undefined, { authorization: `Bearer ${reader}` });

    expect(answer.status).toBe(403);
    expect(validator.check(answer)).toEqual([]);
  });

  it('serves the pages and their files without a key, but not the OpenAPI document', async () => {
    for (const path of ['/', '/docs', '/assets/app.css', '/assets/docs.js']) {
      const response = await fetch(`${url}${path}`);
      expect(response.status, path).toBe(200);
    }
    const document = await call('GET', '/openapi.json');
    expect(document.status).toBe(401);
    expect(validator.check(document)).toEqual([]);
  });
});
