import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../../lib/auth.ts';
import { getWithHost, validOrder, type RunningService } from '../support.ts';

/** The keys behind API_KEYS. */
export const KEYS = { writer: 'op_writer-secret-123', reader: 'op_reader-secret-456', ops: 'op_metrics-secret-789' };

/** The keys the suite's service is started with (`API_KEYS`): one scope each. */
export const API_KEYS = [
  `writer:orders:write:${hashKey(KEYS.writer).toString('hex')}`,
  `reader:orders:read:${hashKey(KEYS.reader).toString('hex')}`,
  `ops:metrics:read:${hashKey(KEYS.ops).toString('hex')}`,
].join(',');

const endpoints = [
  { name: 'POST /orders', method: 'POST', path: '/orders', key: KEYS.writer, other: KEYS.reader, body: () => validOrder(), ok: 201 },
  { name: 'GET /orders', method: 'GET', path: '/orders?user_id=USER001', key: KEYS.reader, other: KEYS.writer, ok: 200 },
  { name: 'GET /orders/{id}', method: 'GET', path: '/orders/AUTH-1', key: KEYS.reader, other: KEYS.ops, ok: 200 },
  { name: 'GET /orders/{id}/status', method: 'GET', path: '/orders/AUTH-1/status', key: KEYS.reader, other: KEYS.writer, ok: 200 },
  { name: 'GET /metrics', method: 'GET', path: '/metrics', key: KEYS.ops, other: KEYS.reader, ok: 200 },
  { name: 'GET /openapi.json', method: 'GET', path: '/openapi.json', key: KEYS.ops, other: KEYS.writer, ok: 200 },
] as const;

/**
 * The API key rules over real HTTP, for a runtime: `start` runs it with `env` (API_KEYS and LOG_LEVEL
 * set here); `refuseOpen` runs its start command with HOST=0.0.0.0 and no keys, and returns how it ended.
 */
export function describeAuth(
  runtime: string,
  start: (env: Record<string, string>) => Promise<RunningService>,
  refuseOpen: (env: Record<string, string>) => Promise<{ code: number | null; output: string }>,
): void {
  describe(`${runtime}: API keys over HTTP`, () => {
    let service: RunningService;
    beforeAll(async () => {
      service = await start({ API_KEYS, LOG_LEVEL: 'DEBUG' });
      const created = await call('POST', '/orders', { authorization: `Bearer ${KEYS.writer}` }, validOrder({ order_id: 'AUTH-1' }));
      expect(created.status).toBe(201);
    }, 180_000);
    afterAll(() => service?.stop());

    async function call(method: string, path: string, headers: Record<string, string> = {}, body?: unknown) {
      const response = await fetch(`${service.url}${path}`, {
        method,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: response.status, headers: response.headers, body: await response.json().catch(() => undefined) };
    }

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

    it('keeps GET /health and the pages public', async () => {
      expect(await call('GET', '/health')).toMatchObject({ status: 200, body: { status: 'ok' } });
      for (const path of ['/', '/docs', '/assets/docs.js']) expect((await fetch(`${service.url}${path}`)).status, path).toBe(200);
    });

    it('serves any Host header: with keys, the key is what protects the API', async () => {
      const answer = await getWithHost(`${service.url}/metrics`, 'api.example:443', { authorization: `Bearer ${KEYS.ops}` });
      expect(answer.status).toBe(200);
    });

    it('never writes a key or an Authorization header to the logs', () => {
      const logs = service.output();
      expect(logs).toContain('"message":"request"');
      for (const key of Object.values(KEYS)) expect(logs).not.toContain(key);
      expect(logs.toLowerCase()).not.toContain('authorization');
    });
  });

  describe(`${runtime}: secure by default`, () => {
    it('refuses to listen beyond loopback without API keys', async () => {
      const ended = await refuseOpen({ HOST: '0.0.0.0', API_KEYS: '' });
      expect(ended.code).not.toBe(0);
      expect(ended.output).toMatch(/Listening on 0\.0\.0\.0:\d+ would serve the API beyond this machine, but no API keys are configured\./);
    }, 120_000);
  });
}
