import { afterEach, describe, expect, it, vi } from 'vitest';
import { handler as getMetrics } from '../../functions/getMetrics.ts';
import { handler as health } from '../../functions/health.ts';
import { hashKey } from '../../lib/auth.ts';
import { HttpError } from '../../lib/http.ts';
import type { MemoryQueue } from '../../lib/queue/memoryQueue.ts';
import { createServices, installServices, type Services } from '../../lib/services.ts';
import { startSilentEndpoint } from '../awsLoopback.ts';
import { apiEvent, testConfig, testServices, validOrder } from '../support.ts';

// The composition root (lib/services.ts) in this process, where Stryker's mutants run: how `httpFunction` picks
// the keys and the host check, the services' own wiring. The contract suite checks the same over a child process.
const KEY = 'op_services-reader';
const API_KEYS = `reader:metrics:read:${hashKey(KEY).toString('hex')}`;
const FOREIGN_HOST = 'orders.example.com';

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** Installs services over a fresh table for the handlers to use (uninstalled after each test). */
const install = async (env: Record<string, string> = {}): Promise<Services> => {
  const services = await testServices(env);
  installServices(services);
  return services;
};

afterEach(() => {
  installServices(undefined);
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

describe('httpFunction, outside Lambda', () => {
  it('with auth off, serves only requests addressed to this machine', async () => {
    await install();

    expect((await health(apiEvent({ path: '/health', headers: { host: '127.0.0.1:3000' } }))).statusCode).toBe(200);
    const foreign = await getMetrics(apiEvent({ path: '/metrics', headers: { host: FOREIGN_HOST } }));
    expect(foreign.statusCode).toBe(421);
    expect(JSON.parse(foreign.body!)).toMatchObject({ title: 'Misdirected request' });
  });

  it('with API keys, serves a request for another host name that presents a valid key', async () => {
    await install({ API_KEYS });

    expect((await getMetrics(apiEvent({ path: '/metrics', headers: { host: FOREIGN_HOST, ...bearer(KEY) } }))).statusCode).toBe(200);
    expect((await getMetrics(apiEvent({ path: '/metrics', headers: { host: FOREIGN_HOST } }))).statusCode).toBe(401);
  });
});

describe('httpFunction, in Lambda', () => {
  it('serves a protected route to a valid key, and refuses a request without one with 401', async () => {
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'order-processing-staging-getMetrics');
    await install({ API_KEYS });

    expect((await getMetrics(apiEvent({ path: '/metrics', headers: { host: 'abc.execute-api.us-east-1.amazonaws.com', ...bearer(KEY) } }))).statusCode).toBe(200);
    const without = await getMetrics(apiEvent({ path: '/metrics', headers: { host: 'abc.execute-api.us-east-1.amazonaws.com' } }));
    expect(without.statusCode).toBe(401);
    expect(without.headers?.['www-authenticate']).toBe('Bearer');
  });

  it('serves a public route without reading the keys (its function may not read them)', async () => {
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'order-processing-staging-health');
    const services = await install({ API_KEYS });
    // As the pages' and health's functions would fare: they have no right to read the keys' parameter.
    const apiKeys = vi.fn(() => Promise.reject(new HttpError(503, 'Service unavailable', 'The API keys could not be read')));
    services.apiKeys = apiKeys;

    expect((await health(apiEvent({ path: '/health', headers: { host: 'abc.execute-api.us-east-1.amazonaws.com' } }))).statusCode).toBe(200);
    expect(apiKeys).not.toHaveBeenCalled();
  });
});

describe('the services', () => {
  it('store and answer a create the full queue could not take, with no runtime listening for a backlog', async () => {
    const { orderService, orders, queue } = await testServices({ QUEUE_CAPACITY: '1' });

    const first = await orderService.create(validOrder({ order_id: 'SVC-QUEUED' }));
    const second = await orderService.create(validOrder({ order_id: 'SVC-BACKLOG' }));

    expect([first.created, second.created]).toEqual([true, true]);
    expect((queue as MemoryQueue).size).toBe(1);
    expect(await orders.getState('SVC-BACKLOG')).toMatchObject({ status: 'PENDING' });
  });

  // The SSM client's `requestTimeout` only logs a warning in @smithy/node-http-handler 4.x unless
  // `throwOnRequestTimeout: true` is set: without it a read SSM never answers was never ended, and every later
  // request waited on it.
  it('give up on an SSM that never answers, with a 503, instead of holding the request', async () => {
    // Accepts the connection and says nothing: the SSM client's request timeout ends each of its two attempts.
    const silent = await startSilentEndpoint();
    try {
      vi.stubEnv('AWS_ENDPOINT_URL_SSM', silent.endpoint);
      vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
      vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
      const services = createServices(testConfig({ API_KEYS_PARAMETER: '/order-processing/test/silent', LOG_LEVEL: 'SILENT' }));

      const started = performance.now();
      await expect(services.apiKeys()).rejects.toMatchObject({ status: 503 });
      expect(performance.now() - started).toBeLessThan(20_000);
      expect(silent.connections()).toBeGreaterThanOrEqual(1);
    } finally {
      await silent.close();
    }
  }, 30_000);
});
