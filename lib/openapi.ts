import { z } from 'zod';
import {
  FieldErrorSchema,
  HealthSchema,
  MetricsSchema,
  OrderListSchema,
  OrderSchema,
  OrderStatusSchema,
  ProblemSchema,
} from './apiSchemas.ts';
import { MAX_BODY_BYTES } from './http.ts';
import { OrderInputSchema } from './order.ts';
import { ListOrdersQuerySchema } from './orderListQuery.ts';
import { ROUTES } from './routes.ts';

export type JsonSchema = Record<string, any>;

/** The parts of an OpenAPI 3.1 document this service uses. */
export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description: string };
  servers: { url: string }[];
  tags: { name: string; description: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: {
    schemas: Record<string, JsonSchema>;
    responses: Record<string, Response>;
    headers: Record<string, Header>;
    securitySchemes: Record<string, SecurityScheme>;
  };
}

export type SecurityScheme =
  | { type: 'http'; scheme: 'bearer'; description: string }
  | { type: 'apiKey'; in: 'header'; name: string; description: string };

export interface Operation {
  operationId: string;
  tags: string[];
  summary: string;
  description?: string;
  parameters?: Parameter[];
  requestBody?: { required: boolean; content: Record<string, MediaType> };
  responses: Record<string, Response | Ref>;
  /** The scope an API key needs, under either way of sending it; empty for a public operation. */
  security?: Record<string, string[]>[];
}

export interface Parameter {
  name: string;
  in: 'query' | 'path';
  required: boolean;
  description: string;
  schema: JsonSchema;
  example?: unknown;
}

export interface Response {
  description: string;
  headers?: Record<string, Header | Ref>;
  content?: Record<string, MediaType>;
}

export interface MediaType {
  schema: JsonSchema;
  example?: unknown;
}

export interface Header {
  description: string;
  required?: boolean;
  schema: JsonSchema;
}

export interface Ref {
  $ref: string;
}

const schemaRef = (name: string): Ref => ({ $ref: `#/components/schemas/${name}` });
const headerRef = (name: string): Ref => ({ $ref: `#/components/headers/${name}` });
const responseRef = (name: string): Ref => ({ $ref: `#/components/responses/${name}` });

const REQUEST_ID = { 'x-request-id': headerRef('RequestId') };

/** Named in components.schemas, and how each is read: requests as clients send them, responses as they get them. */
const REQUEST_SCHEMAS = { OrderInput: OrderInputSchema };
const RESPONSE_SCHEMAS = {
  Order: OrderSchema,
  OrderStatus: OrderStatusSchema,
  OrderList: OrderListSchema,
  Metrics: MetricsSchema,
  Health: HealthSchema,
  Problem: ProblemSchema,
  FieldError: FieldErrorSchema,
};

/** Drops what only adds noise to a reader: the long regular expression behind `format: date-time`. */
const tidy = ({ jsonSchema }: { jsonSchema: JsonSchema }): void => {
  if (jsonSchema.format === 'date-time') delete jsonSchema.pattern;
};

const toJsonSchemas = (schemas: Record<string, z.core.$ZodType>, io: 'input' | 'output'): Record<string, JsonSchema> => {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  const { schemas: converted } = z.toJSONSchema(registry, { io, uri: (id) => schemaRef(id).$ref, override: tidy });
  return Object.fromEntries(
    Object.entries(converted).map(([id, { $schema, $id, ...schema }]) => [id, schema as JsonSchema]),
  );
};

/** The query string of GET /orders as OpenAPI parameters, from the schema that validates it. */
const queryParameters = (): Parameter[] => {
  const { properties = {}, required = [] } = z.toJSONSchema(ListOrdersQuerySchema, { io: 'input', override: tidy }) as JsonSchema;
  return Object.entries(properties as Record<string, JsonSchema>).map(([name, { description, examples, ...schema }]) => ({
    name,
    in: 'query',
    required: (required as string[]).includes(name),
    description,
    schema,
    ...(examples && { example: examples[0] }),
  }));
};

