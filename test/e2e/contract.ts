import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpenApiDocument } from '../../lib/openapi.ts';
import { OpenApiValidator, type Answer } from '../openapiValidator.ts';
import { getWithHost, metricsBeforeAnyOrder, pollUntil, validOrder } from '../support.ts';

/** A running service under test: its base URL and how to stop it. */
export interface ServiceUnderTest {
  url: string;
  stop: () => Promise<unknown>;
}

type Json = Record<string, unknown>;

const STATUSES = ['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED'];
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;
/** A ULID: 26 characters of Crockford's base32. */
const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const MAX_BODY_BYTES = 64 * 1024;
const TRANSPORT_LIMIT_BYTES = 1024 * 1024;
/** How long an order may take to be processed in any runtime under test. */
const PROCESSING_DEADLINE_MS = 30_000;

const newOrderId = () => `e2e-${randomUUID()}`;
const isoTime = () => expect.stringMatching(ISO_UTC);

/** A valid order as JSON, padded with trailing whitespace (still valid JSON) to exactly `bytes` bytes. */
const paddedOrderJson = (bytes: number): string => {
  const text = JSON.stringify(validOrder({ order_id: newOrderId() }));
  return text + ' '.repeat(bytes - Buffer.byteLength(text));
};

/**
 * Registers the contract tests of API.md against a service that `start` brings up. Runtime-agnostic:
 * only HTTP is used. `start` must give a service over an empty store whose processing never fails
 * (PROCESSING_FAILURE_RATE 0), because the metrics test checks exact counts of the orders this suite made.
 */
export interface ContractOptions {
  /**
   * serverless-offline gives a request without Content-Type the type application/json before the handler
   * sees it (API Gateway does not): there such a body is parsed, not refused with 415.
   */
  emulatorDefaultsContentType?: boolean;
}

