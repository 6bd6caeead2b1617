import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, createServer, maxHeaderSize, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { Overloaded } from '../lib/errors.ts';
import { errorResponse, problem, type HttpHandler, type HttpResult } from '../lib/http.ts';
import { matchRoute, type HandlerName } from '../lib/routes.ts';

/** Bodies beyond this are refused before any handler runs, as API Gateway refuses beyond its own limit. */
export const TRANSPORT_LIMIT_BYTES = 1024 * 1024;
/** After refusing a body, how much more of it is read (and dropped) before the connection is cut. */
const LINGER_BYTES = 64 * 1024 * 1024;
const LINGER_MS = 5_000;

const TEXTUAL = /^(text\/|application\/([\w.+-]+\+)?(json|xml|x-www-form-urlencoded)\b)/i;

class BodyTooLarge extends Error {}

const readBody = (req: IncomingMessage, limit: number): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (declared > limit) return reject(new BodyTooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        chunks.length = 0;
        reject(new BodyTooLarge());
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });

/** API Gateway v2 joins repeated headers and query parameters with commas. */
const joinRepeated = (entries: Iterable<[string, string]>): Record<string, string> => {
  const joined: Record<string, string> = {};
  for (const [key, value] of entries) joined[key] = key in joined ? `${joined[key]},${value}` : value;
  return joined;
};

const lambdaContext = (requestId: string, functionName: string): Context => ({
  awsRequestId: requestId,
  functionName,
  functionVersion: '$LATEST',
  invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
  memoryLimitInMB: '1024',
  logGroupName: `/aws/lambda/${functionName}`,
  logStreamName: 'local',
  callbackWaitsForEmptyEventLoop: false,
  getRemainingTimeInMillis: () => 30_000,
  done: () => {},
  fail: () => {},
  succeed: () => {},
});

/** Turns a node:http request into the API Gateway HTTP API (payload 2.0) event a Lambda would get. */
const toEvent = (
  req: IncomingMessage,
  body: Buffer,
  requestId: string,
  route: { routeKey: string; pathParameters?: Record<string, string> },
): APIGatewayProxyEventV2 => {
  const url = req.url ?? '/';
  const queryAt = url.indexOf('?');
  const rawPath = queryAt < 0 ? url : url.slice(0, queryAt);
  const rawQueryString = queryAt < 0 ? '' : url.slice(queryAt + 1);
  const headers = joinRepeated(
    Object.entries(req.headersDistinct).flatMap(([name, values]) =>
      name === 'cookie' ? [] : (values ?? []).map((value): [string, string] => [name, value]),
    ),
  );
  const query = new URLSearchParams(rawQueryString);
  // A body that is not UTF-8 goes as bytes (base64), as a binary one does: decoding it would turn the bad bytes
  // into U+FFFD, and the handler could no longer refuse it.
  const textual = TEXTUAL.test(headers['content-type'] ?? '') && isUtf8(body);
  const now = new Date();
  return {
    version: '2.0',
    routeKey: route.routeKey,
    rawPath,
    rawQueryString,
    cookies: req.headers.cookie?.split(/;\s*/),
    headers,
    queryStringParameters: rawQueryString ? joinRepeated(query.entries()) : undefined,
    pathParameters: route.pathParameters,
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: (headers.host ?? 'localhost').split('.')[0] ?? 'localhost',
      http: {
        method: req.method ?? 'GET',
        path: rawPath,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey: route.routeKey,
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    body: body.length === 0 ? undefined : textual ? body.toString('utf8') : body.toString('base64'),
    isBase64Encoded: body.length > 0 && !textual,
  };
};

const send = (res: ServerResponse, result: HttpResult, closing: boolean): void => {
  const body = result.body === undefined ? undefined : Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8');
  res.statusCode = result.statusCode;
  for (const [name, value] of Object.entries(result.headers ?? {})) res.setHeader(name, String(value));
  if (result.cookies?.length) res.setHeader('set-cookie', result.cookies);
  if (body) res.setHeader('content-length', body.length);
  if (closing) res.setHeader('connection', 'close');
  res.end(body);
};

/**
 * Reads and drops the rest of a refused body (up to a cap in bytes and time), so the client finishes
 * sending and reads our answer: closing at once would reset the connection under it. The connection
 * stays usable afterwards, as after any other answer.
 */
const dropRestOfBody = (req: IncomingMessage): void => {
  let dropped = 0;
  const timer = setTimeout(() => req.destroy(), LINGER_MS);
  timer.unref();
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > LINGER_BYTES) req.destroy();
  });
  req.once('end', () => clearTimeout(timer));
  req.resume();
};

export interface AdapterOptions {
  logger: Logger;
  /** True once the server is shutting down: answers then ask clients to close their connection. */
  closing?: () => boolean;
  /**
   * Requests handled at once (MAX_REQUESTS_IN_FLIGHT); beyond it a request is answered 503 at once, its body
   * dropped. node:http reads pipelined requests without waiting for their answers, so without this bound one
   * socket could start any number of handlers; a quick answer also lets node:http pause a flooding socket.
   */
  maxInFlight?: number;
}

/**
 * The node:http adapter: routes a request as API Gateway would, hands the handler the same event and
 * context a Lambda gets, and writes back what it returns. No business logic lives here.
 */
