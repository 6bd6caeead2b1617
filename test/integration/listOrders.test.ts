import { beforeAll, describe, expect, it } from 'vitest';
import { InvalidQuery } from '../../lib/errors.ts';
import { encodeCursor } from '../../lib/orderListQuery.ts';
import type { OrderPage } from '../../lib/orderService.ts';
import type { OrderToCreate } from '../../lib/orders.ts';
import type { Services } from '../../lib/services.ts';
import { testServices } from '../support.ts';

const USER = 'LIST-USER';
const COUNT = 250;
const BASE = Date.parse('2026-11-25T10:00:00.000Z');

/** The i-th order of USER: one second apart, except that every fifth shares its predecessor's time. */
const userOrder = (i: number): OrderToCreate => ({
  order_id: `LIST-${String(i).padStart(3, '0')}`,
  user_id: USER,
  item_ids: [i],
  total_amount: i,
  created_at: new Date(BASE + (i - (i % 5 === 4 ? 1 : 0)) * 1_000).toISOString(),
});

const otherOrder = (user: string, i: number): OrderToCreate => ({
  order_id: `${user}-${i}`,
  user_id: user,
  item_ids: ['x'],
  total_amount: 1,
  // Interleaved in time with USER's orders, so an index read that leaked across users would show them.
  created_at: new Date(BASE + i * 37_000).toISOString(),
});

let services: Services;

/** Every page of `userId`'s orders with `limit`, following next_cursor to the end. */
const allPages = async (userId: string, limit?: number): Promise<OrderPage[]> => {
  const pages: OrderPage[] = [];
  let cursor: string | undefined;
  do {
    const page = await services.orderService.list({ user_id: userId, ...(limit && { limit: String(limit) }), ...(cursor && { cursor }) });
    pages.push(page);
    cursor = page.next_cursor ?? undefined;
    if (pages.length > COUNT) throw new Error('the cursor never ends');
  } while (cursor);
  return pages;
};

/** The InvalidQuery errors `query` is refused with. */
const refusal = async (query: Record<string, string>) => {
  const error = await services.orderService.list(query).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InvalidQuery);
  const { message, errors } = error as InvalidQuery;
  return { message, errors };
};

beforeAll(async () => {
  services = await testServices();
  const orders = [
    ...Array.from({ length: COUNT }, (_, i) => userOrder(i)),
    ...['LIST-OTHER-A', 'LIST-OTHER-B'].flatMap((user) => Array.from({ length: 4 }, (_, i) => otherOrder(user, i))),
    // A user id that starts with USER's: a prefix match on the index would include it.
    otherOrder(`${USER}2`, 1),
  ];
  for (let i = 0; i < orders.length; i += 50) {
    const outcomes = await services.orders.createMany(orders.slice(i, i + 50));
    expect(outcomes.every((outcome) => outcome.ok)).toBe(true);
  }
});

describe("listing a user's orders", () => {
  it('reads all 250 orders over pages of 100, newest first, without duplicates or other users', async () => {
    const pages = await allPages(USER, 100);

    expect(pages.map((page) => page.items.length)).toEqual([100, 100, 50]);
    expect(pages.map((page) => page.next_cursor === null)).toEqual([false, false, true]);
    const items = pages.flatMap((page) => page.items);
    expect(new Set(items.map((order) => order.order_id)).size).toBe(COUNT);
    expect(items.every((order) => order.user_id === USER)).toBe(true);
    const times = items.map((order) => Date.parse(order.created_at));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    // Apart from orders created in the same millisecond, the order is exactly newest first.
    expect(items[0]!.order_id).toBe('LIST-248');
    expect(items.at(-1)!.order_id).toBe('LIST-000');
  });

  it('gives the same sequence whatever the page size', async () => {
    const ids = (pages: OrderPage[]) => pages.flatMap((page) => page.items.map((order) => order.order_id));
    const byHundred = ids(await allPages(USER, 100));
    const bySeven = await allPages(USER, 7);

    expect(bySeven).toHaveLength(Math.ceil(COUNT / 7));
    expect(ids(bySeven)).toEqual(byHundred);
  });

  it('returns 20 orders by default, with a cursor to the next page', async () => {
    const page = await services.orderService.list({ user_id: USER });

    expect(page.items).toHaveLength(20);
    expect(page.next_cursor).toEqual(expect.any(String));
  });

  it('shows each order as GET /orders/{order_id} does, without the bookkeeping', async () => {
    const { items } = await services.orderService.list({ user_id: USER, limit: '1' });

    expect(items).toEqual([await services.orderService.get('LIST-248')]);
    expect(items[0]).toEqual({
      order_id: 'LIST-248',
      user_id: USER,
      item_ids: [248],
      total_amount: 248,
      status: 'PENDING',
      attempts: 0,
      created_at: '2026-11-25T10:04:08.000Z',
    });
  });

  it('ends with a null cursor when the last page is exactly full', async () => {
    expect((await allPages('LIST-OTHER-A', 4)).map((page) => page.items.length)).toEqual([4]);
    expect((await allPages('LIST-OTHER-A', 2)).map((page) => page.items.length)).toEqual([2, 2]);
  });

  it('answers a user without orders with an empty page', async () => {
    expect(await services.orderService.list({ user_id: 'NOBODY' })).toEqual({ items: [], next_cursor: null });
  });

  it('fills a page even when DynamoDB stops a read at 1 MB', async () => {
    const user = 'LIST-BIG';
    const big = Array.from({ length: 101 }, (_, i) => ({
      order_id: `LIST-BIG-${i}`,
      user_id: user,
      item_ids: Array.from({ length: 100 }, (_, k) => `${k}`.padStart(128, 'i')),
      total_amount: 1,
      created_at: new Date(BASE + i).toISOString(),
    }));
    for (let i = 0; i < big.length; i += 25) await services.orders.createMany(big.slice(i, i + 25));

    const first = await services.orderService.list({ user_id: user, limit: '100' });
    expect(first.items).toHaveLength(100);
    const second = await services.orderService.list({ user_id: user, limit: '100', cursor: first.next_cursor! });
    expect(second.items.map((order) => order.order_id)).toEqual(['LIST-BIG-0']);
    expect(second.next_cursor).toBeNull();
  });
});

