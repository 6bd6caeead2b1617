import type { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { StoreUnavailable, type FieldError, type InvalidRequest } from './errors.ts';

export type HttpResult = APIGatewayProxyStructuredResultV2 & { statusCode: number };
export type HttpHandler = (event: APIGatewayProxyEventV2, context?: Context) => Promise<HttpResult>;

/** The largest body POST /orders accepts (API.md). */
export const MAX_BODY_BYTES = 64 * 1024;

/** An error that is about the HTTP request itself rather than the domain. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    readonly title: string,
    detail: string,
    readonly headers: Record<string, string> = {},
    options?: ErrorOptions,
  ) {
    super(detail, options);
  }
}

/** A JSON response. */
export const json = (statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResult => ({
  statusCode,
  headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
  body: JSON.stringify(body),
});

/**
 * A page or file for the browser: it may load only what this service serves (no CDN, no inline script),
 * and is never framed. Revalidated on every load so a new deployment shows at once.
 */
export const webContent = (body: string, contentType: string): HttpResult => ({
  statusCode: 200,
  headers: {
    'content-type': contentType,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    ...(contentType.startsWith('text/html') && {
      'content-security-policy':
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
      'referrer-policy': 'no-referrer',
    }),
  },
  body,
});

/** An RFC 9457 problem response. */
export const problem = (
  status: number,
  title: string,
  detail: string,
  extra: { errors?: FieldError[]; headers?: Record<string, string>; requestId?: string } = {},
): HttpResult => ({
  statusCode: status,
  headers: { 'content-type': 'application/problem+json', ...extra.headers },
  body: JSON.stringify({
    type: 'about:blank',
    title,
    status,
    detail,
    ...(extra.errors && { errors: extra.errors }),
    ...(extra.requestId && { request_id: extra.requestId }),
  }),
});

/** The domain errors a client may see, by name, with their status and title. */
const EXPOSED: Record<string, { status: number; title: string }> = {
  InvalidOrder: { status: 400, title: 'Invalid order' },
  InvalidQuery: { status: 400, title: 'Invalid query' },
  OrderNotFound: { status: 404, title: 'Order not found' },
  OrderConflict: { status: 409, title: 'Order conflict' },
};

/**
 * The one mapping from errors to HTTP. Below 500 the message is safe to show; a 500 says nothing of
 * its cause (it is logged with the request id instead). Errors are matched by name, not instanceof:
 * under serverless-offline each function is its own bundle, so the shared services (and the errors
 * they throw) come from another copy of these classes.
 */
export const errorResponse = (error: unknown, requestId: string, logger: Logger): HttpResult => {
  const name = error instanceof Error ? error.name : '';
  const exposed = EXPOSED[name];
  if (exposed) {
    const { errors } = error as Partial<InvalidRequest>;
    return problem(exposed.status, exposed.title, (error as Error).message, { errors });
  }
  if (error instanceof HttpError) return problem(error.status, error.title, error.message, { headers: error.headers });
  if (name === 'StoreUnavailable' || name === 'Overloaded') {
    // A shed request is not logged apart: under a flood that would be a line per refusal (its request line says 503).
    if (name === 'StoreUnavailable') logger.warn('store unavailable', { request_id: requestId, error: error as Error });
    return problem(503, 'Service unavailable', (error as Error).message, { headers: { 'retry-after': '1' }, requestId });
  }
  logger.error('unhandled error', { request_id: requestId, error: error as Error });
  return problem(500, 'Internal error', 'Something went wrong on our side; quote the request id when reporting it.', {
    requestId,
  });
};

const isJsonType = (contentType: string | undefined): boolean => {
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase() ?? '';
  return mediaType === 'application/json' || /^application\/[\w.+-]+\+json$/.test(mediaType);
};

const header = (event: APIGatewayProxyEventV2, name: string): string | undefined => {
  for (const [key, value] of Object.entries(event.headers ?? {})) if (key.toLowerCase() === name) return value;
  return undefined;
};

/** The JSON body of a request, after the checks of API.md: 415 not JSON, 413 too large, 400 malformed. */
export const readJsonBody = (event: APIGatewayProxyEventV2): unknown => {
  if (!isJsonType(header(event, 'content-type'))) {
    throw new HttpError(415, 'Unsupported media type', 'Send the order as JSON with Content-Type: application/json', {
      'accept-post': 'application/json',
    });
  }
  const raw = event.body ?? '';
  const bytes = event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8');
  if (bytes.length > MAX_BODY_BYTES) {
    throw new HttpError(413, 'Payload too large', `The body must be at most ${MAX_BODY_BYTES} bytes`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError(400, 'Malformed JSON', 'The body is not valid UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, 'Malformed JSON', `The body is not valid JSON: ${(error as Error).message}`);
  }
};

let coldStart = true;

/** True for the first request this process (in the cloud: this Lambda execution environment) serves. */
const takeColdStart = (): boolean => {
  const first = coldStart;
  coldStart = false;
  return first;
};

/**
 * Wraps a handler: maps any error to its response, adds the request id header, and logs one line per
 * request (request id, cold start, method, path, status, duration) without headers, query or body.
 */
export const httpHandler =
  (logger: () => Logger, deadlineMs: () => number, handle: HttpHandler): HttpHandler =>
  async (event, context) => {
    const started = performance.now();
    // The invocation's id first: serverless-offline gives every event the same requestContext.requestId.
    const requestId = context?.awsRequestId ?? event.requestContext?.requestId ?? 'unknown';
    let result: HttpResult;
    let timer: NodeJS.Timeout | undefined;
    try {
      // Answered before the Lambda's timeout (and API Gateway's 30 s), so a hung store still gets a problem
      // JSON with the request id. The work itself runs on: a create may yet commit, which a retry with the
      // same order_id then finds (a replay, not a duplicate).
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new StoreUnavailable(undefined, 'The order store did not answer in time; retry shortly')), deadlineMs());
      });
      result = await Promise.race([handle(event, context), late]);
    } catch (error) {
      result = errorResponse(error, requestId, logger());
    } finally {
      clearTimeout(timer);
    }
    result.headers = { ...result.headers, 'x-request-id': requestId };
    logger().info('request', {
      request_id: requestId,
      cold_start: takeColdStart(),
      method: event.requestContext?.http?.method,
      path: event.rawPath,
      status: result.statusCode,
      duration_ms: Math.round((performance.now() - started) * 10) / 10,
    });
    return result;
  };
