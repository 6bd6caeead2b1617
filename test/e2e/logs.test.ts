import { afterAll, describe, expect, it } from 'vitest';
import { dynamodbEndpoint, pollUntil, startService, uniqueTable, type RunningService } from '../support.ts';

// What an operator sees of the standalone runtime: the start banner and the JSON log lines.

const spawned: RunningService[] = [];

const start = async (env: Record<string, string>) => {
  const service = await startService(
    'start:standalone',
    { PORT: '0', DYNAMODB_ENDPOINT: dynamodbEndpoint(), TABLE_NAME: uniqueTable('logs'), PROCESSING_MIN_MS: '5', PROCESSING_MAX_MS: '20', ...env },
    { timeoutMs: 90_000 },
  );
  spawned.push(service);
  return service;
};

afterAll(async () => {
  await Promise.all(spawned.map((service) => service.stop()));
}, 60_000);

type LogLine = Record<string, unknown>;

/** The JSON lines of the output; anything else (the banner, Node's warnings) is left out. */
const logLines = (output: string): LogLine[] =>
  output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);

describe('start:standalone, for operators', () => {
  it('prints the URLs of the API, the dashboard and the docs, and each answers', async () => {
    const service = await start({ LOG_LEVEL: 'WARN' });

    const banner = /API\s+(\S+)\n\s+Dashboard\s+(\S+)\n\s+API docs\s+(\S+) \(OpenAPI document: (\S+)\)/.exec(service.output());
    expect(banner?.slice(1)).toEqual([`${service.url}/orders`, `${service.url}/`, `${service.url}/docs`, `${service.url}/openapi.json`]);
    const [, api, dashboard, docs, openapi] = banner!;
    expect((await fetch(`${api}?user_id=nobody`)).status).toBe(200);
    expect((await fetch(dashboard!)).headers.get('content-type')).toMatch(/^text\/html/);
    expect((await fetch(docs!)).headers.get('content-type')).toMatch(/^text\/html/);
    expect((await fetch(openapi!)).headers.get('content-type')).toMatch(/^application\/json/);
    // WARN: requests and transitions are INFO, so nothing was logged for them.
    expect(logLines(service.output()).filter((line) => line.level === 'INFO')).toEqual([]);
  });

  it('logs one JSON line per request and per transition, with request id, order id and cold start, never a body', async () => {
    const service = await start({ LOG_LEVEL: 'INFO', SERVICE_NAME: 'orders-under-test' });
    const secretish = 'SHOULD-NOT-BE-LOGGED';
    const created = await fetch(`${service.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${secretish}` },
      body: JSON.stringify({ order_id: 'LOG-1', user_id: secretish, item_ids: [secretish], total_amount: 12.34 }),
    });
    expect(created.status).toBe(201);
    const missing = await fetch(`${service.url}/orders/NOPE?token=${secretish}`);
    expect(missing.status).toBe(404);

    const lines = await pollUntil(
      () => {
        const all = logLines(service.output());
        return all.some((line) => line.message === 'order completed') ? all : undefined;
      },
      { what: 'the order to complete' },
    );

    for (const line of lines) {
      expect(line).toMatchObject({ level: expect.any(String), message: expect.any(String), service: 'orders-under-test', timestamp: expect.any(String) });
    }
    const requests = lines.filter((line) => line.message === 'request');
    expect(requests).toEqual([
      {
        level: 'INFO',
        message: 'request',
        service: 'orders-under-test',
        timestamp: expect.any(String),
        sampling_rate: 0,
        request_id: created.headers.get('x-request-id'),
        cold_start: true,
        method: 'POST',
        path: '/orders',
        status: 201,
        duration_ms: expect.any(Number),
      },
      expect.objectContaining({ request_id: missing.headers.get('x-request-id'), cold_start: false, method: 'GET', path: '/orders/NOPE', status: 404 }),
    ]);
    const transitions = lines.filter((line) => line.order_id === 'LOG-1');
    expect(transitions.map((line) => [line.message, line.status])).toEqual([
      ['order processing', 'PROCESSING'],
      ['order completed', 'COMPLETED'],
    ]);
    expect(service.output()).not.toContain(secretish);
    expect(service.output()).not.toContain('12.34');
  });
});
