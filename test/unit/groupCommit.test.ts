import { describe, expect, it } from 'vitest';
import { GroupCommit, type GroupCommitOptions, type Settled } from '../../lib/groupCommit.ts';
import { StoreGate } from '../../lib/storeGate.ts';

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

const deferred = <T>(): Deferred<T> => {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

/**
 * A commit function the test drives: every call is recorded with a deferred outcome that the test
 * settles when it chooses, so "under way" lasts exactly as long as the test wants.
 */
const controllableCommit = () => {
  const calls: { batch: string[]; outcome: Deferred<Settled<string>[]> }[] = [];
  const commit = (batch: string[]): Promise<Settled<string>[]> => {
    const outcome = deferred<Settled<string>[]>();
    calls.push({ batch: [...batch], outcome });
    return outcome.promise;
  };
  const call = (index: number) => {
    const found = calls[index];
    if (!found) throw new Error(`commit ${index} was never called`);
    return found;
  };
  return {
    commit,
    /** The batches committed so far, in call order. */
    batches: () => calls.map((c) => c.batch),
    /** Settles commit `index` with every item upper-cased. */
    succeed: (index: number) => {
      const { batch, outcome } = call(index);
      outcome.resolve(batch.map((item) => ({ ok: true, value: item.toUpperCase() })));
    },
    settle: (index: number, outcomes: Settled<string>[]) => call(index).outcome.resolve(outcomes),
    fail: (index: number, error: unknown) => call(index).outcome.reject(error),
  };
};

/** Lets every queued immediate and the promise jobs they start run; GroupCommit flushes on setImmediate. */
const idle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

const setup = (options: Partial<GroupCommitOptions<string, string>> = {}) => {
  const commits = controllableCommit();
  const group = new GroupCommit<string, string>({
    maxBatch: 10,
    maxInFlight: 1,
    key: (item) => item,
    commit: commits.commit,
    ...options,
  });
  return { commits, group };
};

describe('GroupCommit', () => {
  it('commits the items submitted in the same tick as one batch', async () => {
    const { commits, group } = setup();
    const results = Promise.all(['a', 'b', 'c'].map((item) => group.submit(item)));
    await idle();
    expect(commits.batches()).toEqual([['a', 'b', 'c']]);
    commits.succeed(0);
    expect(await results).toEqual(['A', 'B', 'C']);
  });

  it('commits a lone item without waiting for company', async () => {
    const { commits, group } = setup();
    const result = group.submit('a');
    await idle();
    expect(commits.batches()).toEqual([['a']]);
    commits.succeed(0);
    expect(await result).toBe('A');
  });

  it('splits a burst into batches of at most maxBatch', async () => {
    const { commits, group } = setup({ maxBatch: 2, maxInFlight: 5 });
    const results = Promise.all(['a', 'b', 'c', 'd', 'e'].map((item) => group.submit(item)));
    await idle();
    expect(commits.batches()).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    [0, 1, 2].forEach(commits.succeed);
    expect(await results).toEqual(['A', 'B', 'C', 'D', 'E']);
  });

  it('holds items back while maxInFlight commits are under way, then sends them together', async () => {
    const { commits, group } = setup({ maxBatch: 10, maxInFlight: 1 });
    const first = group.submit('a');
    await idle();
    const later = Promise.all(['b', 'c', 'd'].map((item) => group.submit(item)));
    await idle();
    expect(commits.batches()).toEqual([['a']]);

    commits.succeed(0);
    expect(await first).toBe('A');
    await idle();
    expect(commits.batches()).toEqual([['a'], ['b', 'c', 'd']]);
    commits.succeed(1);
    expect(await later).toEqual(['B', 'C', 'D']);
  });

  it('starts a new commit as soon as one of maxInFlight finishes', async () => {
    const { commits, group } = setup({ maxBatch: 1, maxInFlight: 2 });
    const results = ['a', 'b', 'c', 'd'].map((item) => group.submit(item));
    await idle();
    expect(commits.batches()).toEqual([['a'], ['b']]);

    commits.succeed(1);
    expect(await results[1]).toBe('B');
    await idle();
    expect(commits.batches()).toEqual([['a'], ['b'], ['c']]);

    commits.succeed(0);
    commits.succeed(2);
    await idle();
    expect(commits.batches()).toEqual([['a'], ['b'], ['c'], ['d']]);
    commits.succeed(3);
    expect(await Promise.all(results)).toEqual(['A', 'B', 'C', 'D']);
  });

  it('never puts two items with the same key in one batch', async () => {
    const { commits, group } = setup({ key: (item) => item.split(':')[0]! });
    const results = Promise.all(['x:1', 'x:2', 'y:1', 'x:3', 'z:1'].map((item) => group.submit(item)));
    await idle();
    expect(commits.batches()).toEqual([['x:1', 'y:1', 'z:1']]);

    commits.succeed(0);
    await idle();
    expect(commits.batches()).toEqual([['x:1', 'y:1', 'z:1'], ['x:2']]);

    commits.succeed(1);
    await idle();
    expect(commits.batches()).toEqual([['x:1', 'y:1', 'z:1'], ['x:2'], ['x:3']]);

    commits.succeed(2);
    expect(await results).toEqual(['X:1', 'X:2', 'Y:1', 'X:3', 'Z:1']);
  });

  it('does not count items held back for their key against the batch size', async () => {
    const { commits, group } = setup({ maxBatch: 2, key: (item) => item.split(':')[0]! });
    const results = Promise.all(['x:1', 'x:2', 'y:1', 'z:1'].map((item) => group.submit(item)));
    await idle();
    expect(commits.batches()).toEqual([['x:1', 'y:1']]);
    commits.succeed(0);
    await idle();
    expect(commits.batches()).toEqual([['x:1', 'y:1'], ['x:2', 'z:1']]);
    commits.succeed(1);
    expect(await results).toEqual(['X:1', 'X:2', 'Y:1', 'Z:1']);
  });

  it('rejects only the item whose outcome is an error', async () => {
    const { commits, group } = setup();
    const boom = new Error('conflict on b');
    const results = Promise.allSettled(['a', 'b', 'c'].map((item) => group.submit(item)));
    await idle();
    commits.settle(0, [
      { ok: true, value: 'A' },
      { ok: false, error: boom },
      { ok: true, value: 'C' },
    ]);
    expect(await results).toEqual([
      { status: 'fulfilled', value: 'A' },
      { status: 'rejected', reason: boom },
      { status: 'fulfilled', value: 'C' },
    ]);
  });

  it('rejects an item the commit returned no outcome for', async () => {
    const { commits, group } = setup();
    const results = Promise.allSettled(['a', 'b'].map((item) => group.submit(item)));
    await idle();
    commits.settle(0, [{ ok: true, value: 'A' }]);
    expect(await results).toEqual([
      { status: 'fulfilled', value: 'A' },
      { status: 'rejected', reason: new Error('commit returned no outcome') },
    ]);
  });

  it('rejects the whole batch when the commit throws, and keeps committing afterwards', async () => {
    const { commits, group } = setup();
    const unavailable = new Error('store unavailable');
    const results = Promise.allSettled(['a', 'b'].map((item) => group.submit(item)));
    await idle();
    commits.fail(0, unavailable);
    expect(await results).toEqual([
      { status: 'rejected', reason: unavailable },
      { status: 'rejected', reason: unavailable },
    ]);

    const next = group.submit('c');
    await idle();
    expect(commits.batches()).toEqual([['a', 'b'], ['c']]);
    commits.succeed(1);
    expect(await next).toBe('C');
  });

  it('rejects the whole batch when the commit throws before returning a promise', async () => {
    const crash = new Error('bad batch');
    const group = new GroupCommit<string, string>({
      maxBatch: 10,
      maxInFlight: 1,
      key: (item) => item,
      commit: () => {
        throw crash;
      },
    });
    const results = await Promise.allSettled(['a', 'b'].map((item) => group.submit(item)));
    expect(results).toEqual([
      { status: 'rejected', reason: crash },
      { status: 'rejected', reason: crash },
    ]);
  });

  it('fills a batch up to maxBatch by weight, never splitting an item', async () => {
    const { commits, group } = setup({ maxBatch: 5, maxInFlight: 1, weight: (item) => Number(item.split(':')[1]) });
    const results = Promise.all(['a:2', 'b:2', 'c:2', 'd:1'].map((item) => group.submit(item)));
    await idle();
    expect(commits.batches()).toEqual([['a:2', 'b:2']]);
    commits.succeed(0);
    await idle();
    expect(commits.batches()).toEqual([['a:2', 'b:2'], ['c:2', 'd:1']]);
    commits.succeed(1);
    expect(await results).toEqual(['A:2', 'B:2', 'C:2', 'D:1']);
  });

  it('keeps batching other keys while a flood of one key waits, one of it per batch', async () => {
    const { commits, group } = setup({ maxBatch: 3, maxInFlight: 1, key: (item) => item.split(':')[0]! });
    const flood = Array.from({ length: 200_000 }, (_, i) => group.submit(`x:${i}`));
    const others = ['y:1', 'z:1'].map((item) => group.submit(item));
    await idle();
    expect(commits.batches()).toEqual([['x:0', 'y:1', 'z:1']]);
    commits.succeed(0);
    await idle();
    expect(commits.batches()[1]).toEqual(['x:1']);
    commits.succeed(1);
    expect(await Promise.all([flood[0], flood[1], ...others])).toEqual(['X:0', 'X:1', 'Y:1', 'Z:1']);
    expect(group.waiting).toBe(199_998);
  });

  it('refuses items beyond maxWaiting at once with Overloaded, and takes them again once there is room', async () => {
    const { commits, group } = setup({ maxBatch: 2, maxInFlight: 1, maxWaiting: 3 });
    const first = group.submit('a');
    await idle();
    const waiting = ['b', 'c', 'd'].map((item) => group.submit(item));
    await expect(group.submit('e')).rejects.toMatchObject({ name: 'Overloaded' });
    expect(group.waiting).toBe(3);

    commits.succeed(0);
    await idle();
    expect(commits.batches()).toEqual([['a'], ['b', 'c']]);
    const later = group.submit('e');
    commits.succeed(1);
    await idle();
    commits.succeed(2);
    expect(await Promise.all([first, ...waiting, later])).toEqual(['A', 'B', 'C', 'D', 'E']);
  });

  it('settles the items waiting behind a committed one of their key from its value, with no commit of their own', async () => {
    const { commits, group } = setup({
      maxBatch: 10,
      maxInFlight: 1,
      key: (item) => item.split(':')[0]!,
      // Same content as the committed item: answered from it; other content: an error; 'y' ones: left to a commit.
      settleFollower: (item, value) =>
        item.startsWith('y') ? undefined : item.toUpperCase() === value ? { ok: true, value: `${value} again` } : { ok: false, error: new Error(`${item} conflicts`) },
    });
    const first = ['x:1', 'y:1'].map((item) => group.submit(item));
    await idle();
    const followers = ['x:1', 'x:2', 'x:1', 'y:1'].map((item) => group.submit(item).catch((error: Error) => error.message));
    const other = group.submit('z:1');
    await idle();
    commits.succeed(0);

    expect(await Promise.all([...first, ...followers.slice(0, 3)])).toEqual(['X:1', 'Y:1', 'X:1 again', 'x:2 conflicts', 'X:1 again']);
    await idle();
    expect(commits.batches()).toEqual([['x:1', 'y:1'], ['y:1', 'z:1']]);
    commits.succeed(1);
    expect(await Promise.all([followers[3], other])).toEqual(['Y:1', 'Z:1']);
    expect(group.waiting).toBe(0);
  });

  it('takes its batch when the gate grants a slot, with what arrived while it waited', async () => {
    const gate = new StoreGate({ capacity: 1 });
    const held = await gate.acquire('urgent');
    const { commits, group } = setup({ maxInFlight: 1, gate: { store: gate, urgency: 'background' } });
    const results = Promise.all(['a', 'b'].map((item) => group.submit(item)));
    await idle();
    const late = group.submit('c');
    await idle();
    expect(commits.batches()).toEqual([]);
    held();
    await idle();
    expect(commits.batches()).toEqual([['a', 'b', 'c']]);
    commits.succeed(0);
    expect([...(await results), await late]).toEqual(['A', 'B', 'C']);
  });

  it('keeps committing a key after more than a thousand of its items were settled as followers', async () => {
    const { commits, group } = setup({ key: (item) => item.split(':')[0]!, settleFollower: (item, value) => ({ ok: true, value: `${value} for ${item}` }) });
    const first = group.submit('x:0');
    await idle();
    const followers = Array.from({ length: 1_100 }, (_, i) => group.submit(`x:${i + 1}`));
    commits.succeed(0);
    expect(await first).toBe('X:0');
    expect(await followers[1_099]).toBe('X:0 for x:1100');
    const late = group.submit('x:late');
    await idle();
    expect(commits.batches()).toEqual([['x:0'], ['x:late']]);
    commits.succeed(1);
    expect(await late).toBe('X:LATE');
    expect(group.waiting).toBe(0);
  });

  it('keeps committing new keys after more than a thousand keys have had their turn', async () => {
    const { commits, group } = setup({ maxBatch: 2_000 });
    const many = Promise.all(Array.from({ length: 1_100 }, (_, i) => group.submit(`k${i}`)));
    await idle();
    expect(commits.batches()[0]).toHaveLength(1_100);
    commits.succeed(0);
    await many;
    const late = group.submit('late');
    await idle();
    expect(commits.batches()[1]).toEqual(['late']);
    commits.succeed(1);
    expect(await late).toBe('LATE');
  });

  it('commits an item heavier than a whole batch, alone', async () => {
    const { commits, group } = setup({ maxBatch: 5, weight: (item) => Number(item.split(':')[1]) });
    const results = Promise.all(['a:7', 'b:1'].map((item) => group.submit(item)));
    await idle();
    expect(commits.batches()).toEqual([['a:7']]);
    commits.succeed(0);
    await idle();
    expect(commits.batches()).toEqual([['a:7'], ['b:1']]);
    commits.succeed(1);
    expect(await results).toEqual(['A:7', 'B:1']);
  });

  it('gives a key whose waiting items were all settled as followers no turn, and commits what comes next', async () => {
    const { commits, group } = setup({ key: (item) => item.split(':')[0]!, settleFollower: (item, value) => ({ ok: true, value: `${value} for ${item}` }) });
    const results = Promise.all(['x:1', 'x:2'].map((item) => group.submit(item)));
    await idle();
    commits.succeed(0);
    expect(await results).toEqual(['X:1', 'X:1 for x:2']);
    const next = group.submit('y:1');
    await idle();
    expect(commits.batches()).toEqual([['x:1'], ['y:1']]);
    commits.succeed(1);
    expect(await next).toBe('Y:1');
  });

  it('puts a key that had all its items in a batch behind the keys that waited before its next item', async () => {
    const { commits, group } = setup({ maxBatch: 2, key: (item) => item.split(':')[0]! });
    const first = group.submit('x:1');
    await idle();
    const later = Promise.all(['y:1', 'z:1', 'x:2'].map((item) => group.submit(item)));
    commits.succeed(0);
    await first;
    await idle();
    expect(commits.batches()).toEqual([['x:1'], ['y:1', 'z:1']]);
    commits.succeed(1);
    await idle();
    expect(commits.batches()[2]).toEqual(['x:2']);
    commits.succeed(2);
    expect(await later).toEqual(['Y:1', 'Z:1', 'X:2']);
  });

  it('gives the gate its slot back after each commit, and commits nothing when what it waited for was settled meanwhile', async () => {
    const gate = new StoreGate({ capacity: 1 });
    const { commits, group } = setup({
      maxInFlight: 2,
      key: (item) => item.split(':')[0]!,
      settleFollower: (item, value) => ({ ok: true, value: `${value} for ${item}` }),
      gate: { store: gate, urgency: 'background' },
    });
    const first = group.submit('x:1');
    await idle();
    expect(commits.batches()).toEqual([['x:1']]);
    // A second commit starts for it, and waits for the gate, which the first holds.
    const follower = group.submit('x:2');
    await idle();
    commits.succeed(0);
    expect([await first, await follower]).toEqual(['X:1', 'X:1 for x:2']);
    await idle();
    expect(commits.batches()).toEqual([['x:1']]);

    const held = await Promise.race([gate.acquire('urgent'), idle().then(() => undefined)]);
    expect(held).toBeTypeOf('function');
    held!();
    const next = group.submit('y:1');
    await idle();
    expect(commits.batches()).toEqual([['x:1'], ['y:1']]);
    commits.succeed(1);
    expect(await next).toBe('Y:1');
  });
});
