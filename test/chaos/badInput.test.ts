import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ORDER_ID_PATTERN } from '../../lib/order.ts';
import { dynamodbEndpoint, uniqueTable, validOrder, type RunningService } from '../support.ts';
import { CHAOS_SEED, getJson, standaloneSpawner } from './harness.ts';
import { rawRequest, type RawRequest, type RawResponse } from './rawHttp.ts';

/** The seed of every property here; FC_SEED replays another run. */
const SEED = Number(process.env.FC_SEED ?? CHAOS_SEED);
const REQUEST_TIMEOUT_MS = 10_000;
const STATUSES = ['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED'];
/** The paths of API.md whose answers are JSON. */
const API_ROUTE = /^\/(orders(\/[^/]+(\/status)?)?|metrics|health)$/;
const start = standaloneSpawner();

let service: RunningService;
let port = 0;
let cases = 0;
const created = new Set<string>();

beforeAll(async () => {
  service = await start({
    DYNAMODB_ENDPOINT: dynamodbEndpoint(),
    TABLE_NAME: uniqueTable('bad-input'),
    PROCESSING_MIN_MS: '5',
    PROCESSING_MAX_MS: '20',
  });
  port = Number(new URL(service.url).port);
}, 120_000);

/** Cases run per property, and the statuses answered, for the report. */
const runs: Record<string, number> = {};
const statuses: Record<number, number> = {};

afterAll(() => {
  console.log(
    `[bad input] ${cases} requests over ${Object.keys(runs).length} properties, fast-check seed ${SEED}: ${JSON.stringify(runs)}; ` +
      `answers by status ${JSON.stringify(statuses)}; ${created.size} orders created`,
  );
});

const check = async (name: string, arbitrary: fc.Arbitrary<RawRequest>, numRuns: number, expectMore?: (request: RawRequest, response: RawResponse) => void) => {
  runs[name] = numRuns;
  await fc.assert(
    fc.asyncProperty(arbitrary, async (request) => {
      cases++;
      const response = await rawRequest(port, request, REQUEST_TIMEOUT_MS);
      statuses[response.status] = (statuses[response.status] ?? 0) + 1;
      expectWellFormed(request, response);
      expectMore?.(request, response);
    }),
    { seed: SEED, numRuns },
  );
};

const describeRequest = (request: RawRequest) =>
  `${request.method} ${request.target.slice(0, 120)}${request.target.length > 120 ? `... (${request.target.length} chars)` : ''} ` +
  `${JSON.stringify(request.headers ?? [])} body ${request.body === undefined ? 'none' : `${Buffer.byteLength(request.body)} bytes: ${JSON.stringify(String(request.body).slice(0, 200))}`}`;

const jsonBody = (response: RawResponse, what: string): any => {
  try {
    return JSON.parse(response.body.toString('utf8'));
  } catch {
    throw new Error(`${what}: the body is not JSON: ${JSON.stringify(response.body.toString('utf8').slice(0, 300))}`);
  }
};

/** The shape of an order in an answer. */
const expectOrder = (order: any, what: string) => {
  expect(order, what).toMatchObject({
    order_id: expect.stringMatching(ORDER_ID_PATTERN),
    user_id: expect.any(String),
    item_ids: expect.any(Array),
    total_amount: expect.any(Number),
    status: expect.toBeOneOf(STATUSES),
    attempts: expect.any(Number),
    created_at: expect.any(String),
  });
};

/**
 * The property every answer must have: a 4xx problem+json (type, title, status, detail), or a 2xx that is
 * what the route promises. Never a 5xx, never another status.
 */
