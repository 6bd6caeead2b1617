import type { Logger } from '@aws-lambda-powertools/logger';
import { SQSClient } from '@aws-sdk/client-sqs';
import { loadConfig, type Config } from './config.ts';
import { SSMClient } from '@aws-sdk/client-ssm';
import { authorize, type ApiKey } from './auth.ts';
import { refuseForeignHost } from './hostCheck.ts';
import { HttpError, httpHandler, type HttpHandler } from './http.ts';
import { scopeOf, type FunctionName } from './routes.ts';
import { createLogger } from './logger.ts';
import { OrderService } from './orderService.ts';
import { parameterKeys } from './parameterKeys.ts';
import { OrderRepository } from './orders.ts';
import { OrderProcessor } from './processing.ts';
import { MemoryQueue } from './queue/memoryQueue.ts';
import type { OrderQueue } from './queue/port.ts';
import { SqsQueue } from './queue/sqsQueue.ts';
import { StoreGate } from './storeGate.ts';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient, createStore, type Store } from './store.ts';

/** Everything a handler needs, made once per process. */
export interface Services {
  config: Config;
  logger: Logger;
  store: Store;
  orders: OrderRepository;
  /** Limits the process's transactions in flight, creates first. */
  gate: StoreGate;
  queue: OrderQueue;
  orderService: OrderService;
  processor: OrderProcessor;
  /** The API keys in force: API_KEYS, or in the cloud the SSM parameter API_KEYS_PARAMETER, re-read as it ages. */
  apiKeys: () => Promise<ApiKey[]>;
  /** Set by a runtime that runs a sweeper, to hear about orders the queue could not take. */
  onBacklog?: () => void;
}

/** SQS when a queue URL is configured (the cloud), else the bounded in-memory queue (one machine). */
const createQueue = (config: Config): OrderQueue =>
  config.QUEUE_URL
    ? new SqsQueue(new SQSClient({ region: config.AWS_REGION }), config.QUEUE_URL)
    : new MemoryQueue(config.QUEUE_CAPACITY);

/** The keys of API_KEYS, or those of the SSM parameter API_KEYS_PARAMETER (the cloud), kept API_KEYS_MAX_AGE_MS at most. */
const createApiKeys = (config: Config, logger: Logger): Services['apiKeys'] => {
  const name = config.API_KEYS_PARAMETER;
  if (!name) return () => Promise.resolve(config.API_KEYS);
  // Bounded: a request waiting on a read SSM does not answer ends well before the Lambda's timeout.
  const client = new SSMClient({ region: config.AWS_REGION, maxAttempts: 2, requestHandler: { connectionTimeout: 1_000, requestTimeout: 3_000, throwOnRequestTimeout: true } });
  return parameterKeys({ client, name, maxAgeMs: config.API_KEYS_MAX_AGE_MS, logger });
};

/** The composition root: one client, one logger, one queue adapter per process. */
export const createServices = (
  config: Config,
  {
    queue = createQueue(config),
    documentClient = createDocumentClient({ tableName: config.TABLE_NAME, region: config.AWS_REGION, endpoint: config.DYNAMODB_ENDPOINT }),
  }: { queue?: OrderQueue; documentClient?: DynamoDBDocumentClient } = {},
): Services => {
  const logger = createLogger(config);
  const store = createStore(documentClient, config.TABLE_NAME, config.WRITE_SHARDS);
  // One gate for every transaction of the process: creates go first (see StoreGate).
  const gate = new StoreGate({ capacity: config.STORE_MAX_IN_FLIGHT });
  const orders = new OrderRepository(store, { gate });
  const services: Services = {
    config,
    logger,
    store,
    orders,
    queue,
    gate,
    orderService: new OrderService(orders, queue, logger, {
      maxBatch: config.CREATE_BATCH_MAX,
      maxInFlight: config.STORE_MAX_IN_FLIGHT,
      maxWaiting: config.MAX_REQUESTS_IN_FLIGHT,
      gate,
      onBacklog: () => services.onBacklog?.(),
    }),
    processor: new OrderProcessor(orders, queue, {
      minMs: config.PROCESSING_MIN_MS,
      maxMs: config.PROCESSING_MAX_MS,
      failureRate: config.PROCESSING_FAILURE_RATE,
      maxAttempts: config.MAX_ATTEMPTS,
      leaseMs: config.LEASE_MS,
      retryBaseMs: config.RETRY_BASE_MS,
      retryMaxMs: config.RETRY_MAX_MS,
      poisonMaxTries: config.POISON_MAX_TRIES,
    }, logger),
    apiKeys: createApiKeys(config, logger),
  };
  gate.watchCreates(() => services.orderService.waitingCreates, config.CREATE_BATCH_MAX);
  return services;
};

// Kept on globalThis under a registered symbol: serverless-offline may load a handler's modules more than
// once in one process, and every copy must share the one queue the local consumer reads.
const SLOT = Symbol.for('order-processing.services');
type Slot = { [SLOT]?: Services };

/** The process's services, made from the environment on first use unless a runtime installed its own. */
export const getServices = (): Services => ((globalThis as Slot)[SLOT] ??= createServices(loadConfig()));

/** Lets a runtime (or a test) provide the services handlers will use. */
export const installServices = (services: Services | undefined): void => {
  (globalThis as Slot)[SLOT] = services;
};

/** In Lambda auth is never off: without keys every protected route answers 401 (it fails closed). */
const inLambda = (): boolean => Boolean(process.env.AWS_LAMBDA_FUNCTION_NAME) && !process.env.IS_OFFLINE;

/**
 * Wraps the HTTP function `name`: the scope of the route it serves checked against the request's API key (a
 * route key it does not serve is refused), with auth off only requests addressed to this machine served,
 * errors mapped in one place, one log line per request.
 */
export const httpFunction = (name: FunctionName, handle: HttpHandler): HttpHandler =>
  httpHandler(
    () => getServices().logger,
    () => getServices().config.REQUEST_DEADLINE_MS,
    async (event, context) => {
      const scope = scopeOf(name, event.routeKey);
      const required = inLambda();
      // In the cloud auth is never off, and a public route reads no keys: the pages' functions may not read them.
      const keys = required && scope === null ? [] : await getServices().apiKeys();
      if (!required && keys.length === 0) refuseForeignHost(event.headers ?? {});
      const denial = authorize(keys, required, scope, event.headers ?? {});
      if (denial?.status === 401) throw new HttpError(401, 'Unauthorized', denial.reason, { 'www-authenticate': 'Bearer' });
      if (denial) throw new HttpError(403, 'Forbidden', denial.reason);
      return handle(event, context);
    },
  );
