import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeleteTableCommand, ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import type { Config } from '../lib/config.ts';
import { readMetrics } from '../lib/metrics.ts';
import { createServices, installServices, type Services } from '../lib/services.ts';
import { ensureTable, type Store } from '../lib/store.ts';
import { createRequestListener } from './httpAdapter.ts';
import { httpFunctions } from './httpFunctions.ts';
import { startLocalWorkers } from './workers.ts';

/** Requests in flight during the warm-up: enough for full group commits, as under real load. */
const CONCURRENCY = 200;

/**
 * Runs `orders` orders through the whole service before it is declared ready, on a table of its own that is
 * deleted afterwards: creates over real HTTP (fresh connections), processing with no simulated work, a few
 * reads of each kind. DynamoDB Local's JVM and Node both compile their hot code only after it ran a while:
 * measured here, the first thousand orders of a fresh start cost DynamoDB Local three to four times the CPU
 * of later ones, so without this the first burst after a start was taken at a third of the usual rate.
 */
export async function warmUp(config: Config, endpoint: string, orders: number): Promise<{ orders: number; ms: number }> {
  const started = performance.now();
  const services = createServices({
    ...config,
    TABLE_NAME: `${config.TABLE_NAME}.warmup`,
    DYNAMODB_ENDPOINT: endpoint,
    PROCESSING_MIN_MS: 0,
    PROCESSING_MAX_MS: 0,
    LOG_LEVEL: 'ERROR',
    API_KEYS: [],
  });
  await dropTable(services.store);
  await ensureTable(services.store);
  installServices(services);
  const workers = await startLocalWorkers(services);
  const server = createServer(createRequestListener(httpFunctions, { logger: services.logger }));
  try {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    await drive(server, services, orders);
  } finally {
    server.close();
    await workers.stop(0);
    installServices(undefined);
    await dropTable(services.store);
  }
  return { orders, ms: Math.round(performance.now() - started) };
}

async function drive(server: Server, services: Services, orders: number): Promise<void> {
  const { port } = server.address() as AddressInfo;
  const call = (method: string, path: string, body?: unknown) =>
    new Promise<void>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request({ host: '127.0.0.1', port, method, path, agent: false, headers: payload ? { 'content-type': 'application/json' } : {} }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode && res.statusCode < 300 ? resolve() : reject(new Error(`warm-up ${method} ${path}: ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(payload);
    });
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < orders; i = next++) {
        await call('POST', '/orders', { order_id: `warmup-${i}`, user_id: `warmup-${i % 50}`, item_ids: ['sku', i], total_amount: 1.5 });
        if (i % 20 === 0) {
          await call('GET', `/orders/warmup-${i}`);
          await call('GET', `/orders?user_id=warmup-${i % 50}&limit=5`);
          await call('GET', '/metrics');
        }
      }
    }),
  );
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
    if ((await readMetrics(services.store)).total_orders_processed >= orders) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the warm-up orders did not complete within a minute');
}

const dropTable = async (store: Store): Promise<void> => {
  try {
    await store.documentClient.send(new DeleteTableCommand({ TableName: store.tableName }));
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
  }
};