const expectWellFormed = (request: RawRequest, response: RawResponse) => {
  const what = `${describeRequest(request)} -> ${response.status} ${JSON.stringify(response.headers)} ${JSON.stringify(response.body.toString('utf8').slice(0, 300))}`;
  const contentType = response.headers['content-type'] ?? '';
  if (response.status >= 400 && response.status < 500) {
    expect(contentType, what).toMatch(/^application\/problem\+json\b/);
    if (request.method === 'HEAD') return;
    const problem = jsonBody(response, what);
    expect(problem, what).toMatchObject({
      type: expect.any(String),
      title: expect.any(String),
      status: response.status,
      detail: expect.any(String),
    });
    return;
  }
  expect(response.status, what).toBeGreaterThanOrEqual(200);
  expect(response.status, what).toBeLessThan(300);
  const path = request.target.split('?')[0]!;
  // Beyond the API's JSON routes (a page at /, a document at /openapi.json), a 2xx need only say what it is.
  if (!API_ROUTE.test(path)) return void expect(contentType, what).not.toBe('');
  expect(contentType, what).toMatch(/^application\/json\b/);
  if (request.method === 'HEAD') return;
  const body = jsonBody(response, what);
  if (request.method === 'POST' && path === '/orders') {
    expectOrder(body, what);
    if (response.status === 201) {
      created.add(body.order_id);
      expect(body.status, what).toBe('PENDING');
      expect(response.headers.location, what).toBe(`/orders/${encodeURIComponent(body.order_id)}`);
      // What was acknowledged is what was sent (duplicate keys: the last one wins, as in JSON.parse).
      const sent = JSON.parse(String(request.body));
      expect(
        {
          user_id: body.user_id,
          item_ids: body.item_ids,
          total_amount: body.total_amount,
          ...(sent.order_id !== undefined && { order_id: body.order_id }),
        },
        what,
      ).toEqual({
        user_id: String(sent.user_id),
        // As JSON has it: -0 and 0 are one value.
        item_ids: JSON.parse(JSON.stringify(sent.item_ids)),
        total_amount: sent.total_amount === 0 ? 0 : sent.total_amount,
        ...(sent.order_id !== undefined && { order_id: sent.order_id }),
      });
    }
    return;
  }
  if (request.method === 'GET' && /^\/orders\/[^/]+\/status$/.test(path)) {
    expect(body, what).toEqual({ order_id: expect.stringMatching(ORDER_ID_PATTERN), status: expect.toBeOneOf(STATUSES) });
  } else if (request.method === 'GET' && /^\/orders\/[^/]+$/.test(path)) {
    expectOrder(body, what);
  } else if (request.method === 'GET' && path === '/health') {
    expect(body, what).toEqual({ status: 'ok' });
  } else if (request.method === 'GET' && path === '/metrics') {
    expect(body, what).toMatchObject({ total_orders: expect.any(Number), status_counts: expect.any(Object) });
  }
};

// ---- generators ----------------------------------------------------------------------------------

const jsonType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/merge-patch+json');

/** Strings that have broken services: controls, bidi marks, lone surrogates, traversal, boundaries of the rules. */
const oddString = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }),
  fc.constantFrom(
    '', ' ', '\u0000', '\u0007\b\f\v', 'a\r\nb', '\ud800', 'a\udfff', '\udfff\ud800', '\u202e', '\ufeff', '\u200b', 'e\u0301',
    '../../etc/passwd', '..%2F..%2Fetc', '%00', '<script>', "'; DROP TABLE orders; --", '${jndi:x}', '__proto__', 'constructor',
    'a'.repeat(64), 'a'.repeat(65), 'b'.repeat(128), 'b'.repeat(129), '😀'.repeat(64), '😀'.repeat(65), 'ORDER#x', 'METRICS#0',
  ),
);
/** encodeURIComponent, or every UTF-8 byte escaped when it refuses (a lone surrogate). */
const percentEncoded = (value: string): string => {
  try {
    return encodeURIComponent(value);
  } catch {
    return [...Buffer.from(value, 'utf8')].map((byte) => `%${byte.toString(16).padStart(2, '0').toUpperCase()}`).join('');
  }
};
const validId = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/);
const freshId = fc.constant(null).map(() => `bad-${randomUUID()}`);

