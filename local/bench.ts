import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { loadConfig } from '../lib/config.ts';
import { OrderRepository, type OrderToCreate } from '../lib/orders.ts';
import { createDocumentClient, createStore, ensureTable, type Store } from '../lib/store.ts';
import { summarizeProfile, type ProfileSummary } from './cpuProfile.ts';
import { startDynamoDBLocal, type DynamoDBLocal } from './dynamodbLocal.ts';

/**
 * `npm run bench`: the service measured in the shapes shops produce, against yardsticks outside its own
 * design. Every app is `local/standalone.ts` started as `npm run start:standalone` starts it (its own DynamoDB
 * Local on disk, its warm-up, INFO logs), and every request opens a fresh TCP connection, as a burst of
 * shoppers does. Phases (`--only a,b`):
 *
 * - `burst`: bursts of 1 000 orders, all 1 000 in flight at once, the consumer running 1-5 ms of work, in five
 *   fresh starts of five bursts each: the first burst after a start is compared with the third to fifth of its
 *   own start (the warm ones); the second, still warming, is reported apart.
 * - `bare`: the physical ceiling of the store on this machine, in the same run, between the fresh starts and the
 *   end-to-end runs: group commits of 99 conditional puts of small items plus one counter ADD, 4 in flight, on a
 *   table with no index, straight through the SDK (no HTTP). Figures are also given as `*_vs_bare_store` ratios.
 * - `e2e`: 2 000 orders, 200 in flight, no simulated work, default settings otherwise: from the first POST
 *   until /metrics counts all of them COMPLETED; then `sustained`: an open-loop offered load (300 orders/s
 *   for 60 s) while PENDING is sampled every second.
 * - `short`: 3 000 orders from 50 clients with 100-400 ms of work and the default concurrency: the completion
 *   rate against the work-bound ideal (concurrency / mean work).
 * - `drain`: the default 500-2 000 ms of work, against its ideal.
 * - `scale`: GET /metrics at 1 000 and 100 000 orders, and peak memory with a 100 000-order backlog.
 *
 * `--quick` runs small counts in under two minutes (CI runs it so the benchmark cannot rot; it asserts nothing
 * about speed). `--profile` runs the burst and e2e apps under `node --cpu-prof` and prints where their CPU
 * went (slower, so the figures of such a run are not comparable). Writes bench-results/<time>.json and latest.json.
 */

const PHASES = ['burst', 'bare', 'e2e', 'sustained', 'short', 'drain', 'scale'];
const argument = (name: string) => process.argv[process.argv.indexOf(name) + 1];
const quick = process.argv.includes('--quick');
const profile = process.argv.includes('--profile');
const phases = new Set(process.argv.includes('--only') ? (argument('--only') ?? '').split(',') : quick ? PHASES.filter((p) => p !== 'drain') : PHASES);
for (const phase of phases) if (!PHASES.includes(phase)) throw new Error(`--only takes phases among ${PHASES.join(', ')}, not "${phase}"`);
const STAMP = new Date().toISOString().replace(/[:.]/g, '-');
const COUNTS = quick
  ? { warmup: 1_000, freshStarts: 1, bursts: 3, burst: 1_000, bare: 3_000, e2e: 1_000, e2eRuns: 1, e2eClients: 200, sustainedRate: 300, sustainedSeconds: 10, short: 600, shortClients: 50, drain: 0, scaleLarge: 10_000, metricsCalls: 100, backlogSeconds: 5 }
  : { warmup: undefined, freshStarts: 5, bursts: 3, burst: 1_000, bare: 5_000, e2e: 2_000, e2eRuns: 3, e2eClients: 200, sustainedRate: 300, sustainedSeconds: 60, short: 3_000, shortClients: 50, drain: 1_000, scaleLarge: 100_000, metricsCalls: 1_000, backlogSeconds: 20 };
const defaults = loadConfig({});

// Progress overwrites one line on a terminal; in a log (CI) only the finished lines are written.
const progress = (text: string) => process.stderr.isTTY && process.stderr.write(`\r\x1b[2K${text}`);
const done = (text: string) => process.stderr.write(process.stderr.isTTY ? `\r\x1b[2K${text}\n` : `${text}\n`);
const percentile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)] ?? NaN;
const range = (values: number[]) => [Math.min(...values), Math.max(...values)];

