// The live dashboard: polls GET /metrics every second and draws what it reads. Rates are computed here,
// from successive samples; everything else is shown as the service reports it. Values that come from the
// API are only ever set as text, never as markup. When the service asks for an API key, the person enters
// one (apiKey.js).

import { api, onKey, refusal, showStatus } from './apiKey.js';

const REFRESH_MS = 1_000;
const HISTORY_MS = 5 * 60_000;
const RATE_WINDOW_MS = 10_000;
const HISTOGRAM_BINS = 30;
const FINAL = new Set(['COMPLETED', 'FAILED']);
const STATUSES = ['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED'];
const SVG = 'http://www.w3.org/2000/svg';

const numberFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

/** @type {{ t: number, created: number, completed: number }[]} */
let samples = [];
/** The order the lookup shows, refreshed until it is final. */
let watched;
let refreshTimer;

const $ = (selector) => document.querySelector(selector);

const format = (value, unit) =>
  value === null || value === undefined || Number.isNaN(value) ? '–' : `${numberFormat.format(value)}${unit ? ` ${unit}` : ''}`;

const pick = (object, path) => path.split('.').reduce((node, key) => (node == null ? undefined : node[key]), object);

const svgElement = (name, attributes = {}, text) => {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
};

/** Clears an SVG chart and sizes its coordinate system to the space it has. */
const resetChart = (svg) => {
  svg.replaceChildren();
  const width = Math.max(320, Math.round(svg.clientWidth || 600));
  const height = Math.max(160, Math.round(svg.clientHeight || 220));
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  return { width, height, left: 44, right: 12, top: 12, bottom: 24 };
};

/** Keeps the counts of each sample; a service that starts over (fewer orders than before) starts the series over. */
const record = (metrics) => {
  const sample = { t: Date.parse(metrics.generated_at), created: metrics.total_orders, completed: metrics.total_orders_processed };
  const last = samples.at(-1);
  if (last && (sample.created < last.created || sample.t < last.t)) samples = [];
  if (last && sample.t === last.t) return;
  samples.push(sample);
  while (samples.length > 2 && samples[0].t < sample.t - HISTORY_MS) samples.shift();
};

/** Per second over the last RATE_WINDOW_MS of samples; null until there are two. */
const rate = (field) => {
  const last = samples.at(-1);
  const first = last && samples.find((sample) => sample.t >= last.t - RATE_WINDOW_MS);
  if (!last || !first || first === last) return null;
  return (last[field] - first[field]) / ((last.t - first.t) / 1_000);
};

const renderNumbers = (metrics) => {
  for (const element of document.querySelectorAll('[data-metric]')) {
    const value = pick(metrics, element.dataset.metric);
    element.textContent = format(value, element.dataset.unit);
    element.dataset.value = value ?? '';
  }
  for (const element of document.querySelectorAll('[data-rate]')) {
    const value = rate(element.dataset.rate);
    element.textContent = format(value);
    element.dataset.value = value ?? '';
  }
  const bar = $('#statusbar');
  bar.replaceChildren(
    ...STATUSES.map((status) => {
      const part = document.createElement('span');
      part.dataset.status = status;
      part.style.flexGrow = String(metrics.status_counts[status]);
      part.title = `${status}: ${metrics.status_counts[status]}`;
      return part;
    }),
  );
};

const renderThroughput = () => {
  const svg = $('#throughput');
  const box = resetChart(svg);
  const last = samples.at(-1);
  if (!last) return;
  const points = samples.slice(1).map((sample, i) => {
    const previous = samples[i];
    const seconds = (sample.t - previous.t) / 1_000;
    return { t: sample.t, created: (sample.created - previous.created) / seconds, completed: (sample.completed - previous.completed) / seconds };
  });
  const top = Math.max(1, ...points.map((p) => Math.max(p.created, p.completed))) * 1.1;
  const x = (t) => box.left + ((t - (last.t - HISTORY_MS)) / HISTORY_MS) * (box.width - box.left - box.right);
  const y = (value) => box.height - box.bottom - (value / top) * (box.height - box.top - box.bottom);
  for (const value of [0, top / 2, top]) {
    svg.append(svgElement('line', { class: 'axis', x1: box.left, x2: box.width - box.right, y1: y(value), y2: y(value) }));
    svg.append(svgElement('text', { x: box.left - 6, y: y(value) + 4, 'text-anchor': 'end' }, format(value)));
  }
  for (let minutes = 5; minutes >= 0; minutes--) {
    svg.append(
      svgElement('text', { x: x(last.t - minutes * 60_000), y: box.height - 6, 'text-anchor': 'middle' }, minutes ? `-${minutes}m` : 'now'),
    );
  }
  for (const field of ['created', 'completed']) {
    const path = points.map((p) => `${x(p.t).toFixed(1)},${y(p[field]).toFixed(1)}`).join(' ');
    if (points.length > 0) svg.append(svgElement('polyline', { class: `line ${field}`, points: path }));
  }
};

