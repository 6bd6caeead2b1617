import type { Server } from 'node:http';
import { ConfigError, loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { shutdownGraceMs, startLocalBackend, StartupError, type LocalBackend } from './backend.ts';
import { DynamoDBLocalError } from './dynamodbLocal.ts';
import { createHttpServer, createRequestListener, LISTEN_BACKLOG } from './httpAdapter.ts';
import { httpFunctions } from './httpFunctions.ts';
import { openWithoutKeys } from './loopback.ts';

const listen = (server: Server, port: number, host: string): Promise<void> =>
  new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') reject(new StartupError(`Port ${port} on ${host} is already in use: set PORT to another port.`));
      else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') reject(new StartupError(`HOST ${host} is not an address of this machine.`));
      else if (error.code === 'EACCES') reject(new StartupError(`Not allowed to listen on port ${port}: pick a port above 1023.`));
      else reject(error);
    });
    // A burst of new connections beyond the accept queue loses SYNs, which clients resend only after a second.
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => resolve());
  });

/**
 * The standalone runtime: one Node process serving the Lambda handlers over node:http, with the
 * in-process consumer and sweeper, and DynamoDB Local started here unless DYNAMODB_ENDPOINT is set.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config);
  let backend: LocalBackend | undefined;
  let closing = false;
  const server = createHttpServer();

  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info('shutting down', { signal });
    const closed = new Promise((resolve) => server.close(resolve));
    server.closeIdleConnections();
    await backend?.stop(shutdownGraceMs(config));
    await closed;
    logger.info('stopped');
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));

  backend = await startLocalBackend(config, 'dynamodb');
  try {
    server.on('request', createRequestListener(httpFunctions, { logger, closing: () => closing, maxInFlight: config.MAX_REQUESTS_IN_FLIGHT }));
    await listen(server, config.PORT, config.HOST);
    // Checked before any connection is taken: the listen callback and this line run in one turn of the loop.
    const open = openWithoutKeys(config, server.address());
    if (open) throw open;
    await backend.startWorkers();
  } catch (error) {
    await backend.stop(0);
    throw error;
  }
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  const url = `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${port}`;
  logger.info('listening', { url, dynamodb_endpoint: backend.endpoint, table: config.TABLE_NAME });
  const where = backend.dynamodb ? `DynamoDB Local at ${backend.endpoint}, data in ${config.DATA_DIR}` : `DynamoDB at ${backend.endpoint}`;
  process.stdout.write(
    `Order service listening on ${url} (${where})\n` +
      `  API        ${url}/orders\n` +
      `  Dashboard  ${url}/\n` +
      `  API docs   ${url}/docs (OpenAPI document: ${url}/openapi.json)\n`,
  );
}

main().catch((error: unknown) => {
  const known = error instanceof ConfigError || error instanceof DynamoDBLocalError || error instanceof StartupError;
  process.stderr.write(`${known ? (error as Error).message : (error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
