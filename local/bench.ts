import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { loadConfig } from '../lib/config.ts';
import { OrderRepository, type OrderToCreate } from '../lib/orders.ts';
import { counterUpdate } from '../lib/counters.ts';
import { createDocumentClient, createStore, ensureTable, type Store } from '../lib/store.ts';
import { summarizeProfile } from './cpuProfile.ts';
import { freePort, startDynamoDBLocal, type DynamoDBLocal } from './dynamodbLocal.ts';

/**
 * `npm run bench`: how fast the service takes and drains orders, measured as ratios within one run
 * against the store's own ceiling (our machines are shared and noisy, so absolute times drift).
 * Prints a table, writes bench-results/<time>.json, and says pass/fail for each target.
 * `--quick` runs small counts (CI runs it so the benchmark cannot rot; CI asserts nothing about speed).
 * `--profile` runs the ingest app under `node --cpu-prof` and prints where its CPU went (the profiler slows
 * it, so the ingest figures of such a run are not comparable with a plain one).
 * `--only ingest,drain` runs some of the phases: startup, ingest (with the store ceiling), drain, scale
 * (metrics at scale and memory).
 */

const PHASES = ['startup', 'ingest', 'drain', 'scale'];
const argument = (name: string) => process.argv[process.argv.indexOf(name) + 1];
const quick = process.argv.includes('--quick');
const profile = process.argv.includes('--profile');
const phases = new Set(process.argv.includes('--only') ? (argument('--only') ?? '').split(',') : PHASES);
for (const phase of phases) if (!PHASES.includes(phase)) throw new Error(`--only takes phases among ${PHASES.join(', ')}, not "${phase}"`);
const STAMP = new Date().toISOString().replace(/[:.]/g, '-');
const COUNTS = quick
  ? { ingest: 2_000, clients: 200, drain: 200, drainMinMs: 100, drainMaxMs: 400, scaleSmall: 1_000, scaleLarge: 10_000, metricsCalls: 100, backlogSeconds: 5 }
  : { ingest: 20_000, clients: 1_000, drain: 1_000, drainMinMs: 500, drainMaxMs: 2_000, scaleSmall: 1_000, scaleLarge: 100_000, metricsCalls: 1_000, backlogSeconds: 20 };
const defaults = loadConfig({});
const CONCURRENCY = 32;
/** The ingest and the store ceiling alternate this many times. */
const INGEST_ROUNDS = 4;

