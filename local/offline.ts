import { loadConfig } from '../lib/config.ts';
import { shutdownGraceMs, startLocalBackend } from './backend.ts';

/**
 * The serverless-offline side of the local runtime: DynamoDB Local (data under `<DATA_DIR>/dynamodb-offline`),
 * the table, the services the in-process handlers will share, and the long-lived consumer and sweeper.
 */
export async function startOfflineRuntime(): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const config = loadConfig();
  const backend = await startLocalBackend(config, 'dynamodb-offline');
  await backend.startWorkers();
  return { endpoint: backend.endpoint, stop: () => backend.stop(shutdownGraceMs(config)) };
}
