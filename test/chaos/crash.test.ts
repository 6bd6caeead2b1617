import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { LAPSE } from '../../lib/orderWrites.ts';
import type { StoredOrder } from '../../lib/orders.ts';
import { countByStatus, dynamodbEndpoint, pollUntil, scanOrders, seededRandom, testServices, uniqueTable, validOrder } from '../support.ts';
import {
  CHAOS_SEED,
  expectEachTransitionOnce,
  expectMetricsEqualScan,
  getJson,
  getMetrics,
  postAll,
  standaloneSpawner,
  tally,
  type Answer,
} from './harness.ts';

const ORDERS = 500;
const IN_FLIGHT = 64;
const start = standaloneSpawner();

/** Short leases and sweeps so work cut off by the kill is taken over within seconds of the restart. */
const crashEnv = (table: string) => ({
  DYNAMODB_ENDPOINT: dynamodbEndpoint(),
  TABLE_NAME: table,
  LEASE_MS: '2000',
  SWEEP_INTERVAL_MS: '300',
  PROCESSING_MIN_MS: '50',
  PROCESSING_MAX_MS: '300',
});

const acknowledged = (answer: Answer | undefined): answer is Extract<Answer, { kind: 'answered' }> =>
  answer?.kind === 'answered' && answer.status === 201;