const order = (i: number, prefix: string) => ({
  order_id: `${prefix}-${i}`,
  user_id: `user-${i % 997}`,
  item_ids: [`sku-${i % 13}`, i % 101],
  total_amount: (i % 10_000) / 100,
});

/** One HTTP call on a connection of its own (no keep-alive), as each shopper's browser or shop server opens. */
const call = (url: string, method: string, path: string, body?: unknown) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> = { connection: 'close' };
    if (payload) Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
    const req = request(`${url}${path}`, { method, agent: false, headers, timeout: 60_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within a minute`)));
    req.end(payload);
  });

interface App {
  url: string;
  child: ChildProcess;
  startedMs: number;
  profileDir?: string;
  stop(): Promise<void>;
}

/** Longest an app may take to be ready: a start takes 20-30 s here, its warm-up included. */
const START_TIMEOUT_MS = 180_000;

/** Starts the standalone runtime as its own process, as `npm run start:standalone` does; ready means /health 200. */
async function startApp(name: string, env: Record<string, string>, withProfile = false): Promise<App> {
  const started = performance.now();
  const profileDir = withProfile ? join('bench-results', 'profiles', STAMP, name) : undefined;
  const child = spawn(process.execPath, [...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), '--import', 'tsx', 'local/standalone.ts'], {
    env: {
      ...process.env,
      PORT: '0',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...(COUNTS.warmup !== undefined && { WARMUP_ORDERS: String(COUNTS.warmup) }),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The log lines are read and dropped, as a log shipper would: what they cost the app is part of the figures.
  let banner = '';
  const keep = (c: Buffer) => (banner = (banner + c.toString()).slice(-20_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  // A start that fails or hangs ends the run (the load generator is kept busy meanwhile: it must not spin forever).
  const check = () => {
    if (child.exitCode !== null) throw new Error(`${name}: the app exited:\n${banner}`);
    if (performance.now() - started > START_TIMEOUT_MS) {
      child.kill('SIGKILL');
      throw new Error(`${name}: the app was not ready within ${START_TIMEOUT_MS / 1000} s:\n${banner}`);
    }
  };
  for (;;) {
    const url = /listening on (http:\/\/\S+)/.exec(banner)?.[1];
    if (url) {
      while ((await call(url, 'GET', '/health').catch(() => ({ status: 0 }))).status !== 200) {
        check();
        await sleep(20);
      }
      banner = '';
      return {
        url,
        child,
        startedMs: performance.now() - started,
        profileDir,
        stop: () =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      };
    }
    check();
    await sleep(20);
  }
}

/**
 * A server in this process that answers as the service does (its headers, an order's JSON): the load generator
 * warms its own code against it, so that a first burst measures a cold service, not a cold client.
 */
async function startSink(): Promise<{ url: string; close(): Promise<void> }> {
  const created = new Date().toISOString();
  const body = JSON.stringify({ ...order(0, 'client-warm-up'), status: 'PENDING', attempts: 0, created_at: created });
  const sink = createServer((req, res) => {
    req.resume();
    req.on('end', () =>
      res
        .writeHead(201, { 'content-type': 'application/json', 'cache-control': 'no-store', location: '/orders/client-warm-up-0', 'x-request-id': randomUUID(), connection: 'close' })
        .end(body),
    );
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(sink.address() as AddressInfo).port}`, close: () => new Promise((resolve) => sink.close(() => resolve())) };
}

const toSink = (sinkUrl: string) => (i: number) => create(sinkUrl, order(i, 'client-warm-up'));

const warmClient = async (sinkUrl: string) => {
  for (let round = 0; round < 3; round++) await load(2_000, 500, toSink(sinkUrl), 'warming the load generator');
};

/**
 * Keeps the load generator busy against the sink while an app starts (rounds of 100 requests, a quarter of a
 * second apart), until `starting` settles. Left idle for the twenty seconds a start takes, the generator spent
 * 232-307 ms of CPU on the first burst after it, against 104-219 kept warm, as on warm bursts (93-221; eight
 * `--only burst` runs): CPU that the service under test, on the same two cores, did not get.
 */
async function keepClientWarm(sinkUrl: string, starting: Promise<unknown>): Promise<void> {
  let settled = false;
  const settling = starting.then(
    () => (settled = true),
    () => (settled = true),
  );
  while (!settled) {
    await load(100, 50, toSink(sinkUrl), 'keeping the load generator warm');
    await Promise.race([sleep(250), settling]);
  }
}

