import { z } from 'zod';
import { parseApiKeys } from './auth.ts';

const int = (fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max).default(fallback);

const EnvSchema = z
  .object({
    TABLE_NAME: z.string().regex(/^[A-Za-z0-9_.-]{3,255}$/, 'must be a valid DynamoDB table name').default('orders'),
    AWS_REGION: z.string().min(1).default('us-east-1'),
    DYNAMODB_ENDPOINT: z.url().optional(),
    // The SQS queue of the cloud deployment; without it the in-memory queue is used.
    QUEUE_URL: z.url().optional(),
    // The cloud sweeper leaves orders younger than this to the messages already on their way.
    SWEEP_GRACE_MS: int(60_000),
    // The local runtimes: where they listen and keep DynamoDB Local's data.
    PORT: int(3000, 0, 65_535),
    HOST: z.string().min(1).default('127.0.0.1'),
    DATA_DIR: z.string().min(1).default('.data'),
    PROCESSING_MIN_MS: int(500),
    PROCESSING_MAX_MS: int(2000),
    PROCESSING_CONCURRENCY: int(32, 1, 1024),
    PROCESSING_FAILURE_RATE: z.coerce.number().min(0).max(1).default(0),
    MAX_ATTEMPTS: int(5, 1, 100),
    QUEUE_CAPACITY: int(10_000, 1, 10_000_000),
    LEASE_MS: int(30_000, 100),
    RETRY_BASE_MS: int(1_000, 1),
    RETRY_MAX_MS: int(60_000, 1),
    SWEEP_INTERVAL_MS: int(5_000, 100),
    CREATE_BATCH_MAX: int(99, 1, 99),
    CREATE_MAX_IN_FLIGHT: int(4, 1, 64),
    LOG_LEVEL: z
      .string()
      .transform((level) => level.toUpperCase())
      .pipe(z.enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'SILENT', 'CRITICAL']))
      .default('INFO'),
    SERVICE_NAME: z.string().min(1).default('order-processing'),
    // In the cloud the keys come from this SSM SecureString parameter (same format), read at cold start.
    API_KEYS_PARAMETER: z.string().startsWith('/').optional(),
    // API keys as name:scope1+scope2:sha256hex entries (npm run key:new makes one); none means auth is off.
    API_KEYS: z
      .string()
      .default('')
      .transform((text, ctx) => {
        try {
          return parseApiKeys(text);
        } catch (error) {
          ctx.addIssue({ code: 'custom', message: (error as Error).message });
          return z.NEVER;
        }
      }),
  })
  .refine((env) => env.PROCESSING_MIN_MS <= env.PROCESSING_MAX_MS, {
    message: 'must not be above PROCESSING_MAX_MS',
    path: ['PROCESSING_MIN_MS'],
  })
  .refine((env) => env.LEASE_MS > env.PROCESSING_MAX_MS, {
    message: 'must be longer than PROCESSING_MAX_MS, or work in progress would be taken over',
    path: ['LEASE_MS'],
  });

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
