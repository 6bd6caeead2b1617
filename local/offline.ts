import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { loadConfig } from '../lib/config.ts';
import { shutdownGraceMs, startLocalBackend } from './backend.ts';
import { guardListening } from './loopback.ts';
import { passInvalidUtf8AsBytes } from './offlineBodies.ts';

export interface OfflineRuntime {
  endpoint: string;
  /**
   * Where serverless-offline's Lambda invoke endpoint is to listen: a Unix socket in a folder only this user
   * may enter. That endpoint runs any function with any event, answers any origin (CORS `*`) and would
   * otherwise listen on a TCP port on the API's host, beyond loopback when the API is: on a socket, no
   * browser and no other machine or user can reach it.
   */
  invokeSocket: string;
  /**
   * Throws a StartupError if serverless-offline listens beyond loopback while no API keys are configured; else
   * returns the TCP addresses it listens on.
   */
  checkListening: () => AddressInfo[];
  stop: () => Promise<void>;
}

/**
 * The serverless-offline side of the local runtime: DynamoDB Local (data under `<DATA_DIR>/dynamodb-offline`),
 * the table, the services the in-process handlers will share, and the long-lived consumer and sweeper.
 */
export async function startOfflineRuntime(): Promise<OfflineRuntime> {
  const config = loadConfig();
  const backend = await startLocalBackend(config, 'dynamodb-offline');
  await backend.startWorkers();
  const socketFolder = await mkdtemp(join(tmpdir(), 'order-processing-'));
  const listening = guardListening(config);
  const stopCheckingBodies = passInvalidUtf8AsBytes();
  return {
    endpoint: backend.endpoint,
    invokeSocket: join(socketFolder, 'lambda.sock'),
    checkListening: listening.check,
    async stop() {
      listening.stop();
      stopCheckingBodies();
      await backend.stop(shutdownGraceMs(config));
      await rm(socketFolder, { recursive: true, force: true });
    },
  };
}