/** Peak resident memory of a process, from the kernel. */
const peakRssMb = async (pid: number) => {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
};

interface LoadResult {
  elapsedMs: number;
  /** CPU the load generator itself used meanwhile: the two cores' share the service did not get. */
  clientCpuMs: number;
  errors: number;
  errorKinds: Record<string, number>;
  latencies: number[];
}

const countError = (result: Pick<LoadResult, 'errors' | 'errorKinds'>, error: Error & { code?: string }) => {
  const kind = error.code ?? error.message;
  result.errors++;
  result.errorKinds[kind] = (result.errorKinds[kind] ?? 0) + 1;
};

/** `total` calls of `one` from `clients` closed loops (each waits for its answer); latencies sorted. */
async function load(total: number, clients: number, one: (i: number) => Promise<void>, label: string): Promise<LoadResult> {
  let next = 0;
  const result: LoadResult = { elapsedMs: 0, clientCpuMs: 0, errors: 0, errorKinds: {}, latencies: [] };
  const started = performance.now();
  const cpu = process.cpuUsage();
  const ticker = setInterval(() => progress(`${label}: ${result.latencies.length + result.errors}/${total}`), 250);
  await Promise.all(
    Array.from({ length: Math.min(clients, total) }, async () => {
      for (let i = next++; i < total; i = next++) {
        const sent = performance.now();
        try {
          await one(i);
          result.latencies.push(performance.now() - sent);
        } catch (error) {
          countError(result, error as Error);
        }
      }
    }),
  );
  clearInterval(ticker);
  result.elapsedMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  result.clientCpuMs = Math.round((used.user + used.system) / 1_000);
  result.latencies.sort((a, b) => a - b);
  return result;
}

/**
 * POSTs an order on a connection of its own and throws unless it is answered 201. Written on a bare socket
 * (the request's bytes, then the status line of the answer, read until the server closes): node:http's client
 * costs the load generator about twice the CPU per request, CPU the service under test would not get.
 */
const create = (url: string, body: unknown): Promise<void> =>
  new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url);
    const payload = JSON.stringify(body);
    const socket = connect(Number(port), hostname);
    let head = '';
    socket.setEncoding('latin1');
    socket.setTimeout(60_000, () => socket.destroy(new Error('POST /orders: no answer within a minute')));
    socket.on('connect', () =>
      socket.write(`POST /orders HTTP/1.1\r\nhost: ${hostname}:${port}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\nconnection: close\r\n\r\n${payload}`),
    );
    socket.on('data', (chunk: string) => {
      if (head.length < 12) head += chunk;
    });
    socket.on('error', reject);
    socket.on('end', () => {
      socket.destroy();
      const status = head.slice(9, 12);
      if (status === '201') resolve();
      else reject(new Error(`HTTP ${status || 'no answer'}`));
    });
  });

interface Metrics {
  total_orders: number;
  total_orders_processed: number;
  status_counts: Record<string, number>;
}

async function getMetrics(url: string): Promise<Metrics> {
  const { status, body } = await call(url, 'GET', '/metrics');
  if (status !== 200) throw new Error(`/metrics answered ${status}`);
  return JSON.parse(body) as Metrics;
}

/** Polls /metrics every 100 ms until `completed` orders are COMPLETED; returns when that was seen. */
async function untilCompleted(url: string, completed: number, label: string): Promise<number> {
  for (;;) {
    const metrics = await getMetrics(url);
    progress(`${label}: ${metrics.total_orders_processed}/${completed} completed`);
    if (metrics.total_orders_processed >= completed) return performance.now();
    await sleep(100);
  }
}

/** Waits until nothing is PENDING or PROCESSING, so that each round starts from the same state. */
async function untilIdle(url: string): Promise<void> {
  for (;;) {
    const { status_counts: counts } = await getMetrics(url);
    if (counts.PENDING === 0 && counts.PROCESSING === 0) return;
    await sleep(100);
  }
}

const summary = (result: LoadResult, orders: number) => ({
  orders,
  accepted_per_s: Math.round(((orders - result.errors) / result.elapsedMs) * 1000),
  client_cpu_ms: result.clientCpuMs,
  p50_ms: round(percentile(result.latencies, 0.5)),
  p99_ms: round(percentile(result.latencies, 0.99)),
  errors: result.errors,
  ...(result.errors > 0 && { errors_by_kind: result.errorKinds }),
});