const renderHistogram = (metrics) => {
  const svg = $('#histogram');
  const box = resetChart(svg);
  const buckets = metrics.processing_time_histogram ?? [];
  const total = buckets.reduce((sum, bucket) => sum + bucket.count, 0);
  svg.dataset.total = String(total);
  if (buckets.length === 0) {
    svg.append(svgElement('text', { x: box.width / 2, y: box.height / 2, 'text-anchor': 'middle', class: 'empty' }, 'no completed orders yet'));
    return;
  }
  // The service's buckets are log-linear and fine; the chart re-bins them into equal widths.
  const low = buckets[0].ge_ms;
  const high = Math.max(low + 1, buckets.at(-1).ge_ms * 1.01 + 1);
  const width = (high - low) / HISTOGRAM_BINS;
  const bins = Array.from({ length: HISTOGRAM_BINS }, () => 0);
  for (const bucket of buckets) bins[Math.min(HISTOGRAM_BINS - 1, Math.floor((bucket.ge_ms - low) / width))] += bucket.count;
  const tallest = Math.max(...bins);
  const plotWidth = box.width - box.left - box.right;
  const x = (ms) => box.left + ((ms - low) / (high - low)) * plotWidth;
  const y = (count) => box.height - box.bottom - (count / tallest) * (box.height - box.top - box.bottom);
  svg.append(svgElement('line', { class: 'axis', x1: box.left, x2: box.width - box.right, y1: y(0), y2: y(0) }));
  svg.append(svgElement('text', { x: box.left - 6, y: y(tallest) + 4, 'text-anchor': 'end' }, format(tallest)));
  svg.append(svgElement('text', { x: box.left - 6, y: y(0) + 4, 'text-anchor': 'end' }, '0'));
  bins.forEach((count, i) => {
    if (count === 0) return;
    const from = low + i * width;
    const bar = svgElement('rect', {
      class: 'bar',
      x: x(from) + 0.5,
      y: y(count),
      width: Math.max(1, plotWidth / HISTOGRAM_BINS - 1),
      height: y(0) - y(count),
      'data-count': count,
    });
    bar.append(svgElement('title', {}, `${format(from)}-${format(from + width)} ms: ${count} orders`));
    svg.append(bar);
  });
  for (const [ms, anchor] of [
    [low, 'start'],
    [(low + high) / 2, 'middle'],
    [high, 'end'],
  ]) {
    svg.append(svgElement('text', { x: x(ms), y: box.height - 6, 'text-anchor': anchor }, `${format(ms)} ms`));
  }
  for (const [name, ms] of Object.entries(metrics.processing_time_ms)) {
    if (ms === null) continue;
    svg.append(svgElement('line', { class: `marker ${name}`, x1: x(ms), x2: x(ms), y1: box.top, y2: y(0) }));
    const nearRight = x(ms) > box.width - box.right - 30;
    svg.append(
      svgElement('text', { x: x(ms) + (nearRight ? -3 : 3), y: box.top + 10 + 12 * ['p50', 'p95', 'p99'].indexOf(name), 'text-anchor': nearRight ? 'end' : 'start' }, name),
    );
  }
};

const showOrder = (order) => {
  const rows = [
    ['Order id', order.order_id],
    ['Status', order.status],
    ['User', order.user_id],
    ['Items', order.item_ids.join(', ')],
    ['Total amount', format(order.total_amount)],
    ['Attempts', String(order.attempts)],
    ['Created', order.created_at],
    ['Started', order.started_at],
    ['Completed', order.completed_at],
    ['Processing time', order.processing_ms === undefined ? undefined : format(order.processing_ms, 'ms')],
    ['Failed', order.failed_at],
    ['Error', order.error],
  ];
  const list = document.createElement('dl');
  for (const [label, value] of rows) {
    if (value === undefined) continue;
    const term = document.createElement('dt');
    term.textContent = label;
    const detail = document.createElement('dd');
    if (label === 'Status') detail.append(badge(value));
    else detail.textContent = value;
    detail.dataset.field = label;
    list.append(term, detail);
  }
  $('#lookup-result').replaceChildren(list);
};