const orderIdParameter = (): Parameter => {
  const { $schema, description, ...schema } = z.toJSONSchema(OrderInputSchema.shape.order_id.def.innerType) as JsonSchema;
  return { name: 'order_id', in: 'path', required: true, description: 'The id of the order.', schema, example: 'ORD001' };
};

const json = (description: string, schema: string, example?: unknown, headers: Record<string, Header | Ref> = {}): Response => ({
  description,
  headers: { ...REQUEST_ID, ...headers },
  content: { 'application/json': { schema: schemaRef(schema), ...(example !== undefined && { example }) } },
});

const problem = (description: string, example: Record<string, unknown>, headers: Record<string, Header | Ref> = {}): Response => ({
  description,
  headers: { ...REQUEST_ID, ...headers },
  content: {
    'application/problem+json': { schema: schemaRef('Problem'), example: { type: 'about:blank', ...example } },
  },
});

const text = (description: string, mediaTypes: string[]): Response => ({
  description,
  headers: REQUEST_ID,
  content: Object.fromEntries(mediaTypes.map((type) => [type, { schema: { type: 'string' } }])),
});

const examples = (schema: z.core.$ZodType): unknown[] => (z.globalRegistry.get(schema)?.examples as unknown[] | undefined) ?? [];

const ORDER_EXAMPLE = examples(OrderSchema)[0] as z.output<typeof OrderSchema>;
/** The same order as it is answered to its create: not started yet. */
const { started_at, completed_at, processing_ms, ...PENDING_EXAMPLE } = { ...ORDER_EXAMPLE, status: 'PENDING', attempts: 0 };

const ORDER_NOT_FOUND = problem('No order has this id.', { title: 'Order not found', status: 404, detail: 'No order has the id NOPE' });