const progress = (text: string) => process.stderr.write(`\r\x1b[2K${text}`);
const done = (text: string) => process.stderr.write(`\r\x1b[2K${text}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const percentile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

const order = (i: number, prefix: string) => ({
  order_id: `${prefix}-${i}`,
  user_id: `user-${i % 997}`,
  item_ids: [`sku-${i % 13}`, i % 101],
  total_amount: (i % 10_000) / 100,
});

/** Keep-alive HTTP client: one socket per simulated client. */
let agent = new Agent({ keepAlive: true, maxSockets: COUNTS.clients });

/**
 * New connections for a load that follows a pause: a socket left idle longer than the server's keep-alive
 * timeout may be closed by the server just as it is reused, failing a request no real client would count.
 */
const freshConnections = () => {
  agent.destroy();
  agent = new Agent({ keepAlive: true, maxSockets: COUNTS.clients });
};
const call = (url: string, method: string, path: string, body?: unknown) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(`${url}${path}`, { method, agent, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(payload);
  });

interface App {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts the standalone runtime as its own process, exactly as `npm run start:standalone` runs it. */
async function startApp(env: Record<string, string>, nodeArgs: string[] = []): Promise<App & { startedMs: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'local/standalone.ts'], {
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'ERROR', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  for (;;) {
    const url = /listening on (http:\/\/\S+)/.exec(output)?.[1];
    if (url) {
      // Ready means /health answers 200 (the store answers too).
      while ((await call(url, 'GET', '/health').catch(() => ({ status: 0 }))).status !== 200) await sleep(20);
      return {
        url,
        child,
        startedMs: performance.now() - started,
        stop: () =>
          new Promise<void>((resolve) => {
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      };
    }
    if (child.exitCode !== null) throw new Error(`the app exited:\n${output}`);
    await sleep(20);
  }
}

/** Peak resident memory of a process, from the kernel. */
const peakRssMb = async (pid: number) => {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
};

/**
 * Runs `total` calls of `one` with `clients` concurrent loops; returns latencies (ms), errors (counted by what
 * went wrong: the message or code of what `one` threw, or a false answer) and elapsed time.
 */
async function load(total: number, clients: number, one: (i: number) => Promise<boolean>, label: string) {
  let next = 0;
  let errors = 0;
  const errorKinds: Record<string, number> = {};
  const latencies: number[] = [];
  const started = performance.now();
  const ticker = setInterval(() => progress(`${label}: ${latencies.length + errors}/${total}`), 250);
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = next++; i < total; i = next++) {
        const sent = performance.now();
        const outcome = await one(i).catch((error: Error & { code?: string }) => error.code ?? error.message);
        if (outcome === true) latencies.push(performance.now() - sent);
        else {
          errors++;
          const kind = outcome === false ? 'unexpected answer' : outcome;
          errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
        }
      }
    }),
  );
  clearInterval(ticker);
  const elapsedMs = performance.now() - started;
  latencies.sort((a, b) => a - b);
  return { elapsedMs, errors, errorKinds, latencies };
}

/** POSTs an order; throws what the answer was unless it is 201. */
const create = async (url: string, body: unknown): Promise<boolean> => {
  const { status } = await call(url, 'POST', '/orders', body);
  if (status !== 201) throw new Error(`HTTP ${status}`);
  return true;
};

/**
 * The store ceiling: the writes the design makes per create (group commits of `batch` conditional puts
 * plus one counter update, `inFlight` at a time), issued straight through the SDK: no HTTP, no validation.
 */
async function storeCeiling(store: Store, total: number, batch: number, inFlight: number, label: string) {
  const batches = Math.ceil(total / batch);
  const result = await load(
    batches,
    inFlight,
    async (b) => {
      const now = Date.now();
      const items = Array.from({ length: Math.min(batch, total - b * batch) }, (_, k) => {
        const o = order(b * batch + k, `ceiling-${label}`);
        return {
          Put: {
            TableName: store.tableName,
            Item: {
              pk: `ORDER#${o.order_id}`,
              sk: 'ORDER',
              _et: 'Order',
              ...o,
              status: 'PENDING',
              attempts: 0,
              created_at: new Date(now).toISOString(),
              due_shard: `WORK#${k % 4}`,
              due_at: now,
              history: [{ status: 'PENDING', at: new Date(now).toISOString(), attempt: 0 }],
            },
            ConditionExpression: 'attribute_not_exists(pk)',
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
          },
        };
      });
      await store.documentClient.send(
        new TransactWriteCommand({
          ClientRequestToken: randomUUID(),
          TransactItems: [
            ...items,
            counterUpdate(store.tableName, b % 16, { PENDING: items.length }),
          ],
        }),
      );
      return true;
    },
    `store ceiling (batches of ${batch}, ${label})`,
  );
  return { ...result, ordersPerSecond: (total / result.elapsedMs) * 1000 };
}

async function getMetrics(url: string) {
  const { status, body } = await call(url, 'GET', '/metrics');
  if (status !== 200) throw new Error(`/metrics answered ${status}`);
  return JSON.parse(body) as { total_orders: number; total_orders_processed: number; status_counts: Record<string, number> };
}

/**
 * GET /metrics latency of two apps, measured in alternating rounds so that both see the same machine and
 * the same DynamoDB Local (its state drifts: a run of calls after seeding is slower than one before it).
 */
async function metricsLatencies(urls: [string, string], calls: number) {
  const latencies: [number[], number[]] = [[], []];
  const rounds = 10;
  for (let turn = 1; turn <= rounds; turn++) {
    for (const [i, url] of urls.entries()) {
      const part = await load(Math.ceil(calls / rounds), 1, async () => (await call(url, 'GET', '/metrics')).status === 200, `GET /metrics, round ${turn} of ${rounds}`);
      latencies[i]!.push(...part.latencies);
    }
  }
  return latencies.map((list) => {
    list.sort((a, b) => a - b);
    return { p50: round(percentile(list, 0.5), 2), p99: round(percentile(list, 0.99), 2) };
  }) as [{ p50: number; p99: number }, { p50: number; p99: number }];
}

