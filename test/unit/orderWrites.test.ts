import { describe, expect, it } from 'vitest';
import { checkState, overlayState, quarantineFaulted, S, UnreadableOrder, type OrderState } from '../../lib/orderWrites.ts';

const state: OrderState = { order_id: 'ORD001', status: 'PROCESSING', attempts: 1, created_at: '2026-11-25T05:05:55.516Z' };

describe('checkState', () => {
  it('passes a state every field of which is as this version stores it', () => {
    const full = { ...state, started_at: state.created_at, due_at: 1, last_error: 'e', marker: 'm', failed_attempts: 0, lapsed: 0, faults: 0 };
    expect(checkState(full)).toBe(full);
  });

  it.each<[string, Record<string, unknown>]>([
    ['order_id', { order_id: 7 }],
    ['status', { status: 'DONE' }],
    ['attempts', { attempts: 'x' }],
    ['attempts', { attempts: -1 }],
    ['attempts', { attempts: 1.5 }],
    ['created_at', { created_at: 5 }],
    ['created_at', { created_at: 'yesterday' }],
    ['started_at', { started_at: 'soon' }],
    ['due_at', { due_at: '5' }],
    ['last_error', { last_error: 5 }],
    ['marker', { marker: 5 }],
    ['failed_attempts', { failed_attempts: -2 }],
    ['lapsed', { lapsed: 'one' }],
    ['faults', { faults: 0.5 }],
  ])('refuses a state whose %s is %o', (field, change) => {
    const bad = { ...state, ...change } as OrderState;
    expect(() => checkState(bad)).toThrow(UnreadableOrder);
    expect(() => checkState(bad)).toThrow(`: ${field} is not as this version stores it`);
  });

  it('names every field that is not as stored, and the order', () => {
    expect(() => checkState({ ...state, attempts: 'x', lapsed: -1 } as unknown as OrderState)).toThrow(
      'Order ORD001 cannot be read: attempts, lapsed are not as this version stores them',
    );
  });
});

describe('the quarantine listing of an order', () => {
  const shardOf = (orderId: string, shards: number) => {
    const put = quarantineFaulted({ tableName: 'orders', stateTableName: 'orders-states' }, orderId, 2, 'e', 0, undefined, shards).find((item) => item.Put)!;
    return Number(put.Put!.Item!.pk!.S!.slice('QUARANTINE#'.length));
  };

  it('is on a shard known from the id alone, the same in every version (FNV-1a), so a listing is always found again', () => {
    expect([shardOf('ORD001', 128), shardOf('ORD002', 128), shardOf('a', 16)]).toEqual([FNV('ORD001') % 128, FNV('ORD002') % 128, FNV('a') % 16]);
  });

  it('spreads the orders over the shards', () => {
    const shards = new Set(Array.from({ length: 200 }, (_, i) => shardOf(`ORD${i}`, 8)));
    expect(shards.size).toBe(8);
  });
});

describe('an order as it stands (overlayState)', () => {
  const order = { pk: S('ORDER#A'), order_id: S('A'), status: S('PENDING'), user_id: S('U'), marker: S('M#1') };

  it('is its order item, with the marker its create set, while it has no state item', () => {
    expect(overlayState(order, undefined)).toEqual(order);
  });

  it('is its state item over its order item, on the marker its state item says (none once finished)', () => {
    expect(overlayState(order, { pk: S('ORDER#A'), status: S('PROCESSING'), marker: S('M#1') })).toEqual({ ...order, status: S('PROCESSING') });
    expect(overlayState(order, { pk: S('ORDER#A'), status: S('COMPLETED') })).toEqual({ pk: S('ORDER#A'), order_id: S('A'), status: S('COMPLETED'), user_id: S('U') });
  });

  it('is no order without an order item, whatever state item is left', () => {
    expect(overlayState(undefined, { pk: S('ORDER#A'), status: S('PROCESSING') })).toBeUndefined();
    expect(overlayState(undefined, undefined)).toBeUndefined();
  });
});

/** FNV-1a of a string's UTF-16 code units, written out independently of the code under test. */
function FNV(text: string): number {
  let hash = 2166136261n;
  for (const unit of Array.from(text, (c) => BigInt(c.charCodeAt(0)))) hash = ((hash ^ unit) * 16777619n) % 2n ** 32n;
  return Number(hash);
}