const paths = (): OpenApiDocument['paths'] => ({
  '/orders': {
    post: {
      operationId: 'createOrder',
      tags: ['Orders'],
      summary: 'Create an order',
      description:
        'Stores the order durably, then queues it for processing. Sending the same `order_id` again with the same content is safe (200); unknown fields are rejected.',
      requestBody: {
        required: true,
        content: { 'application/json': { schema: schemaRef('OrderInput'), example: examples(OrderInputSchema)[0] } },
      },
      responses: {
        '201': json('Created: the order is durable, PENDING.', 'Order', PENDING_EXAMPLE, {
          location: { description: 'The URL of the new order: /orders/{order_id}.', required: true, schema: { type: 'string' } },
        }),
        '200': json('The same order was sent before: the stored order, unchanged.', 'Order', ORDER_EXAMPLE),
        '400': problem('The body is not valid JSON, or breaks a rule: every bad field is listed.', examples(ProblemSchema)[0] as Record<string, unknown>),
        '409': problem('The order_id is taken by an order with other content.', {
          title: 'Order conflict',
          status: 409,
          detail: 'Order ORD001 already exists with different content',
        }),
        '413': problem(`The body is over ${MAX_BODY_BYTES} bytes.`, {
          title: 'Payload too large',
          status: 413,
          detail: `The body must be at most ${MAX_BODY_BYTES} bytes`,
        }),
        '415': problem('The body is not sent as JSON.', {
          title: 'Unsupported media type',
          status: 415,
          detail: 'Send the order as JSON with Content-Type: application/json',
        }),
        '500': responseRef('InternalError'),
        '503': responseRef('StoreUnavailable'),
      },
    },
    get: {
      operationId: 'listOrders',
      tags: ['Orders'],
      summary: "List a user's orders, newest first",
      description:
        'Pages through the orders of one user, newest first. Follow `next_cursor` until it is null. The cursor is opaque and only valid for the `user_id` it was issued for. Orders appear here within a moment of their creation (the list is read from an index).',
      parameters: queryParameters(),
      responses: {
        '200': json('A page of the orders, newest first.', 'OrderList', examples(OrderListSchema)[0]),
        '400': problem('A query parameter is missing or invalid, or the cursor was not issued for this user_id.', {
          title: 'Invalid query',
          status: 400,
          detail: '2 fields are invalid',
          errors: [
            { field: 'user_id', message: 'is required' },
            { field: 'limit', message: 'must be an integer from 1 to 100' },
          ],
        }),
        '500': responseRef('InternalError'),
        '503': responseRef('StoreUnavailable'),
      },
    },
  },
  '/orders/{order_id}': {
    get: {
      operationId: 'getOrder',
      tags: ['Orders'],
      summary: 'Get an order',
      parameters: [orderIdParameter()],
      responses: {
        '200': json('The whole order.', 'Order', ORDER_EXAMPLE),
        '404': ORDER_NOT_FOUND,
        '500': responseRef('InternalError'),
        '503': responseRef('StoreUnavailable'),
      },
    },
  },
  '/orders/{order_id}/status': {
    get: {
      operationId: 'getOrderStatus',
      tags: ['Orders'],
      summary: "Get an order's status",
      parameters: [orderIdParameter()],
      responses: {
        '200': json('Just the status.', 'OrderStatus', examples(OrderStatusSchema)[0]),
        '404': ORDER_NOT_FOUND,
        '500': responseRef('InternalError'),
        '503': responseRef('StoreUnavailable'),
      },
    },
  },
  '/metrics': {
    get: {
      operationId: 'getMetrics',
      tags: ['Operations'],
      summary: 'Live metrics',
      description: 'Exact counts and processing times, read from counter items that move with each transition.',
      responses: {
        '200': json('The metrics now.', 'Metrics', examples(MetricsSchema)[0]),
        '500': responseRef('InternalError'),
        '503': responseRef('StoreUnavailable'),
      },
    },
  },
  '/health': {
    get: {
      operationId: 'health',
      tags: ['Operations'],
      summary: 'Health check',
      responses: {
        '200': json('The store answers.', 'Health', { status: 'ok' }),
        '500': responseRef('InternalError'),
        '503': responseRef('StoreUnavailable'),
      },
    },
  },
  '/openapi.json': {
    get: {
      operationId: 'openApiDocument',
      tags: ['Documentation'],
      summary: 'This OpenAPI document',
      responses: {
        '200': {
          description: 'The OpenAPI 3.1 document of the API.',
          headers: REQUEST_ID,
          content: { 'application/json': { schema: { type: 'object', required: ['openapi', 'paths'] } } },
        },
        '500': responseRef('InternalError'),
      },
    },
  },
  '/docs': {
    get: {
      operationId: 'apiReference',
      tags: ['Documentation'],
      summary: 'The API reference page',
      description: 'This document as a readable page: its script reads `/openapi.json` with the API key the reader enters (kept for the browser tab only).',
      responses: { '200': text('An HTML page.', ['text/html']), '500': responseRef('InternalError') },
    },
  },
  '/': {
    get: {
      operationId: 'dashboard',
      tags: ['Dashboard'],
      summary: 'The live dashboard',
      description: 'An HTML page for operators: status counts, throughput, processing times and an order lookup, refreshed every second from /metrics.',
      responses: { '200': text('An HTML page.', ['text/html']), '500': responseRef('InternalError') },
    },
  },
  '/assets/{name}': {
    get: {
      operationId: 'asset',
      tags: ['Dashboard'],
      summary: 'A file of the dashboard or the reference page',
      parameters: [
        { name: 'name', in: 'path', required: true, description: 'The file name.', schema: { type: 'string' }, example: 'dashboard.js' },
      ],
      responses: {
        '200': text('The file.', ['text/css', 'text/javascript', 'text/html']),
        '404': problem('No asset has this name.', { title: 'Not found', status: 404, detail: 'No asset named nope.js' }),
        '500': responseRef('InternalError'),
      },
    },
  },
});

const SECURITY_SCHEMES: Record<string, SecurityScheme> = {
  bearerKey: { type: 'http', scheme: 'bearer', description: 'An API key, as `Authorization: Bearer <key>`.' },
  headerKey: { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'The same API key, as `x-api-key: <key>`.' },
};

