import { QueryCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { readMetrics } from '../../lib/metrics.ts';
import { MemoryQueue } from '../../lib/queue/memoryQueue.ts';
import type { Services } from '../../lib/services.ts';
import { sweep } from '../../lib/sweeper.ts';
import { startLocalWorkers, type LocalWorkers } from '../../local/workers.ts';
import { countByStatus, dynamodbEndpoint, pollUntil, runToEnd, scanOrders, testServices, validOrder } from '../support.ts';

let workers: LocalWorkers | undefined;
afterEach(async () => {
  await workers?.stop(0);
  workers = undefined;
});

/** Sets an attribute of a stored order straight in the table, as an older version might have written it. */
const setAttempts = (services: Services, orderId: string, value: { S: string } | { N: string }) =>
  services.store.documentClient.send(
    new UpdateItemCommand({
      TableName: services.store.tableName,
      Key: { pk: { S: `ORDER#${orderId}` }, sk: { S: 'ORDER' } },
      UpdateExpression: 'SET attempts = :value',
      ExpressionAttributeValues: { ':value': value },
    }),
  );

/** Every order id the due markers list. */
const markedIds = async (services: Services): Promise<string[]> => {
  const { Items = [] } = await services.store.documentClient.send(
    new QueryCommand({
      TableName: services.store.tableName,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': { S: 'DUE#0' } },
      ConsistentRead: true,
    }),
  );
  return Items.flatMap((item) => (item.ids?.L ?? []).map((id) => id.S!));
};

const POISON = ['POISON-ALONE', 'POISON-SHARED'];

describe('a poison order', () => {
  it(
    'is quarantined within POISON_MAX_TRIES tries without holding up the others, counted in /metrics, never sent again, and requeued after a fix',
    async () => {
      // An earlier process took the orders: one alone on its due marker, one in a group commit with good ones.
      const earlier = await testServices();
      await earlier.orderService.create(validOrder({ order_id: 'POISON-ALONE' }));
      const good = Array.from({ length: 5 }, (_, i) => `GOOD-${i}`);
      await Promise.all([...good, 'POISON-SHARED'].map((id) => earlier.orderService.create(validOrder({ order_id: id }))));
      for (const id of POISON) await setAttempts(earlier, id, { S: 'x' });

      const services = await testServices({ TABLE_NAME: earlier.config.TABLE_NAME, POISON_MAX_TRIES: '3', SWEEP_INTERVAL_MS: '100' });
      // Read, not shown: the lines are asserted below.
      const errors = vi.spyOn(services.logger, 'error').mockReturnValue();
      const warnings = vi.spyOn(services.logger, 'warn').mockReturnValue();
      workers = await startLocalWorkers(services);

      const metrics = await pollUntil(
        async () => {
          const m = await readMetrics(services.store);
          return m.quarantined === 2 && m.status_counts.COMPLETED === good.length ? m : undefined;
        },
        { what: 'the poison orders to be quarantined and the good ones completed' },
      );
      // They keep their status: counted as PENDING, and as quarantined.
      expect(metrics.status_counts).toEqual({ PENDING: 2, PROCESSING: 0, COMPLETED: 5, FAILED: 0 });
      expect(metrics.status_counts).toEqual(countByStatus(await scanOrders(services.store)));
      for (const state of await services.orders.getStates(POISON)) {
        expect(state).toMatchObject({ status: 'PENDING', attempts: 'x', faults: 3, quarantined: expect.any(String) });
      }
      // One ERROR line each, naming the order and the error; the tries before it are warnings.
      const quarantinedLines = errors.mock.calls.filter(([message]) => String(message).startsWith('order quarantined'));
      expect(quarantinedLines.map(([, extra]) => (extra as { order_id: string }).order_id).sort()).toEqual(POISON);
      for (const [, extra] of quarantinedLines) expect(String((extra as { error: Error }).error)).toMatch(/UnreadableOrder.*attempts/);
      expect(errors).toHaveBeenCalledTimes(2);
      const faultLines = warnings.mock.calls.filter(([message]) => String(message).startsWith('order could not be processed'));
      expect(faultLines).toHaveLength(2 * POISON.length);

      // Off the due markers, so no sweeper sends them again, and a stray delivery leaves them be.
      await pollUntil(async () => ((await markedIds(services)).some((id) => POISON.includes(id)) ? undefined : true), {
        what: 'the poison orders to be taken off their markers',
      });
      const elsewhere = new MemoryQueue(10);
      expect(await sweep(services.orders, elsewhere, { createdBy: Date.now(), now: Date.now(), maxSend: 10, maxRead: 100 })).toBe(0);
      expect(await services.processor.process('POISON-ALONE')).toEqual({ kind: 'quarantined' });
      expect((await services.orders.getStates(['POISON-ALONE']))[0]).toMatchObject({ faults: 3 });

      // An operator lists them, fixes the items, and requeues them with the npm script.
      const env = { TABLE_NAME: services.config.TABLE_NAME, DYNAMODB_ENDPOINT: dynamodbEndpoint(), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
      const listed = await runToEnd('npm', ['run', '--silent', 'requeue', '--', '--list'], env);
      expect(listed.code, listed.output).toBe(0);
      expect(listed.output).toMatch(/^POISON-ALONE\tquarantined \S+\tUnreadableOrder: .*attempts/m);
      expect(listed.output).toMatch(/^2 quarantined$/m);
      // One item is fixed, one not yet: that one is said to be unreadable still, and is set aside again.
      await setAttempts(services, 'POISON-SHARED', { N: '0' });
      const requeued = await runToEnd('npm', ['run', '--silent', 'requeue', '--', ...POISON], env);
      expect(requeued).toEqual({
        code: 0,
        output:
          'POISON-ALONE: requeued, but Order POISON-ALONE cannot be read: attempts is not as this version stores it: it will be quarantined again\n' +
          'POISON-SHARED: requeued\n',
      });
      await pollUntil(
        async () => {
          const m = await readMetrics(services.store);
          return m.status_counts.COMPLETED === 6 && m.quarantined === 1 ? m : undefined;
        },
        { what: 'the fixed order to complete and the other to be quarantined again' },
      );
      await setAttempts(services, 'POISON-ALONE', { N: '0' });
      expect(await runToEnd('npm', ['run', '--silent', 'requeue', '--', '--all'], env)).toEqual({ code: 0, output: 'POISON-ALONE: requeued\n' });

      const after = await pollUntil(
        async () => {
          const m = await readMetrics(services.store);
          return m.status_counts.COMPLETED === 7 ? m : undefined;
        },
        { what: 'the requeued orders to complete' },
      );
      expect(after.quarantined).toBe(0);
      expect(after.status_counts).toEqual(countByStatus(await scanOrders(services.store)));
      expect(await services.orders.listQuarantined()).toEqual([]);
      const again = await runToEnd('npm', ['run', '--silent', 'requeue', '--', 'POISON-ALONE'], env);
      expect(again).toEqual({ code: 1, output: 'POISON-ALONE: not quarantined (unknown, or requeued already)\n' });
    },
    60_000,
  );

  it('fails alone in a group commit when the store refuses its write: the transitions committed with it go through', async () => {
    const { orderService, orders } = await testServices();
    const ids = Array.from({ length: 10 }, (_, i) => `BATCH-${i}`);
    await Promise.all(ids.map((id) => orderService.create(validOrder({ order_id: id }))));
    const states = await orders.getStates(ids);
    // What a worker holds after reading an item an older version wrote with a number as text.
    const broken = { ...states[3]!, attempts: 'x' as unknown as number };

    const claims = await Promise.allSettled(states.map((state, i) => orders.claim(i === 3 ? broken : state, Date.now(), 30_000)));

    expect(claims.map((claim) => claim.status)).toEqual(ids.map((_, i) => (i === 3 ? 'rejected' : 'fulfilled')));
    expect(((claims[3] as PromiseRejectedResult).reason as Error).name).not.toBe('StoreUnavailable');
    expect((await orders.getStates(ids)).filter((state) => state.status === 'PROCESSING')).toHaveLength(9);
  });
});