type Burst = ReturnType<typeof summary>;

/** The bare store: 99 conditional puts of small items plus one counter ADD per transaction, `inFlight` at once. */
async function bareStore(store: Store, total: number, label: string, inFlight = 4): Promise<number> {
  const batch = 99;
  const prefix = randomUUID().slice(0, 8);
  const result = await load(
    Math.ceil(total / batch),
    inFlight,
    async (b) => {
      const now = new Date().toISOString();
      const puts = Array.from({ length: Math.min(batch, total - b * batch) }, (_, k) => {
        const o = order(b * batch + k, prefix);
        return {
          Put: {
            TableName: store.tableName,
            Item: { pk: `ORDER#${o.order_id}`, ...o, status: 'PENDING', attempts: 0, created_at: now },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        };
      });
      const counter = { Update: { TableName: store.tableName, Key: { pk: `COUNTER#${b % 16}` }, UpdateExpression: 'ADD pending :n', ExpressionAttributeValues: { ':n': puts.length } } };
      await store.documentClient.send(new TransactWriteCommand({ TransactItems: [...puts, counter] }));
    },
    `bare store (${label})`,
  );
  return (total / result.elapsedMs) * 1000;
}

/** A table with a partition key and nothing else: no index, no sort key. */
async function bareTable(endpoint: string): Promise<Store> {
  const name = 'bench-bare';
  const documentClient = createDocumentClient({ tableName: name, region: 'us-east-1', endpoint });
  await documentClient.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    }),
  );
  return createStore(documentClient, name);
}

/** Where an app spent its CPU (the profile V8 wrote when it exited). */
async function profileOf(app: App): Promise<(ProfileSummary & { file: string }) | undefined> {
  if (!app.profileDir) return undefined;
  const [name] = (await readdir(app.profileDir)).filter((file) => file.endsWith('.cpuprofile'));
  if (!name) return undefined;
  const file = join(app.profileDir, name);
  const summary = await summarizeProfile(file);
  const rows = summary.by_origin.map(({ name: what, ms, share }) => `  ${`${round(share * 100)}%`.padStart(6)} ${String(ms).padStart(7)} ms  ${what}`).join('\n');
  done(`CPU profile of ${app.profileDir} (${summary.sampled_ms} ms sampled), by origin:\n${rows}`);
  return { file, ...summary };
}

/**
 * Offers `rate` orders a second for `seconds`, whatever the answers take (open loop); samples PENDING and the
 * orders completed each second, reported in full so that a backlog's shape (a steady climb, or a stall) shows.
 */
async function sustained(url: string, rate: number, seconds: number) {
  // Open loop: no elapsed time or client CPU of a closed loop to report, only the answers.
  const result: Pick<LoadResult, 'errors' | 'errorKinds' | 'latencies'> = { errors: 0, errorKinds: {}, latencies: [] };
  const pending: number[] = [];
  const completed: number[] = [];
  const prefix = `sustained-${randomUUID().slice(0, 8)}`;
  const sends: Promise<void>[] = [];
  const started = performance.now();
  let sent = 0;
  const sampler = setInterval(() => {
    void getMetrics(url).then(
      (m) => {
        pending.push(m.status_counts.PENDING ?? 0);
        completed.push(m.status_counts.COMPLETED ?? 0);
      },
      () => undefined,
    );
  }, 1_000);
  while (sent < rate * seconds) {
    const due = Math.min(rate * seconds, Math.floor(((performance.now() - started) / 1000) * rate));
    for (; sent < due; sent++) {
      const at = performance.now();
      const i = sent;
      sends.push(create(url, order(i, prefix)).then(() => void result.latencies.push(performance.now() - at), (error: Error) => countError(result, error)));
    }
    progress(`sustained: ${sent}/${rate * seconds} offered, PENDING ${pending.at(-1) ?? 0}`);
    await sleep(5);
  }
  await Promise.all(sends);
  clearInterval(sampler);
  const lastPost = performance.now();
  await untilIdle(url);
  result.latencies.sort((a, b) => a - b);
  const half = Math.floor(pending.length / 2);
  return {
    offered_per_s: rate,
    seconds,
    create_p50_ms: round(percentile(result.latencies, 0.5)),
    create_p99_ms: round(percentile(result.latencies, 0.99)),
    errors: result.errors,
    ...(result.errors > 0 && { errors_by_kind: result.errorKinds }),
    pending_max: Math.max(0, ...pending),
    pending_max_first_half: Math.max(0, ...pending.slice(0, half)),
    pending_max_second_half: Math.max(0, ...pending.slice(half)),
    drained_ms_after_last_post: Math.round(performance.now() - lastPost),
    pending_each_s: pending,
    completed_each_s: completed.slice(1).map((count, k) => count - completed[k]!),
  };
}