describe('kill -9 of the standalone process', () => {
  it.each([1, 2, 3].map((run) => ({ run, seed: CHAOS_SEED + run - 1 })))(
    'loses no acknowledged order and completes each exactly once after a restart (kill moment $run, seed $seed)',
    async ({ run, seed }) => {
      const context = `crash run ${run}, seed ${seed} (CHAOS_SEED=${CHAOS_SEED})`;
      const random = seededRandom(seed);
      // The kill comes once this many orders are acknowledged, and orders are in every state.
      const killAfter = 100 + Math.floor(random() * 300);
      const table = uniqueTable('crash');
      const { store } = await testServices({ TABLE_NAME: table });
      const env = crashEnv(table);
      const orders = Array.from({ length: ORDERS }, (_, i) =>
        validOrder({ order_id: `crash-${run}-${String(i).padStart(3, '0')}`, user_id: `USER${i % 17}`, total_amount: i + 0.5 }),
      );

      const first = await start(env);
      let acks = 0;
      let killed = false;
      let reached!: () => void;
      const killMoment = new Promise<void>((resolve) => (reached = resolve));
      const sending = postAll(first.url, orders, {
        concurrency: IN_FLIGHT,
        stop: () => killed,
        onAnswer: (answer) => {
          if (acknowledged(answer) && ++acks === killAfter) reached();
        },
      });
      await Promise.race([killMoment, sending]);
      const atKill = await pollUntil(
        async () => {
          const { status_counts: counts } = await getMetrics(first.url);
          return counts.PENDING > 0 && counts.PROCESSING > 0 && counts.COMPLETED > 0 ? counts : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 10, what: `orders in every state (${context})` },
      );
      killed = true;
      await first.stop('SIGKILL');
      const answers = await sending;
      const beforeRestart = tally(answers);
      // A write the dead process sent just before the kill can still be applied by DynamoDB Local
      // (a completion inside its lease is legitimate), so the store is read once it has stopped changing.
      let previous: StoredOrder[] | undefined;
      const atDeathScan = await pollUntil(
        async () => {
          const now = await scanOrders(store);
          const settled = previous !== undefined && isDeepStrictEqual(now, previous);
          previous = now;
          return settled ? now : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 250, what: `the store to settle after the kill (${context})` },
      );
      const atDeath = countByStatus(atDeathScan);
      // Held by the dead process: each must be taken over once its lease runs out.
      const heldAtDeath = atDeathScan.filter((order) => order.status === 'PROCESSING');

      // Every order the client did not see acknowledged is sent again, as a client would retry it:
      // 201 if the crash lost it before it was stored, 200 (a replay) if only the answer was lost.
      const second = await start(env);
      const restartedAt = performance.now();
      const retried = orders.map((order, i) => ({ order, i })).filter(({ i }) => !acknowledged(answers[i]));
      const retryAnswers = await postAll(
        second.url,
        retried.map(({ order }) => order),
        { concurrency: IN_FLIGHT },
      );
      const afterRestart = tally(retryAnswers);
      expect(
        retryAnswers.filter((answer, k) => !(answer.kind === 'answered' && (answer.status === 201 || (answer.status === 200 && answers[retried[k]!.i]!.kind === 'error')))),
        `${context}: a retried order answered other than 201, or 200 for one whose first request was cut off`,
      ).toEqual([]);

      await pollUntil(
        async () => ((await getMetrics(second.url)).status_counts.COMPLETED === ORDERS ? true : undefined),
        { timeoutMs: 180_000, intervalMs: 250, what: `all ${ORDERS} orders to complete (${context})` },
      );
      const completedMs = Math.round(performance.now() - restartedAt);

      // Every order acknowledged before the kill is there, unchanged, and COMPLETED.
      const firstAcks = orders.map((order, i) => ({ order, answer: answers[i] })).filter(({ answer }) => acknowledged(answer));
      expect(firstAcks.length, context).toBeGreaterThanOrEqual(killAfter);
      // Read by as many clients as sent them: all of them at once (400 and more) while the restarted process
      // finishes the rest got a 503 (the store slow to answer: retry shortly) on a busy CI machine.
      const reads: Awaited<ReturnType<typeof getJson>>[] = [];
      for (let k = 0; k < firstAcks.length; k += IN_FLIGHT) {
        reads.push(...(await Promise.all(firstAcks.slice(k, k + IN_FLIGHT).map(({ order }) => getJson(`${second.url}/orders/${order.order_id}`)))));
      }
      reads.forEach((read, k) => {
        const acked = (firstAcks[k]!.answer as Extract<Answer, { kind: 'answered' }>).body;
        expect(read, `${context}: ${acked.order_id}`).toEqual({
          status: 200,
          contentType: 'application/json',
          body: {
            ...acked,
            status: 'COMPLETED',
            attempts: expect.any(Number),
            started_at: expect.any(String),
            completed_at: expect.any(String),
            processing_ms: expect.any(Number),
          },
        });
      });

      const scanned = await expectMetricsEqualScan(second.url, store, context);
      expect(countByStatus(scanned), context).toEqual({ PENDING: 0, PROCESSING: 0, COMPLETED: ORDERS, FAILED: 0 });
      expect(scanned.map((order) => order.order_id).sort(), context).toEqual(orders.map((order) => order.order_id));
      expectEachTransitionOnce(scanned, context);
      const takenOver = scanned.filter((order: StoredOrder) => order.attempts > 1).length;
      expect(heldAtDeath.length, `${context}: orders held when the process died`).toBeGreaterThan(0);
      for (const held of heldAtDeath) {
        const after = scanned.find((order) => order.order_id === held.order_id)!;
        expect(after.attempts, `${context}: ${held.order_id} taken over`).toBeGreaterThan(held.attempts);
        expect(after.failures, `${context}: ${held.order_id} taken over`).toContainEqual(expect.objectContaining({ attempt: held.attempts, error: LAPSE }));
      }

      console.log(
        `[crash] run ${run}, seed ${seed}: killed after ${acks} of ${ORDERS} acknowledged (target ${killAfter}); ` +
          `metrics just before the kill ${JSON.stringify(atKill)}; answers before the kill ${JSON.stringify(beforeRestart)}; ` +
          `store at death ${JSON.stringify(atDeath)}; ${retried.length} re-sent after the restart: ${JSON.stringify(afterRestart)}; ` +
          `all ${ORDERS} COMPLETED ${completedMs} ms after the restart, each once; ${takenOver} taken over after their lease ran out`,
      );
      await second.stop('SIGKILL');
    },
    300_000,
  );
});
