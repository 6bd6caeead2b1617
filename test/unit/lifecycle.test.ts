import { describe, expect, it } from 'vitest';
import { lastAttemptOpen, nextStep, retryDelay, type LifecycleState, type NextStep } from '../../lib/lifecycle.ts';
import { seededRandom } from '../support.ts';

const NOW = 1_764_064_800_000;
const MAX_ATTEMPTS = 3;
const MAX_FAULTS = 3;

describe('nextStep', () => {
  const budget = { maxAttempts: MAX_ATTEMPTS, maxFaults: MAX_FAULTS };
  it.each<[string, LifecycleState, NextStep]>([
    ['claims a pending order', { status: 'PENDING', attempts: 0 }, { kind: 'claim' }],
    ['claims a pending order whatever its attempts say', { status: 'PENDING', attempts: 5 }, { kind: 'claim' }],
    ['claims a pending order whatever its other fields say', { status: 'PENDING', attempts: 0, due_at: NOW + 60_000, failed_attempts: MAX_ATTEMPTS }, { kind: 'claim' }],
    ['finishes with a completed order', { status: 'COMPLETED', attempts: 1 }, { kind: 'finished' }],
    ['finishes with a failed order', { status: 'FAILED', attempts: MAX_ATTEMPTS }, { kind: 'finished' }],
    [
      'finishes with a completed order that still carries a lease',
      { status: 'COMPLETED', attempts: 1, due_at: NOW + 60_000 },
      { kind: 'finished' },
    ],
    [
      'leaves a processing order with a lease in the future alone until the lease runs out',
      { status: 'PROCESSING', attempts: 1, due_at: NOW + 30_000 },
      { kind: 'busy', until: NOW + 30_000 },
    ],
    [
      'leaves a leased order alone even on its last attempt',
      { status: 'PROCESSING', attempts: MAX_ATTEMPTS, failed_attempts: MAX_ATTEMPTS - 1, due_at: NOW + 1 },
      { kind: 'busy', until: NOW + 1 },
    ],
    [
      'claims again an order whose back-off after a failed attempt is over',
      { status: 'PROCESSING', attempts: 1, failed_attempts: 1, due_at: NOW - 1 },
      { kind: 'claim' },
    ],
    [
      'claims again an order whose back-off ends right now',
      { status: 'PROCESSING', attempts: MAX_ATTEMPTS - 1, failed_attempts: MAX_ATTEMPTS - 1, due_at: NOW },
      { kind: 'claim' },
    ],
    [
      'takes over an order whose lease ran out with no outcome recorded',
      { status: 'PROCESSING', attempts: 1, due_at: NOW - 1 },
      { kind: 'take over' },
    ],
    [
      'takes over a processing order without a lease',
      { status: 'PROCESSING', attempts: 1 },
      { kind: 'take over' },
    ],
    [
      'takes over an order cut off on what was its last attempt: a lapse spends no budget',
      { status: 'PROCESSING', attempts: MAX_ATTEMPTS, failed_attempts: MAX_ATTEMPTS - 1, due_at: NOW - 1 },
      { kind: 'take over' },
    ],
    [
      'takes over an order cut off on every attempt, while its lapses are fewer than the fault bound',
      { status: 'PROCESSING', attempts: MAX_FAULTS - 1, lapsed: MAX_FAULTS - 2, faults: MAX_FAULTS - 2, due_at: NOW - 1 },
      { kind: 'take over' },
    ],
    [
      'claims again an order whose lapses are recorded and whose last attempt failed',
      { status: 'PROCESSING', attempts: 3, lapsed: 2, failed_attempts: 1, faults: 2, due_at: NOW - 1 },
      { kind: 'claim' },
    ],
    [
      'quarantines an order whose lease ran out once more than the fault bound allows (a crash loop)',
      { status: 'PROCESSING', attempts: MAX_FAULTS, lapsed: MAX_FAULTS - 1, faults: MAX_FAULTS - 1, due_at: NOW - 1 },
      { kind: 'quarantine' },
    ],
    [
      'counts faults of other kinds towards the bound too',
      { status: 'PROCESSING', attempts: 1, faults: MAX_FAULTS - 1, due_at: NOW - 1 },
      { kind: 'quarantine' },
    ],
    [
      'fails an order waiting for a retry its budget no longer allows',
      { status: 'PROCESSING', attempts: MAX_ATTEMPTS + 1, failed_attempts: MAX_ATTEMPTS, lapsed: 1, due_at: NOW - 1 },
      { kind: 'exhausted' },
    ],
    [
      'leaves a quarantined order alone, whatever its status',
      { status: 'PENDING', attempts: 0, faults: MAX_FAULTS, quarantined: '2026-11-25T10:00:00.000Z' },
      { kind: 'quarantined' },
    ],
    [
      'leaves a quarantined order alone even once its lease ran out',
      { status: 'PROCESSING', attempts: 1, due_at: NOW - 1, quarantined: '2026-11-25T10:00:00.000Z' },
      { kind: 'quarantined' },
    ],
  ])('%s', (_, order, step) => {
    expect(nextStep(order, NOW, budget)).toEqual(step);
  });

  it('never ends an order FAILED while its work failed fewer times than MAX_ATTEMPTS, however often it was cut off', () => {
    const wrong: LifecycleState[] = [];
    for (let failed = 0; failed < MAX_ATTEMPTS; failed++) {
      for (let lapsed = 0; lapsed <= 10; lapsed++) {
        for (const open of [0, 1]) {
          const order: LifecycleState = { status: 'PROCESSING', attempts: failed + lapsed + open, failed_attempts: failed, lapsed, faults: lapsed, due_at: NOW - 1 };
          if (nextStep(order, NOW, budget).kind === 'exhausted') wrong.push(order);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('sets an order cut off on every attempt aside at its POISON_MAX_TRIES-th lapse, never claiming it forever', () => {
    let order: LifecycleState = { status: 'PENDING', attempts: 0 };
    const steps: string[] = [];
    for (let round = 0; round < 10; round++) {
      const step = nextStep(order, NOW, budget);
      steps.push(step.kind);
      if (step.kind === 'quarantine') break;
      // Claimed, then cut off: a take-over records the lapse of the attempt before.
      const lapsed = step.kind === 'take over' ? 1 : 0;
      order = { status: 'PROCESSING', attempts: order.attempts + 1, lapsed: (order.lapsed ?? 0) + lapsed, faults: (order.faults ?? 0) + lapsed, due_at: NOW - 1 };
    }
    expect(steps).toEqual(['claim', ...Array(MAX_FAULTS - 1).fill('take over'), 'quarantine']);
  });
});

describe('lastAttemptOpen', () => {
  it.each<[string, LifecycleState, boolean]>([
    ['an attempt under way', { status: 'PROCESSING', attempts: 1, due_at: NOW + 1 }, true],
    ['an attempt whose failure is recorded', { status: 'PROCESSING', attempts: 2, failed_attempts: 1, lapsed: 1 }, false],
    ['an attempt after a lapse and a failure', { status: 'PROCESSING', attempts: 3, failed_attempts: 1, lapsed: 1 }, true],
    ['a pending order', { status: 'PENDING', attempts: 0 }, false],
    ['a completed order', { status: 'COMPLETED', attempts: 1 }, false],
    ['a failed order', { status: 'FAILED', attempts: 2, failed_attempts: 1 }, false],
  ])('%s: %s', (_, order, open) => {
    expect(lastAttemptOpen(order)).toBe(open);
  });
});

describe('retryDelay', () => {
  const BASE = 100;
  const MAX = 1_000;
  const delays = (random: () => number) => [1, 2, 3, 4, 5, 6].map((attempt) => retryDelay(attempt, BASE, MAX, random));

  it('doubles the longest delay with each attempt, up to the cap', () => {
    expect(delays(() => 1)).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it('never waits less than half the ceiling', () => {
    expect(delays(() => 0)).toEqual([50, 100, 200, 400, 500, 500]);
  });

  it('puts a middle random value in the middle of the range', () => {
    expect(delays(() => 0.5)).toEqual([75, 150, 300, 600, 750, 750]);
  });

  it('treats attempt 0 like attempt 1', () => {
    expect(retryDelay(0, BASE, MAX, () => 1)).toBe(100);
  });

  it('stays at the cap for a huge attempt number', () => {
    expect([retryDelay(2_000, BASE, MAX, () => 0), retryDelay(2_000, BASE, MAX, () => 1)]).toEqual([500, 1_000]);
  });

  it('keeps every delay between half and all of its ceiling', () => {
    const random = seededRandom(42);
    const outside: { attempt: number; delay: number; ceiling: number }[] = [];
    for (let attempt = 1; attempt <= 12; attempt++) {
      const ceiling = Math.min(MAX, BASE * 2 ** (attempt - 1));
      for (let i = 0; i < 1_000; i++) {
        const delay = retryDelay(attempt, BASE, MAX, random);
        if (delay < ceiling / 2 || delay > ceiling) outside.push({ attempt, delay, ceiling });
      }
    }
    expect(outside).toEqual([]);
  });

  it('never waits less than the previous attempt could have, while below the cap', () => {
    // Attempts 2-4 have uncapped ceilings (200, 400, 800): their shortest waits are the longest of 1-3.
    const shortest = [2, 3, 4].map((attempt) => retryDelay(attempt, BASE, MAX, () => 0));
    const longestBefore = [1, 2, 3].map((attempt) => retryDelay(attempt, BASE, MAX, () => 1));
    expect(shortest).toEqual(longestBefore);
  });

  it('gives the same delays for the same random sequence', () => {
    expect(delays(seededRandom(7))).toEqual(delays(seededRandom(7)));
  });
});