export function describeContract(name: string, start: () => Promise<ServiceUnderTest>, options: ContractOptions = {}): void {
  describe(`${name}: the API.md contract`, () => {
    let service: ServiceUnderTest | undefined;
    let url = '';
    /** Every order this suite created, for the exact metrics check. */
    const created = new Set<string>();

    beforeAll(async () => {
      service = await start();
      url = service.url;
    }, 180_000);

    afterAll(async () => {
      await service?.stop();
    }, 60_000);

    /** Every answer this suite got, to hold them all to the OpenAPI document at the end. */
    const answers: Answer[] = [];

    const request = async (path: string, init: RequestInit = {}) => {
      const response = await fetch(`${url}${path}`, init);
      const text = await response.text();
      const contentType = response.headers.get('content-type') ?? '';
      const body: unknown = /json/.test(contentType) && text ? JSON.parse(text) : text;
      const method = init.method ?? 'GET';
      answers.push({ method, path: path.split('?')[0]!, status: response.status, contentType, headers: response.headers, body });
      return { status: response.status, headers: response.headers, body: body as Json, text };
    };

    const post = async (body: RequestInit['body'], headers: Record<string, string> = { 'content-type': 'application/json' }) => {
      const answer = await request('/orders', { method: 'POST', headers, body });
      if (answer.status === 201) created.add(String(answer.body.order_id));
      return answer;
    };

    const postOrder = (order: Json) => post(JSON.stringify(order));

    const getJson = (path: string) => request(path);

    /** Asserts an RFC 9457 problem answer and returns its body. */
    const expectProblem = (answer: Awaited<ReturnType<typeof request>>, status: number): Json => {
      expect(answer.status).toBe(status);
      expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json\b/);
      expect(answer.body).toMatchObject({
        type: expect.any(String),
        title: expect.any(String),
        status,
        detail: expect.any(String),
      });
      expect(answer.body.title).not.toBe('');
      expect(answer.body.detail).not.toBe('');
      return answer.body;
    };

    const expectJson = (answer: Awaited<ReturnType<typeof request>>, status: number) => {
      expect(answer.status).toBe(status);
      expect(answer.headers.get('content-type')).toMatch(/^application\/json\b/);
    };

    const waitForStatus = (orderId: string, status: string) =>
      pollUntil(
        async () => {
          const answer = await getJson(`/orders/${encodeURIComponent(orderId)}/status`);
          return answer.status === 200 && answer.body.status === status ? answer : undefined;
        },
        { timeoutMs: PROCESSING_DEADLINE_MS, intervalMs: 50, what: `order ${orderId} to be ${status}` },
      );

    const waitForCompleted = async (orderId: string): Promise<Json> => {
      await waitForStatus(orderId, 'COMPLETED');
      const answer = await getJson(`/orders/${encodeURIComponent(orderId)}`);
      expectJson(answer, 200);
      return answer.body;
    };

    describe('GET /metrics before any order', () => {
      it('reports zero counts and null averages', async () => {
        const before = Date.now();
        const answer = await getJson('/metrics');
        expectJson(answer, 200);
        const { processing_time_histogram, ...documented } = answer.body;
        expect(documented).toEqual({ ...metricsBeforeAnyOrder, generated_at: isoTime() });
        if (processing_time_histogram !== undefined) expect(processing_time_histogram).toEqual([]);
        expect(Math.abs(Date.parse(String(answer.body.generated_at)) - before)).toBeLessThan(60_000);
      });
    });

    describe('POST /orders', () => {
      it('creates an order with 201, a Location header and the PENDING order', async () => {
        const orderId = newOrderId();
        const before = Date.now();
        const answer = await postOrder(validOrder({ order_id: orderId }));
        const after = Date.now();

        expectJson(answer, 201);
        expect(answer.headers.get('location')).toBe(`/orders/${orderId}`);
        expect(answer.body).toEqual({
          order_id: orderId,
          user_id: 'USER001',
          item_ids: [1, 2, 3],
          total_amount: 99.99,
          status: 'PENDING',
          attempts: 0,
          created_at: isoTime(),
        });
        const createdAt = Date.parse(String(answer.body.created_at));
        // A little slack for a service whose clock is not ours.
        expect(createdAt).toBeGreaterThanOrEqual(before - 5_000);
        expect(createdAt).toBeLessThanOrEqual(after + 5_000);
      });

      it('stores the order before answering, so it can be read at once', async () => {
        const orderId = newOrderId();
        const createdAnswer = await postOrder(validOrder({ order_id: orderId }));
        expect(createdAnswer.status).toBe(201);

        const answer = await getJson(`/orders/${orderId}`);
        expectJson(answer, 200);
        expect(answer.body).toMatchObject({
          order_id: orderId,
          user_id: 'USER001',
          item_ids: [1, 2, 3],
          total_amount: 99.99,
          created_at: createdAnswer.body.created_at,
        });
        expect(STATUSES).toContain(answer.body.status);
      });

      it('generates a 26-character ULID order id when none is sent, in increasing order', async () => {
        const first = await postOrder(validOrder());
        const second = await postOrder(validOrder());

        for (const answer of [first, second]) {
          expectJson(answer, 201);
          const orderId = String(answer.body.order_id);
          expect(orderId).toMatch(ULID);
          expect(answer.headers.get('location')).toBe(`/orders/${orderId}`);
          expect(answer.body).toEqual({
            order_id: orderId,
            user_id: 'USER001',
            item_ids: [1, 2, 3],
            total_amount: 99.99,
            status: 'PENDING',
            attempts: 0,
            created_at: isoTime(),
          });
        }
        expect(String(second.body.order_id) > String(first.body.order_id)).toBe(true);
      });

      it('returns an integer user_id as a string and item_ids exactly as given', async () => {
        const orderId = newOrderId();
        const answer = await postOrder({ order_id: orderId, user_id: 42, item_ids: [7, 'SKU-9', 0], total_amount: 0 });

        expectJson(answer, 201);
        expect(answer.body).toEqual({
          order_id: orderId,
          user_id: '42',
          item_ids: [7, 'SKU-9', 0],
          total_amount: 0,
          status: 'PENDING',
          attempts: 0,
          created_at: isoTime(),
        });
      });

      it('keeps a decimal amount without binary rounding', async () => {
        const orderId = newOrderId();
        const answer = await postOrder(validOrder({ order_id: orderId, total_amount: 999_999_999_999.99 }));
        expectJson(answer, 201);
        expect(answer.body.total_amount).toBe(999_999_999_999.99);

        const stored = await getJson(`/orders/${orderId}`);
        expect(stored.body.total_amount).toBe(999_999_999_999.99);
        expect(stored.text).toContain('"total_amount":999999999999.99');
      });

      it('accepts application/json with a charset parameter', async () => {
        const orderId = newOrderId();
        const answer = await post(JSON.stringify(validOrder({ order_id: orderId })), {
          'content-type': 'application/json; charset=utf-8',
        });
        expectJson(answer, 201);
        expect(answer.body).toMatchObject({ order_id: orderId, status: 'PENDING', attempts: 0 });
      });

      it('gives a Location header that leads to the order, whatever characters the id holds', async () => {
        const orderId = `A-z_0.9:${randomUUID().slice(0, 8)}`;
        const answer = await postOrder(validOrder({ order_id: orderId }));
        expectJson(answer, 201);

        const location = answer.headers.get('location')!;
        expect(location).toMatch(/^\/orders\//);
        expect(decodeURIComponent(location)).toBe(`/orders/${orderId}`);
        const stored = await getJson(location);
        expectJson(stored, 200);
        expect(stored.body.order_id).toBe(orderId);
      });

      it('replays an identical order with 200 and the stored order', async () => {
        const orderId = newOrderId();
        const order = validOrder({ order_id: orderId, item_ids: ['A', 'B'], total_amount: 10.5 });
        const first = await postOrder(order);
        expect(first.status).toBe(201);
        const completed = await waitForCompleted(orderId);

        // Same content, keys in another order: still the same order.
        const replay = await post(JSON.stringify({ total_amount: 10.5, item_ids: ['A', 'B'], user_id: 'USER001', order_id: orderId }));
        expectJson(replay, 200);
        expect(replay.body).toEqual(completed);
        expect(replay.body.created_at).toBe(first.body.created_at);
      });

      it('answers two simultaneous identical creates with one 201 and one 200 for the same order', async () => {
        const orderId = newOrderId();
        const body = JSON.stringify(validOrder({ order_id: orderId }));
        const answers = await Promise.all([post(body), post(body)]);

        expect(answers.map((answer) => answer.status).sort()).toEqual([200, 201]);
        for (const answer of answers) {
          expect(answer.headers.get('content-type')).toMatch(/^application\/json\b/);
          expect(answer.body).toMatchObject({
            order_id: orderId,
            user_id: 'USER001',
            item_ids: [1, 2, 3],
            total_amount: 99.99,
            created_at: answers[0]!.body.created_at,
          });
        }
        await waitForCompleted(orderId);
      });

      it('refuses the same order_id with different content with 409 and keeps the stored order', async () => {
        const orderId = newOrderId();
        const first = await postOrder(validOrder({ order_id: orderId }));
        expect(first.status).toBe(201);

        const conflict = await postOrder(validOrder({ order_id: orderId, total_amount: 100 }));
        const problem = expectProblem(conflict, 409);
        expect(problem).toEqual({ type: 'about:blank', title: expect.any(String), status: 409, detail: expect.stringContaining(orderId) });

        const stored = await getJson(`/orders/${orderId}`);
        expectJson(stored, 200);
        expect(stored.body).toMatchObject({ order_id: orderId, total_amount: 99.99, created_at: first.body.created_at });
      });

      it('refuses an invalid order with 400, listing every bad field', async () => {
        const answer = await postOrder({ user_id: 'USER001', item_ids: [], total_amount: -1 });

        const problem = expectProblem(answer, 400);
        expect(problem).toEqual({
          type: 'about:blank',
          title: expect.any(String),
          status: 400,
          detail: '2 fields are invalid',
          errors: expect.any(Array),
        });
        const errors = problem.errors as { field: string; message: string }[];
        expect(errors).toHaveLength(2);
        expect(errors).toEqual(
          expect.arrayContaining([
            { field: 'item_ids', message: expect.any(String) },
            { field: 'total_amount', message: 'must be >= 0' },
          ]),
        );
      });

      it.each([
        ['a missing user_id', { user_id: undefined }, 'user_id'],
        ['a missing item_ids', { item_ids: undefined }, 'item_ids'],
        ['a missing total_amount', { total_amount: undefined }, 'total_amount'],
        ['an unknown field', { userid: 'typo' }, 'userid'],
        ['an order_id with a space', { order_id: 'has space' }, 'order_id'],
        ['an order_id of 65 characters', { order_id: 'x'.repeat(65) }, 'order_id'],
        ['an empty order_id', { order_id: '' }, 'order_id'],
        ['a user_id of 129 characters', { user_id: 'u'.repeat(129) }, 'user_id'],
        ['an empty user_id', { user_id: '' }, 'user_id'],
        ['a boolean user_id', { user_id: true }, 'user_id'],
        ['101 item_ids', { item_ids: Array.from({ length: 101 }, (_, i) => i) }, 'item_ids'],
        ['item_ids that is not an array', { item_ids: '1,2' }, 'item_ids'],
        ['a total_amount with 3 decimals', { total_amount: 1.234 }, 'total_amount'],
        ['a total_amount of 1e12', { total_amount: 1e12 }, 'total_amount'],
        ['a total_amount given as a string', { total_amount: '10' }, 'total_amount'],
      ])('refuses %s with 400 naming that field', async (_label, overrides, field) => {
        const answer = await postOrder(validOrder(overrides));

        const problem = expectProblem(answer, 400);
        expect(problem).toEqual({
          type: 'about:blank',
          title: expect.any(String),
          status: 400,
          detail: '1 field is invalid',
          errors: [{ field, message: expect.any(String) }],
        });
      });

      it('refuses an item id of 129 characters with 400 naming the item', async () => {
        const answer = await postOrder(validOrder({ item_ids: ['ok', 'i'.repeat(129)] }));

        const problem = expectProblem(answer, 400);
        expect(problem).toEqual({
          type: 'about:blank',
          title: expect.any(String),
          status: 400,
          detail: '1 field is invalid',
          errors: [{ field: expect.stringMatching(/^item_ids\b/), message: expect.any(String) }],
        });
      });

      it('refuses a user id with a lone surrogate (\\ud800 in the JSON) with 400, storing nothing', async () => {
        const answer = await post('{"order_id":"SURROGATE-1","user_id":"USER\\ud800","item_ids":[1],"total_amount":1}');

        const problem = expectProblem(answer, 400);
        expect(problem).toMatchObject({ detail: '1 field is invalid', errors: [{ field: 'user_id', message: 'must be valid Unicode text (no lone surrogate)' }] });
        expectProblem(await request('/orders/SURROGATE-1'), 404);
      });

      it.each([
        ['a \\xff byte', [0xff]],
        ['a truncated 4-byte sequence', [0xf0, 0x9f, 0x98]],
      ])('refuses a body that is not valid UTF-8 (%s in user_id) with 400, storing nothing', async (_label, bad) => {
        const orderId = newOrderId();
        const body = Buffer.concat([
          Buffer.from(`{"order_id":"${orderId}","user_id":"USER`),
          Buffer.from(bad),
          Buffer.from('","item_ids":[1],"total_amount":1}'),
        ]);
        const answer = await post(body);

        const problem = expectProblem(answer, 400);
        expect(problem).toEqual({ type: 'about:blank', title: 'Malformed JSON', status: 400, detail: 'The body is not valid UTF-8' });
        expectProblem(await request(`/orders/${orderId}`), 404);
      });

      it.each([
        ['a JSON array', '[]'],
        ['a JSON string', '"order"'],
        ['JSON null', 'null'],
      ])('refuses %s as the body with 400', async (_label, body) => {
        const answer = await post(body);
        expectProblem(answer, 400);
      });

      it('refuses malformed JSON with 400', async () => {
        const answer = await post('{"user_id": "USER001", "item_ids": [1, 2');

        const problem = expectProblem(answer, 400);
        expect(problem).toEqual({ type: 'about:blank', title: expect.any(String), status: 400, detail: expect.any(String) });
      });

      it('refuses an empty body with 400', async () => {
        const answer = await post('');
        expectProblem(answer, 400);
      });

      it('accepts a body of exactly 64 KiB', async () => {
        const answer = await post(paddedOrderJson(MAX_BODY_BYTES));
        expectJson(answer, 201);
        expect(answer.body).toMatchObject({ status: 'PENDING', attempts: 0 });
      });

      it('refuses a body one byte over 64 KiB with 413', async () => {
        const answer = await post(paddedOrderJson(MAX_BODY_BYTES + 1));

        const problem = expectProblem(answer, 413);
        expect(problem).toEqual({ type: 'about:blank', title: expect.any(String), status: 413, detail: expect.any(String) });
      });

      it.each([
        ['one byte over 1 MiB', TRANSPORT_LIMIT_BYTES + 1],
        ['of 8 MiB', 8 * TRANSPORT_LIMIT_BYTES],
      ])('refuses a body %s with 413, before the handler and without resetting the connection', async (_label, bytes) => {
        // Sent on a kept-alive connection, as a client in the middle of a session would.
        expect((await request('/health')).status).toBe(200);
        const answer = await post(paddedOrderJson(bytes));

        const problem = expectProblem(answer, 413);
        expect(problem).toEqual({ type: 'about:blank', title: expect.any(String), status: 413, detail: expect.any(String) });
      });

      it.skipIf(options.emulatorDefaultsContentType)('refuses a body without a content type with 415', async () => {
        // A byte body makes fetch send no Content-Type at all.
        const answer = await post(new TextEncoder().encode(JSON.stringify(validOrder())), {});

        const problem = expectProblem(answer, 415);
        expect(problem).toEqual({ type: 'about:blank', title: expect.any(String), status: 415, detail: expect.any(String) });
      });

      it.runIf(options.emulatorDefaultsContentType)('parses a body without a content type as JSON (the emulator adds one)', async () => {
        const answer = await post(new TextEncoder().encode(JSON.stringify(validOrder({ order_id: newOrderId() }))), {});

        expect(answer.status).toBe(201);
      });

      it('refuses a text/plain body with 415, even when it holds JSON', async () => {
        const answer = await post(JSON.stringify(validOrder()), { 'content-type': 'text/plain' });

        const problem = expectProblem(answer, 415);
        expect(problem).toEqual({ type: 'about:blank', title: expect.any(String), status: 415, detail: expect.any(String) });
      });
    });

    describe('GET /orders/{order_id}', () => {
      it('processes an order to COMPLETED with its timings and one attempt', async () => {
        const orderId = newOrderId();
        const first = await postOrder(validOrder({ order_id: orderId }));
        expect(first.status).toBe(201);

        const order = await waitForCompleted(orderId);
        expect(order).toEqual({
          order_id: orderId,
          user_id: 'USER001',
          item_ids: [1, 2, 3],
          total_amount: 99.99,
          status: 'COMPLETED',
          attempts: 1,
          created_at: first.body.created_at,
          started_at: isoTime(),
          completed_at: isoTime(),
          processing_ms: expect.any(Number),
        });
        const createdAt = Date.parse(String(order.created_at));
        const startedAt = Date.parse(String(order.started_at));
        const completedAt = Date.parse(String(order.completed_at));
        expect(startedAt).toBeGreaterThanOrEqual(createdAt);
        expect(completedAt).toBeGreaterThanOrEqual(startedAt);
        expect(order.processing_ms).toBe(completedAt - startedAt);
      });

      it('answers an unknown order with 404', async () => {
        const orderId = newOrderId();
        const answer = await getJson(`/orders/${orderId}`);

        const problem = expectProblem(answer, 404);
        expect(problem).toEqual({ type: 'about:blank', title: expect.any(String), status: 404, detail: expect.any(String) });
      });

      it('answers an id that could never exist with 404', async () => {
        const answer = await getJson(`/orders/${encodeURIComponent('no such id!')}`);
        expectProblem(answer, 404);
      });
    });

    describe('GET /orders/{order_id}/status', () => {
      it('answers with just the order id and its status', async () => {
        const orderId = newOrderId();
        expect((await postOrder(validOrder({ order_id: orderId }))).status).toBe(201);

        const answer = await getJson(`/orders/${orderId}/status`);
        expectJson(answer, 200);
        expect(answer.body).toEqual({ order_id: orderId, status: expect.stringMatching(/^(PENDING|PROCESSING|COMPLETED)$/) });

        await waitForStatus(orderId, 'COMPLETED');
        const done = await getJson(`/orders/${orderId}/status`);
        expectJson(done, 200);
        expect(done.body).toEqual({ order_id: orderId, status: 'COMPLETED' });
      });

      it('answers an unknown order with 404', async () => {
        const answer = await getJson(`/orders/${newOrderId()}/status`);

        const problem = expectProblem(answer, 404);
        expect(problem).toEqual({ type: 'about:blank', title: expect.any(String), status: 404, detail: expect.any(String) });
      });
    });

    describe('GET /orders?user_id=', () => {
      const listOf = (query: Record<string, string>) => getJson(`/orders?${new URLSearchParams(query)}`);

      it("pages through a user's orders newest first, ending with a null cursor", async () => {
        const userId = `e2e-user-${randomUUID()}`;
        const ids: string[] = [];
        for (let i = 0; i < 5; i++) {
          const answer = await postOrder(validOrder({ order_id: newOrderId(), user_id: userId, total_amount: i }));
          expect(answer.status).toBe(201);
          ids.push(String(answer.body.order_id));
        }
        await postOrder(validOrder({ order_id: newOrderId(), user_id: `${userId}-other` }));
        // The list reads an index, which may trail a create by a moment.
        await pollUntil(async () => ((await listOf({ user_id: userId })).body.items as Json[]).length === 5 || undefined, {
          timeoutMs: 10_000,
          what: 'the orders to be listed',
        });

        const pages: Json[] = [];
        let cursor: string | undefined;
        do {
          const answer = await listOf({ user_id: userId, limit: '2', ...(cursor && { cursor }) });
          expectJson(answer, 200);
          expect(answer.body).toEqual({ items: expect.any(Array), next_cursor: expect.toBeOneOf([null, expect.any(String)]) });
          pages.push(answer.body);
          cursor = (answer.body.next_cursor as string | null) ?? undefined;
        } while (cursor && pages.length < 10);

        expect(pages.map((page) => (page.items as Json[]).length)).toEqual([2, 2, 1]);
        const items = pages.flatMap((page) => page.items as Json[]);
        const times = items.map((order) => String(order.created_at));
        expect(times).toEqual([...times].sort().reverse());
        expect(items.map((order) => order.order_id).sort()).toEqual([...ids].sort());
        for (const order of items) {
          expect(order).toMatchObject({ user_id: userId, item_ids: [1, 2, 3], status: expect.stringMatching(/^(PENDING|PROCESSING|COMPLETED)$/) });
          expect(order).not.toHaveProperty('history');
        }
        await Promise.all(ids.map((id) => waitForCompleted(id)));
      });

      it('answers a user without orders with an empty page', async () => {
        const answer = await listOf({ user_id: `nobody-${randomUUID()}` });
        expectJson(answer, 200);
        expect(answer.body).toEqual({ items: [], next_cursor: null });
      });

      it.each([
        ['no user_id', {}, [{ field: 'user_id', message: 'is required' }]],
        ['limit=0', { user_id: 'USER001', limit: '0' }, [{ field: 'limit', message: expect.any(String) }]],
        ['limit=101', { user_id: 'USER001', limit: '101' }, [{ field: 'limit', message: expect.any(String) }]],
        ['limit=ten', { user_id: 'USER001', limit: 'ten' }, [{ field: 'limit', message: expect.any(String) }]],
        ['a cursor that does not decode', { user_id: 'USER001', cursor: 'not-a-cursor' }, [{ field: 'cursor', message: expect.any(String) }]],
      ])('refuses %s with 400 naming the bad fields', async (_, query, errors) => {
        const problem = expectProblem(await listOf(query), 400);
        expect(problem).toEqual({ type: 'about:blank', title: expect.any(String), status: 400, detail: '1 field is invalid', errors });
      });

      it("refuses another user's cursor with 400", async () => {
        const userId = `e2e-user-${randomUUID()}`;
        for (let i = 0; i < 2; i++) expect((await postOrder(validOrder({ user_id: userId }))).status).toBe(201);
        const first = await pollUntil(
          async () => {
            const answer = await listOf({ user_id: userId, limit: '1' });
            return answer.body.next_cursor ? answer : undefined;
          },
          { timeoutMs: 10_000, what: 'a second page' },
        );

        const problem = expectProblem(await listOf({ user_id: 'USER001', cursor: String(first.body.next_cursor) }), 400);
        expect(problem.errors).toEqual([{ field: 'cursor', message: expect.any(String) }]);
      });
    });

    describe('GET /health', () => {
      it('answers 200 {"status":"ok"} while the store answers', async () => {
        const answer = await getJson('/health');
        expectJson(answer, 200);
        expect(answer.body).toEqual({ status: 'ok' });
      });
    });

    describe('the web pages', () => {
      const expectPage = (answer: Awaited<ReturnType<typeof request>>, type: RegExp) => {
        expect(answer.status).toBe(200);
        expect(answer.headers.get('content-type')).toMatch(type);
        expect(answer.headers.get('x-content-type-options')).toBe('nosniff');
      };

      it.each([
        ['/', 'dashboard.js'],
        ['/docs', 'docs.js'],
      ])('serves the page %s, running %s, with a policy that only allows its own files', async (path, script) => {
        const answer = await request(path);
        expectPage(answer, /^text\/html\b/);
        expect(answer.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
        expect(answer.text).toContain(`<script type="module" src="/assets/${script}"></script>`);
        // Offline-ready: nothing is loaded from another origin.
        expect(answer.text).not.toMatch(/(src|href)="(https?:)?\/\//);
      });

      it.each([
        ['app.css', /^text\/css\b/],
        ['dashboard.js', /^text\/javascript\b/],
        ['docs.js', /^text\/javascript\b/],
        ['apiKey.js', /^text\/javascript\b/],
      ])('serves /assets/%s', async (name, type) => {
        const answer = await request(`/assets/${name}`);
        expectPage(answer, type);
        expect(answer.text.length).toBeGreaterThan(500);
      });

      it('answers an unknown asset with 404', async () => {
        const problem = expectProblem(await request('/assets/nope.js'), 404);
        expect(problem).toEqual({ type: 'about:blank', title: expect.any(String), status: 404, detail: expect.any(String) });
      });
    });

    describe('DNS rebinding: with auth off, only requests addressed to this machine', () => {
      it.each(['/metrics', '/orders/ANY', '/health', '/'])('refuses GET %s with a Host of another site with 421 problem JSON', async (path) => {
        const answer = await getWithHost(`${url}${path}`, `evil.example:${new URL(url).port}`);

        expect(answer.status).toBe(421);
        expect(answer.contentType).toMatch(/^application\/problem\+json\b/);
        expect(JSON.parse(answer.body)).toMatchObject({ type: 'about:blank', title: 'Misdirected request', status: 421 });
      });

      it.each(['localhost', '127.0.0.1'])('serves a Host of %s', async (name) => {
        const answer = await getWithHost(`${url}/metrics`, `${name}:${new URL(url).port}`);
        expect(answer.status).toBe(200);
      });
    });

    describe('routing', () => {
      it.each([
        ['DELETE', '/orders', 'POST'],
        ['PUT', '/orders/ORD001', 'GET'],
        ['DELETE', '/orders/ORD001/status', 'GET'],
        ['POST', '/metrics', 'GET'],
        ['POST', '/health', 'GET'],
        ['POST', '/', 'GET'],
        ['DELETE', '/openapi.json', 'GET'],
      ])('answers %s %s with 405 and an Allow header naming %s', async (method, path, allowed) => {
        const answer = await request(path, { method });

        const problem = expectProblem(answer, 405);
        expect(problem).toEqual({ type: 'about:blank', title: expect.any(String), status: 405, detail: expect.any(String) });
        const allow = (answer.headers.get('allow') ?? '').split(/\s*,\s*/);
        expect(allow).toContain(allowed);
        expect(allow).not.toContain(method);
      });

      it.each([
        ['GET', '/nowhere'],
        ['POST', '/nowhere'],
        ['GET', '/orders/ORD001/items'],
        ['GET', '/assets'],
        ['GET', '/docs/extra'],
      ])('answers %s %s, an unknown path, with 404', async (method, path) => {
        const answer = await request(path, { method });

        const problem = expectProblem(answer, 404);
        expect(problem).toEqual({ type: 'about:blank', title: expect.any(String), status: 404, detail: expect.any(String) });
      });
    });

    describe('GET /metrics', () => {
      it('counts every order of this suite exactly once it has all completed', async () => {
        for (let i = 0; i < 5; i++) expect((await postOrder(validOrder())).status).toBe(201);
        const expected = created.size;

        const metrics = await pollUntil(
          async () => {
            const answer = await getJson('/metrics');
            return answer.status === 200 && answer.body.total_orders_processed === expected ? answer : undefined;
          },
          { timeoutMs: PROCESSING_DEADLINE_MS, intervalMs: 100, what: `${expected} orders to complete` },
        );
        expectJson(metrics, 200);

        const orders = await Promise.all([...created].map(async (orderId) => (await getJson(`/orders/${encodeURIComponent(orderId)}`)).body));
        const processing = orders.map((order) => Number(order.processing_ms));
        const turnaround = orders.map((order) => Date.parse(String(order.completed_at)) - Date.parse(String(order.created_at)));
        const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;

        const { processing_time_histogram, ...documented } = metrics.body;
        expect(documented).toEqual({
          total_orders: expected,
          total_orders_processed: expected,
          average_processing_time_ms: expect.any(Number),
          average_turnaround_time_ms: expect.any(Number),
          processing_time_ms: { p50: expect.any(Number), p95: expect.any(Number), p99: expect.any(Number) },
          status_counts: { PENDING: 0, PROCESSING: 0, COMPLETED: expected, FAILED: 0 },
          quarantined: 0,
          generated_at: isoTime(),
        });
        // The averages are rounded to 0.1 ms.
        expect(Math.abs(Number(documented.average_processing_time_ms) - mean(processing))).toBeLessThanOrEqual(0.0500001);
        expect(Math.abs(Number(documented.average_turnaround_time_ms) - mean(turnaround))).toBeLessThanOrEqual(0.0500001);

        const { p50, p95, p99 } = documented.processing_time_ms as Record<string, number>;
        // Percentiles come from a histogram whose buckets err by under 1%.
        const low = Math.min(...processing) * 0.99 - 1;
        const high = Math.max(...processing) * 1.01 + 1;
        expect(p50).toBeLessThanOrEqual(p95!);
        expect(p95).toBeLessThanOrEqual(p99!);
        expect(p50).toBeGreaterThanOrEqual(low);
        expect(p99).toBeLessThanOrEqual(high);
        if (processing_time_histogram !== undefined) {
          const buckets = processing_time_histogram as { count: number }[];
          expect(buckets.reduce((sum, bucket) => sum + bucket.count, 0)).toBe(expected);
        }
      });
    });

    // Last, so that it sees the answers of every test above: success and error cases of every endpoint.
    describe('GET /openapi.json', () => {
      it("documents every answer this suite got, and this suite got each operation's own documented answers", async () => {
        const answer = await getJson('/openapi.json');
        expectJson(answer, 200);
        const validator = new OpenApiValidator(answer.body as unknown as OpenApiDocument);

        expect(answers.flatMap((seen) => validator.check(seen))).toEqual([]);

        const seen = new Set(
          answers.map(({ method, path, status }) => `${method} ${validator.pathTemplate(path)} ${status}`),
        );
        // The shared answers (401, 403, 500, 503: references to components.responses) need a service with
        // keys or a store that is away; test/integration/serverErrors.test.ts provokes them.
        const documented = Object.entries(validator.document.paths).flatMap(([path, operations]) =>
          Object.entries(operations).flatMap(([method, operation]) =>
            Object.entries(operation.responses)
              .filter(([, response]) => !('$ref' in response))
              .map(([status]) => `${method.toUpperCase()} ${path} ${status}`),
          ),
        );
        expect(documented.filter((response) => !seen.has(response))).toEqual([]);
      });
    });
  });
}