describe('the cursor', () => {
  it("refuses another user's cursor, so it cannot read that user's orders", async () => {
    const { next_cursor } = await services.orderService.list({ user_id: 'LIST-OTHER-A', limit: '1' });

    expect(await refusal({ user_id: USER, cursor: next_cursor! })).toEqual({
      message: '1 field is invalid',
      errors: [{ field: 'cursor', message: 'was issued for another user_id' }],
    });
  });

  it('keeps a cursor forged to name the user asked for inside that user\'s orders', async () => {
    const { next_cursor } = await services.orderService.list({ user_id: 'LIST-OTHER-A', limit: '1' });
    const position = JSON.parse(Buffer.from(next_cursor!, 'base64url').toString()) as Record<string, string>;
    // Forged to pass the ownership check: the query still reads only USER's partition of the index.
    const forged = encodeCursor({ user_id: USER, created_at: position.created_at!, order_id: position.order_id! });

    const page = await services.orderService.list({ user_id: USER, cursor: forged, limit: '100' });
    expect(page.items.every((order) => order.user_id === USER)).toBe(true);
  });

  it.each([
    ['text that is not base64url JSON', '!!not-a-cursor!!'],
    ['JSON that is not a position', Buffer.from('{"user_id":"LIST-USER"}').toString('base64url')],
    ['a position with an extra key', encodeCursorWith({ pk: 'ORDER#LIST-001' })],
    ['a position with a bad time', encodeCursorWith({ created_at: 'yesterday' })],
    ['an empty cursor', ''],
  ])('refuses %s', async (_, cursor) => {
    expect(await refusal({ user_id: USER, cursor })).toEqual({
      message: '1 field is invalid',
      errors: [{ field: 'cursor', message: 'is not a cursor this service issued' }],
    });
  });
});

describe('the query', () => {
  it.each(['0', '101', '-1', '1.5', 'ten', '', '1,2'])('refuses limit=%j', async (limit) => {
    expect(await refusal({ user_id: USER, limit })).toEqual({
      message: '1 field is invalid',
      errors: [{ field: 'limit', message: 'must be an integer from 1 to 100' }],
    });
  });

  it.each([
    ['1', 1],
    ['100', 100],
  ])('accepts limit=%s', async (limit, size) => {
    expect((await services.orderService.list({ user_id: USER, limit })).items).toHaveLength(size);
  });

  it('requires user_id and lists every bad field at once', async () => {
    expect(await refusal({ limit: '0', colour: 'red' })).toEqual({
      message: '3 fields are invalid',
      errors: expect.arrayContaining([
        { field: 'user_id', message: 'is required' },
        { field: 'limit', message: 'must be an integer from 1 to 100' },
        { field: 'colour', message: 'is not a known field' },
      ]),
    });
  });

  it.each([
    ['an empty user_id', ''],
    ['a user_id of 129 characters', 'u'.repeat(129)],
  ])('refuses %s', async (_, userId) => {
    expect(await refusal({ user_id: userId })).toEqual({
      message: '1 field is invalid',
      errors: [{ field: 'user_id', message: 'must be 1-128 characters' }],
    });
  });
});

function encodeCursorWith(change: Record<string, string>): string {
  const position = { user_id: USER, created_at: '2026-11-25T10:00:00.000Z', order_id: 'LIST-001', ...change };
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}