/**
 * Adds to each operation the scope its route needs (lib/routes.ts, the table the service enforces) and
 * the 401 and 403 answers that come with it.
 */
const withSecurity = (all: OpenApiDocument['paths']): OpenApiDocument['paths'] =>
  Object.fromEntries(
    Object.entries(all).map(([path, operations]) => [
      path,
      Object.fromEntries(
        Object.entries(operations).map(([method, operation]) => {
          const scope = ROUTES.find((route) => route.method === method.toUpperCase() && route.path === path)?.scope;
          if (!scope) return [method, { ...operation, security: [] }];
          const security = Object.keys(SECURITY_SCHEMES).map((name) => ({ [name]: [scope] }));
          const responses = { ...operation.responses, '401': responseRef('Unauthorized'), '403': responseRef('Forbidden') };
          return [method, { ...operation, security, responses }];
        }),
      ),
    ]),
  );

let cached: OpenApiDocument | undefined;

/** The OpenAPI 3.1 document of every endpoint, generated once from the zod schemas the service validates with. */
export const openApiDocument = (): OpenApiDocument =>
  (cached ??= {
    openapi: '3.1.0',
    info: {
      title: 'Order processing API',
      version: '1.0.0',
      description:
        'Shops send orders; the service stores them durably, processes them asynchronously, answers where each order is, and reports exact live metrics. JSON over HTTP, snake_case fields, ISO-8601 UTC times, durations in milliseconds. Every 4xx/5xx body is RFC 9457 problem JSON. ' +
        'Operations on orders and metrics need an API key with the scope they name (`orders:write`, `orders:read`, `metrics:read`), sent as `Authorization: Bearer <key>` or `x-api-key`; a service without configured keys (the local runtimes only) serves its own machine without one.',
    },
    servers: [{ url: '/' }],
    tags: [
      { name: 'Orders', description: 'Create orders and follow them.' },
      { name: 'Operations', description: 'Metrics and health, for operators and load balancers.' },
      { name: 'Documentation', description: 'This document and its reference page.' },
      { name: 'Dashboard', description: 'The live dashboard and its files.' },
    ],
    paths: withSecurity(paths()),
    components: {
      securitySchemes: SECURITY_SCHEMES,
      schemas: { ...toJsonSchemas(REQUEST_SCHEMAS, 'input'), ...toJsonSchemas(RESPONSE_SCHEMAS, 'output') },
      headers: {
        RequestId: {
          description: 'The id of this request, also in the log line of the request: quote it when reporting a problem.',
          required: true,
          schema: { type: 'string' },
        },
      },
      responses: {
        Unauthorized: problem(
          'No API key, or one that is not valid. Only when the service has API keys configured (in the cloud, always).',
          { title: 'Unauthorized', status: 401, detail: 'Send an API key as Authorization: Bearer <key> (or x-api-key)' },
          { 'www-authenticate': { description: '`Bearer`.', required: true, schema: { type: 'string' } } },
        ),
        Forbidden: problem('The API key lacks the scope this operation needs.', {
          title: 'Forbidden',
          status: 403,
          detail: 'The API key "shop1" lacks the metrics:read scope',
        }),
        InternalError: problem('Something failed on our side; the body carries only the request id.', {
          title: 'Internal error',
          status: 500,
          detail: 'Something went wrong on our side; quote the request id when reporting it.',
          request_id: 'c69f92b1-a6e8-4063-a21b-5d7711923597',
        }),
        StoreUnavailable: problem(
          'The store cannot be reached, is throttling or did not answer in time, or too many requests wait for it (load shedding): retry after `Retry-After` seconds, with the same `order_id` for a create.',
          {
            title: 'Service unavailable',
            status: 503,
            detail: 'The order store is unavailable; retry shortly',
            request_id: 'c69f92b1-a6e8-4063-a21b-5d7711923597',
          },
          { 'retry-after': { description: 'Seconds to wait before retrying.', required: true, schema: { type: 'string' } } },
        ),
      },
    },
  });
