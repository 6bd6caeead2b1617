import { describe, expect, it } from 'vitest';
import { StoreGate } from '../../lib/storeGate.ts';

/** A gate on a clock the test moves, with a log of the slots granted in order. */
const setup = (capacity = 1) => {
  let now = 0;
  const gate = new StoreGate({ capacity, maxDelayMs: 1_000, now: () => now });
  const granted: string[] = [];
  const ask = (name: string, urgency: 'urgent' | 'background') =>
    gate.acquire(urgency).then((release) => {
      granted.push(name);
      return release;
    });
  return { gate, granted, ask, advance: (ms: number) => (now += ms) };
};

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * One slot, held: `steps` ask for it in turn (a number moves the clock on), then the holder gives it back;
 * answers the slots granted. `burst`: more creates wait than a transaction takes, all along; `clockAt`: where
 * the clock stands when the holder asks.
 */
const afterHolder = async (steps: (number | [string, 'urgent' | 'background'])[], { burst = false, clockAt = 0 } = {}) => {
  const { gate, granted, ask, advance } = setup();
  if (burst) gate.watchCreates(() => 500, 98);
  advance(clockAt);
  const holder = await ask('holder', 'urgent');
  for (const step of steps) {
    if (typeof step === 'number') advance(step);
    else void ask(...step);
  }
  holder();
  await settle();
  return granted;
};

describe('StoreGate', () => {
  it('never grants more slots than its capacity, and grants again when one is given back', async () => {
    const { granted, ask } = setup(2);
    const first = ask('a', 'urgent');
    void ask('b', 'background');
    void ask('c', 'urgent');
    await settle();
    expect(granted).toEqual(['a', 'b']);
    (await first)();
    await settle();
    expect(granted).toEqual(['a', 'b', 'c']);
  });

  it('serves creates and background work in the order they asked when no burst is on', async () => {
    expect(await afterHolder([['claims', 'background'], 1, ['create', 'urgent']])).toEqual(['holder', 'claims']);
  });

  it('lets creates go first while a burst of them waits', async () => {
    const { gate, granted, ask, advance } = setup();
    let waitingCreates = 500;
    gate.watchCreates(() => waitingCreates, 98);
    const holder = await ask('holder', 'urgent');
    void ask('claims', 'background');
    advance(1);
    const create = ask('create', 'urgent');
    holder();
    await settle();
    expect(granted).toEqual(['holder', 'create']);

    waitingCreates = 0;
    (await create)();
    await settle();
    expect(granted).toEqual(['holder', 'create', 'claims']);
  });

  it('gives background work a slot once it has yielded for maxDelayMs, burst or not', async () => {
    expect(await afterHolder([['claims', 'background'], ['create', 'urgent'], 1_000], { burst: true })).toEqual(['holder', 'claims']);
  });

  it('ignores a second give-back of the same slot', async () => {
    const { granted, ask } = setup(1);
    const release = await ask('a', 'urgent');
    void ask('b', 'urgent');
    void ask('c', 'urgent');
    release();
    release();
    await settle();
    expect(granted).toEqual(['a', 'b']);
  });

  it('counts a burst only above its threshold of waiting creates', async () => {
    const { gate, granted, ask, advance } = setup();
    let waitingCreates = 98;
    gate.watchCreates(() => waitingCreates, 98);
    const holder = await ask('holder', 'urgent');
    const claims = ask('claims', 'background');
    advance(1);
    void ask('create', 'urgent');
    void ask('fold', 'background');
    holder();
    await settle();
    expect(granted).toEqual(['holder', 'claims']);

    waitingCreates = 99;
    (await claims)();
    await settle();
    expect(granted).toEqual(['holder', 'claims', 'create']);
  });

  it('measures how long background work has yielded from when it asked, not from the start of the clock', async () => {
    expect(await afterHolder([['claims', 'background'], ['create', 'urgent'], 999], { burst: true, clockAt: 5_000 })).toEqual(['holder', 'create']);
  });

  it('serves a create that asked before background work first, no burst on', async () => {
    expect(await afterHolder([['create', 'urgent'], 1, ['claims', 'background']])).toEqual(['holder', 'create']);
  });

  it('serves background work first when it asked at the same moment as a create, no burst on', async () => {
    expect(await afterHolder([['claims', 'background'], ['create', 'urgent']])).toEqual(['holder', 'claims']);
  });

  it('on its own clock, serves in the order asked', async () => {
    const gate = new StoreGate({ capacity: 1 });
    const granted: string[] = [];
    const ask = (name: string, urgency: 'urgent' | 'background') =>
      gate.acquire(urgency).then((release) => {
        granted.push(name);
        return release;
      });
    const holder = await ask('holder', 'urgent');
    void ask('claims', 'background');
    void ask('create', 'urgent');
    holder();
    await settle();
    expect(granted).toEqual(['holder', 'claims']);
  });
});
