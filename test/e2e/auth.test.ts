import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../../lib/auth.ts';
import { dynamodbEndpoint, startService, uniqueTable, validOrder, type RunningService } from '../support.ts';

const KEYS = { writer: 'op_writer-secret-123', reader: 'op_reader-secret-456', ops: 'op_metrics-secret-789' };
const API_KEYS = [
  `writer:orders:write:${hashKey(KEYS.writer).toString('hex')}`,
  `reader:orders:read:${hashKey(KEYS.reader).toString('hex')}`,
  `ops:metrics:read:${hashKey(KEYS.ops).toString('hex')}`,
].join(',');

let service: RunningService;
let url: string;
beforeAll(async () => {
  service = await startService('start:standalone', {
    PORT: '0',
    DYNAMODB_ENDPOINT: dynamodbEndpoint(),
    TABLE_NAME: uniqueTable('auth'),
    API_KEYS,
    LOG_LEVEL: 'DEBUG',
  });
  url = service.url;
  const created = await call('POST', '/orders', { authorization: `Bearer ${KEYS.writer}` }, validOrder({ order_id: 'AUTH-1' }));
  expect(created.status).toBe(201);
}, 120_000);
afterAll(() => service?.stop());

async function call(method: string, path: string, headers: Record<string, string> = {}, body?: unknown) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, body: await response.json().catch(() => undefined) };
}

const endpoints = [
  { name: 'POST /orders', method: 'POST', path: '/orders', key: KEYS.writer, other: KEYS.reader, body: () => validOrder(), ok: 201 },
  { name: 'GET /orders', method: 'GET', path: '/orders?user_id=USER001', key: KEYS.reader, other: KEYS.writer, ok: 200 },
  { name: 'GET /orders/{id}', method: 'GET', path: '/orders/AUTH-1', key: KEYS.reader, other: KEYS.ops, ok: 200 },
  { name: 'GET /orders/{id}/status', method: 'GET', path: '/orders/AUTH-1/status', key: KEYS.reader, other: KEYS.writer, ok: 200 },
  { name: 'GET /metrics', method: 'GET', path: '/metrics', key: KEYS.ops, other: KEYS.reader, ok: 200 },
] as const;

describe('API keys over HTTP', () => {
  for (const endpoint of endpoints) {
    const send = (headers: Record<string, string>) =>
      call(endpoint.method, endpoint.path, headers, 'body' in endpoint ? endpoint.body() : undefined);

    it(`${endpoint.name}: 401 without a key, with a Bearer challenge`, async () => {
      const answer = await send({});
      expect(answer.status).toBe(401);
      expect(answer.headers.get('www-authenticate')).toBe('Bearer');
      expect(answer.headers.get('content-type')).toBe('application/problem+json');
      expect(answer.body).toEqual({
        type: 'about:blank',
        title: 'Unauthorized',
        status: 401,
        detail: 'Send an API key as Authorization: Bearer <key> (or x-api-key)',
      });
    });

    it(`${endpoint.name}: 401 with a wrong key`, async () => {
      const answer = await send({ authorization: 'Bearer op_not-a-key' });
      expect(answer.status).toBe(401);
      expect(answer.body).toMatchObject({ title: 'Unauthorized', detail: 'The API key is not valid' });
    });

    it(`${endpoint.name}: 403 with a valid key that lacks the scope`, async () => {
      const answer = await send({ authorization: `Bearer ${endpoint.other}` });
      expect(answer.status).toBe(403);
      expect(answer.body).toMatchObject({ type: 'about:blank', title: 'Forbidden', status: 403 });
    });

    it(`${endpoint.name}: ${endpoint.ok} with the right key, as Bearer or x-api-key`, async () => {
      expect((await send({ authorization: `Bearer ${endpoint.key}` })).status).toBe(endpoint.ok);
      expect((await send({ 'x-api-key': endpoint.key })).status).toBe(endpoint.ok);
    });
  }

  it('keeps GET /health public', async () => {
    expect(await call('GET', '/health')).toMatchObject({ status: 200, body: { status: 'ok' } });
  });

  it('never writes a key or an Authorization header to the logs', () => {
    const logs = service.output();
    expect(logs).toContain('"message":"request"');
    for (const key of Object.values(KEYS)) expect(logs).not.toContain(key);
    expect(logs.toLowerCase()).not.toContain('authorization');
  });
});

describe('secure by default', () => {
  it('refuses to listen beyond loopback without API keys', async () => {
    const failure = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'local/standalone.ts'], {
      env: { ...process.env, HOST: '0.0.0.0', PORT: '0', API_KEYS: '', DYNAMODB_ENDPOINT: dynamodbEndpoint(), TABLE_NAME: uniqueTable('open') },
      timeout: 60_000,
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );

    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toContain('HOST=0.0.0.0 would serve the API beyond this machine, but no API keys are configured.');
  });
});
