import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamodbEndpoint, runToEnd, uniqueTable } from '../support.ts';

/** Runs the standalone entry point to completion and returns its exit code and output. */
const standalone = (env: Record<string, string>) =>
  runToEnd(process.execPath, ['--import', 'tsx', 'local/standalone.ts'], { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env }, { timeoutMs: 60_000 });

describe('standalone start-up errors', () => {
  let blocker: Server;
  let takenPort: number;
  beforeAll(async () => {
    blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    takenPort = (blocker.address() as { port: number }).port;
  });
  afterAll(() => new Promise((resolve) => blocker.close(resolve)));

  it('says the port is taken instead of printing a stack trace', async () => {
    const { code, output } = await standalone({
      PORT: String(takenPort),
      DYNAMODB_ENDPOINT: dynamodbEndpoint(),
      TABLE_NAME: uniqueTable(),
    });

    expect(code).toBe(1);
    expect(output).toContain(`Port ${takenPort} on 127.0.0.1 is already in use: set PORT to another port.`);
    expect(output).not.toMatch(/\n\s+at /);
  });

  it('says Java is missing when it cannot start DynamoDB Local', async () => {
    const bin = await mkdtemp(join(tmpdir(), 'no-java-'));
    await symlink(process.execPath, join(bin, 'node'));
    try {
      const { code, output } = await standalone({ PATH: bin, PORT: '0', DATA_DIR: join(bin, 'data') });

      expect(code).toBe(1);
      expect(output).toContain('Java was not found. DynamoDB Local needs a Java runtime (17 or newer)');
      expect(output).not.toMatch(/\n\s+at /);
    } finally {
      await rm(bin, { recursive: true, force: true });
    }
  });

  it('names every invalid setting', async () => {
    const { code, output } = await standalone({ PROCESSING_CONCURRENCY: 'lots', LEASE_MS: '10', PROCESSING_MAX_MS: '2000' });

    expect(code).toBe(1);
    expect(output).toContain('Invalid configuration:');
    expect(output).toContain('PROCESSING_CONCURRENCY');
    expect(output).toContain('LEASE_MS');
  });
});