/** Seeds `count` orders through the repository, so orders and counters agree. */
async function seed(orders: OrderRepository, count: number, prefix: string) {
  const batch = 99;
  await load(
    Math.ceil(count / batch),
    8,
    async (b) => {
      const now = new Date().toISOString();
      const slice: OrderToCreate[] = Array.from({ length: Math.min(batch, count - b * batch) }, (_, k) => ({
        ...order(b * batch + k, prefix),
        created_at: now,
      }));
      const outcomes = await orders.createMany(slice);
      return outcomes.every((o) => o.ok);
    },
    `seeding ${count} orders`,
  );
}

/** Prints where the ingest app spent its CPU (the profile V8 wrote when it exited) and keeps it in the results. */
async function reportProfile(dir: string, results: Record<string, unknown>) {
  const [name] = (await readdir(dir)).filter((file) => file.endsWith('.cpuprofile'));
  if (!name) throw new Error(`no CPU profile in ${dir}`);
  const summary = await summarizeProfile(join(dir, name));
  results.ingest_profile = { file: join(dir, name), ...summary };
  const rows = (list: { name: string; ms: number; share: number }[]) =>
    list.map(({ name: what, ms, share }) => `  ${`${round(share * 100)}%`.padStart(6)} ${String(ms).padStart(7)} ms  ${what}`).join('\n');
  done(`ingest CPU profile (${summary.sampled_ms} ms sampled), written to ${join(dir, name)}\nby origin:\n${rows(summary.by_origin)}\nby function (self time):\n${rows(summary.by_function)}`);
}

