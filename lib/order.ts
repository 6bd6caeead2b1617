import * as z from 'zod/mini';
import { InvalidOrder, type FieldError } from './errors.ts';

export const ORDER_STATUSES = ['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/** Client-chosen order ids: also the idempotency key, and part of a URL. */
export const ORDER_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

const required =
  (expected: string) =>
  (issue: { input?: unknown }): string =>
    issue.input === undefined ? 'is required' : `must be ${expected}`;

const ID_CHARS = 'must be 1-128 characters';

/**
 * Half of a surrogate pair on its own (`"\ud800"` in JSON) is not Unicode text: DynamoDB keeps strings as
 * UTF-8, which cannot encode it, so the write would be refused and every order of the group commit with it
 * (DynamoDB Local lets it through). With the `u` flag a whole pair is one code point: only lone halves match.
 */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** A string of 1-128 characters, or a safe integer (which stringifies exactly: 1.5 or 2**53 would not name one id). */
const idLike = () =>
  z.union(
    [
      z
        .string()
        .check(
          z.minLength(1, ID_CHARS),
          z.maxLength(128, ID_CHARS),
          z.refine((text) => !LONE_SURROGATE.test(text), 'must be valid Unicode text (no lone surrogate)'),
        ),
      z.int('must be a string or an integer'),
    ],
    { error: required('a string or an integer') },
  );

const hasAtMostTwoDecimals = (value: number): boolean => {
  // String() gives the shortest text that round-trips, so it shows the decimals the client sent.
  const text = String(value);
  if (text.includes('e')) return Number.isInteger(value);
  return (text.split('.')[1]?.length ?? 0) <= 2;
};

/** The body of POST /orders, exactly as API.md states it (the OpenAPI document is generated from it). */
export const OrderInputSchema = z
  .strictObject(
    {
      order_id: z.optional(
        z
          .string({ error: required('a string') })
          .check(z.regex(ORDER_ID_PATTERN, 'must be 1-64 characters of A-Z a-z 0-9 _ . : -'))
          .register(z.globalRegistry, { description: "The client's idempotency key; the server generates a ULID when it is absent." }),
      ),
      user_id: idLike().register(z.globalRegistry, { description: 'Stored and returned as a string.' }),
      item_ids: z
        .array(idLike(), { error: required('an array of strings or integers') })
        .check(z.minLength(1, 'must have at least 1 item'), z.maxLength(100, 'must have at most 100 items'))
        .register(z.globalRegistry, { description: 'Returned exactly as given.' }),
      total_amount: z
        .number({ error: required('a finite number') })
        .check(
          z.gte(0, 'must be >= 0'),
          z.lt(1e12, 'must be below 1e12'),
          z.refine(hasAtMostTwoDecimals, 'must have at most 2 decimal places'),
        )
        .register(z.globalRegistry, { description: 'At most 2 decimal places; stored without binary rounding.' }),
    },
    { error: (issue) => (issue.code === 'invalid_type' ? 'must be a JSON object' : undefined) },
  )
  .register(z.globalRegistry, {
    examples: [
      { order_id: 'ORD001', user_id: 'USER001', item_ids: [1, 2, 3], total_amount: 99.99 },
      { user_id: 42, item_ids: ['SKU-9', 7], total_amount: 0 },
    ],
  });

export type OrderInput = z.infer<typeof OrderInputSchema>;

/** What the client asked for, normalised: ids as the store keeps them. */
export interface NewOrder {
  order_id: string;
  user_id: string;
  item_ids: (string | number)[];
  total_amount: number;
}

/** An order as the API shows it. */
export interface Order extends NewOrder {
  status: OrderStatus;
  attempts: number;
  created_at: string;
  started_at?: string;
  completed_at?: string;
  failed_at?: string;
  processing_ms?: number;
  error?: string;
}

/** The fields of an order the API shows, in the documented order (lib/apiSchemas.ts describes each). */
export const ORDER_VIEW_FIELDS = [
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
  'failed_at',
  'error',
] as const satisfies readonly (keyof Order)[];

const fieldName = (path: readonly PropertyKey[]): string =>
  path.reduce<string>(
    (name, key) => (typeof key === 'number' ? `${name}[${key}]` : name ? `${name}.${String(key)}` : String(key)),
    '',
  ) || 'body';

/** Every problem zod found, one entry per field; an unknown key is reported under its own name. */
export const fieldErrors = (issues: readonly z.core.$ZodIssue[]): FieldError[] =>
  issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ field: fieldName([...issue.path, key]), message: 'is not a known field' }))
      : [{ field: fieldName(issue.path), message: issue.message }],
  );

/**
 * Validates a parsed JSON body against the contract; throws InvalidOrder listing every bad field.
 * `newId` supplies the order id when the client sent none.
 */
export const parseOrderInput = (body: unknown, newId: () => string): NewOrder => {
  const result = OrderInputSchema.safeParse(body);
  if (!result.success) throw new InvalidOrder(fieldErrors(result.error.issues));
  const input = result.data;
  return {
    order_id: input.order_id ?? newId(),
    user_id: String(input.user_id),
    item_ids: input.item_ids,
    // -0 is a valid amount but would read back as 0: store what it means.
    total_amount: input.total_amount === 0 ? 0 : input.total_amount,
  };
};

/** True when a retried create carries the same order as the stored one. */
export const sameContent = (a: NewOrder, b: NewOrder): boolean =>
  a.user_id === b.user_id &&
  a.total_amount === b.total_amount &&
  a.item_ids.length === b.item_ids.length &&
  a.item_ids.every((id, i) => id === b.item_ids[i]);

/** The public view of a stored order: the documented fields it has, in the documented order. */
export const toOrderView = (stored: Order): Order => {
  const view: Partial<Record<keyof Order, unknown>> = {};
  for (const field of ORDER_VIEW_FIELDS) if (stored[field] !== undefined) view[field] = stored[field];
  return view as Order;
};
