import type { Logger } from '@aws-lambda-powertools/logger';
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { parseApiKeys, type ApiKey } from './auth.ts';
import { HttpError } from './http.ts';

/** After a failed read the next waits this long, doubling with each failure up to RETRY_MAX_MS. */
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 60_000;

/** Where the keys are read from, and how long they are kept. */
export interface ParameterKeysOptions {
  client: SSMClient;
  /** The SSM SecureString parameter holding the keys (the API_KEYS format). */
  name: string;
  /** Keys read longer ago than this are read again before they are used. */
  maxAgeMs: number;
  logger: Logger;
  now?: () => number;
}

/**
 * The API keys held in an SSM parameter, as a function resolving with the keys in force.
 *
 * - Keys older than `maxAgeMs` are read again before they are used: a key removed from the parameter stops
 *   working within that age in every container.
 * - A failed read (SSM unavailable or throttling, or a value that does not parse) leaves the keys already
 *   known in force, and the next read waits a back-off (1 s, doubling up to 1 min): a burst of requests makes
 *   one read, not one each. Until a first read succeeds, requests get 503 with Retry-After.
 * - Concurrent requests share one read.
 */
export const parameterKeys = ({ client, name, maxAgeMs, logger, now = Date.now }: ParameterKeysOptions): (() => Promise<ApiKey[]>) => {
  let keys: ApiKey[] | undefined;
  let readAt = 0;
  let failures = 0;
  let retryAt = 0;
  let reading: Promise<ApiKey[]> | undefined;

  const unavailable = (cause?: unknown) =>
    new HttpError(
      503,
      'Service unavailable',
      'The API keys could not be read; retry shortly',
      { 'retry-after': String(Math.max(1, Math.ceil((retryAt - now()) / 1_000))) },
      { cause },
    );

  const read = async (): Promise<ApiKey[]> => {
    try {
      const { Parameter } = await client.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
      keys = parseApiKeys(Parameter?.Value ?? '');
      readAt = now();
      failures = 0;
      return keys;
    } catch (error) {
      failures += 1;
      retryAt = now() + Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (failures - 1));
      logger.error('the API keys could not be read', { parameter: name, failures, keeping_known_keys: keys !== undefined, error: error as Error });
      if (keys) return keys;
      throw unavailable(error);
    }
  };

  return () => {
    const at = now();
    if (keys && at - readAt < maxAgeMs) return Promise.resolve(keys);
    if (at < retryAt) return keys ? Promise.resolve(keys) : Promise.reject(unavailable());
    reading ??= read().finally(() => (reading = undefined));
    return reading;
  };
};
