import { Console } from 'node:console';
import { request, type Server } from 'node:http';
import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { DeleteTableCommand, ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Config } from '../lib/config.ts';
import { createServices, installServices } from '../lib/services.ts';
import { ensureTable, type Store } from '../lib/store.ts';
import { createHttpServer, createRequestListener, LISTEN_BACKLOG } from './httpAdapter.ts';
import { httpFunctions } from './httpFunctions.ts';
import { startLocalWorkers } from './workers.ts';

/** Requests in flight during the warm-up: a burst's worth, so the hot code is compiled for a burst's batches. */
const CONCURRENCY = 1_000;

/**
 * Runs `orders` orders through the whole service before it is declared ready, on a table of its own that is
 * deleted afterwards: creates over real HTTP, in bursts on fresh connections, processed meanwhile with 1-2 ms of
 * simulated work (what is left when the creates are done is dropped with the table), and a few reads of each
 * kind. DynamoDB Local's JVM and Node both compile their hot code only after it ran a while:
 * measured here, the first thousand orders of a fresh start cost DynamoDB Local three to four times the CPU
 * of later ones, so without this the first burst after a start was taken at a third of the usual rate.
 * It runs through a server made as the service's is (other options take other paths in node:http).
 *
 * It ends with no forced garbage collection: a full collection (`gc()`) made V8 throw away much of the code
 * it had optimised, which the first burst then paid for (README, Performance).
 */
export async function warmUp(config: Config, documentClient: DynamoDBDocumentClient, orders: number): Promise<{ orders: number; shed: number; ms: number }> {
  const started = performance.now();
  // The service's own DynamoDB client: its connections, caches and signing keys are warm for the first burst too.
  // Work of 1-2 ms, not none: the service's work lasts a random, fractional number of milliseconds. With none every
  // timer held a whole number, so V8 compiled node's timers for those and compiled them again in the first burst.
  const services = createServices(
    { ...config, TABLE_NAME: `${config.TABLE_NAME}.warmup`, PROCESSING_MIN_MS: 1, PROCESSING_MAX_MS: 2, API_KEYS: [] },
    { documentClient },
  );
  // It logs what the service logs, at its level, into nothing: logging at ERROR only, it left Powertools'
  // formatting cold for the first burst's thousands of lines (README, Performance). Powertools' Logger has no
  // option for where its lines go; its console is the one field to set (test/e2e/standalone.test.ts checks that
  // no warm-up line reaches the log).
  const nowhere = new Writable({ write: (_chunk, _encoding, done) => done() });
  (services.logger as unknown as { console: Console }).console = new Console({ stdout: nowhere, stderr: nowhere });
  await dropTable(services.store);
  await ensureTable(services.store);
  installServices(services);
  const workers = await startLocalWorkers(services);
  const server = createHttpServer();
  server.on('request', createRequestListener(httpFunctions, { logger: services.logger, closing: () => false, maxInFlight: config.MAX_REQUESTS_IN_FLIGHT }));
  let shed = 0;
  try {
    await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: LISTEN_BACKLOG }, resolve));
    shed = await drive(server, orders);
  } finally {
    server.close();
    await workers.stop(0);
    installServices(undefined);
    await dropTable(services.store);
  }
  return { orders, shed, ms: Math.round(performance.now() - started) };
}

/**
 * Sends the warm-up's requests; returns how many the service shed (503: overloaded, or its store slow to answer,
 * as on a busy machine). Those are the service protecting itself, not a fault: the warm-up goes on without them.
 * Any other failure is a fault, and start-up stops on it.
 */
async function drive(server: Server, orders: number): Promise<number> {
  const { port } = server.address() as AddressInfo;
  let shed = 0;
  const call = (i: number, method: string, path: string, body?: unknown) =>
    new Promise<boolean>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request({ host: '127.0.0.1', port, method, path, agent: false, headers: headersOf(i, port, payload) }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 503) shed++;
          if (res.statusCode && (res.statusCode < 300 || res.statusCode === 503)) resolve(res.statusCode < 300);
          else reject(new Error(`warm-up ${method} ${path}: ${res.statusCode}`));
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  // In waves of a burst each: all of a wave in flight at once, on fresh connections, as shoppers send them.
  for (let wave = 0; wave < orders; wave += CONCURRENCY) {
    await Promise.all(
      Array.from({ length: Math.min(CONCURRENCY, orders - wave) }, async (_, k) => {
        const i = wave + k;
        const order = warmUpOrder(i);
        const created = await call(i, 'POST', '/orders', order);
        if (created && i % 50 === 0) {
          await call(i, 'GET', `/orders/${order.order_id}`);
          await call(i, 'GET', `/orders?user_id=${order.user_id}&limit=5`);
          await call(i, 'GET', '/metrics');
        }
      }),
    );
  }
  return shed;
}

/**
 * The warm-up's requests' headers vary as clients' do: node:http's own (`Host`, `Connection`), all in lower case
 * (as a load balancer or an HTTP/2 proxy forwards them), or a shop server's with `Accept` and `User-Agent`.
 * node:http compares a header's name with its usual case, then with lower case, then lower-cases it: a path each,
 * which a JIT compiles only once it has run.
 */
const headersOf = (i: number, port: number, payload: string | undefined): Record<string, string | number> => {
  const body: Record<string, string | number> = payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) };
  switch (i % 3) {
    case 0:
      return payload === undefined ? {} : { 'content-type': 'application/json' };
    case 1:
      return { host: `127.0.0.1:${port}`, ...body, connection: 'close' };
    default:
      return { Host: `127.0.0.1:${port}`, Accept: 'application/json', 'User-Agent': 'shop/1.0', ...(payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) }) };
  }
};

/**
 * The warm-up's orders vary as shoppers' do: ids sent or left to the server, users as strings or numbers, one to
 * five items of either kind, item numbers of one to five digits, amounts with no, one or two decimals from a cent
 * to millions (a sixth of them below 1). Both JITs compile for the shapes they meet: when every warm-up order had
 * the amount 1.5, DynamoDB Local's JVM compiled its number handling (`BigDecimal`, `encodeBigDecimal`) for that
 * one shape, threw it away on the first real burst and compiled it again while shoppers waited. It still did so,
 * less, while hardly any warm-up amount was below 1 or any item number below 10 (README, Performance).
 */
const warmUpOrder = (i: number) => ({
  ...(i % 10 !== 9 && { order_id: `warmup-${i}` }),
  user_id: i % 4 === 0 ? 1_000 + (i % 50) : `warmup-user-${i % 50}`,
  item_ids: Array.from({ length: 1 + (i % 5) }, (_, k) => ((i + k) % 3 === 0 ? (i * 7 + k) % 10 ** (1 + ((i + k) % 5)) : `sku-${(i * 13 + k) % 997}`)),
  total_amount: ((i * 7_919) % 10 ** (1 + (i % 7))) / 10 ** (i % 3),
});

const dropTable = async (store: Store): Promise<void> => {
  for (const TableName of [store.tableName, store.stateTableName]) {
    try {
      await store.documentClient.send(new DeleteTableCommand({ TableName }));
    } catch (error) {
      if (!(error instanceof ResourceNotFoundException)) throw error;
    }
  }
};
