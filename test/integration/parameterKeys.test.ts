import { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { handler as getMetrics } from '../../functions/getMetrics.ts';
import { hashKey } from '../../lib/auth.ts';
import { parameterKeys } from '../../lib/parameterKeys.ts';
import { createServices, installServices, type Services } from '../../lib/services.ts';
import { awsError, LOOPBACK_CREDENTIALS, startAwsLoopback, type AwsLoopback } from '../awsLoopback.ts';
import { apiEvent, testConfig, testServices } from '../support.ts';

// SSM itself cannot run here: a loopback HTTP server poses as it, so the SDK's real request and response
// serialisation runs. The clock is the one thing faked, to step past the maximum age without waiting.
const PARAMETER = '/order-processing/test/api-keys';
const MAX_AGE_MS = 5 * 60_000;
const entry = (name: string, key: string) => `${name}:metrics:read:${hashKey(key).toString('hex')}`;

/** What the stand-in for SSM answers next: the parameter's value, or an error as SSM sends one. */
let answer: { value: string } | { status: number; type: string };
let ssm: AwsLoopback;

beforeAll(async () => {
  ssm = await startAwsLoopback(() =>
    'value' in answer
      ? { body: { Parameter: { Name: PARAMETER, Type: 'SecureString', Value: answer.value, Version: ssm.requests.length } } }
      : awsError(answer.status, answer.type),
  );
});
afterAll(() => ssm.close());

describe('API keys from SSM, re-read as they age', () => {
  let services: Services;
  let now = 0;
  beforeEach(async () => {
    ssm.requests.length = 0;
    now = 1_000_000;
    // The failed reads are logged as errors, which here are expected.
    services = await testServices({ LOG_LEVEL: 'SILENT' });
    services.apiKeys = parameterKeys({
      // One attempt per read, so that every read is one request to count.
      client: new SSMClient({ endpoint: ssm.endpoint, region: 'us-east-1', maxAttempts: 1, credentials: LOOPBACK_CREDENTIALS }),
      name: PARAMETER,
      maxAgeMs: MAX_AGE_MS,
      logger: services.logger,
      now: () => now,
    });
    installServices(services);
  });
  afterEach(() => installServices(undefined));

  const metricsWith = async (key: string) => {
    const result = await getMetrics(apiEvent({ path: '/metrics', headers: { authorization: `Bearer ${key}` } }));
    return { status: result.statusCode, retryAfter: result.headers?.['retry-after'] };
  };

  it('reads the parameter with decryption, through the SDK', async () => {
    answer = { value: entry('ops', 'key-a') };
    expect((await metricsWith('key-a')).status).toBe(200);
    expect(ssm.requests).toEqual([{ target: 'AmazonSSM.GetParameter', body: { Name: PARAMETER, WithDecryption: true } }]);
  });

  it('stops accepting a revoked key once the keys it holds reach the maximum age, not before', async () => {
    answer = { value: `${entry('a', 'key-a')},${entry('b', 'key-b')}` };
    expect((await metricsWith('key-a')).status).toBe(200);

    answer = { value: entry('b', 'key-b') };
    now += MAX_AGE_MS - 1;
    expect((await metricsWith('key-a')).status).toBe(200);
    expect(ssm.requests).toHaveLength(1);

    now += 1;
    expect((await metricsWith('key-a')).status).toBe(401);
    expect((await metricsWith('key-b')).status).toBe(200);
    expect(ssm.requests).toHaveLength(2);
  });

  it('keeps the known keys when a re-read fails, and backs off before the next read', async () => {
    answer = { value: entry('a', 'key-a') };
    expect((await metricsWith('key-a')).status).toBe(200);

    answer = { status: 400, type: 'ThrottlingException' };
    now += MAX_AGE_MS;
    expect((await metricsWith('key-a')).status).toBe(200);
    expect(ssm.requests).toHaveLength(2);

    // Back-off: 1 s after the first failure, then 2 s; meanwhile no read at all.
    now += 999;
    expect((await metricsWith('key-a')).status).toBe(200);
    expect(ssm.requests).toHaveLength(2);
    now += 1;
    expect((await metricsWith('key-a')).status).toBe(200);
    expect(ssm.requests).toHaveLength(3);
    now += 1_999;
    expect((await metricsWith('key-a')).status).toBe(200);
    expect(ssm.requests).toHaveLength(3);

    answer = { value: entry('b', 'key-b') };
    now += 1;
    expect((await metricsWith('key-a')).status).toBe(401);
    expect(ssm.requests).toHaveLength(4);
  });

  it('answers 503 with Retry-After until a first read succeeds; a burst makes one read per back-off', async () => {
    answer = { status: 500, type: 'InternalServerError' };
    const burst = await Promise.all(Array.from({ length: 20 }, () => metricsWith('key-a')));
    expect(burst.map((result) => result.status)).toEqual(Array(20).fill(503));
    expect(burst[0]!.retryAfter).toBe('1');
    expect(ssm.requests).toHaveLength(1);

    expect((await metricsWith('key-a')).status).toBe(503);
    expect(ssm.requests).toHaveLength(1);

    answer = { value: entry('a', 'key-a') };
    now += 1_000;
    expect((await metricsWith('key-a')).status).toBe(200);
    expect(ssm.requests).toHaveLength(2);
  });

  it('says in its 503 why, and how long until the next read: the back-off, doubled by each failure', async () => {
    answer = { status: 500, type: 'InternalServerError' };
    const refusal = (retryAfter: string) => ({ status: 503, title: 'Service unavailable', message: 'The API keys could not be read; retry shortly', headers: { 'retry-after': retryAfter } });

    const first = await services.apiKeys().catch((error: unknown) => error);
    expect(first).toMatchObject(refusal('1'));
    expect((first as Error).cause).toMatchObject({ name: 'InternalServerError' });
    now += 1_000;
    await expect(services.apiKeys()).rejects.toMatchObject(refusal('2'));
    now += 1_500;
    await expect(services.apiKeys()).rejects.toMatchObject(refusal('1'));
    expect(ssm.requests).toHaveLength(2);
  });
});

describe('the composition root', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('reads the keys from API_KEYS_PARAMETER when it is set (the cloud)', async () => {
    answer = { value: entry('ops', 'key-a') };
    ssm.requests.length = 0;
    // The SDK's own setting for a service's endpoint, as a developer would point it at a stand-in.
    vi.stubEnv('AWS_ENDPOINT_URL_SSM', ssm.endpoint);
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
    const services = createServices(testConfig({ API_KEYS_PARAMETER: PARAMETER }));

    expect((await services.apiKeys()).map((key) => key.name)).toEqual(['ops']);
    expect(ssm.requests).toHaveLength(1);
  });
});
