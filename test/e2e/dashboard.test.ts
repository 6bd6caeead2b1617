import { access, mkdir, readFile } from 'node:fs/promises';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../../lib/auth.ts';
import type { Metrics } from '../../lib/metrics.ts';
import { dynamodbEndpoint, pollUntil, startService, uniqueTable, validOrder, type RunningService } from '../support.ts';

// The dashboard and the reference page in a real browser (Debian's chromium, driven by playwright-core)
// against the standalone service: what they show must be what the API says.

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = 'test-artifacts';
const USER = 'DASH-USER';
const ORDERS = 60;
/** The dashboard's own rate window: orders per second over the samples of the last 10 s. */
const RATE_WINDOW_MS = 10_000;

let service: RunningService;
let browser: Browser;
let page: Page;
/** Every /metrics body the page received, in order. */
const samples: Metrics[] = [];
const foreignRequests: string[] = [];
const pageErrors: string[] = [];
const created: string[] = [];

const api = async <T>(path: string): Promise<T> => {
  const response = await fetch(`${service.url}${path}`);
  expect(response.status).toBe(200);
  return (await response.json()) as T;
};

interface Shown {
  metrics: Record<string, { text: string; value: string }>;
  rates: Record<string, { text: string; value: string }>;
  /** The orders in each bar of the histogram. */
  bars: number[];
  /** Lines drawn in the throughput chart. */
  lines: number;
}

/** What the dashboard shows, read in one go once it has drawn the /metrics body generated at `generatedAt`. */
const shownFor = async (generatedAt: string, timeout: number): Promise<Shown> => {
  const handle = await page.waitForFunction(
    (at) => {
      // Runs in the page (this project type-checks without the DOM library).
      const { document } = globalThis as any;
      if (document.body.dataset.generatedAt !== at) return false;
      const read = (selector: string) =>
        Object.fromEntries(
          [...document.querySelectorAll(selector)].map((element: any) => [
            element.dataset.metric ?? element.dataset.rate,
            { text: element.textContent ?? '', value: element.dataset.value ?? '' },
          ]),
        );
      const bars = [...document.querySelectorAll('#histogram rect.bar')].map((bar: any) => Number(bar.getAttribute('data-count')));
      return { metrics: read('[data-metric]'), rates: read('[data-rate]'), bars, lines: document.querySelectorAll('#throughput polyline').length };
    },
    generatedAt,
    { timeout },
  );
  return (await handle.jsonValue()) as Shown;
};

/**
 * The next /metrics body the page receives that `accept`s, with what the page drew from it. The page
 * draws the next sample a second later, so a sample it has already replaced is skipped for a later one.
 */
const nextShown = async (accept: (metrics: Metrics) => boolean, what: string): Promise<{ metrics: Metrics; shown: Shown }> => {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const response = await page.waitForResponse((r) => new URL(r.url()).pathname === '/metrics' && r.status() === 200, { timeout: 10_000 });
    const metrics = (await response.json()) as Metrics;
    if (!accept(metrics)) continue;
    const shown = await shownFor(metrics.generated_at, 800).catch(() => undefined);
    if (shown) return { metrics, shown };
  }
  throw new Error(`Timed out waiting for the dashboard to show ${what}`);
};

const pick = (metrics: Metrics, path: string): unknown => path.split('.').reduce<any>((node, key) => node?.[key], metrics);

/** The number a card shows, as text: `1,203.4 ms` -> 1203.4; `–` -> null. */
const parseShown = (text: string): number | null => (text === '–' ? null : Number(text.replace(/[^\d.-]/g, '')));

