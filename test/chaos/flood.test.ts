import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { dynamodbEndpoint, pollUntil, testServices, uniqueTable, validOrder } from '../support.ts';
import { getMetrics, nodePidOf, peakRss, standaloneSpawner } from './harness.ts';

const REQUESTS = 150_000;
const MiB = 1024 * 1024;
/**
 * The bound on the growth of the peak resident set while the flood lasts, whatever its length: at most
 * MAX_REQUESTS_IN_FLIGHT (2 000) requests are under way (each its request, event, body, order and promises),
 * and V8 lets its heap grow well past what is alive before it collects. Without the bound every one of the
 * 150 000 would be under way at once.
 */
const GROWTH_BOUND = 256 * MiB;
const start = standaloneSpawner();

/** Counts the status lines of answers read from a socket, whatever the chunking. */
const statusCounter = () => {
  const counts: Record<string, number> = {};
  let total = 0;
  let tail = '';
  return {
    counts,
    total: () => total,
    read(chunk: Buffer) {
      const text = tail + chunk.toString('latin1');
      const pattern = /HTTP\/1\.1 (\d{3}) /g;
      let end = 0;
      for (let match = pattern.exec(text); match; match = pattern.exec(text)) {
        counts[match[1]!] = (counts[match[1]!] ?? 0) + 1;
        total++;
        end = pattern.lastIndex;
      }
      // What may begin a status line split across chunks (shorter than a whole one, so never counted twice).
      tail = text.slice(Math.max(end, text.length - 12));
    },
  };
};

describe('a flood on one connection', () => {
  it(
    `stays up, answers /health and keeps memory bounded under ${REQUESTS} identical pipelined creates on one socket`,
    async () => {
      const table = uniqueTable('flood');
      await testServices({ TABLE_NAME: table });
      const service = await start({ DYNAMODB_ENDPOINT: dynamodbEndpoint(), TABLE_NAME: table, PROCESSING_MIN_MS: '1', PROCESSING_MAX_MS: '5' });
      const pid = await nodePidOf(service);
      expect((await fetch(`${service.url}/health`)).status).toBe(200);
      const idlePeak = await peakRss(pid);

      const body = JSON.stringify(validOrder({ order_id: 'flood-1' }));
      const request = Buffer.from(
        `POST /orders HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      const socket = connect(Number(new URL(service.url).port), '127.0.0.1');
      const answers = statusCounter();
      socket.on('data', (chunk) => answers.read(chunk));
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      const started = performance.now();
      // Written as fast as the socket takes them: the service decides how fast it reads.
      void (async () => {
        for (let sent = 0; sent < REQUESTS && !socket.destroyed; sent++) {
          if (!socket.write(request)) await new Promise((resolve) => socket.once('drain', resolve));
        }
      })();

      // /health on a connection of its own, all along the flood.
      const health: { status: number; ms: number }[] = [];
      await pollUntil(
        async () => {
          const asked = performance.now();
          const response = await fetch(`${service.url}/health`, { signal: AbortSignal.timeout(5_000) });
          await response.arrayBuffer();
          health.push({ status: response.status, ms: Math.round(performance.now() - asked) });
          return answers.total() === REQUESTS ? true : undefined;
        },
        { timeoutMs: 240_000, intervalMs: 250, what: `answers to all ${REQUESTS} requests` },
      );
      const floodMs = Math.round(performance.now() - started);
      socket.end();
      await closed;
      const growth = (await peakRss(pid)) - idlePeak;

      // One create, the rest answered as its replays or shed with 503: nothing else, and nothing crashed.
      expect(answers.counts['201']).toBe(1);
      expect((answers.counts['200'] ?? 0) + (answers.counts['503'] ?? 0)).toBe(REQUESTS - 1);
      expect(health.filter((answer) => answer.status !== 200)).toEqual([]);
      expect(Math.max(...health.map((answer) => answer.ms))).toBeLessThan(5_000);
      expect(growth).toBeLessThan(GROWTH_BOUND);
      expect((await getMetrics(service.url)).total_orders).toBe(1);
      console.log(
        `[flood] ${REQUESTS} identical pipelined creates on one socket answered in ${floodMs} ms: ${JSON.stringify(answers.counts)}; ` +
          `${health.length} /health answers meanwhile, slowest ${Math.max(...health.map((answer) => answer.ms))} ms; ` +
          `peak RSS grew ${Math.round(growth / MiB)} MiB (bound ${GROWTH_BOUND / MiB} MiB)`,
      );
    },
    300_000,
  );
});