async function main() {
  const results: Record<string, unknown> = {};
  const targets: { name: string; value: number; target: string; pass: boolean }[] = [];
  const dataDir = await mkdtemp(join(tmpdir(), 'order-bench-'));
  let dynamodb: DynamoDBLocal | undefined;
  const apps: App[] = [];
  try {
    if (phases.has('startup')) {
      // 6. Start-up, first, on a cold machine state: the app starts its own DynamoDB Local.
      progress('start-up: spawning the standalone app with its own DynamoDB Local');
      const cold = await startApp({ DATA_DIR: join(dataDir, 'startup'), DYNAMODB_ENDPOINT: '' });
      results.startup_ms = Math.round(cold.startedMs);
      await cold.stop();
      done(`start-up: /health 200 after ${results.startup_ms} ms (DynamoDB Local started by the app)`);
    }

    dynamodb = await startDynamoDBLocal({ dataDir: join(dataDir, 'dynamodb'), port: await freePort() });
    const endpoint = dynamodb.endpoint;
    const storeOf = async (table: string) => {
      const store = createStore(createDocumentClient({ tableName: table, region: 'us-east-1', endpoint }), table);
      await ensureTable(store);
      return store;
    };

    if (phases.has('ingest')) {
      // 1 and 2. The store ceiling and the ingest over HTTP, in alternating rounds so that both see the same
      // machine and the same DynamoDB Local (measured one after the other, the ratio swung from 0.74 to 1.0),
      // after warm-ups so the JVM's compiler has done its work for both. The app's workers are kept idle
      // (a long simulated delay) so they do not compete for the store.
      const ingestTable = 'bench-ingest';
      const ingestStore = await storeOf(ingestTable);
      const profileDir = join('bench-results', 'profiles', STAMP);
      const ingestApp = await startApp(
        { DYNAMODB_ENDPOINT: endpoint, TABLE_NAME: ingestTable, PROCESSING_MIN_MS: '600000', PROCESSING_MAX_MS: '600000', LEASE_MS: '700000' },
        profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
      );
      apps.push(ingestApp);
      const { CREATE_BATCH_MAX: batch, CREATE_MAX_IN_FLIGHT: inFlight } = defaults;
      await storeCeiling(ingestStore, Math.min(5_000, COUNTS.ingest), batch, inFlight, 'warm-up');
      await load(Math.min(2_000, COUNTS.ingest), COUNTS.clients, async (i) => (await call(ingestApp.url, 'POST', '/orders', order(i, 'warm'))).status === 201, 'ingest warm-up');
      const perRound = Math.ceil(COUNTS.ingest / INGEST_ROUNDS);
      const ceiling = { elapsedMs: 0, errors: 0, errorKinds: {} as Record<string, number>, latencies: [] as number[] };
      const ingest = { elapsedMs: 0, errors: 0, errorKinds: {} as Record<string, number>, latencies: [] as number[] };
      for (let turn = 1; turn <= INGEST_ROUNDS; turn++) {
        const store = await storeCeiling(ingestStore, perRound, batch, inFlight, `round ${turn} of ${INGEST_ROUNDS}`);
        freshConnections();
        const http = await load(perRound, COUNTS.clients, (i) => create(ingestApp.url, order(i, `ingest-${turn}`)), `ingest (${COUNTS.clients} clients), round ${turn} of ${INGEST_ROUNDS}`);
        for (const [total, part] of [[ceiling, store], [ingest, http]] as const) {
          total.elapsedMs += part.elapsedMs;
          total.errors += part.errors;
          total.latencies.push(...part.latencies);
          for (const [kind, count] of Object.entries(part.errorKinds)) total.errorKinds[kind] = (total.errorKinds[kind] ?? 0) + count;
        }
      }
      await ingestApp.stop();
      const single = await storeCeiling(ingestStore, Math.min(2_000, COUNTS.ingest), 1, COUNTS.clients, 'one transaction per order');
      const ceilingPerSecond = ((perRound * INGEST_ROUNDS) / ceiling.elapsedMs) * 1000;
      const ingestPerSecond = ((perRound * INGEST_ROUNDS - ingest.errors) / ingest.elapsedMs) * 1000;
      for (const list of [ceiling.latencies, ingest.latencies]) list.sort((a, b) => a - b);
      results.store_ceiling_orders_per_s = Math.round(ceilingPerSecond);
      results.store_one_transaction_per_order_per_s = Math.round(single.ordersPerSecond);
      results.store_commit_ms = { p50: round(percentile(ceiling.latencies, 0.5)), p99: round(percentile(ceiling.latencies, 0.99)) };
      done(
        `store ceiling: ${results.store_ceiling_orders_per_s} orders/s in group commits, each commit p50 ${round(percentile(ceiling.latencies, 0.5))} / p99 ${round(percentile(ceiling.latencies, 0.99))} ms (${results.store_one_transaction_per_order_per_s}/s with one transaction per order)`,
      );
      results.ingest = {
        orders: perRound * INGEST_ROUNDS,
        rounds: INGEST_ROUNDS,
        clients: COUNTS.clients,
        accepted_per_s: Math.round(ingestPerSecond),
        p50_ms: round(percentile(ingest.latencies, 0.5)),
        p95_ms: round(percentile(ingest.latencies, 0.95)),
        p99_ms: round(percentile(ingest.latencies, 0.99)),
        errors: ingest.errors,
        ...(ingest.errors > 0 && { errors_by_kind: ingest.errorKinds }),
        // Little's law: with every client always waiting on one order, the mean latency at this rate is
        // clients / rate whatever each layer costs; only a faster store lowers it, the spread above it is ours.
        closed_loop_mean_ms: Math.round((COUNTS.clients / ingestPerSecond) * 1000),
      };
      const efficiency = ingestPerSecond / ceilingPerSecond;
      results.ingest_efficiency = round(efficiency, 3);
      targets.push({ name: 'ingest_efficiency', value: round(efficiency, 3), target: '>= 0.8', pass: efficiency >= 0.8 });
      targets.push({ name: 'ingest_errors', value: ingest.errors, target: '= 0', pass: ingest.errors === 0 });
      done(`ingest: ${results.ingest_efficiency} of the ceiling, ${JSON.stringify(results.ingest)}`);
      if (profile) await reportProfile(profileDir, results);
    }

    if (phases.has('drain')) {
      // 3. Drain with the default delay and concurrency.
      const drainApp = await startApp({ DYNAMODB_ENDPOINT: endpoint, TABLE_NAME: 'bench-drain', PROCESSING_CONCURRENCY: String(CONCURRENCY), PROCESSING_MIN_MS: String(COUNTS.drainMinMs), PROCESSING_MAX_MS: String(COUNTS.drainMaxMs) });
      apps.push(drainApp);
      const drainStart = performance.now();
      await load(COUNTS.drain, COUNTS.clients, async (i) => (await call(drainApp.url, 'POST', '/orders', order(i, 'drain'))).status === 201, 'drain: creating');
      for (;;) {
        const metrics = await getMetrics(drainApp.url);
        progress(`drain: ${metrics.total_orders_processed}/${COUNTS.drain} completed`);
        if (metrics.total_orders_processed >= COUNTS.drain) break;
        await sleep(100);
      }
      const drainMs = performance.now() - drainStart;
      await drainApp.stop();
      const idealMs = Math.ceil(COUNTS.drain / CONCURRENCY) * ((COUNTS.drainMinMs + COUNTS.drainMaxMs) / 2);
      results.drain = { orders: COUNTS.drain, concurrency: CONCURRENCY, delay_ms: [COUNTS.drainMinMs, COUNTS.drainMaxMs], elapsed_ms: Math.round(drainMs), ideal_ms: idealMs };
      results.drain_ratio = round(drainMs / idealMs, 3);
      targets.push({ name: 'drain_ratio', value: round(drainMs / idealMs, 3), target: '<= 1.2', pass: drainMs / idealMs <= 1.2 });
      done(`drain: ${COUNTS.drain} orders in ${Math.round(drainMs)} ms, ideal ${idealMs} ms, ratio ${results.drain_ratio}`);
    }

    if (phases.has('scale')) {
      // 4. Metrics at scale: the same reads from a table of 1 000 orders and one of 100 000, side by side.
      await seed(new OrderRepository(await storeOf('bench-scale-small')), COUNTS.scaleSmall, 'scale');
      await seed(new OrderRepository(await storeOf('bench-scale')), COUNTS.scaleLarge, 'scale');
      const idle = (table: string) =>
        startApp({ DYNAMODB_ENDPOINT: endpoint, TABLE_NAME: table, PROCESSING_MIN_MS: '600000', PROCESSING_MAX_MS: '600000', LEASE_MS: '700000', QUEUE_CAPACITY: '1' });
      const scaleApps = [await idle('bench-scale-small'), await idle('bench-scale')] as const;
      apps.push(...scaleApps);
      const urls: [string, string] = [scaleApps[0].url, scaleApps[1].url];
      await metricsLatencies(urls, 100);
      const [small, large] = await metricsLatencies(urls, COUNTS.metricsCalls);
      const counted = (await getMetrics(scaleApps[1].url)).total_orders;
      await Promise.all(scaleApps.map((app) => app.stop()));
      results.metrics = { [`orders_${COUNTS.scaleSmall}`]: small, [`orders_${COUNTS.scaleLarge}`]: large, total_orders_reported: counted };
      const scaling = large.p99 / small.p99;
      results.metrics_scaling = round(scaling, 3);
      targets.push({ name: 'metrics_scaling', value: round(scaling, 3), target: '<= 1.5', pass: scaling <= 1.5 });
      done(`metrics: p99 ${small.p99} ms at ${COUNTS.scaleSmall} orders, ${large.p99} ms at ${COUNTS.scaleLarge} (reported total ${counted})`);

      // 5. Memory with the large backlog (all PENDING) and the default queue capacity, draining fast.
      const backlogApp = await startApp({ DYNAMODB_ENDPOINT: endpoint, TABLE_NAME: 'bench-scale', PROCESSING_MIN_MS: '1', PROCESSING_MAX_MS: '5' });
      apps.push(backlogApp);
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
      targets.push({ name: 'peak_rss_mb', value: round(peak), target: '<= 256', pass: peak <= 256 });
      done(`memory: peak RSS ${round(peak)} MB with a ${COUNTS.scaleLarge}-order backlog (${processed} processed in ${COUNTS.backlogSeconds} s)`);
    }
  } finally {
    await Promise.all(apps.map((app) => (app.child.exitCode === null ? app.stop() : undefined)));
    await dynamodb?.stop();
    await rm(dataDir, { recursive: true, force: true });
    agent.destroy();
  }

  const report = { generated_at: new Date().toISOString(), quick, phases: [...phases], profile, machine: { cpus: cpus().length, node: process.version }, results, targets };
  await mkdir('bench-results', { recursive: true });
  const file = join('bench-results', `bench-${STAMP}${quick ? '-quick' : ''}.json`);
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(join('bench-results', 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);

  console.log(`\n${'target'.padEnd(20)} ${'value'.padStart(10)}  ${'goal'.padEnd(8)} result`);
  for (const t of targets) console.log(`${t.name.padEnd(20)} ${String(t.value).padStart(10)}  ${t.target.padEnd(8)} ${quick ? 'indicative (quick)' : t.pass ? 'pass' : 'FAIL'}`);
  if (results.ingest) console.log(`\ningest ${JSON.stringify(results.ingest)}`);
  if (results.startup_ms) console.log(`start-up ${results.startup_ms} ms`);
  console.log(`written to ${file}${quick ? ' (quick mode: small counts, figures are indicative only)' : ''}`);
}

await main();