/** Number tokens as JSON text: boundaries, overflow, negative zero, too many decimals, and strings that look like numbers. */
const numberText = fc.oneof(
  fc.constantFrom(
    '-0', '0', '0.0', '-0.0', '1e308', '1E308', '-1e308', '1e309', '-1e309', '0.001', '0.01', '0.1', '1.10', '1.005', '1e-7', '5e-324',
    '999999999999.99', '1000000000000', '1e12', '999999999999.999', '9007199254740991', '9007199254740993', '12345678901234567890',
    '-1', '-0.01', '1e2', '100.00', '"NaN"', '"Infinity"', '"-Infinity"', '"12.5"', '"1e308"', 'null', 'true', '[]', '{}', '[1]',
  ),
  fc.double().map((value) => (Number.isFinite(value) ? String(value) : `"${value}"`)),
  fc.integer().map(String),
  fc.integer({ min: 0, max: 100_000_000 }).map((cents) => (cents / 100).toFixed(2)),
);
const stringText = oddString.map((value) => JSON.stringify(value));
const idText = fc.oneof(
  { weight: 3, arbitrary: stringText },
  { weight: 1, arbitrary: numberText },
  { weight: 1, arbitrary: validId.map((value) => JSON.stringify(value)) },
);
/** Mostly amounts the contract accepts, so that odd strings elsewhere reach the store and come back. */
const amountText = fc.oneof(
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 100_000_000 }).map((cents) => (cents / 100).toFixed(2)) },
  { weight: 1, arbitrary: numberText },
);
const anyText = fc.oneof(idText, fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)));
const itemIdsText = fc.oneof(
  { weight: 4, arbitrary: fc.array(idText, { minLength: 0, maxLength: 110 }).map((items) => `[${items.join(',')}]`) },
  { weight: 1, arbitrary: anyText },
);
const orderIdText = fc.oneof(
  { weight: 4, arbitrary: freshId.map((value) => JSON.stringify(value)) },
  { weight: 1, arbitrary: stringText },
  { weight: 1, arbitrary: numberText },
);
const FIELDS = ['order_id', 'user_id', 'item_ids', 'total_amount'];
const field = (name: string, text: fc.Arbitrary<string>) =>
  fc.oneof({ weight: 6, arbitrary: text.map((value): [string, string][] => [[name, value]]) }, { weight: 1, arbitrary: fc.constant<[string, string][]>([]) });

/** Order-shaped JSON text with odd values, unknown and duplicate keys (raw text: duplicates survive until parsed). */
const oddOrderText = fc
  .tuple(
    field('order_id', orderIdText),
    field('user_id', idText),
    field('item_ids', itemIdsText),
    field('total_amount', amountText),
    fc.array(fc.tuple(fc.oneof(fc.constantFrom(...FIELDS), oddString), anyText), { maxLength: 2 }),
    fc.boolean(),
  )
  .map(([...parts]) => {
    const shuffle = parts.pop() as boolean;
    const pairs = (parts as [string, string][][]).flat();
    if (shuffle) pairs.reverse();
    return `{${pairs.map(([name, value]) => `${JSON.stringify(name)}:${value}`).join(',')}}`;
  });

/** Strings the contract accepts as ids, however odd: 1-128 UTF-16 units of anything, controls and bidi marks included. */
const legalOddString = oddString.filter((value) => value.length >= 1 && value.length <= 128);
/** Valid orders with odd but legal ids, sometimes with an earlier duplicate key the last one overrides. */
const legalOddOrderText = fc
  .record({
    order_id: freshId,
    user_id: fc.oneof(legalOddString, fc.integer()),
    item_ids: fc.array(fc.oneof(legalOddString, fc.integer()), { minLength: 1, maxLength: 5 }),
    total_amount: fc.integer({ min: 0, max: 100_000_000 }).map((cents) => (cents / 100).toFixed(2)),
    shadowed: fc.option(fc.tuple(fc.constantFrom(...FIELDS), anyText), { nil: undefined }),
  })
  .map(({ shadowed, total_amount: amount, ...order }) => {
    const text = JSON.stringify(order).slice(1, -1);
    return `{${shadowed ? `${JSON.stringify(shadowed[0])}:${shadowed[1]},` : ''}${text},"total_amount":${amount}}`;
  });