/** Every number of `metrics` the dashboard shows, and the value it shows for each. */
const expectShown = (shown: Shown, metrics: Metrics) => {
  const names = Object.keys(shown.metrics);
  expect(names.sort()).toEqual(
    [
      'total_orders',
      'status_counts.PENDING',
      'status_counts.PROCESSING',
      'status_counts.COMPLETED',
      'status_counts.FAILED',
      'quarantined',
      'average_processing_time_ms',
      'average_turnaround_time_ms',
      'processing_time_ms.p50',
      'processing_time_ms.p95',
      'processing_time_ms.p99',
    ].sort(),
  );
  for (const name of names) {
    const expected = pick(metrics, name) as number | null;
    expect(parseShown(shown.metrics[name]!.text), name).toBe(expected === null ? null : Math.round(expected * 10) / 10);
    expect(shown.metrics[name]!.value, name).toBe(expected === null ? '' : String(expected));
  }
  // The chart re-bins the histogram: every completed order is in exactly one bar.
  expect(shown.bars.reduce((sum, count) => sum + count, 0)).toBe(metrics.processing_time_histogram.reduce((sum, b) => sum + b.count, 0));
};

/** The rate the dashboard should show at sample `index`: the same definition, from the samples the page saw. */
const expectedRate = (index: number, field: 'total_orders' | 'total_orders_processed'): number | null => {
  const last = samples[index]!;
  const at = (sample: Metrics) => Date.parse(sample.generated_at);
  const first = samples.slice(0, index + 1).find((sample) => at(sample) >= at(last) - RATE_WINDOW_MS);
  if (!first || first === last) return null;
  return (last[field] - first[field]) / ((at(last) - at(first)) / 1_000);
};

