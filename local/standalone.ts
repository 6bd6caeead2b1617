import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { createServices, installServices } from '../lib/services.ts';
import { ensureTable } from '../lib/store.ts';
import { DynamoDBLocalError, startDynamoDBLocal, type DynamoDBLocal } from './dynamodbLocal.ts';
import { createRequestListener } from './httpAdapter.ts';
import { httpFunctions } from './httpFunctions.ts';
import { startLocalWorkers, type LocalWorkers } from './workers.ts';

/** A start-up failure whose message is meant for a person: printed without a stack trace. */
class StartupError extends Error {}

const listen = (server: Server, port: number, host: string): Promise<void> =>
  new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') reject(new StartupError(`Port ${port} on ${host} is already in use: set PORT to another port.`));
      else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') reject(new StartupError(`HOST ${host} is not an address of this machine.`));
      else if (error.code === 'EACCES') reject(new StartupError(`Not allowed to listen on port ${port}: pick a port above 1023.`));
      else reject(error);
    });
    server.listen(port, host, () => resolve());
  });

/**
 * The standalone runtime: one Node process serving the Lambda handlers over node:http, with the
 * in-process consumer and sweeper, and DynamoDB Local started here unless DYNAMODB_ENDPOINT is set.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config);
  let dynamodb: DynamoDBLocal | undefined;
  let workers: LocalWorkers | undefined;
  let closing = false;
  const server = createServer({ requestTimeout: 30_000, keepAliveTimeout: 5_000 });

  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info('shutting down', { signal });
    const closed = new Promise((resolve) => server.close(resolve));
    server.closeIdleConnections();
    // In-flight work gets half a lease to finish; what is left is released for the next run.
    await workers?.stop(Math.min(10_000, config.LEASE_MS / 2));
    await closed;
    await dynamodb?.stop();
    logger.info('stopped');
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));

  try {
    let endpoint = config.DYNAMODB_ENDPOINT;
    if (!endpoint) {
      dynamodb = await startDynamoDBLocal({ dataDir: join(config.DATA_DIR, 'dynamodb') });
      endpoint = dynamodb.endpoint;
    }
    const services = createServices({ ...config, DYNAMODB_ENDPOINT: endpoint });
    installServices(services);
    try {
      await ensureTable(services.store);
    } catch (error) {
      throw new StartupError(`Could not reach DynamoDB at ${endpoint}: ${(error as Error).message}`);
    }
    server.on('request', createRequestListener(httpFunctions, { logger, closing: () => closing }));
    await listen(server, config.PORT, config.HOST);
    workers = await startLocalWorkers(services);
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.PORT;
    const url = `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${port}`;
    logger.info('listening', { url, dynamodb_endpoint: endpoint, table: config.TABLE_NAME });
    process.stdout.write(`Order service listening on ${url} (DynamoDB at ${endpoint}${dynamodb ? `, data in ${config.DATA_DIR}` : ''})\n`);
  } catch (error) {
    await dynamodb?.stop();
    throw error;
  }
}

main().catch((error: unknown) => {
  const known = error instanceof ConfigError || error instanceof DynamoDBLocalError || error instanceof StartupError;
  process.stderr.write(`${known ? (error as Error).message : (error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