/** Seeds `count` orders through the repository, so orders and counters agree. */
async function seed(orders: OrderRepository, count: number, prefix: string) {
  const batch = 98;
  await load(
    Math.ceil(count / batch),
    8,
    async (b) => {
      const now = new Date().toISOString();
      const slice: OrderToCreate[] = Array.from({ length: Math.min(batch, count - b * batch) }, (_, k) => ({ ...order(b * batch + k, prefix), created_at: now }));
      const outcomes = await orders.createMany(slice);
      if (!outcomes.every((o) => o.ok)) throw new Error('seeding failed');
    },
    `seeding ${count} orders`,
  );
}

/** GET /metrics latencies of two apps in alternating rounds (both see the same machine and the same drift). */
async function metricsLatencies(urls: [string, string], calls: number) {
  const latencies: [number[], number[]] = [[], []];
  const rounds = 10;
  for (let turn = 1; turn <= rounds; turn++) {
    for (const [i, url] of urls.entries()) {
      const part = await load(Math.ceil(calls / rounds), 1, async () => void (await getMetrics(url)), `GET /metrics, round ${turn} of ${rounds}`);
      latencies[i]!.push(...part.latencies);
    }
  }
  return latencies.map((list) => {
    list.sort((a, b) => a - b);
    return { p50: round(percentile(list, 0.5), 2), p99: round(percentile(list, 0.99), 2) };
  }) as [{ p50: number; p99: number }, { p50: number; p99: number }];
}

type Target = { name: string; value: number; target: string; pass: boolean };