beforeAll(async () => {
  await access(CHROMIUM).catch(() => {
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (bash .ci/run does it)`);
  });
  await mkdir(ARTIFACTS, { recursive: true });
  service = await startService(
    'start:standalone',
    {
      PORT: '0',
      DYNAMODB_ENDPOINT: dynamodbEndpoint(),
      TABLE_NAME: uniqueTable('dashboard'),
      // Slow enough that the queue is visibly deep for a few seconds.
      PROCESSING_MIN_MS: '200',
      PROCESSING_MAX_MS: '900',
      PROCESSING_CONCURRENCY: '6',
    },
    { timeoutMs: 90_000 },
  );
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const origin = new URL(service.url).origin;
  page.on('request', (request) => {
    if (!request.url().startsWith(origin) && !request.url().startsWith('data:')) foreignRequests.push(request.url());
  });
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('response', async (response) => {
    if (new URL(response.url()).pathname !== '/metrics' || response.status() !== 200) return;
    // A poll answered as the page navigates (to /docs) has no body left to read; the samples
    // only matter while the dashboard is shown, where a missing one fails the poll that waits for it.
    const metrics = await response.json().catch(() => undefined);
    if (metrics !== undefined) samples.push(metrics as Metrics);
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await service?.stop();
}, 60_000);

describe('the dashboard at /', () => {
  it('shows exactly what /metrics says while orders are queued and processed', async () => {
    await page.goto(`${service.url}/`);
    await page.waitForFunction(() => (globalThis as any).document.body.dataset.generatedAt !== undefined);
    // A few samples before the burst, so the rates have a baseline.
    await pollUntil(() => (samples.length >= 3 ? true : undefined), { what: 'three samples' });

    const answers = await Promise.all(
      Array.from({ length: ORDERS }, async (_, i) => {
        const response = await fetch(`${service.url}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(validOrder({ user_id: USER, total_amount: i })),
        });
        return (await response.json()) as { order_id: string };
      }),
    );
    created.push(...answers.map((answer) => answer.order_id));

    // A sample taken while the queue was deep, and what the page drew from it.
    const { metrics: busy, shown } = await nextShown(
      (metrics) => metrics.status_counts.PENDING > 0 && metrics.total_orders === ORDERS,
      'a sample with PENDING orders',
    );
    expectShown(shown, busy);
    const index = await pollUntil(() => {
      const found = samples.findIndex((sample) => sample.generated_at === busy.generated_at);
      return found < 0 ? undefined : found;
    }, { what: 'the sample to be recorded' });
    for (const [name, field] of [
      ['created', 'total_orders'],
      ['completed', 'total_orders_processed'],
    ] as const) {
      const rate = expectedRate(index, field);
      expect(rate, name).not.toBeNull();
      expect(Number(shown.rates[name]!.value), name).toBeCloseTo(rate!, 6);
      expect(parseShown(shown.rates[name]!.text), name).toBe(Math.round(rate! * 10) / 10);
    }
    expect(Number(shown.rates.created!.value)).toBeGreaterThan(0);
    expect(shown.lines).toBe(2);
    await page.screenshot({ path: `${ARTIFACTS}/dashboard-busy.png`, fullPage: true });
  });

  it('shows the final counts, averages, percentiles and histogram once every order has completed', async () => {
    await pollUntil(async () => ((await api<Metrics>('/metrics')).total_orders_processed === ORDERS ? true : undefined), {
      timeoutMs: 60_000,
      what: `${ORDERS} orders to complete`,
    });
    const metrics = await api<Metrics>('/metrics');
    const { shown } = await nextShown((sample) => sample.total_orders_processed === ORDERS, 'the final metrics');
    expectShown(shown, metrics);
    expect(shown.metrics['status_counts.COMPLETED']!.text).toBe(String(ORDERS));
    expect(shown.metrics['status_counts.PENDING']!.text).toBe('0');
    expect(shown.bars.reduce((sum, count) => sum + count, 0)).toBe(ORDERS);
  });

  it('looks an order up by id, and says when there is none', async () => {
    await page.fill('#order-id', 'NO-SUCH-ORDER');
    await page.click('#lookup button[type=submit]');
    await page.waitForSelector('#lookup-result .error');
    expect(await page.textContent('#lookup-result')).toBe('No order has the id NO-SUCH-ORDER');

    const orderId = created[0]!;
    const order = await api<Record<string, unknown>>(`/orders/${orderId}`);
    await page.fill('#order-id', orderId);
    await page.click('#lookup button[type=submit]');
    await page.waitForSelector('#lookup-result dd[data-field="Order id"]');
    const fields = await page.$$eval('#lookup-result dd', (details) =>
      Object.fromEntries(details.map((detail: any) => [detail.dataset.field, detail.textContent])),
    );
    expect(fields).toMatchObject({
      'Order id': orderId,
      Status: 'COMPLETED',
      User: USER,
      Attempts: '1',
      Created: order.created_at,
      Started: order.started_at,
      Completed: order.completed_at,
    });
    expect(parseShown(fields['Processing time']!)).toBe(order.processing_ms);
  });

  it("lists a user's orders newest first through GET /orders, ten at a time", async () => {
    const first = await api<{ items: { order_id: string }[]; next_cursor: string | null }>(`/orders?user_id=${USER}&limit=10`);

    await page.fill('#user-id', USER);
    await page.click('#user-orders button[type=submit]');
    await page.waitForSelector('#user-result table');
    const ids = await page.$$eval('#user-result td:first-child a', (links) => links.map((link) => link.textContent));
    expect(ids).toEqual(first.items.map((order) => order.order_id));
    expect(await page.isVisible('#user-result button')).toBe(true);
    await page.screenshot({ path: `${ARTIFACTS}/dashboard.png`, fullPage: true });
  });

  it('loads nothing from another origin and raises no script error', () => {
    expect(foreignRequests).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});

