import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryQueue } from '../../lib/queue/memoryQueue.ts';
import type { OrderRef } from '../../lib/queue/port.ts';

/** Takes `count` ids that are already queued. */
const takeAll = (queue: MemoryQueue, count: number): Promise<(OrderRef | undefined)[]> =>
  Promise.all(Array.from({ length: count }, () => queue.take()));

describe('MemoryQueue', () => {
  it('hands ids out first in, first out', async () => {
    const queue = new MemoryQueue(10);
    expect(queue.offer(['a', 'b'])).toBe(2);
    expect(await queue.send(['c'])).toBe(1);
    expect(await takeAll(queue, 3)).toEqual(['a', 'b', 'c']);
    expect(queue.size).toBe(0);
  });

  it('keeps the order over many ids', async () => {
    const queue = new MemoryQueue(5_000);
    const ids = Array.from({ length: 3_000 }, (_, i) => `ORD${i}`);
    expect(queue.offer(ids)).toBe(3_000);
    expect(await takeAll(queue, 3_000)).toEqual(ids);
  });

  describe('capacity', () => {
    it('refuses the ids beyond its capacity and says how many it took', async () => {
      const queue = new MemoryQueue(2);
      expect(await queue.send(['a', 'b', 'c'])).toBe(2);
      expect({ size: queue.size, room: queue.room }).toEqual({ size: 2, room: 0 });
      expect(queue.offer(['d'])).toBe(0);
      expect(await takeAll(queue, 2)).toEqual(['a', 'b']);
    });

    it('takes ids again once some are taken out', async () => {
      const queue = new MemoryQueue(2);
      queue.offer(['a', 'b']);
      expect(await queue.take()).toBe('a');
      expect(queue.room).toBe(1);
      expect(queue.offer(['c', 'd'])).toBe(1);
      expect(await takeAll(queue, 2)).toEqual(['b', 'c']);
    });

    it('does not count ids being processed against its capacity', async () => {
      const queue = new MemoryQueue(1);
      queue.offer(['a']);
      await queue.take();
      expect(queue.offer(['b'])).toBe(1);
      expect({ size: queue.size, room: queue.room }).toEqual({ size: 1, room: 0 });
    });
  });

  describe('duplicates', () => {
    it('ignores an id that is already queued', async () => {
      const queue = new MemoryQueue(10);
      expect(queue.offer(['a', 'b'])).toBe(2);
      expect(await queue.send(['b', 'a', 'c'])).toBe(1);
      expect(await takeAll(queue, 3)).toEqual(['a', 'b', 'c']);
      expect(queue.size).toBe(0);
    });

    it('ignores an id repeated in one offer', async () => {
      const queue = new MemoryQueue(10);
      expect(queue.offer(['a', 'a', 'b', 'a'])).toBe(2);
      expect(await takeAll(queue, 2)).toEqual(['a', 'b']);
      expect(queue.size).toBe(0);
    });

    it('ignores an id that is taken and not yet done', async () => {
      const queue = new MemoryQueue(10);
      queue.offer(['a']);
      expect(await queue.take()).toBe('a');
      expect(queue.offer(['a'])).toBe(0);
      expect(queue.size).toBe(0);
    });

    it('queues an id again once its processing is done', async () => {
      const queue = new MemoryQueue(10);
      queue.offer(['a']);
      await queue.take();
      queue.done('a');
      expect(queue.offer(['a'])).toBe(1);
      expect(await queue.take()).toBe('a');
    });

    it('keeps other ids known when one is done', async () => {
      const queue = new MemoryQueue(10);
      queue.offer(['a', 'b']);
      await takeAll(queue, 2);
      queue.done('a');
      expect(queue.offer(['a', 'b'])).toBe(1);
      expect(await queue.take()).toBe('a');
      expect(queue.size).toBe(0);
    });
  });

  describe('finished orders (what the sweeper need not read back)', () => {
    it('knows an order that ended here until the sweep after the one it ended in has begun', async () => {
      const queue = new MemoryQueue(10);
      queue.offer(['a', 'b']);
      await takeAll(queue, 2);
      queue.done('a', true);
      queue.done('b');
      expect([queue.hasFinished('a'), queue.hasFinished('b')]).toEqual([true, false]);
      queue.forgetFinished(); // a sweep begins, and may reach a's marker
      expect(queue.hasFinished('a')).toBe(true);
      queue.forgetFinished(); // the next sweep: the one before had its chance
      expect(queue.hasFinished('a')).toBe(false);
    });

    it('knows an order that ended during a sweep for the whole of the next one', async () => {
      const queue = new MemoryQueue(10);
      queue.forgetFinished();
      queue.offer(['c']);
      await queue.take();
      queue.done('c', true);
      queue.forgetFinished();
      expect(queue.hasFinished('c')).toBe(true);
    });
  });

  describe('waiting takers', () => {
    it('gives a waiting take the next offered id', async () => {
      const queue = new MemoryQueue(10);
      const taken = queue.take();
      expect(queue.offer(['a'])).toBe(1);
      expect(await taken).toBe('a');
      expect(queue.size).toBe(0);
    });

    it('serves waiting takers in the order they came, and queues the rest', async () => {
      const queue = new MemoryQueue(10);
      const waiting = takeAll(queue, 2);
      expect(queue.offer(['a', 'b', 'c'])).toBe(3);
      expect(await waiting).toEqual(['a', 'b']);
      expect(queue.size).toBe(1);
      expect(await queue.take()).toBe('c');
    });

    it('treats an id handed to a waiting taker as being processed', async () => {
      const queue = new MemoryQueue(10);
      const taken = queue.take();
      queue.offer(['a']);
      expect(await taken).toBe('a');
      expect(queue.offer(['a'])).toBe(0);
    });
  });

  describe('holds', () => {
    it('holds an order from when it is queued until its processing is done', async () => {
      const queue = new MemoryQueue(10);
      expect(queue.holds('a')).toBe(false);
      queue.offer(['a']);
      expect(queue.holds('a')).toBe(true);
      await queue.take();
      expect(queue.holds('a')).toBe(true);
      queue.done('a');
      expect(queue.holds('a')).toBe(false);
    });
  });

  describe('delayed sends (the back-off of a retry)', () => {
    afterEach(() => vi.useRealTimers());

    it('hands out an order sent for later only once its time has come, and counts it as accepted', async () => {
      vi.useFakeTimers({ now: 1_000_000 });
      const queue = new MemoryQueue(10);

      expect(await queue.send(['a'], { notBefore: 1_000_500 })).toBe(1);
      await vi.advanceTimersByTimeAsync(499);
      expect({ size: queue.size, holds: queue.holds('a') }).toEqual({ size: 0, holds: false });
      await vi.advanceTimersByTimeAsync(1);
      expect(queue.size).toBe(1);
      expect(await queue.take()).toBe('a');
    });

    it('hands out an order sent for a time already past only after the sender has moved on', async () => {
      vi.useFakeTimers({ now: 1_000_000 });
      const queue = new MemoryQueue(10);

      expect(await queue.send(['a'], { notBefore: 999_000 })).toBe(1);
      expect(queue.size).toBe(0);
      await vi.advanceTimersByTimeAsync(0);
      expect(await queue.take()).toBe('a');
    });

    it('drops delayed orders when closed, and takes none for later once closed', async () => {
      vi.useFakeTimers({ now: 1_000_000 });
      const queue = new MemoryQueue(10);
      await queue.send(['a'], { notBefore: 1_000_100 });

      queue.close();
      expect(await queue.send(['b'], { notBefore: 1_000_100 })).toBe(0);
      await vi.advanceTimersByTimeAsync(1_000);
      expect({ size: queue.size, a: queue.holds('a'), b: queue.holds('b') }).toEqual({ size: 0, a: false, b: false });
    });
  });

  describe('finished orders, bounded', () => {
    it('knows every order that finished here, not only the last', () => {
      const queue = new MemoryQueue(10);
      queue.done('a', true);
      queue.done('b', true);
      expect([queue.hasFinished('a'), queue.hasFinished('b')]).toEqual([true, true]);
    });

    it('forgets the finished orders once 50 000 are known, so memory stays bounded (the sweeper reads them back)', () => {
      const queue = new MemoryQueue(10);
      for (let i = 0; i < 50_000; i++) queue.done(`F${i}`, true);
      expect([queue.hasFinished('F0'), queue.hasFinished('F49999')]).toEqual([true, true]);

      queue.done('LAST', true);
      expect([queue.hasFinished('F0'), queue.hasFinished('F49999'), queue.hasFinished('LAST')]).toEqual([false, false, true]);
    });
  });

  describe('close', () => {
    it('resolves every waiting taker with undefined', async () => {
      const queue = new MemoryQueue(10);
      const waiting = takeAll(queue, 3);
      queue.close();
      expect(await waiting).toEqual([undefined, undefined, undefined]);
    });

    it('hands out no more ids once closed, even with ids still queued', async () => {
      const queue = new MemoryQueue(10);
      queue.offer(['a', 'b']);
      queue.close();
      expect(await queue.take()).toBeUndefined();
    });

    it('answers a take on an empty closed queue with undefined', async () => {
      const queue = new MemoryQueue(10);
      queue.close();
      expect(await queue.take()).toBeUndefined();
    });

    it('refuses ids once closed', async () => {
      const queue = new MemoryQueue(10);
      queue.close();
      expect({ offered: queue.offer(['a']), sent: await queue.send(['b']), room: queue.room, size: queue.size }).toEqual({
        offered: 0,
        sent: 0,
        room: 0,
        size: 0,
      });
    });
  });
});
