import { describe, expect, it, vi } from 'vitest';
import { InvalidOrder, type FieldError } from '../../lib/errors.ts';
import { parseOrderInput, sameContent, toOrderView, type NewOrder, type Order } from '../../lib/order.ts';

const newId = () => 'GENERATED';

const body = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  user_id: 'USER001',
  item_ids: [1, 2, 3],
  total_amount: 99.99,
  ...overrides,
});

/** Parses a body that must be rejected and returns what the rejection says. */
const rejection = (input: unknown): { name: string; message: string; errors: FieldError[] } => {
  try {
    parseOrderInput(input, newId);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOrder);
    const { name, message, errors } = error as InvalidOrder;
    return { name, message, errors };
  }
  throw new Error('the body was accepted');
};

/** The rejection of a body with exactly one bad field. */
const oneError = (field: string, message: string) => ({
  name: 'InvalidOrder',
  message: '1 field is invalid',
  errors: [{ field, message }],
});

const ORDER_ID_RULE = 'must be 1-64 characters of A-Z a-z 0-9 _ . : -';
const TWO_DECIMALS = 'must have at most 2 decimal places';

describe('parseOrderInput', () => {
  it('accepts a minimal order and generates its id', () => {
    expect(parseOrderInput(body(), newId)).toEqual({
      order_id: 'GENERATED',
      user_id: 'USER001',
      item_ids: [1, 2, 3],
      total_amount: 99.99,
    });
  });

  describe('order_id', () => {
    it('keeps the client id and does not generate one', () => {
      const generate = vi.fn(newId);
      expect(parseOrderInput(body({ order_id: 'ORD-1_a.b:c' }), generate)).toEqual({
        order_id: 'ORD-1_a.b:c',
        user_id: 'USER001',
        item_ids: [1, 2, 3],
        total_amount: 99.99,
      });
      expect(generate).not.toHaveBeenCalled();
    });

    it('generates the id through the callback when it is absent', () => {
      const generate = vi.fn(() => '01JABCDEFGHJKMNPQRSTVWXYZ0');
      expect(parseOrderInput(body(), generate).order_id).toBe('01JABCDEFGHJKMNPQRSTVWXYZ0');
      expect(generate).toHaveBeenCalledTimes(1);
    });

    it.each([
      ['one character', 'A'],
      ['64 characters', 'x'.repeat(64)],
      ['every allowed kind of character', 'AZaz09_.:-'],
    ])('accepts an id of %s', (_, orderId) => {
      expect(parseOrderInput(body({ order_id: orderId }), newId).order_id).toBe(orderId);
    });

    it.each([
      ['an empty id', ''],
      ['an id of 65 characters', 'x'.repeat(65)],
      ['an id with a slash', 'a/b'],
      ['an id with a space', 'a b'],
      ['an id with a non-ASCII letter', 'ordré'],
      ['an id with a percent sign', 'a%2Fb'],
    ])('rejects %s', (_, orderId) => {
      expect(rejection(body({ order_id: orderId }))).toEqual(oneError('order_id', ORDER_ID_RULE));
    });

    it.each([
      ['a number', 42],
      ['null', null],
      ['an array', ['ORD001']],
    ])('rejects an id that is %s', (_, orderId) => {
      expect(rejection(body({ order_id: orderId }))).toEqual(oneError('order_id', 'must be a string'));
    });
  });

  describe('user_id', () => {
    it.each([
      ['a string as given', 'USER001', 'USER001'],
      ['an integer as a string', 42, '42'],
      ['zero as a string', 0, '0'],
      ['a negative integer as a string', -7, '-7'],
      ['the largest safe integer as a string', Number.MAX_SAFE_INTEGER, '9007199254740991'],
      ['a string of 128 characters', 'u'.repeat(128), 'u'.repeat(128)],
      ['a single character', 'u', 'u'],
    ])('stores %s', (_, userId, stored) => {
      expect(parseOrderInput(body({ user_id: userId }), newId)).toEqual({
        order_id: 'GENERATED',
        user_id: stored,
        item_ids: [1, 2, 3],
        total_amount: 99.99,
      });
    });

    it('rejects a missing user_id', () => {
      const { user_id: _, ...withoutUser } = body();
      expect(rejection(withoutUser)).toEqual(oneError('user_id', 'is required'));
    });

    it.each([
      ['a float', 1.5],
      ['true', true],
      ['false', false],
      ['null', null],
      ['an object', { id: 1 }],
      ['an array', ['USER001']],
    ])('rejects a user_id that is %s', (_, userId) => {
      expect(rejection(body({ user_id: userId }))).toEqual(oneError('user_id', 'must be a string or an integer'));
    });

    it('rejects an integer beyond the safe range', () => {
      expect(rejection(body({ user_id: 2 ** 53 }))).toEqual(oneError('user_id', 'must be a string or an integer'));
    });

    it.each([
      ['an empty string', ''],
      ['a string of 129 characters', 'u'.repeat(129)],
    ])('rejects a user_id that is %s', (_, userId) => {
      expect(rejection(body({ user_id: userId }))).toEqual(oneError('user_id', 'must be 1-128 characters'));
    });

    it.each([
      ['a lone high surrogate', 'USER\uD800'],
      ['a lone low surrogate', '\uDC00USER'],
      ['two halves in the wrong order', '\uDE00\uD83D'],
    ])('rejects a user_id with %s, which DynamoDB could not store', (_, userId) => {
      expect(rejection(body({ user_id: userId }))).toEqual(oneError('user_id', 'must be valid Unicode text (no lone surrogate)'));
    });

    it('keeps characters beyond the BMP, written as surrogate pairs', () => {
      expect(parseOrderInput(body({ user_id: 'USER-\uD83D\uDE00', item_ids: ['😀'] }), newId)).toMatchObject({ user_id: 'USER-😀', item_ids: ['😀'] });
    });
  });

  describe('item_ids', () => {
    it('returns the entries as given, keeping strings and integers apart', () => {
      expect(parseOrderInput(body({ item_ids: ['1', 1, 'SKU-9', 0, -3] }), newId)).toEqual({
        order_id: 'GENERATED',
        user_id: 'USER001',
        item_ids: ['1', 1, 'SKU-9', 0, -3],
        total_amount: 99.99,
      });
    });

    it.each([
      ['1 entry', [7]],
      ['100 entries', Array.from({ length: 100 }, (_, i) => i)],
      ['an entry of 128 characters', ['i'.repeat(128)]],
      ['the largest safe integer', [Number.MAX_SAFE_INTEGER]],
      ['repeated entries', [1, 1, '1']],
    ])('accepts %s', (_, itemIds) => {
      expect(parseOrderInput(body({ item_ids: itemIds }), newId).item_ids).toEqual(itemIds);
    });

    it('rejects a missing item_ids', () => {
      const { item_ids: _, ...withoutItems } = body();
      expect(rejection(withoutItems)).toEqual(oneError('item_ids', 'is required'));
    });

    it('rejects an empty list', () => {
      expect(rejection(body({ item_ids: [] }))).toEqual(oneError('item_ids', 'must have at least 1 item'));
    });

    it('rejects 101 entries', () => {
      const itemIds = Array.from({ length: 101 }, (_, i) => i);
      expect(rejection(body({ item_ids: itemIds }))).toEqual(oneError('item_ids', 'must have at most 100 items'));
    });

    it.each([
      ['a string', '1,2,3'],
      ['a number', 1],
      ['null', null],
      ['an object', { 0: 1 }],
    ])('rejects item_ids that is %s', (_, itemIds) => {
      expect(rejection(body({ item_ids: itemIds }))).toEqual(
        oneError('item_ids', 'must be an array of strings or integers'),
      );
    });

    it('names each bad entry by its index', () => {
      expect(rejection(body({ item_ids: [1, 'ok', 1.5, '', null, 'i'.repeat(129), true, { id: 1 }] }))).toEqual({
        name: 'InvalidOrder',
        message: '6 fields are invalid',
        errors: [
          { field: 'item_ids[2]', message: 'must be a string or an integer' },
          { field: 'item_ids[3]', message: 'must be 1-128 characters' },
          { field: 'item_ids[4]', message: 'must be a string or an integer' },
          { field: 'item_ids[5]', message: 'must be 1-128 characters' },
          { field: 'item_ids[6]', message: 'must be a string or an integer' },
          { field: 'item_ids[7]', message: 'must be a string or an integer' },
        ],
      });
    });

    it('rejects an entry with a lone surrogate', () => {
      expect(rejection(body({ item_ids: ['SKU-1', 'SKU-\uDBFF'] }))).toEqual(oneError('item_ids[1]', 'must be valid Unicode text (no lone surrogate)'));
    });

    it('rejects an entry beyond the safe integer range', () => {
      expect(rejection(body({ item_ids: [1, 2 ** 53] }))).toEqual(oneError('item_ids[1]', 'must be a string or an integer'));
    });
  });

  describe('total_amount', () => {
    it.each([
      ['zero', 0],
      ['an integer', 100],
      ['one decimal', 0.5],
      ['two decimals', 19.99],
      ['0.07', 0.07],
      ['0.1', 0.1],
      ['1e11', 1e11],
      ['the largest amount below 1e12', 999_999_999_999.99],
    ])('accepts %s', (_, amount) => {
      expect(parseOrderInput(body({ total_amount: amount }), newId)).toEqual({
        order_id: 'GENERATED',
        user_id: 'USER001',
        item_ids: [1, 2, 3],
        total_amount: amount,
      });
    });

    it('turns -0 into 0', () => {
      const { total_amount } = parseOrderInput(body({ total_amount: -0 }), newId);
      expect(Object.is(total_amount, 0)).toBe(true);
    });

    it('rejects a missing total_amount', () => {
      const { total_amount: _, ...withoutTotal } = body();
      expect(rejection(withoutTotal)).toEqual(oneError('total_amount', 'is required'));
    });

    it.each([
      ['a numeric string', '99.99'],
      ['null', null],
      ['a boolean', true],
      ['NaN', Number.NaN],
      ['Infinity', Number.POSITIVE_INFINITY],
      ['-Infinity', Number.NEGATIVE_INFINITY],
    ])('rejects a total that is %s', (_, amount) => {
      expect(rejection(body({ total_amount: amount }))).toEqual(oneError('total_amount', 'must be a finite number'));
    });

    it.each([
      ['-0.01', -0.01],
      ['-1', -1],
    ])('rejects a negative total of %s', (_, amount) => {
      expect(rejection(body({ total_amount: amount }))).toEqual(oneError('total_amount', 'must be >= 0'));
    });

    it.each([
      ['1e12', 1e12],
      ['1e12 + 1', 1e12 + 1],
      ['1e21', 1e21],
    ])('rejects a total of %s', (_, amount) => {
      expect(rejection(body({ total_amount: amount }))).toEqual(oneError('total_amount', 'must be below 1e12'));
    });

    it.each([
      ['a total with three decimals', 1.005],
      ['a total with three decimals below 1', 0.001],
      ['1e-7', 1e-7],
      ['0.1 + 0.2', 0.1 + 0.2],
      ['a total with many decimals', 19.999999],
    ])('rejects %s', (_, amount) => {
      expect(rejection(body({ total_amount: amount }))).toEqual(oneError('total_amount', TWO_DECIMALS));
    });

    it('lists both problems of a negative total with three decimals, counting one field', () => {
      expect(rejection(body({ total_amount: -0.001 }))).toEqual({
        name: 'InvalidOrder',
        message: '1 field is invalid',
        errors: [
          { field: 'total_amount', message: 'must be >= 0' },
          { field: 'total_amount', message: TWO_DECIMALS },
        ],
      });
    });
  });

  describe('unknown fields', () => {
    it('rejects an unknown field by name', () => {
      expect(rejection(body({ status: 'COMPLETED' }))).toEqual(oneError('status', 'is not a known field'));
    });

    it('lists every unknown field', () => {
      expect(rejection(body({ totalAmount: 1, userId: 'U', extra: null }))).toEqual({
        name: 'InvalidOrder',
        message: '3 fields are invalid',
        errors: [
          { field: 'totalAmount', message: 'is not a known field' },
          { field: 'userId', message: 'is not a known field' },
          { field: 'extra', message: 'is not a known field' },
        ],
      });
    });

    it('rejects a "__proto__" key of a JSON body as an unknown field', () => {
      const parsed: unknown = JSON.parse('{"user_id":"U","item_ids":[1],"total_amount":1,"__proto__":{"x":1}}');
      expect(rejection(parsed)).toEqual(oneError('__proto__', 'is not a known field'));
    });
  });

  describe('body', () => {
    it.each([
      ['an array', [body()]],
      ['null', null],
      ['a string', '{"user_id":"U"}'],
      ['a number', 42],
      ['a boolean', true],
      ['undefined', undefined],
    ])('rejects a body that is %s', (_, input) => {
      expect(rejection(input)).toEqual(oneError('body', 'must be a JSON object'));
    });

    it('lists every required field of an empty object', () => {
      expect(rejection({})).toEqual({
        name: 'InvalidOrder',
        message: '3 fields are invalid',
        errors: [
          { field: 'user_id', message: 'is required' },
          { field: 'item_ids', message: 'is required' },
          { field: 'total_amount', message: 'is required' },
        ],
      });
    });

    it('lists every bad field at once', () => {
      expect(
        rejection({ order_id: 'a b', user_id: true, item_ids: [1, 2.5], total_amount: -1, colour: 'red' }),
      ).toEqual({
        name: 'InvalidOrder',
        message: '5 fields are invalid',
        errors: [
          { field: 'order_id', message: ORDER_ID_RULE },
          { field: 'user_id', message: 'must be a string or an integer' },
          { field: 'item_ids[1]', message: 'must be a string or an integer' },
          { field: 'total_amount', message: 'must be >= 0' },
          { field: 'colour', message: 'is not a known field' },
        ],
      });
    });

    it('says "2 fields are invalid" for two bad fields', () => {
      expect(rejection(body({ user_id: '', total_amount: 0.001 }))).toEqual({
        name: 'InvalidOrder',
        message: '2 fields are invalid',
        errors: [
          { field: 'user_id', message: 'must be 1-128 characters' },
          { field: 'total_amount', message: TWO_DECIMALS },
        ],
      });
    });
  });
});

