import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Context } from 'aws-lambda';
import { ASSETS } from '../../lib/assets.ts';
import { MAX_BODY_BYTES } from '../../lib/http.ts';
import { apiEvent, serveInProcess, testServices, validOrder } from '../support.ts';

// What the HTTP functions answer over real HTTP (the node:http adapter on a port-0 server, in this process, over
// DynamoDB Local): the checks of a body, each domain error's status, title and detail, and the headers of JSON
// answers and of pages. Each test uses order ids of its own.
let url: string;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ url, close } = await serveInProcess(await testServices()));
});

afterAll(() => close());

/** POSTs `body` (bytes as given) to /orders. */
const post = async (body: string | Buffer, contentType?: string) => {
  const response = await fetch(`${url}/orders`, { method: 'POST', headers: contentType ? { 'content-type': contentType } : {}, body });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
};

const get = async (path: string) => {
  const response = await fetch(`${url}${path}`);
  return { status: response.status, headers: response.headers, text: await response.text() };
};

const orderJson = (overrides: Record<string, unknown>) => JSON.stringify(validOrder(overrides));

describe('the body of POST /orders', () => {
  it.each([
    ['application/json', 'HB-JSON'],
    ['Application/JSON; charset=utf-8', 'HB-CASE'],
    ['application/vnd.api+json', 'HB-SUFFIX'],
    ['application/json ; charset=utf-8', 'HB-SPACE'],
  ])('takes JSON sent as %s', async (contentType, orderId) => {
    const answer = await post(orderJson({ order_id: orderId }), contentType);

    expect(answer.status).toBe(201);
    expect(answer.body).toMatchObject({ order_id: orderId, status: 'PENDING' });
  });

  it.each([
    ['no content type', undefined],
    ['text/plain', 'text/plain'],
    ['a JSON suffix only in the middle', 'application/x+json-seq'],
    ['a JSON type with nothing before the suffix', 'application/+json'],
    ['a JSON suffix after text', 'text/x+json'],
    ['a type that only ends like a JSON one', 'x-application/vnd.api+json'],
  ])('refuses %s with 415 and says what it accepts', async (_label, contentType) => {
    const answer = await post(Buffer.from(orderJson({ order_id: 'HB-415' })), contentType);

    expect(answer.status).toBe(415);
    expect(answer.headers.get('accept-post')).toBe('application/json');
    expect(answer.body).toEqual({
      type: 'about:blank',
      title: 'Unsupported media type',
      status: 415,
      detail: 'Send the order as JSON with Content-Type: application/json',
    });
    expect((await get('/orders/HB-415')).status).toBe(404);
  });

  it('reads a body of exactly 64 KiB, and refuses one a byte longer with 413', async () => {
    // An order padded with spaces (JSON ignores them) to the byte.
    const padded = (orderId: string, bytes: number) => {
      const text = orderJson({ order_id: orderId });
      return text + ' '.repeat(bytes - Buffer.byteLength(text));
    };

    const fits = await post(padded('HB-64K', MAX_BODY_BYTES), 'application/json');
    const over = await post(padded('HB-64K-1', MAX_BODY_BYTES + 1), 'application/json');

    expect(fits.status).toBe(201);
    expect(over.status).toBe(413);
    expect(over.body).toEqual({ type: 'about:blank', title: 'Payload too large', status: 413, detail: 'The body must be at most 65536 bytes' });
    expect((await get('/orders/HB-64K-1')).status).toBe(404);
  });

  it('refuses a body that is not UTF-8 with 400, even inside a JSON string', async () => {
    const bad = Buffer.concat([Buffer.from('{"order_id":"HB-UTF8","user_id":"'), Buffer.from([0xff]), Buffer.from('","item_ids":[1],"total_amount":1}')]);

    const answer = await post(bad, 'application/json');

    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ type: 'about:blank', title: 'Malformed JSON', status: 400, detail: 'The body is not valid UTF-8' });
    expect((await get('/orders/HB-UTF8')).status).toBe(404);
  });

  it('refuses an empty body with 400: the JSON ended before it began', async () => {
    const answer = await post(Buffer.alloc(0), 'application/json');

    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ type: 'about:blank', title: 'Malformed JSON', status: 400, detail: 'The body is not valid JSON: Unexpected end of JSON input' });
  });

  it('refuses malformed JSON with 400, saying where it broke', async () => {
    const answer = await post('{"user_id": ', 'application/json');

    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ type: 'about:blank', title: 'Malformed JSON', status: 400, detail: expect.stringMatching(/^The body is not valid JSON: \S/) });
  });
});

