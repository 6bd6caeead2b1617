import type { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { Overloaded, StoreUnavailable } from '../../lib/errors.ts';
import { errorResponse, httpHandler, json, type HttpHandler } from '../../lib/http.ts';

// The wrapper every HTTP function goes through, called as Lambda calls it: what it answers and the one line it
// logs per request. (Bodies, media types and the error mapping over real HTTP: test/integration/httpAnswers.test.ts.)
// lib/http.ts is imported once, as a module of constants: Stryker leaves those out of its score (ignoreStatic)
// unless a test loads the module itself.

interface Line {
  level: 'info' | 'warn' | 'error';
  message: string;
  fields: Record<string, unknown>;
}

/** A logger that keeps what it is told. */
const recorder = () => {
  const lines: Line[] = [];
  const at = (level: Line['level']) => (message: string, fields: Record<string, unknown> = {}) => void lines.push({ level, message, fields });
  const logger = { info: at('info'), warn: at('warn'), error: at('error') } as unknown as Logger;
  return { logger, lines };
};

const event = (requestId?: string): APIGatewayProxyEventV2 =>
  ({
    rawPath: '/orders/ORD001',
    headers: {},
    ...(requestId && { requestContext: { requestId, http: { method: 'GET' } } }),
  }) as unknown as APIGatewayProxyEventV2;

const ok: HttpHandler = async () => json(200, { ok: true });

describe('httpHandler', () => {
  it('answers with the request id of the invocation first, then of the event, else "unknown"', async () => {
    const { logger } = recorder();
    const handle = httpHandler(() => logger, () => 10_000, ok);

    const ids = [
      (await handle(event('from-event'), { awsRequestId: 'from-context' } as Context)).headers?.['x-request-id'],
      (await handle(event('from-event'))).headers?.['x-request-id'],
      (await handle(event())).headers?.['x-request-id'],
    ];

    expect(ids).toEqual(['from-context', 'from-event', 'unknown']);
  });

  it('logs one line per request: its id, cold start, method, path, status, duration (cold start: test/unit/coldStart.test.ts)', async () => {
    const { logger, lines } = recorder();
    const handle = httpHandler(() => logger, () => 10_000, ok);

    await handle(event('first'));
    await handle(event('second'));

    expect(lines).toEqual([
      { level: 'info', message: 'request', fields: { request_id: 'first', cold_start: expect.any(Boolean), method: 'GET', path: '/orders/ORD001', status: 200, duration_ms: expect.any(Number) } },
      { level: 'info', message: 'request', fields: { request_id: 'second', cold_start: false, method: 'GET', path: '/orders/ORD001', status: 200, duration_ms: expect.any(Number) } },
    ]);
  });

  it('logs a request without a method (an event made by hand) too', async () => {
    const { logger, lines } = recorder();

    await httpHandler(() => logger, () => 10_000, ok)({ rawPath: '/health', requestContext: {} } as unknown as APIGatewayProxyEventV2);

    expect(lines).toEqual([{ level: 'info', message: 'request', fields: expect.objectContaining({ method: undefined, path: '/health', status: 200 }) }]);
  });

  it('logs how long the request took, in milliseconds to a tenth', async () => {
    const { logger, lines } = recorder();
    // Work that takes at least 50 ms by design (a timer may fire up to a millisecond early).
    const slow: HttpHandler = () => new Promise((resolve) => setTimeout(() => resolve(json(200, {})), 50));

    const started = performance.now();
    await httpHandler(() => logger, () => 10_000, slow)(event('slow'));
    const took = performance.now() - started;

    const duration = lines[0]!.fields.duration_ms as number;
    expect(duration).toBeGreaterThanOrEqual(49);
    expect(duration).toBeLessThanOrEqual(took + 0.05);
    expect(Math.round(duration * 10)).toBeCloseTo(duration * 10, 6);
  });

  it('answers 503 with Retry-After once its deadline passes, and leaves no timer behind when answered in time', async () => {
    const { logger } = recorder();
    const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;

    const before = timers();
    const answered = await httpHandler(() => logger, () => 60_000, ok)(event('quick'));
    expect(answered.statusCode).toBe(200);
    expect(timers()).toBe(before);

    const late = await httpHandler(() => logger, () => 50, () => new Promise(() => {}))(event('hung'));
    expect(late.statusCode).toBe(503);
    expect(late.headers).toMatchObject({ 'retry-after': '1', 'x-request-id': 'hung' });
    expect(JSON.parse(late.body!)).toMatchObject({ detail: 'The order store did not answer in time; retry shortly', request_id: 'hung' });
  });
});

describe('errorResponse', () => {
  it('logs a store outage as a warning with the request id, and a shed request not at all', () => {
    const { logger, lines } = recorder();
    const outage = new StoreUnavailable();

    expect(errorResponse(outage, 'R-1', logger).statusCode).toBe(503);
    expect(errorResponse(new Overloaded(), 'R-2', logger).statusCode).toBe(503);

    expect(lines).toEqual([{ level: 'warn', message: 'store unavailable', fields: { request_id: 'R-1', error: outage } }]);
  });

  it('logs an unexpected error with the request id the 500 carries', () => {
    const { logger, lines } = recorder();
    const bug = new TypeError('secret internal detail');

    const answer = errorResponse(bug, 'R-3', logger);

    expect(answer.statusCode).toBe(500);
    expect(JSON.parse(answer.body!)).toMatchObject({ request_id: 'R-3' });
    expect(lines).toEqual([{ level: 'error', message: 'unhandled error', fields: { request_id: 'R-3', error: bug } }]);
  });

  it('answers an error that is no Error object with a 500 too', () => {
    const { logger } = recorder();
    expect(errorResponse('a string thrown', 'R-4', logger).statusCode).toBe(500);
  });
});
