import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { isLoopbackAddress } from '../../lib/hostCheck.ts';
import { createDocumentClient } from '../../lib/store.ts';
import { jarFolder, startDynamoDBLocal } from '../../local/dynamodbLocal.ts';
import { loopbackLauncher } from '../../local/dynamodbLoopback.ts';
import { listenersOn, listeningSocketsOf } from '../sockets.ts';
import { dynamodbEndpoint, pollUntil } from '../support.ts';

/** DynamoDB Local has no authentication: only this machine may reach it, and no web page may read it. */
describe('DynamoDB Local as local/dynamodbLocal.ts starts it', () => {
  it("listens on loopback only: every listening socket of java's is on 127.0.0.1", async () => {
    const port = Number(new URL(dynamodbEndpoint()).port);
    const owners = await listenersOn(port);
    expect(owners).toHaveLength(1);

    const sockets = await listeningSocketsOf(owners);
    expect(sockets.map((socket) => socket.port)).toContain(port);
    for (const socket of sockets) expect(isLoopbackAddress(socket.address), `${socket.address}:${socket.port}`).toBe(true);
  });

  const listTables = (endpoint: string, origin: string) =>
    fetch(endpoint, {
      method: 'POST',
      headers: {
        origin,
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': 'DynamoDB_20120810.ListTables',
        authorization: 'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00',
      },
      body: '{}',
    });

  const origins = ['https://evil.example', 'null', '*', 'http://127.0.0.1:3000', 'http://localhost:3000'];

  it.each(origins)('gives the origin %s no CORS grant to a preflight', async (origin) => {
    const answer = await fetch(dynamodbEndpoint(), {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type,x-amz-target',
      },
    });
    expect(answer.headers.get('access-control-allow-origin')).toBeNull();
  });

  it.each(origins)('gives the origin %s no CORS grant to a request', async (origin) => {
    const answer = await listTables(dynamodbEndpoint(), origin);
    // It does answer (the request is served to this machine), with no grant a browser would honour.
    expect(answer.status).toBe(200);
    expect(await answer.json()).toHaveProperty('TableNames');
    expect(answer.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('grants no CORS even to an origin -cors names: the allow-list is set, not left to a default', async () => {
    const folder = jarFolder();
    const java = spawn(
      'java',
      [`-Djava.library.path=${join(folder, 'DynamoDBLocal_lib')}`, ...(await loopbackLauncher(folder)), '-port', '0', '-inMemory', '-cors', 'https://evil.example'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      let output = '';
      java.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      // Port 0: Java binds a port the OS picks, and says which.
      const port = await pollUntil(() => /listening on 127\.0\.0\.1:(\d+)/.exec(output)?.[1], { what: 'the launcher to listen' });

      const answer = await listTables(`http://127.0.0.1:${port}`, 'https://evil.example');
      expect(answer.status).toBe(200);
      expect(answer.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      java.kill();
    }
  });

  it('keeps a data folder in SQLite write-ahead-log mode, and a committed write through a kill -9 of java', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'dynamodb-wal-'));
    const client = (endpoint: string) => createDocumentClient({ tableName: 'wal-check', region: 'us-east-1', endpoint });
    const first = await startDynamoDBLocal({ dataDir });
    let second: Awaited<ReturnType<typeof startDynamoDBLocal>> | undefined;
    try {
      const writer = client(first.endpoint);
      await writer.send(
        new CreateTableCommand({
          TableName: 'wal-check',
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        }),
      );
      await writer.send(new PutCommand({ TableName: 'wal-check', Item: { pk: 'kept' } }));
      execFileSync('pkill', ['-KILL', '-P', String(first.pid), 'java']);
      await first.stop();

      // SQLite's file header says which journal a file uses: bytes 18 and 19 are 2 in WAL mode, 1 in a rollback journal.
      const file = await open(join(dataDir, 'shared-local-instance.db'));
      const header = Buffer.alloc(20);
      await file.read(header, 0, 20, 0);
      await file.close();
      expect([header[18], header[19]]).toEqual([2, 2]);

      second = await startDynamoDBLocal({ dataDir });
      const read = await client(second.endpoint).send(new GetCommand({ TableName: 'wal-check', Key: { pk: 'kept' }, ConsistentRead: true }));
      expect(read.Item).toEqual({ pk: 'kept' });
    } finally {
      await first.stop();
      await second?.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
