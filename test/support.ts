import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { ScanCommand, ThrottlingException, TransactWriteItemsCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { inject, vi } from 'vitest';
import { loadConfig, type Config } from '../lib/config.ts';
import { overlayState } from '../lib/orderWrites.ts';
import type { StoredOrder } from '../lib/orders.ts';
import { createServices, installServices, type Services } from '../lib/services.ts';
import { ensureTable, type Store } from '../lib/store.ts';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createRequestListener } from '../local/httpAdapter.ts';
import { httpFunctions } from '../local/httpFunctions.ts';

/** The DynamoDB Local the global setup started. */
export const dynamodbEndpoint = (): string => inject('dynamodbEndpoint');

/** A table name no other test uses. */
export const uniqueTable = (prefix = 'test'): string => `${prefix}-${randomUUID().slice(0, 8)}`;

/** Configuration for a test: its own table on the shared DynamoDB Local, fast processing. */
export const testConfig = (env: Record<string, string> = {}): Config =>
  loadConfig({
    TABLE_NAME: uniqueTable(),
    DYNAMODB_ENDPOINT: dynamodbEndpoint(),
    PROCESSING_MIN_MS: '5',
    PROCESSING_MAX_MS: '20',
    LOG_LEVEL: 'ERROR',
    ...env,
  });

/** Services over a fresh table. */
export const testServices = async (env: Record<string, string> = {}): Promise<Services> => {
  const services = createServices(testConfig(env));
  await ensureTable(services.store);
  return services;
};

type Send = (command: unknown) => Promise<unknown>;

/**
 * Wraps a DynamoDB client's `send` (DynamoDB Local answers everything): `before` runs ahead of each command and
 * may answer it instead (given the real `send`), `after` may change what DynamoDB Local answered. Returns the spy.
 */
export const intercept = (
  client: DynamoDBDocumentClient,
  { before, after }: { before?: (command: unknown, send: Send) => Promise<unknown> | undefined; after?: (command: unknown, output: unknown) => unknown },
) => {
  const send = client.send.bind(client) as unknown as Send;
  return vi.spyOn(client, 'send').mockImplementation(((command: unknown) => {
    const instead = before?.(command, send);
    const answer = instead ?? send(command);
    return after ? answer.then((output) => after(command, output)) : answer;
  }) as unknown as typeof client.send);
};

/**
 * Wraps the DynamoDB client's `send` (DynamoDB Local still answers everything else): a transaction that
 * completes an order is refused with throttling, as DynamoDB refuses it, while `refuse(attempt)` says so for
 * the attempt it completes. Returns how many were refused.
 */
export const throttleCompletions = (services: Services, refuse: (attempt: number, refusedSoFar: number) => boolean): (() => number) => {
  let refused = 0;
  intercept(services.store.documentClient, {
    before: (command) => {
      if (!(command instanceof TransactWriteItemsCommand)) return undefined;
      const completing = (command.input.TransactItems ?? []).flatMap(({ Update }) =>
        Update?.ExpressionAttributeValues?.[':completed'] ? [Number(Update.ExpressionAttributeValues[':attempt']!.N)] : [],
      );
      if (!completing.some((attempt) => refuse(attempt, refused))) return undefined;
      refused++;
      return Promise.reject(new ThrottlingException({ message: 'Rate of requests exceeds the allowed throughput.', $metadata: { httpStatusCode: 400 } }));
    },
  });
  return () => refused;
};

/** Every order in the tables (`overlayState`), read with full scans: the ground truth metrics must equal. */
export const scanOrders = async (store: Store): Promise<StoredOrder[]> => {
  const scan = async (TableName: string) => {
    const items = new Map<string, Record<string, AttributeValue>>();
    let ExclusiveStartKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await store.documentClient.send(new ScanCommand({ TableName, ExclusiveStartKey, ConsistentRead: true }));
      for (const item of page.Items ?? []) if (item.pk?.S?.startsWith('ORDER#')) items.set(item.pk.S, item);
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    return items;
  };
  const [orders, states] = await Promise.all([scan(store.tableName), scan(store.stateTableName)]);
  return [...orders].map(([pk, order]) => unmarshall(overlayState(order, states.get(pk))!) as StoredOrder);
};

/** Counts orders by status, as /metrics should. */
export const countByStatus = (orders: StoredOrder[]): Record<string, number> => {
  const counts: Record<string, number> = { PENDING: 0, PROCESSING: 0, COMPLETED: 0, FAILED: 0 };
  for (const order of orders) counts[order.status] = (counts[order.status] ?? 0) + 1;
  return counts;
};

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function pollUntil<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  { timeoutMs = 30_000, intervalMs = 100, what = 'condition' } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A deterministic stand-in for Math.random (mulberry32), for outcomes that would otherwise depend on chance. */
export const seededRandom = (seed: number) => (): number => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

/** GET /metrics's body before any order, its time and histogram aside. */
export const metricsBeforeAnyOrder = {
  total_orders: 0,
  total_orders_processed: 0,
  average_processing_time_ms: null,
  average_turnaround_time_ms: null,
  processing_time_ms: { p50: null, p95: null, p99: null },
  status_counts: { PENDING: 0, PROCESSING: 0, COMPLETED: 0, FAILED: 0 },
  quarantined: 0,
};