const orderText = fc.oneof({ weight: 3, arbitrary: oddOrderText }, { weight: 1, arbitrary: legalOddOrderText });

const post = (body: string | Buffer, contentType?: string, target = '/orders'): RawRequest => ({
  method: 'POST',
  target,
  headers: contentType === undefined ? [] : [['content-type', contentType]],
  body,
});

// ---- properties ----------------------------------------------------------------------------------

describe('bad input over real HTTP', () => {
  it('answers any JSON value as a body, alone or in place of a field, with a 2xx or a 4xx problem', async () => {
    const body = fc.oneof(
      fc.jsonValue().map((value) => JSON.stringify(value)),
      fc
        .tuple(fc.constantFrom(...FIELDS, 'colour'), fc.jsonValue({ maxDepth: 4 }))
        .map(([name, value]) => JSON.stringify({ ...validOrder({ order_id: `bad-${randomUUID()}` }), [name]: value })),
    );
    await check('json values', fc.tuple(body, jsonType).map(([text, type]) => post(text, type)), 600);
  }, 300_000);

  it('answers order-shaped bodies with odd numbers, odd strings, unknown and duplicate keys with a 2xx or a 4xx problem', async () => {
    await check('order-shaped text', fc.tuple(orderText, jsonType).map(([text, type]) => post(text, type)), 1_000);
  }, 300_000);

  it('answers any bytes under a wrong, odd or missing content type with a 2xx or a 4xx problem', async () => {
    const contentType = fc.oneof(
      fc.constant(undefined),
      jsonType,
      fc.constantFrom(
        'text/plain', 'text/json', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream',
        '', 'application/json, text/plain', 'application/jsonx', 'json', '*/*', 'application/json; charset=latin1', 'application/xml',
      ),
      fc.string({ unit: 'grapheme-ascii', maxLength: 40 }),
    );
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 2_048 }).map((value) => Buffer.from(value)),
      // A valid order with a few bytes changed: most of it still parses.
      fc
        .tuple(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }))
        .map(([flips]) => {
          const buffer = Buffer.from(JSON.stringify(validOrder({ order_id: `bad-${randomUUID()}` })));
          for (const [at, byte] of flips) buffer[at % buffer.length] = byte;
          return buffer;
        }),
      fc.string({ unit: 'binary', maxLength: 200 }).map((text) => Buffer.from(text, 'utf8')),
    );
    await check(
      'bytes and content types',
      fc.tuple(bytes, contentType, fc.boolean()).map(([body, type, chunked]) => ({ ...post(body, type), chunked })),
      500,
    );
  }, 300_000);

  it('refuses huge bodies with 413 and deep nesting with 400, whatever the framing', async () => {
    const size = fc.oneof(
      fc.constantFrom(65_536, 65_537, 1_048_576, 1_048_577, 8 * 1_048_576),
      fc.integer({ min: 60_000, max: 70_000 }),
    );
    const huge = fc.tuple(size, fc.constantFrom(' ', '\n', '\t'), fc.boolean()).map(([bytes, filler, chunked]): RawRequest => {
      // A valid order padded with whitespace (still valid JSON) to exactly `bytes` bytes.
      const text = JSON.stringify(validOrder({ order_id: `bad-${randomUUID()}` }));
      return { ...post(text + filler.repeat(bytes - text.length), 'application/json'), chunked };
    });
    const deep = fc
      .tuple(fc.integer({ min: 100, max: 40_000 }), fc.constantFrom('[]', '{"a":}'), fc.boolean())
      .map(([depth, brackets, asField]): RawRequest => {
        const [open, close] = brackets === '[]' ? ['[', ']'] : ['{"a":', '}'];
        const nested = `${open.repeat(depth)}1${close.repeat(depth)}`;
        return post(asField ? `{"user_id":"U","item_ids":[1],"total_amount":1,"order_id":"bad-deep","extra":${nested}}` : nested, 'application/json');
      });
    await check('huge and deep bodies', fc.oneof(huge, deep), 60, (request, response) => {
      const bytes = Buffer.byteLength(request.body!);
      if (bytes > 65_536) expect(response.status, describeRequest(request)).toBe(413);
      else expect(response.status, describeRequest(request)).toBeOneOf([200, 201, 400, 409]);
    });
  }, 300_000);

  it('answers odd paths (traversal, bad escapes, unicode and control characters, over-long ids) with a 2xx or a 4xx problem', async () => {
    const segment = fc.oneof(
      oddString.map(percentEncoded),
      // Raw, unencoded: what a careless client sends.
      oddString,
      fc.constantFrom(
        '..%2F..%2Fetc', '..%2F..%2F..%2Fetc%2Fpasswd', '..', '.', '%2e%2e', '%2E%2E%2F', '%00', '%', '%zz', '%E0%A4%A', '%C0%AF',
        '..%5C..%5Cwindows', 'ORD001%00', '%252F', 'a%2Fb', '%20', '+', '%F0%9F%98%80', '%ED%A0%80',
      ),
      // Over-long ids; past about 16 KiB the request line is beyond what node:http reads.
      fc.integer({ min: 65, max: 20_000 }).map((length) => 'x'.repeat(length)),
      validId,
    );
    const target = fc.oneof(
      segment.map((value) => `/orders/${value}`),
      segment.map((value) => `/orders/${value}/status`),
      segment.map((value) => `/${value}`),
      segment.map((value) => `/orders?user_id=${value}`),
      fc.constantFrom(
        '/orders/../etc/passwd', '/../../etc/passwd', '/orders/./status', '//orders', '/orders//status', '/orders/', '/health/',
        '/metrics?x=%', '/orders?user_id=%ff', '/orders?limit=-1', '/orders?limit=1e308', '/', '/%', '*', 'http://127.0.0.1/health',
        '/orders/%2e%2e/%2e%2e/etc/passwd', '/ORDERS', '/orders/a/status/extra',
      ),
    );
    await check('paths', target.map((value): RawRequest => ({ method: 'GET', target: value })), 600);
  }, 300_000);

  it('answers odd methods and odd headers on every path with a 2xx or a 4xx problem', async () => {
    const method = fc.constantFrom(
      'GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD', 'TRACE', 'CONNECT', 'PROPFIND', 'PURGE', 'SEARCH', 'QUERY', 'LINK',
      'M-SEARCH', 'FOO', 'get', 'BREW',
    );
    const target = fc.constantFrom('/orders', '/orders/ORD001', '/orders/ORD001/status', '/metrics', '/health', '/nowhere', '/');
    const body = fc.option(fc.constantFrom(JSON.stringify(validOrder()), '{}', 'x'), { nil: undefined });
    const headers = fc.constantFrom<[string, string][]>(
      [],
      [['connection', 'upgrade'], ['upgrade', 'websocket']],
      [['expect', '100-continue']],
      [['expect', 'something-else']],
      [['x-odd', 'a\u0001b']],
      [['content-length', 'abc']],
      [['transfer-encoding', 'gzip']],
      [['content-type', 'application/json'], ['content-type', 'text/plain']],
      [['x-long', 'y'.repeat(20_000)]],
    );
    await check(
      'methods and headers',
      fc.tuple(method, target, body, headers).map(([verb, path, text, extra]): RawRequest => ({
        method: verb,
        target: path,
        headers: [...(text !== undefined ? ([['content-type', 'application/json']] as [string, string][]) : []), ...extra],
        ...(text !== undefined && { body: text }),
      })),
      300,
    );
  }, 300_000);

  it('is still healthy afterwards, with every acknowledged order stored', async () => {
    expect(await getJson(`${service.url}/health`)).toEqual({ status: 200, contentType: 'application/json', body: { status: 'ok' } });
    const metrics = await getJson(`${service.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body.total_orders).toBe(created.size);
    expect(service.output()).not.toMatch(/"level":"ERROR"/);
  });
});