const showError = (target, text) => {
  const message = document.createElement('p');
  message.className = 'error';
  message.textContent = text;
  $(target).replaceChildren(message);
};

const showLookupError = (text) => showError('#lookup-result', text);

const badge = (status) => {
  const element = document.createElement('span');
  element.className = 'badge';
  element.dataset.status = status;
  element.textContent = status;
  return element;
};

const cell = (...content) => {
  const element = document.createElement('td');
  element.append(...content);
  return element;
};

/** One page of GET /orders for a user; "Older" follows next_cursor. */
const listUserOrders = async (userId, cursor) => {
  const query = new URLSearchParams({ user_id: userId, limit: '10', ...(cursor && { cursor }) });
  try {
    const response = await api(`/orders?${query}`);
    const body = await response.json();
    if (!response.ok) return showError('#user-result', body.errors?.map((e) => `${e.field} ${e.message}`).join('; ') ?? body.detail);
    if (body.items.length === 0) return showError('#user-result', `No orders for ${userId}`);
    const table = document.createElement('table');
    table.className = 'fields';
    const head = document.createElement('tr');
    for (const title of ['Order', 'Status', 'Created (UTC)', 'Total']) head.append(Object.assign(document.createElement('th'), { textContent: title }));
    table.append(head);
    for (const order of body.items) {
      const open = Object.assign(document.createElement('a'), { href: '#', textContent: order.order_id });
      open.addEventListener('click', (event) => {
        event.preventDefault();
        $('#order-id').value = order.order_id;
        watched = order.order_id;
        void lookUp(order.order_id);
      });
      const row = document.createElement('tr');
      const created = Object.assign(document.createElement('time'), { dateTime: order.created_at, title: order.created_at });
      created.textContent = order.created_at.slice(11, 19);
      row.append(cell(open), cell(badge(order.status)), cell(created), cell(format(order.total_amount)));
      table.append(row);
    }
    const parts = [table];
    if (body.next_cursor) {
      const older = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Older' });
      older.addEventListener('click', () => void listUserOrders(userId, body.next_cursor));
      parts.push(older);
    }
    $('#user-result').replaceChildren(...parts);
  } catch (error) {
    showError('#user-result', `Could not list the orders: ${error.message}`);
  }
};

const lookUp = async (orderId) => {
  try {
    const response = await api(`/orders/${encodeURIComponent(orderId)}`);
    const body = await response.json();
    if (watched !== orderId) return;
    if (!response.ok) {
      watched = undefined;
      showLookupError(body.detail ?? `HTTP ${response.status}`);
      return;
    }
    showOrder(body);
    if (FINAL.has(body.status)) watched = undefined;
  } catch (error) {
    showLookupError(`Could not look the order up: ${error.message}`);
  }
};

let refreshing = false;

/** One refresh at a time, then the next in REFRESH_MS; a refresh asked for during one is that one. */
const refresh = async () => {
  if (refreshing) return;
  refreshing = true;
  try {
    const response = await api('/metrics');
    const refused = await refusal(response);
    if (refused) {
      showStatus('error', refused);
      return;
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const metrics = await response.json();
    record(metrics);
    renderNumbers(metrics);
    renderThroughput();
    renderHistogram(metrics);
    document.body.dataset.generatedAt = metrics.generated_at;
    showStatus('live', `live · ${new Date(metrics.generated_at).toLocaleTimeString()}`);
    if (watched) await lookUp(watched);
  } catch (error) {
    showStatus('error', `cannot read /metrics (${error.message}), retrying`);
  } finally {
    refreshing = false;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, REFRESH_MS);
  }
};

onKey(refresh);

$('#lookup').addEventListener('submit', (event) => {
  event.preventDefault();
  const orderId = $('#order-id').value.trim();
  if (!orderId) return;
  watched = orderId;
  void lookUp(orderId);
});

$('#user-orders').addEventListener('submit', (event) => {
  event.preventDefault();
  const userId = $('#user-id').value.trim();
  if (userId) void listUserOrders(userId);
});

void refresh();