export const createRequestListener = (
  functions: Record<HandlerName | 'notFound', HttpHandler>,
  { logger, closing = () => false, maxInFlight = Infinity }: AdapterOptions,
): RequestListener => {
  let inFlight = 0;
  // Shed requests are logged as a count, at most once a second: a line each would flood the log in a flood.
  let shed = 0;
  const reportShed = () => {
    logger.warn('requests shed: too many under way', { shed, max_in_flight: maxInFlight });
    shed = 0;
  };
  return (req, res) => {
    const requestId = randomUUID();
    const method = req.method ?? 'GET';
    const match = matchRoute(method, (req.url ?? '/').split('?')[0] ?? '/');
    const route =
      match.kind === 'route'
        ? { routeKey: `${method} ${match.route.path}`, pathParameters: match.pathParameters, name: match.route.handler }
        : { routeKey: '$default', name: 'notFound' as const };
    // /health is never shed: an overloaded process is alive, and its store may be fine.
    if (route.name !== 'health') {
      if (inFlight >= maxInFlight) {
        if (shed++ === 0) setTimeout(reportShed, 1_000).unref();
        const answer = errorResponse(new Overloaded(), requestId, logger);
        answer.headers = { ...answer.headers, 'x-request-id': requestId };
        send(res, answer, closing());
        dropRestOfBody(req);
        return;
      }
      inFlight++;
      res.once('close', () => inFlight--);
    }
    readBody(req, TRANSPORT_LIMIT_BYTES)
      .then(async (body) => {
        const result = await functions[route.name](toEvent(req, body, requestId, route), lambdaContext(requestId, route.name));
        send(res, result, closing());
      })
      .catch((error: unknown) => {
        if (error instanceof BodyTooLarge) {
          const answer = problem(413, 'Payload too large', `The body must be at most ${TRANSPORT_LIMIT_BYTES} bytes`, {
            headers: { 'x-request-id': requestId },
          });
          send(res, answer, closing());
          dropRestOfBody(req);
          return;
        }
        // The connection closed before the body arrived (the client left, or sent what the parser refused and
        // was answered 400): no one to answer, and no fault of ours.
        if (req.destroyed && !res.headersSent) {
          logger.info('request abandoned before its body arrived', { request_id: requestId, error: (error as Error).message });
          return;
        }
        logger.error('request failed in the HTTP adapter', { request_id: requestId, error: error as Error });
        if (!res.headersSent) send(res, problem(500, 'Internal error', 'Something went wrong on our side.', { requestId }), true);
        else res.destroy();
      });
  };
};

/** Writes a problem answer straight to a connection node:http holds no response for, then closes it. */
const answerOnSocket = (socket: Duplex, result: HttpResult): void => {
  const body = Buffer.from(result.body ?? '', 'utf8');
  const headers = { ...result.headers, 'x-request-id': randomUUID(), 'content-length': body.length, connection: 'close' };
  const head = `HTTP/1.1 ${result.statusCode} ${STATUS_CODES[result.statusCode] ?? ''}\r\n${Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('')}\r\n`;
  socket.end(Buffer.concat([Buffer.from(head, 'latin1'), body]), () => socket.destroy());
};

/**
 * Answers what node:http refuses before any handler runs with problem JSON, like every other answer,
 * instead of a bare status line: a request it cannot parse (unknown method, characters a URL or header
 * may not hold) with 400, a request line and headers beyond its limit with 431, an Expect header other
 * than 100-continue with 417. CONNECT (this is no proxy) gets 405 or 404 as any other method would,
 * instead of a closed connection.
 */
const answerRefusedRequests = (server: Server): void => {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage;
    if (error.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) return void socket.destroy();
    const answer =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? problem(431, 'Request header fields too large', `The request line and headers must be at most ${maxHeaderSize} bytes`)
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? problem(408, 'Request timeout', 'The request did not arrive in time')
          : problem(400, 'Bad request', 'The request is not valid HTTP/1.1');
    answerOnSocket(socket, answer);
  });
  // node:http itself would answer 417 with an empty body.
  server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => {
    const answer = problem(417, 'Expectation failed', 'The only expectation understood is Expect: 100-continue', {
      headers: { 'x-request-id': randomUUID() },
    });
    send(res, answer, true);
  });
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    const target = req.url ?? '';
    const match = matchRoute('CONNECT', target.split('?')[0] ?? '');
    answerOnSocket(
      socket,
      match.kind === 'wrong-method'
        ? problem(405, 'Method not allowed', `CONNECT is not allowed on ${target}`, { headers: { allow: match.allowed.join(', ') } })
        : problem(404, 'Not found', `No resource at ${target}`),
    );
  });
};

/** Capped by the kernel's net.core.somaxconn (4096 on current Linux); node's default is 511. */
export const LISTEN_BACKLOG = 4096;

/**
 * The HTTP server the standalone runtime serves on, its request listener aside; the warm-up runs through one
 * made here too, so that it takes the paths in node:http that the service's server takes.
 */
export const createHttpServer = (): Server => {
  const server = createServer({ requestTimeout: 30_000, keepAliveTimeout: 5_000 });
  answerRefusedRequests(server);
  return server;
};
