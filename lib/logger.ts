import { Logger } from '@aws-lambda-powertools/logger';
import type { Config } from './config.ts';

/**
 * The process's one logger: JSON lines with the service name. Per-request and per-order keys are passed
 * with each call (`logger.info(msg, { request_id, order_id })`) rather than appended, because one process
 * serves many requests at once and appended keys would leak between them.
 */
export const createLogger = (config: Pick<Config, 'SERVICE_NAME' | 'LOG_LEVEL'>): Logger =>
  new Logger({ serviceName: config.SERVICE_NAME, logLevel: config.LOG_LEVEL });