/** A valid order body. */
export const validOrder = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  user_id: 'USER001',
  item_ids: [1, 2, 3],
  total_amount: 99.99,
  ...overrides,
});

/**
 * An API Gateway HTTP API (payload 2.0) event with every field API Gateway sends, for a handler called directly
 * or through an invoke endpoint. `routeKey` defaults to `<method> <path>`: give the template of a route with
 * parameters, or any other to forge one. The Host defaults to loopback, which functions with auth off require.
 */
export const apiEvent = ({
  method = 'GET',
  path = '/',
  routeKey = `${method} ${path}`,
  headers = {},
  query,
  pathParameters,
  body,
}: {
  method?: string;
  path?: string;
  routeKey?: string;
  headers?: Record<string, string>;
  query?: Record<string, string>;
  pathParameters?: Record<string, string>;
  body?: string;
} = {}): APIGatewayProxyEventV2 => {
  const host = headers.host ?? '127.0.0.1';
  return {
    version: '2.0',
    routeKey,
    rawPath: path,
    rawQueryString: new URLSearchParams(query).toString(),
    headers: { host, ...headers },
    queryStringParameters: query,
    pathParameters,
    body,
    isBase64Encoded: false,
    requestContext: {
      accountId: '123456789012',
      apiId: 'test',
      domainName: host,
      domainPrefix: host.split('.')[0]!,
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'vitest' },
      requestId: randomUUID(),
      routeKey,
      stage: '$default',
      time: '01/Jan/2025:00:00:00 +0000',
      timeEpoch: Date.UTC(2025, 0, 1),
    },
  };
};

export interface RunningService {
  url: string;
  process: ChildProcess;
  /** Everything it printed so far. */
  output: () => string;
  /**
   * Sends `signal` to the service's own node process, as a process manager would, and resolves with the
   * exit code `npm run` passes on; SIGKILL goes to the whole process group (npm, node, DynamoDB Local).
   */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

const exitOf = (child: ChildProcess): Promise<number | null> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise((resolve) => child.once('exit', (code) => resolve(code)));

/** The pid of the node process npm started in process group `group` (not npm itself, not Java). */
export const servicePid = async (group: number): Promise<number | undefined> => {
  const { stdout } = await promisify(execFile)('ps', ['-eo', 'pid=,pgid=,args=']);
  for (const line of stdout.split('\n')) {
    const match = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    if (match && Number(match[2]) === group && /^node\s/.test(match[3]!)) return Number(match[1]);
  }
  return undefined;
};

/**
 * Spawns `npm run <script>` (the command the README gives) in its own process group, and waits until
 * it prints the URL it listens on.
 */
export async function startService(
  script: string,
  env: Record<string, string>,
  { timeoutMs = 60_000, readyPattern = /listening on (http:\/\/\S+)/ } = {},
): Promise<RunningService> {
  const child = spawn('npm', ['run', '--silent', script], {
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // already gone
    }
  };
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    const pid = signal === 'SIGKILL' ? undefined : await servicePid(child.pid!);
    if (pid) process.kill(pid, signal);
    else signalGroup('SIGKILL');
    return exitOf(child);
  };
  try {
    const url = await pollUntil(
      () => {
        if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}`);
        return readyPattern.exec(output)?.[1];
      },
      { timeoutMs, what: `${script} to listen` },
    );
    return { url, process: child, output: () => output, stop };
  } catch (error) {
    signalGroup('SIGKILL');
    throw new Error(`${(error as Error).message}\n${output}`);
  }
}

/** Runs a command to its end (within `timeoutMs`): its exit code and everything it printed. */
export const runToEnd = async (file: string, args: string[], env: Record<string, string>, { timeoutMs = 90_000 } = {}) =>
  promisify(execFile)(file, args, { env: { ...process.env, ...env }, timeout: timeoutMs }).then(
    ({ stdout, stderr }) => ({ code: 0 as number | null, output: stdout + stderr }),
    (error: { code: number | null; stdout: string; stderr: string }) => ({ code: error.code, output: error.stdout + error.stderr }),
  );

/**
 * A GET sent with the given Host header (fetch always sends the URL's own): what a page of another site whose
 * name was rebound to 127.0.0.1 sends.
 */
export const getWithHost = (url: string, host: string, headers: Record<string, string> = {}) =>
  new Promise<{ status: number; contentType: string; body: string }>((resolve, reject) => {
    get(url, { headers: { ...headers, host } }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, contentType: response.headers['content-type'] ?? '', body }));
    }).on('error', reject);
  });

/**
 * Serves `services` over real HTTP in this process: the node:http adapter of the standalone runtime on a port-0
 * server. `close` stops it and uninstalls the services.
 */
export const serveInProcess = async (services: Services): Promise<{ url: string; close: () => Promise<void> }> => {
  installServices(services);
  const server = createServer(createRequestListener(httpFunctions, { logger: services.logger }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      installServices(undefined);
      await new Promise((resolve) => server.close(resolve));
    },
  };
};