async function main() {
  const results: Record<string, unknown> = {};
  const targets: Target[] = [];
  const target = (name: string, value: number, goal: string, pass: boolean) => targets.push({ name, value, target: goal, pass });
  const dataDir = await mkdtemp(join(tmpdir(), 'order-bench-'));
  const apps: App[] = [];
  let dynamodb: DynamoDBLocal | undefined;
  const launch = async (name: string, env: Record<string, string>, withProfile = false) => {
    const app = await startApp(name, { DATA_DIR: join(dataDir, name), ...env }, withProfile);
    apps.push(app);
    return app;
  };
  // The load generator's code runs hot before anything is measured, whatever the phases.
  const sink = await startSink();
  try {
    await warmClient(sink.url);
    // The bench's own DynamoDB Local, started as the app starts its own: the bare yardstick and the scale tables.
    // It idles while an app is measured; its rounds alternate with the fresh starts, so both meet the same machine.
    dynamodb = await startDynamoDBLocal({ dataDir: join(dataDir, 'bench-dynamodb') });
    const bare = phases.has('bare') || phases.has('burst') || phases.has('e2e') ? await bareTable(dynamodb.endpoint) : undefined;
    const bareRates: number[] = [];
    if (bare) {
      await bareStore(bare, COUNTS.bare * 2, 'warm-up');
      bareRates.push(await bareStore(bare, COUNTS.bare, 'before the bursts'));
    }

    if (phases.has('burst')) {
      // Each fresh start takes a first burst, then more: a first burst is compared with the warm bursts of its
      // own start, which met the same machine a few seconds later (this shared machine's speed drifts by a
      // third from one minute to the next), and the median of those ratios is reported.
      const starts: { first: Burst; second: Burst; warm: Burst[] }[] = [];
      const startups: number[] = [];
      let burstProfile: Awaited<ReturnType<typeof profileOf>>;
      for (let start = 1; start <= COUNTS.freshStarts; start++) {
        const last = start === COUNTS.freshStarts;
        const starting = launch(`burst-${start}`, { PROCESSING_MIN_MS: '1', PROCESSING_MAX_MS: '5' }, profile && last);
        await keepClientWarm(sink.url, starting);
        const app = await starting;
        startups.push(Math.round(app.startedMs));
        const burst = async (label: string) => {
          const prefix = `burst-${randomUUID().slice(0, 8)}`;
          const result = summary(await load(COUNTS.burst, COUNTS.burst, (i) => create(app.url, order(i, prefix)), label), COUNTS.burst);
          await untilIdle(app.url);
          return result;
        };
        const first = await burst(`start ${start} of ${COUNTS.freshStarts}: first burst`);
        // Still warming: in 21 of 34 starts the second burst was the slowest of bursts 2-4, at 0.93 of their median
        // on average. It is reported, not counted among the warm ones.
        const second = await burst(`start ${start} of ${COUNTS.freshStarts}: second burst`);
        const warm: Burst[] = [];
        for (let turn = 3; turn <= COUNTS.bursts + 2; turn++) warm.push(await burst(`start ${start} of ${COUNTS.freshStarts}: burst ${turn} (warm)`));
        starts.push({ first, second, warm });
        await app.stop();
        // Between starts, not between bursts: the store's JVM works on for a while after a round.
        if (bare) bareRates.push(await bareStore(bare, COUNTS.bare, `after start ${start}`));
        if (last) burstProfile = await profileOf(app);
      }
      results.startup_ms = median(startups);
      results.startup_ms_range = range(startups);
      const firsts = starts.map((s) => s.first);
      const warm = starts.flatMap((s) => s.warm);
      const rate = median(warm.map((b) => b.accepted_per_s));
      const p99 = median(warm.map((b) => b.p99_ms));
      const errors = [...firsts, ...starts.map((s) => s.second), ...warm].reduce((sum, b) => sum + b.errors, 0);
      const firstRates = firsts.map((f) => f.accepted_per_s);
      const firstRate = median(firstRates);
      const first = { ...firsts.find((b) => b.accepted_per_s === firstRate)!, fresh_starts: firsts.length, accepted_per_s_range: range(firstRates), each: firsts };
      const ratios = starts.map((s) => round(s.first.accepted_per_s / median(s.warm.map((b) => b.accepted_per_s)), 3));
      const ratio = median(ratios);
      const seconds = starts.map((s) => s.second);
      const second = { accepted_per_s: median(seconds.map((b) => b.accepted_per_s)), accepted_per_s_range: range(seconds.map((b) => b.accepted_per_s)), each: seconds };
      results.burst = {
        orders_per_burst: COUNTS.burst,
        in_flight: COUNTS.burst,
        connections: 'fresh per request',
        processing_ms: [1, 5],
        first,
        second,
        warm: { accepted_per_s: rate, accepted_per_s_range: range(warm.map((b) => b.accepted_per_s)), p99_ms: p99, p99_ms_range: range(warm.map((b) => b.p99_ms)), per_start: COUNTS.bursts, bursts: warm },
        first_to_warm: { each_start: ratios, median: ratio, min: Math.min(...ratios) },
        errors,
      };
      target('burst_accepted_per_s', rate, '>= 1050', rate >= 1050);
      target('burst_p99_ms', p99, '<= 900', p99 <= 900);
      target('burst_errors', errors, '= 0', errors === 0);
      target('first_burst_ratio', ratio, '>= 0.8', ratio >= 0.8);
      done(
        `burst: first after a fresh start, median of ${firsts.length}: ${first.accepted_per_s}/s (${first.accepted_per_s_range.join('-')}), p99 ${first.p99_ms} ms; ` +
          `second bursts' median ${second.accepted_per_s}/s; warm median of ${warm.length}: ${rate}/s, p99 ${p99} ms; ` +
          `first/warm of each start ${ratios.join(', ')}; ${errors} errors`,
      );
      if (burstProfile) results.burst_profile = burstProfile;
    }

    if (phases.has('e2e') || phases.has('sustained')) {
      const app = await launch('e2e', { PROCESSING_MIN_MS: '0', PROCESSING_MAX_MS: '0' }, profile);
      if (phases.has('e2e')) {
        const runs: { orders: number; elapsed_ms: number; orders_per_s: number }[] = [];
        for (let turn = 1; turn <= COUNTS.e2eRuns; turn++) {
          const before = (await getMetrics(app.url)).total_orders_processed;
          const prefix = `e2e${turn}-${randomUUID().slice(0, 8)}`;
          const started = performance.now();
          await load(COUNTS.e2e, COUNTS.e2eClients, (i) => create(app.url, order(i, prefix)), `end to end, run ${turn}: creating`);
          const finished = await untilCompleted(app.url, before + COUNTS.e2e, `end to end, run ${turn}`);
          const elapsed = finished - started;
          runs.push({ orders: COUNTS.e2e, elapsed_ms: Math.round(elapsed), orders_per_s: Math.round((COUNTS.e2e / elapsed) * 1000) });
          if (bare) bareRates.push(await bareStore(bare, COUNTS.bare, `after end-to-end run ${turn}`));
        }
        const rate = median(runs.map((r) => r.orders_per_s));
        results.e2e = { in_flight: COUNTS.e2eClients, connections: 'fresh per request', processing_ms: 0, orders_per_s: rate, orders_per_s_range: range(runs.map((r) => r.orders_per_s)), runs };
        target('e2e_orders_per_s', rate, '>= 400', rate >= 400);
        done(`end to end: ${rate} orders/s (runs ${JSON.stringify(runs)})`);
      }
      if (phases.has('sustained')) {
        const result = await sustained(app.url, COUNTS.sustainedRate, COUNTS.sustainedSeconds);
        results.sustained = result;
        // Bounded: the backlog never holds more than two seconds of arrivals, and does not grow in the second half.
        const bound = 2 * COUNTS.sustainedRate;
        target('sustained_pending_max', result.pending_max, `<= ${bound}`, result.pending_max <= bound);
        const { pending_each_s: _pending, completed_each_s: _completed, ...shown } = result;
        done(`sustained: ${JSON.stringify(shown)} (each second in the JSON)`);
      }
      await app.stop();
      const e2eProfile = await profileOf(app);
      if (e2eProfile) results.e2e_profile = e2eProfile;
    }

    if (bareRates.length > 0) {
      const bareRate = median(bareRates);
      results.bare_store = { orders_per_s: Math.round(bareRate), range: range(bareRates.map(Math.round)), rounds: bareRates.length, shape: '99 conditional puts + 1 counter ADD per transaction, 4 in flight, no index' };
      const burst = results.burst as { warm: { accepted_per_s: number } } | undefined;
      const e2e = results.e2e as { orders_per_s: number } | undefined;
      if (burst) results.burst_vs_bare_store = round(burst.warm.accepted_per_s / bareRate, 3);
      if (e2e) results.e2e_vs_bare_store = round(e2e.orders_per_s / bareRate, 3);
      done(`bare store: ${Math.round(bareRate)} orders/s (${bareRates.length} rounds, ${range(bareRates.map(Math.round)).join('-')})`);
    }

    const workBound = async (name: string, orders: number, clients: number, minMs: number, maxMs: number) => {
      const app = await launch(name, { PROCESSING_MIN_MS: String(minMs), PROCESSING_MAX_MS: String(maxMs) });
      const prefix = `${name}-${randomUUID().slice(0, 8)}`;
      const started = performance.now();
      await load(orders, clients, (i) => create(app.url, order(i, prefix)), `${name}: creating`);
      const elapsed = (await untilCompleted(app.url, orders, name)) - started;
      await app.stop();
      const concurrency = defaults.PROCESSING_CONCURRENCY;
      const ideal = concurrency / ((minMs + maxMs) / 2 / 1000);
      const rate = (orders / elapsed) * 1000;
      return { orders, clients, work_ms: [minMs, maxMs], concurrency, orders_per_s: round(rate), ideal_per_s: round(ideal), ratio: round(rate / ideal, 3) };
    };

    if (phases.has('short')) {
      const result = await workBound('short', COUNTS.short, COUNTS.shortClients, 100, 400);
      results.short_work = result;
      target('short_work_ratio', result.ratio, '>= 0.9', result.ratio >= 0.9);
      done(`short work: ${JSON.stringify(result)}`);
    }

    if (phases.has('drain') && COUNTS.drain > 0) {
      const result = await workBound('drain', COUNTS.drain, COUNTS.e2eClients, defaults.PROCESSING_MIN_MS, defaults.PROCESSING_MAX_MS);
      results.drain = result;
      target('drain_ratio', result.ratio, '>= 0.9', result.ratio >= 0.9);
      done(`drain: ${JSON.stringify(result)}`);
    }

    if (phases.has('scale')) {
      const storeOf = async (table: string) => {
        const store = createStore(createDocumentClient({ tableName: table, region: 'us-east-1', endpoint: dynamodb!.endpoint }), table);
        await ensureTable(store);
        return store;
      };
      await seed(new OrderRepository(await storeOf('bench-scale-small')), 1_000, 'scale');
      await seed(new OrderRepository(await storeOf('bench-scale')), COUNTS.scaleLarge, 'scale');
      const idle = (name: string, table: string) =>
        launch(name, { DYNAMODB_ENDPOINT: dynamodb!.endpoint, TABLE_NAME: table, PROCESSING_MIN_MS: '600000', PROCESSING_MAX_MS: '600000', LEASE_MS: '700000', QUEUE_CAPACITY: '1' });
      const scaleApps = [await idle('scale-small', 'bench-scale-small'), await idle('scale-large', 'bench-scale')] as const;
      const urls: [string, string] = [scaleApps[0].url, scaleApps[1].url];
      await metricsLatencies(urls, 100);
      const [small, large] = await metricsLatencies(urls, COUNTS.metricsCalls);
      const counted = (await getMetrics(scaleApps[1].url)).total_orders;
      await Promise.all(scaleApps.map((app) => app.stop()));
      results.metrics = { orders_1000: small, [`orders_${COUNTS.scaleLarge}`]: large, total_orders_reported: counted };
      const scaling = large.p99 / small.p99;
      target('metrics_scaling', round(scaling, 3), '<= 1.5', scaling <= 1.5);
      done(`metrics: p99 ${small.p99} ms at 1000 orders, ${large.p99} ms at ${COUNTS.scaleLarge} (reported total ${counted})`);

      // Memory with the large backlog (all PENDING) and the default queue capacity, draining fast.
      const backlogApp = await launch('backlog', { DYNAMODB_ENDPOINT: dynamodb.endpoint, TABLE_NAME: 'bench-scale', PROCESSING_MIN_MS: '1', PROCESSING_MAX_MS: '5' });
      const backlogStart = performance.now();
      let peak = 0;
      while (performance.now() - backlogStart < COUNTS.backlogSeconds * 1000) {
        peak = await peakRssMb(backlogApp.child.pid!);
        const metrics = await getMetrics(backlogApp.url);
        progress(`memory: peak RSS ${round(peak)} MB, ${metrics.total_orders_processed} of the backlog processed`);
        await sleep(500);
      }
      const processed = (await getMetrics(backlogApp.url)).total_orders_processed;
      await backlogApp.stop();
      results.memory = { backlog: COUNTS.scaleLarge, queue_capacity: defaults.QUEUE_CAPACITY, seconds: COUNTS.backlogSeconds, processed, peak_rss_mb: round(peak) };
      target('peak_rss_mb', round(peak), '<= 256', peak <= 256);
      done(`memory: peak RSS ${round(peak)} MB with a ${COUNTS.scaleLarge}-order backlog (${processed} processed in ${COUNTS.backlogSeconds} s)`);
    }
  } finally {
    await Promise.all(apps.map((app) => app.stop()));
    await sink.close();
    await dynamodb?.stop();
    await rm(dataDir, { recursive: true, force: true });
  }

  const report = { generated_at: new Date().toISOString(), quick, phases: [...phases], profile, machine: { cpus: cpus().length, node: process.version }, results, targets };
  await mkdir('bench-results', { recursive: true });
  const file = join('bench-results', `bench-${STAMP}${quick ? '-quick' : ''}.json`);
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(join('bench-results', 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);

  console.log(`\n${'target'.padEnd(24)} ${'value'.padStart(10)}  ${'goal'.padEnd(9)} result`);
  for (const t of targets) console.log(`${t.name.padEnd(24)} ${String(t.value).padStart(10)}  ${t.target.padEnd(9)} ${quick ? 'indicative (quick)' : t.pass ? 'pass' : 'FAIL'}`);
  for (const key of ['bare_store', 'burst_vs_bare_store', 'e2e_vs_bare_store', 'startup_ms']) if (results[key] !== undefined) console.log(`${key} ${JSON.stringify(results[key])}`);
  console.log(`written to ${file}${quick ? ' (quick mode: small counts, figures are indicative only)' : ''}`);
}

await main();
