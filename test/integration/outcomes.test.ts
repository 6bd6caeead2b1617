import { afterEach, describe, expect, it } from 'vitest';
import { readMetrics } from '../../lib/metrics.ts';
import type { StoredOrder } from '../../lib/orders.ts';
import type { Services } from '../../lib/services.ts';
import { startLocalWorkers, type LocalWorkers } from '../../local/workers.ts';
import { pollUntil, scanOrders, testServices, throttleCompletions, validOrder } from '../support.ts';

let workers: LocalWorkers | undefined;
afterEach(async () => {
  await workers?.stop(0);
  workers = undefined;
});

const finalState = (services: Services, orderId: string) =>
  pollUntil(
    async () => {
      const order = (await scanOrders(services.store)).find((stored) => stored.order_id === orderId);
      return order?.status === 'COMPLETED' || order?.status === 'FAILED' ? order : undefined;
    },
    { what: `${orderId} to end COMPLETED or FAILED` },
  );

const workFailures = (order: StoredOrder) => (order.failures ?? []).filter((failure) => failure.error !== 'the lease ran out');

describe('an attempt whose work succeeded', () => {
  it('is recorded COMPLETED once the store takes the write, retried while its lease lasts', async () => {
    // One attempt only: had the refused writes cost it, the order would end FAILED.
    const services = await testServices({ MAX_ATTEMPTS: '1', LEASE_MS: '5000', SWEEP_INTERVAL_MS: '100' });
    const refused = throttleCompletions(services, (_, refusedSoFar) => refusedSoFar < 3);
    workers = await startLocalWorkers(services);
    await services.orderService.create(validOrder({ order_id: 'THROTTLED-1' }));

    const order = await finalState(services, 'THROTTLED-1');

    expect(order).toMatchObject({ status: 'COMPLETED', attempts: 1 });
    expect(refused()).toBe(3);
    expect(order.failures).toBeUndefined();
    expect((await readMetrics(services.store)).status_counts).toEqual({ PENDING: 0, PROCESSING: 0, COMPLETED: 1, FAILED: 0 });
  });

  it('is taken over when its lease runs out first, and ends COMPLETED, never FAILED, with the lapses in its history', async () => {
    // Completions of attempts 1 and 2 never get through; their leases run out. Two lapses spend neither the
    // retry budget of 2 nor the 3 tries before quarantine.
    const services = await testServices({ MAX_ATTEMPTS: '2', POISON_MAX_TRIES: '3', LEASE_MS: '400', SWEEP_INTERVAL_MS: '100' });
    throttleCompletions(services, (attempt) => attempt <= 2);
    workers = await startLocalWorkers(services);
    await services.orderService.create(validOrder({ order_id: 'THROTTLED-2' }));

    const order = await finalState(services, 'THROTTLED-2');

    expect(order).toMatchObject({ status: 'COMPLETED', attempts: 3, lapsed: 2 });
    expect(order.failed_attempts).toBeUndefined();
    expect(order.failures).toEqual([
      { attempt: 1, started_at: expect.any(String), at: expect.any(String), error: 'the lease ran out' },
      { attempt: 2, started_at: expect.any(String), at: expect.any(String), error: 'the lease ran out' },
    ]);
    expect(workFailures(order)).toEqual([]);
    const metrics = await readMetrics(services.store);
    expect(metrics).toMatchObject({ status_counts: { PENDING: 0, PROCESSING: 0, COMPLETED: 1, FAILED: 0 }, quarantined: 0 });
  });
});
