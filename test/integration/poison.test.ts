import { describe, expect, it } from 'vitest';
import { testServices, validOrder } from '../support.ts';

describe('a poison order', () => {
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
