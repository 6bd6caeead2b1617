import { z } from 'zod';
import { ORDER_ID_PATTERN, ORDER_STATUSES } from './order.ts';

/**
 * The response bodies of the API as zod schemas: with OrderInputSchema and ListOrdersQuerySchema they are
 * what the OpenAPI document is generated from, and tests hold real responses to them. They only describe,
 * so they use classic zod, which only the apiDocs bundle carries; what validates at run time is zod/mini.
 */

const time = (description: string) => z.iso.datetime().meta({ description });
const count = (description: string) => z.int().min(0).meta({ description });
const orderId = z.string().regex(ORDER_ID_PATTERN);

export const OrderSchema = z
  .strictObject({
    order_id: orderId,
    user_id: z.string(),
    item_ids: z.array(z.union([z.string(), z.int()])).meta({ description: 'Exactly as sent.' }),
    total_amount: z.number(),
    status: z.enum(ORDER_STATUSES),
    attempts: count('Processing attempts so far, including any interrupted by a crash.'),
    created_at: time('When the order was received.'),
    started_at: time('When the attempt that completed (or is running) started.').optional(),
    completed_at: time('Present once COMPLETED.').optional(),
    processing_ms: count('completed_at - started_at, once COMPLETED.').optional(),
    failed_at: time('Present once FAILED.').optional(),
    error: z.string().meta({ description: 'The last error, once FAILED.' }).optional(),
  })
  .meta({
    description: 'An order. Fields that have not happened yet are absent.',
    examples: [
      {
        order_id: 'ORD001',
        user_id: 'USER001',
        item_ids: [1, 2, 3],
        total_amount: 99.99,
        status: 'COMPLETED',
        attempts: 1,
        created_at: '2026-11-25T10:00:00.000Z',
        started_at: '2026-11-25T10:00:00.020Z',
        completed_at: '2026-11-25T10:00:01.530Z',
        processing_ms: 1510,
      },
    ],
  });

export const OrderStatusSchema = z
  .strictObject({ order_id: orderId, status: z.enum(ORDER_STATUSES) })
  .meta({
    description: 'PENDING -> PROCESSING -> COMPLETED, or FAILED once the retry budget is spent.',
    examples: [{ order_id: 'ORD001', status: 'PROCESSING' }],
  });

export const OrderListSchema = z
  .strictObject({
    items: z.array(OrderSchema).meta({ description: 'Newest first.' }),
    next_cursor: z
      .string()
      .nullable()
      .meta({ description: 'Pass it as `cursor` to read the next page; null on the last page.' }),
  })
  .meta({
    description: "A page of a user's orders.",
    examples: [
      {
        items: [
          {
            order_id: 'ORD002',
            user_id: 'USER001',
            item_ids: ['SKU-9'],
            total_amount: 5,
            status: 'PENDING',
            attempts: 0,
            created_at: '2026-11-25T10:02:00.000Z',
          },
        ],
        next_cursor: 'eyJ1c2VyX2lkIjoiVVNFUjAwMSIsImNyZWF0ZWRfYXQiOiIyMDI2LTExLTI1VDEwOjAyOjAwLjAwMFoiLCJvcmRlcl9pZCI6Ik9SRDAwMiJ9',
      },
    ],
  });

const msOrNull = (description: string) => z.number().nullable().meta({ description });

export const MetricsSchema = z
  .strictObject({
    total_orders: count('Every order ever accepted.'),
    total_orders_processed: count('Orders that reached COMPLETED.'),
    average_processing_time_ms: msOrNull('Mean of completed_at - started_at over completed orders; null before the first.'),
    average_turnaround_time_ms: msOrNull('Mean of completed_at - created_at over completed orders; null before the first.'),
    processing_time_ms: z
      .strictObject({ p50: msOrNull('Median.'), p95: msOrNull('95th percentile.'), p99: msOrNull('99th percentile.') })
      .meta({ description: 'Percentiles of the processing time, from a histogram: within 0.8% of the true value.' }),
    status_counts: z
      .strictObject(Object.fromEntries(ORDER_STATUSES.map((status) => [status, z.int().min(0)])) as Record<(typeof ORDER_STATUSES)[number], z.ZodInt>)
      .meta({ description: 'Orders per status, exact. PENDING is the queue depth: orders waiting for a worker.' }),
    quarantined: count(
      'Orders set aside after POISON_MAX_TRIES tries that ended in a fault (they could not be read or written) or in a lapsed lease, until an operator requeues them. They keep their status and are counted in status_counts too.',
    ),
    processing_time_histogram: z
      .array(z.strictObject({ ge_ms: count('Lower bound of the bucket.'), count: count('Completed orders in it.') }))
      .meta({ description: 'Completed orders per processing-time bucket, ascending, non-empty buckets only (beyond API.md, for charts).' }),
    generated_at: time('When the counters were read.'),
  })
  .meta({
    description: 'Exact counts read from a few counter items: the cost does not grow with the number of orders.',
    examples: [
      {
        total_orders: 1000,
        total_orders_processed: 990,
        average_processing_time_ms: 1203.4,
        average_turnaround_time_ms: 1710.2,
        processing_time_ms: { p50: 1192, p95: 1896, p99: 1896 },
        status_counts: { PENDING: 4, PROCESSING: 6, COMPLETED: 990, FAILED: 0 },
        quarantined: 0,
        processing_time_histogram: [
          { ge_ms: 1184, count: 500 },
          { ge_ms: 1888, count: 490 },
        ],
        generated_at: '2026-11-25T10:05:00.000Z',
      },
    ],
  });

export const HealthSchema = z.strictObject({ status: z.literal('ok') }).meta({ examples: [{ status: 'ok' }] });

export const FieldErrorSchema = z
  .strictObject({ field: z.string(), message: z.string() })
  .meta({ description: 'One invalid field: its path (`item_ids[2]`) and what is wrong with it.' });

export const ProblemSchema = z
  .strictObject({
    type: z.string(),
    title: z.string().min(1),
    status: z.int().min(400).max(599),
    detail: z.string().min(1),
    errors: z.array(FieldErrorSchema).meta({ description: 'Every invalid field, on a 400.' }).optional(),
    request_id: z.string().meta({ description: 'On a 5xx: quote it when reporting the problem.' }).optional(),
  })
  .meta({
    description: 'An RFC 9457 problem: every 4xx and 5xx answer.',
    examples: [
      {
        type: 'about:blank',
        title: 'Invalid order',
        status: 400,
        detail: '2 fields are invalid',
        errors: [
          { field: 'item_ids', message: 'must have at least 1 item' },
          { field: 'total_amount', message: 'must be >= 0' },
        ],
      },
    ],
  });
