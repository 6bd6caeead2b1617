import { join } from 'node:path';
import type { Config } from '../lib/config.ts';
import { createServices, installServices, type Services } from '../lib/services.ts';
import { ensureTable, ShardsMismatch } from '../lib/store.ts';
import { startDynamoDBLocal, type DynamoDBLocal } from './dynamodbLocal.ts';
import { warmUp } from './warmup.ts';
import { startLocalWorkers, type LocalWorkers } from './workers.ts';

/** A start-up failure whose message is meant for a person: printed without a stack trace. */
export class StartupError extends Error {
  override name = 'StartupError';
}

export interface LocalBackend {
  services: Services;
  endpoint: string;
  /** Set when this process started DynamoDB Local itself. */
  dynamodb?: DynamoDBLocal;
  /** Starts the in-process consumer and sweeper (once the API is up). */
  startWorkers(): Promise<void>;
  /** Stops the workers (in-flight work gets `graceMs`), then DynamoDB Local. */
  stop(graceMs: number): Promise<void>;
}

/**
 * What both local runtimes stand on: DynamoDB Local (unless DYNAMODB_ENDPOINT is set) with its data
 * under `<DATA_DIR>/<dataFolder>`, the table, and the process's services installed for the handlers.
 */
export async function startLocalBackend(config: Config, dataFolder: string): Promise<LocalBackend> {
  let dynamodb: DynamoDBLocal | undefined;
  let endpoint = config.DYNAMODB_ENDPOINT;
  if (!endpoint) {
    dynamodb = await startDynamoDBLocal({ dataDir: join(config.DATA_DIR, dataFolder) });
    endpoint = dynamodb.endpoint;
  }
  const services = createServices({ ...config, DYNAMODB_ENDPOINT: endpoint });
  try {
    const upgraded = await ensureTable(services.store);
    if (upgraded) services.logger.info('upgraded the tables from an earlier layout', { ...upgraded });
  } catch (error) {
    await dynamodb?.stop();
    if (error instanceof ShardsMismatch) throw new StartupError(error.message);
    throw new StartupError(`Could not reach DynamoDB at ${endpoint}: ${(error as Error).message}`);
  }
  // Only a DynamoDB Local of our own: another store is someone else's to warm (or a bill to run up).
  if (dynamodb && config.WARMUP_ORDERS > 0) {
    services.logger.info('warming up', { orders: config.WARMUP_ORDERS });
    const warmed = await warmUp(config, services.store.documentClient, config.WARMUP_ORDERS).catch(async (error: unknown) => {
      await dynamodb.stop();
      throw error;
    });
    if (warmed.shed > 0) services.logger.warn('warm-up requests shed: the machine is busy, or the store slow', { shed: warmed.shed });
    services.logger.info('warmed up', { orders: warmed.orders, duration_ms: warmed.ms });
  }
  installServices(services);
  if (config.API_KEYS.length === 0) {
    services.logger.warn('auth is off: no API keys are configured, so only this machine is served (set API_KEYS to turn it on)');
  }
  let workers: LocalWorkers | undefined;
  return {
    services,
    endpoint,
    dynamodb,
    async startWorkers() {
      workers = await startLocalWorkers(services);
    },
    async stop(graceMs) {
      await workers?.stop(graceMs);
      await dynamodb?.stop();
    },
  };
}

/** In-flight work gets half a lease to finish at shutdown; what is left is released for the next run. */
export const shutdownGraceMs = (config: Config): number => Math.min(10_000, config.LEASE_MS / 2);