describe('domain errors over HTTP', () => {
  it('answers an invalid order with 400 and every bad field', async () => {
    const answer = await post(JSON.stringify({ order_id: 'HB-BAD', user_id: 'U', item_ids: [], total_amount: -1 }), 'application/json');

    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({
      type: 'about:blank',
      title: 'Invalid order',
      status: 400,
      detail: '2 fields are invalid',
      errors: [
        { field: 'item_ids', message: 'must have at least 1 item' },
        { field: 'total_amount', message: 'must be >= 0' },
      ],
    });
  });

  it('answers an invalid query with 400 and its field', async () => {
    const answer = await get('/orders?user_id=');

    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text)).toEqual({ type: 'about:blank', title: 'Invalid query', status: 400, detail: '1 field is invalid', errors: [{ field: 'user_id', message: expect.any(String) }] });
  });

  it('answers an unknown order with 404 naming it, and no errors list', async () => {
    const answer = await get('/orders/HB-NOWHERE');

    expect(answer.status).toBe(404);
    expect(JSON.parse(answer.text)).toEqual({ type: 'about:blank', title: 'Order not found', status: 404, detail: 'No order has the id HB-NOWHERE' });
  });

  it('answers a reused id with other content with 409 naming it', async () => {
    expect((await post(orderJson({ order_id: 'HB-TAKEN' }), 'application/json')).status).toBe(201);

    const answer = await post(orderJson({ order_id: 'HB-TAKEN', total_amount: 1 }), 'application/json');

    expect(answer.status).toBe(409);
    expect(answer.body).toEqual({ type: 'about:blank', title: 'Order conflict', status: 409, detail: 'Order HB-TAKEN already exists with different content' });
  });
});

/** The headers that say how a browser may use an answer. */
const contentHeaders = (headers: Headers) => ({
  type: headers.get('content-type'),
  cache: headers.get('cache-control'),
  sniff: headers.get('x-content-type-options'),
  csp: headers.get('content-security-policy'),
  referrer: headers.get('referrer-policy'),
});

describe('headers', () => {
  it('sends JSON answers as application/json, never cached, with the request id', async () => {
    await post(orderJson({ order_id: 'HB-HEADERS' }), 'application/json');

    const answer = await get('/orders/HB-HEADERS');

    expect(answer.status).toBe(200);
    expect({ type: answer.headers.get('content-type'), cache: answer.headers.get('cache-control') }).toEqual({ type: 'application/json', cache: 'no-store' });
    expect(answer.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('serves a page with a content security policy and no referrer, revalidated on every load', async () => {
    const page = await get('/');

    expect(page.status).toBe(200);
    expect(contentHeaders(page.headers)).toEqual({
      type: expect.stringMatching(/^text\/html/),
      cache: 'no-cache',
      sniff: 'nosniff',
      csp: "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
      referrer: 'no-referrer',
    });
  });

  it('serves a stylesheet without the page-only headers', async () => {
    const css = await get('/assets/app.css');

    expect(css.status).toBe(200);
    expect(contentHeaders(css.headers)).toEqual({ type: expect.stringMatching(/^text\/css/), cache: 'no-cache', sniff: 'nosniff', csp: null, referrer: null });
  });
});

describe('the files of the dashboard and the reference page', () => {
  const fileOf = (name: string) => readFileSync(new URL(`../../lib/web/${name}`, import.meta.url), 'utf8');

  it('serves each with its own bytes and media type, the same on every request', async () => {
    for (const [name, type] of Object.entries(ASSETS)) {
      const file = fileOf(name);
      for (const answer of [await get(`/assets/${name}`), await get(`/assets/${name}`)]) {
        expect({ name, status: answer.status, type: answer.headers.get('content-type'), same: answer.text === file }).toEqual({ name, status: 200, type, same: true });
      }
    }
  });

  it('answers 404 for a name that is not one of them: unknown, a path out of the directory, an inherited property', async () => {
    for (const name of ['nope.js', '..%2Forders.ts', '%2E%2E%2Fassets.ts', 'constructor']) {
      const answer = await get(`/assets/${name}`);
      expect({ name, status: answer.status, type: answer.headers.get('content-type') }).toEqual({ name, status: 404, type: 'application/problem+json' });
    }
  });

  it('hands the Lambda runtime each file as a string body, which API Gateway takes (it would serialise a Buffer as an object)', async () => {
    // A fresh copy of the function, as a cold Lambda has: its files not read yet (each is read once a process).
    vi.resetModules();
    const { handler: dashboard } = await import('../../functions/dashboard.ts');
    for (const name of Object.keys(ASSETS)) {
      const event = apiEvent({ routeKey: 'GET /assets/{name}', path: `/assets/${name}`, pathParameters: { name } });
      const result = await dashboard(event, {} as Context);
      expect({ name, statusCode: result.statusCode, body: result.body }).toEqual({ name, statusCode: 200, body: fileOf(name) });
    }
  });
});