describe('the pages of a service with API keys', () => {
  it('ask for a key, keep it for the tab only, and show the metrics and the reference with it', async () => {
    const key = 'op_dashboard-test-key';
    const secured = await startService(
      'start:standalone',
      { PORT: '0', DYNAMODB_ENDPOINT: dynamodbEndpoint(), TABLE_NAME: uniqueTable('dashkeys'), API_KEYS: `ops:metrics:read+orders:read:${hashKey(key).toString('hex')}` },
      { timeoutMs: 90_000 },
    );
    const context = await browser.newContext();
    try {
      const tab = await context.newPage();
      await tab.goto(`${secured.url}/`);
      await tab.waitForSelector('#key-form:not([hidden])');
      expect(await tab.textContent('#live')).toBe('Send an API key as Authorization: Bearer <key> (or x-api-key)');

      await tab.fill('#api-key', 'op_wrong');
      await tab.click('#key-form button');
      await tab.waitForFunction(() => (globalThis as any).document.querySelector('#live').textContent === 'The API key is not valid');

      const sent = tab.waitForRequest((request) => new URL(request.url()).pathname === '/metrics' && request.headers().authorization === `Bearer ${key}`);
      await tab.fill('#api-key', key);
      await tab.click('#key-form button');
      await sent;
      await tab.waitForSelector('#key-form[hidden]', { state: 'attached' });
      await tab.waitForFunction(() => (globalThis as any).document.querySelector('[data-metric="total_orders"]').textContent === '0');
      expect(await tab.evaluate((storageKey) => (globalThis as any).sessionStorage.getItem(storageKey), 'order-dashboard.api-key')).toBe(key);
      expect(await tab.evaluate(() => (globalThis as any).localStorage.length)).toBe(0);

      // The reference, in the same tab, reads /openapi.json with the key the tab keeps.
      const read = tab.waitForRequest((request) => new URL(request.url()).pathname === '/openapi.json' && request.headers().authorization === `Bearer ${key}`);
      await tab.click('nav a[href="/docs"]');
      await read;
      await tab.waitForSelector('#op-createOrder');
      expect(await tab.isHidden('#key-form')).toBe(true);

      // A plain link cannot send the key: the OpenAPI link fetches the document with it and saves it.
      const saved = tab.waitForEvent('download');
      await tab.click('header nav a[href="/openapi.json"]');
      const download = await saved;
      expect(download.suggestedFilename()).toBe('openapi.json');
      const expected = await fetch(`${secured.url}/openapi.json`, { headers: { authorization: `Bearer ${key}` } });
      expect(JSON.parse(await readFile((await download.path())!, 'utf8'))).toEqual(await expected.json());

      // A new tab has no key: the reference asks for one, and shows nothing until it is given.
      const fresh = await (await browser.newContext()).newPage();
      await fresh.goto(`${secured.url}/docs`);
      await fresh.waitForSelector('#key-form:not([hidden])');
      expect(await fresh.textContent('#live')).toBe('Send an API key as Authorization: Bearer <key> (or x-api-key)');
      expect(await fresh.locator('#reference section').count()).toBe(0);
      // Its OpenAPI link, refused too, points at the key field instead of leaving for a 401.
      await fresh.click('header nav a[href="/openapi.json"]');
      await fresh.waitForFunction(() => (globalThis as any).document.activeElement?.id === 'api-key');
      expect(fresh.url()).toBe(`${secured.url}/docs`);
      await fresh.fill('#api-key', key);
      await fresh.click('#key-form button');
      await fresh.waitForSelector('#op-createOrder');
      expect(await fresh.textContent('#live')).toMatch(/^OpenAPI 3\.1\.\d+ · v/);
      await fresh.context().close();
    } finally {
      await context.close();
      await secured.stop();
    }
  });
});

describe('the API reference at /docs', () => {
  it('lists every operation of the OpenAPI document, each linked to its section', async () => {
    const document = await api<{ paths: Record<string, Record<string, { operationId: string }>> }>('/openapi.json');
    await page.goto(`${service.url}/docs`);

    for (const [path, operations] of Object.entries(document.paths)) {
      for (const [method, { operationId }] of Object.entries(operations)) {
        const link = page.locator(`.docs > nav a[href="#op-${operationId}"]`);
        expect(await link.textContent()).toBe(`${method.toUpperCase()} ${path}`);
        expect(await page.locator(`#op-${operationId} h3 code`).textContent()).toBe(path);
      }
    }
    await page.click('.docs > nav a[href="#op-listOrders"]');
    expect(await page.isVisible('#op-listOrders')).toBe(true);
    await page.screenshot({ path: `${ARTIFACTS}/docs.png` });
    expect(foreignRequests).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
