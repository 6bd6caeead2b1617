import { describe, expect, it } from 'vitest';
import { testServices, validOrder } from '../support.ts';

// The processor's steps one by one against DynamoDB Local: a delivery of an order another worker holds, and
// work stopped at shutdown.

const WORK_MS = '5000';

describe('the processor, step by step', () => {
  it('skips a delivery of an order another worker holds under a live lease, and leaves it as it was', async () => {
    const { orderService, orders, processor } = await testServices();
    await orderService.create(validOrder({ order_id: 'HELD-1' }));
    const held = await processor.begin('HELD-1');
    expect(held).toMatchObject({ order: { status: 'PROCESSING', attempts: 1 } });

    expect(await processor.process('HELD-1')).toEqual({ kind: 'skipped', reason: 'busy' });
    expect(await orders.getState('HELD-1')).toMatchObject({ status: 'PROCESSING', attempts: 1 });
  });

  it('does not start work once stopped, stops work under way when told, and gives both claims back', async () => {
    const { orderService, orders, processor } = await testServices({ PROCESSING_MIN_MS: WORK_MS, PROCESSING_MAX_MS: WORK_MS });
    await orderService.create(validOrder({ order_id: 'STOP-1' }));
    await orderService.create(validOrder({ order_id: 'STOP-2' }));
    const first = await processor.begin('STOP-1');
    const second = await processor.begin('STOP-2');
    if (!('order' in first) || !('order' in second)) throw new Error('both orders should be claimed');

    const started = performance.now();
    expect(await processor.run(first, AbortSignal.abort())).toEqual({ kind: 'aborted' });
    const stop = new AbortController();
    const working = processor.run(second, stop.signal);
    stop.abort();
    expect(await working).toEqual({ kind: 'aborted' });
    // Well before the work's 5 s.
    expect(performance.now() - started).toBeLessThan(2_500);

    expect(await processor.finish(first, { kind: 'aborted' })).toEqual({ kind: 'released' });
    expect(await processor.finish(second, { kind: 'aborted' })).toEqual({ kind: 'released' });
    for (const id of ['STOP-1', 'STOP-2']) expect(await orders.getState(id)).toMatchObject({ status: 'PENDING', attempts: 0 });
  });
});
