import * as z from 'zod/mini';
import { en } from 'zod/v4/locales';
import { parseApiKeys } from './auth.ts';
import { DEFAULT_WRITE_SHARDS } from './store.ts';

// zod/mini (small enough for every Lambda bundle) ships without messages; the settings' errors want them.
z.config(en());

const int = (fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z._default(z.coerce.number().check(z.int(), z.gte(min), z.lte(max)), fallback);

const text = (fallback: string) => z._default(z.string().check(z.minLength(1)), fallback);

const EnvSchema = z
  .object({
    TABLE_NAME: z._default(z.string().check(z.regex(/^[A-Za-z0-9_.-]{3,248}$/, 'must be a valid DynamoDB table name of at most 248 characters ("-states" is added for the state table)')), 'orders'),
    AWS_REGION: text('us-east-1'),
    DYNAMODB_ENDPOINT: z.optional(z.url()),
    // The SQS queue of the cloud deployment; without it the in-memory queue is used.
    QUEUE_URL: z.optional(z.url()),
    // The cloud sweeper leaves orders younger than this to the messages already on their way.
    SWEEP_GRACE_MS: int(60_000),
    // The local runtimes: where they listen and keep DynamoDB Local's data.
    PORT: int(3000, 0, 65_535),
    HOST: text('127.0.0.1'),
    DATA_DIR: text('.data'),
    PROCESSING_MIN_MS: int(500),
    PROCESSING_MAX_MS: int(2000),
    PROCESSING_CONCURRENCY: int(32, 1, 1024),
    PROCESSING_FAILURE_RATE: z._default(z.coerce.number().check(z.gte(0), z.lte(1)), 0),
    MAX_ATTEMPTS: int(5, 1, 100),
    // Tries ending in a fault or a lapsed lease before an order is quarantined; below SQS's maxReceiveCount (5).
    POISON_MAX_TRIES: int(3, 1, 100),
    QUEUE_CAPACITY: int(10_000, 1, 10_000_000),
    LEASE_MS: int(30_000, 100),
    RETRY_BASE_MS: int(1_000, 1),
    RETRY_MAX_MS: int(60_000, 1),
    SWEEP_INTERVAL_MS: int(5_000, 100),
    CREATE_BATCH_MAX: int(98, 1, 98),
    // Every HTTP request is answered within this, a 503 if the store has not answered: below the HTTP Lambdas' 10 s timeout.
    REQUEST_DEADLINE_MS: int(8_000, 100, 28_000),
    // Requests under way at once (creates waiting for a transaction, in every runtime); more are refused at once
    // with 503 and Retry-After (load shedding) instead of growing memory without bound. Two bursts of 1 000 fit.
    MAX_REQUESTS_IN_FLIGHT: int(2_000, 1, 1_000_000),
    // Transactions under way at once: DynamoDB Local runs one at a time, so more only make each wait.
    STORE_MAX_IN_FLIGHT: int(2, 1, 64),
    // Orders run through the service at start, before it says it is ready (local runtimes, own DynamoDB Local).
    WARMUP_ORDERS: int(5_000, 0, 100_000),
    // Partitions of the due markers and counter deltas; every process sharing the table must use the same number.
    WRITE_SHARDS: int(DEFAULT_WRITE_SHARDS, 1, 1024),
    LOG_LEVEL: z._default(
      z.pipe(
        z.pipe(
          z.string(),
          z.transform((level: string) => level.toUpperCase()),
        ),
        z.enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'SILENT', 'CRITICAL']),
      ),
      'INFO',
    ),
    SERVICE_NAME: text('order-processing'),
    // In the cloud the keys come from this SSM SecureString parameter (same format), read at cold start.
    API_KEYS_PARAMETER: z.optional(z.string().check(z.startsWith('/'))),
    // ...and read again once older than this: how long a removed key may still work (1 s to 1 h).
    API_KEYS_MAX_AGE_MS: int(300_000, 1_000, 3_600_000),
    // API keys as name:scope1+scope2:sha256hex entries (npm run key:new makes one); none means auth is off.
    API_KEYS: z.pipe(
      z._default(z.string(), ''),
      z.transform((entries: string, ctx) => {
        try {
          return parseApiKeys(entries);
        } catch (error) {
          ctx.issues.push({ code: 'custom', message: (error as Error).message, input: entries });
          return z.NEVER;
        }
      }),
    ),
  })
  .check(
    z.refine((env) => env.PROCESSING_MIN_MS <= env.PROCESSING_MAX_MS, {
      message: 'must not be above PROCESSING_MAX_MS',
      path: ['PROCESSING_MIN_MS'],
    }),
    z.refine((env) => env.LEASE_MS > env.PROCESSING_MAX_MS, {
      message: 'must be longer than PROCESSING_MAX_MS, or work in progress would be taken over',
      path: ['LEASE_MS'],
    }),
  );

/** Every setting of the service, read once from the environment. */
export type Config = z.output<typeof EnvSchema>;

/** Raised when the environment holds an invalid setting; the message names each one. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads and validates the configuration; throws ConfigError naming every bad variable. */
export const loadConfig = (env: NodeJS.ProcessEnv = process.env): Config => {
  // An empty variable means "not set", as in most shells' `VAR= command`.
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const result = EnvSchema.safeParse(present);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
  throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
};
