import * as z from 'zod/mini';
import { InvalidQuery } from './errors.ts';
import { fieldErrors, ORDER_ID_PATTERN } from './order.ts';

/** Where a page of a user's orders ended: the last order it held, in index order (created_at, then id). */
export interface ListPosition {
  user_id: string;
  created_at: string;
  order_id: string;
}

const PositionSchema = z.strictObject({
  user_id: z.string().check(z.minLength(1), z.maxLength(128)),
  created_at: z.iso.datetime(),
  order_id: z.string().check(z.regex(ORDER_ID_PATTERN)),
});

/** The opaque cursor of the next page: the position, as base64url JSON. */
export const encodeCursor = (position: ListPosition): string =>
  Buffer.from(JSON.stringify(position), 'utf8').toString('base64url');

const decodeCursor = (cursor: string): ListPosition | undefined => {
  try {
    const result = PositionSchema.safeParse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
    return result.success ? result.data : undefined;
  } catch {
    return undefined;
  }
};

/** The query string of GET /orders, exactly as API.md states it (the OpenAPI document is generated from it). */
const LIMIT_RULE = 'must be an integer from 1 to 100';

export const ListOrdersQuerySchema = z.strictObject({
  user_id: z
    .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
    .check(z.minLength(1, 'must be 1-128 characters'), z.maxLength(128, 'must be 1-128 characters'))
    .register(z.globalRegistry, { description: "The user whose orders to list, as the orders' `user_id`.", examples: ['USER001'] }),
  limit: z
    ._default(
      z.coerce.number<string>({ error: LIMIT_RULE }).check(z.int(LIMIT_RULE), z.gte(1, LIMIT_RULE), z.lte(100, LIMIT_RULE)),
      20,
    )
    .register(z.globalRegistry, { description: 'Most orders in the page.', examples: [20] }),
  cursor: z.optional(
    z
      .pipe(
        z.string(),
        z.transform((cursor: string, context) => {
          const position = decodeCursor(cursor);
          if (!position) context.issues.push({ code: 'custom', message: 'is not a cursor this service issued', input: cursor });
          return position ?? z.NEVER;
        }),
      )
      .register(z.globalRegistry, { description: 'The `next_cursor` of the previous page, unchanged; absent for the first page.' }),
  ),
});

/** A validated GET /orders query. */
export interface ListOrdersQuery {
  user_id: string;
  limit: number;
  /** Where the previous page ended; absent for the first page. */
  after?: ListPosition;
}

/**
 * Validates the query string of GET /orders; throws InvalidQuery listing every bad field, including a
 * cursor that does not decode or that was issued for another user (a cursor cannot reach another user's orders).
 */
export const parseListOrdersQuery = (query: Record<string, string | undefined>): ListOrdersQuery => {
  const result = ListOrdersQuerySchema.safeParse(query);
  if (!result.success) throw new InvalidQuery(fieldErrors(result.error.issues));
  const { user_id, limit, cursor } = result.data;
  if (cursor && cursor.user_id !== user_id) {
    throw new InvalidQuery([{ field: 'cursor', message: 'was issued for another user_id' }]);
  }
  return { user_id, limit, ...(cursor && { after: cursor }) };
};