describe('sameContent', () => {
  const order: NewOrder = { order_id: 'ORD001', user_id: 'USER001', item_ids: [1, '2', 3], total_amount: 99.99 };

  it('is true for the same content, whatever the order id', () => {
    expect(sameContent(order, { ...order, item_ids: [1, '2', 3] })).toBe(true);
    expect(sameContent(order, { ...order, order_id: 'ORD002' })).toBe(true);
  });

  it.each<[string, Partial<NewOrder>]>([
    ['another user', { user_id: 'USER002' }],
    ['another total', { total_amount: 99.98 }],
    ['one item fewer', { item_ids: [1, '2'] }],
    ['one item more', { item_ids: [1, '2', 3, 4] }],
    ['the items in another order', { item_ids: [3, '2', 1] }],
    ['an item as a string instead of an integer', { item_ids: ['1', '2', 3] }],
    ['an item as an integer instead of a string', { item_ids: [1, 2, 3] }],
  ])('is false for %s', (_, change) => {
    expect(sameContent(order, { ...order, ...change })).toBe(false);
  });
});

describe('toOrderView', () => {
  const base: Order = {
    order_id: 'ORD001',
    user_id: 'USER001',
    item_ids: [1, 2, 3],
    total_amount: 99.99,
    status: 'PENDING',
    attempts: 0,
    created_at: '2026-11-25T10:00:00.000Z',
  };

  it('shows a pending order without the times that have not happened', () => {
    const view = toOrderView({ ...base, started_at: undefined, error: undefined });
    expect(view).toStrictEqual(base);
    expect(Object.keys(view)).toEqual([
      'order_id',
      'user_id',
      'item_ids',
      'total_amount',
      'status',
      'attempts',
      'created_at',
    ]);
  });

  it('shows a completed order in the documented field order', () => {
    const completed: Order = {
      ...base,
      status: 'COMPLETED',
      attempts: 1,
      processing_ms: 1510,
      completed_at: '2026-11-25T10:00:01.530Z',
      started_at: '2026-11-25T10:00:00.020Z',
    };
    const view = toOrderView(completed);
    expect(view).toStrictEqual(completed);
    expect(Object.keys(view)).toEqual([
      'order_id',
      'user_id',
      'item_ids',
      'total_amount',
      'status',
      'attempts',
      'created_at',
      'started_at',
      'completed_at',
      'processing_ms',
    ]);
  });

  it('shows a failed order with its error', () => {
    const failed: Order = {
      ...base,
      status: 'FAILED',
      attempts: 3,
      started_at: '2026-11-25T10:00:00.020Z',
      failed_at: '2026-11-25T10:00:09.000Z',
      error: 'payment declined',
    };
    expect(toOrderView(failed)).toStrictEqual(failed);
  });

  it('drops what the store keeps beside the documented fields', () => {
    const stored = { ...base, pk: 'ORDER#ORD001', due_at: 1_764_064_800_000, due_shard: 'WORK#3', history: [] };
    expect(toOrderView(stored)).toStrictEqual(base);
  });
});
