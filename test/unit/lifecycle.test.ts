import { describe, expect, it } from 'vitest';
import { nextStep, retryDelay, type LifecycleState, type NextStep } from '../../lib/lifecycle.ts';

const NOW = 1_764_064_800_000;
const MAX_ATTEMPTS = 3;

/** A deterministic stand-in for Math.random (mulberry32). */
const seededRandom = (seed: number) => (): number => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

describe('nextStep', () => {
  it.each<[string, LifecycleState, NextStep]>([
    ['claims a pending order', { status: 'PENDING', attempts: 0 }, { kind: 'claim' }],
    ['claims a pending order whatever its attempts say', { status: 'PENDING', attempts: 5 }, { kind: 'claim' }],
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
      { status: 'PROCESSING', attempts: MAX_ATTEMPTS, due_at: NOW + 1 },
      { kind: 'busy', until: NOW + 1 },
    ],
    [
      'claims a processing order whose lease ran out with attempts left',
      { status: 'PROCESSING', attempts: 1, due_at: NOW - 1 },
      { kind: 'claim' },
    ],
    [
      'claims a processing order whose lease runs out right now',
      { status: 'PROCESSING', attempts: MAX_ATTEMPTS - 1, due_at: NOW },
      { kind: 'claim' },
    ],
    [
      'claims a processing order without a lease',
      { status: 'PROCESSING', attempts: 1 },
      { kind: 'claim' },
    ],
    [
      'exhausts a processing order whose lease ran out on the last attempt',
      { status: 'PROCESSING', attempts: MAX_ATTEMPTS, due_at: NOW - 1 },
      { kind: 'exhausted' },
    ],
    [
      'exhausts a processing order beyond its budget',
      { status: 'PROCESSING', attempts: MAX_ATTEMPTS + 2, due_at: NOW - 60_000 },
      { kind: 'exhausted' },
    ],
    [
      'exhausts a processing order without a lease on the last attempt',
      { status: 'PROCESSING', attempts: MAX_ATTEMPTS },
      { kind: 'exhausted' },
    ],
  ])('%s', (_, order, step) => {
    expect(nextStep(order, NOW, MAX_ATTEMPTS)).toEqual(step);
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
