import { describe, expect, it } from 'vitest';
import { BUCKET_BOUNDS, bucketAttribute, bucketOf, quantile, type Histogram } from '../../lib/histogram.ts';
import { seededRandom } from '../support.ts';

const TOP = 2 ** 24;

/** A histogram of whole-millisecond durations, as the store counts them. */
const histogramOf = (values: number[]): Map<number, number> => {
  const histogram = new Map<number, number>();
  for (const value of values) histogram.set(bucketOf(value), (histogram.get(bucketOf(value)) ?? 0) + 1);
  return histogram;
};

describe('BUCKET_BOUNDS', () => {
  it('is strictly ascending, so every bound is unique', () => {
    const outOfOrder = BUCKET_BOUNDS.filter((bound, i) => i > 0 && bound <= BUCKET_BOUNDS[i - 1]!);
    expect(outOfOrder).toEqual([]);
    expect(new Set(BUCKET_BOUNDS).size).toBe(BUCKET_BOUNDS.length);
  });

  it('has 1 ms buckets below 128, 64 buckets per power of two up to 2^24, and one overflow bucket', () => {
    expect({
      count: BUCKET_BOUNDS.length,
      first: BUCKET_BOUNDS.slice(0, 3),
      aroundLinearEnd: BUCKET_BOUNDS.slice(126, 131),
      last: BUCKET_BOUNDS.slice(-2),
    }).toEqual({
      count: 128 + (24 - 7) * 64 + 1,
      first: [0, 1, 2],
      aroundLinearEnd: [126, 127, 128, 130, 132],
      last: [TOP - 2 ** 17, TOP],
    });
  });

  it('holds only whole milliseconds, so each bound makes a valid attribute name', () => {
    expect(BUCKET_BOUNDS.filter((bound) => !Number.isSafeInteger(bound))).toEqual([]);
  });

  it('maps each bound, and the last millisecond before the next bound, to that bound', () => {
    const wrong: { bound: number; first: number; last: number }[] = [];
    for (let i = 0; i < BUCKET_BOUNDS.length - 1; i++) {
      const bound = BUCKET_BOUNDS[i]!;
      const first = bucketOf(bound);
      const last = bucketOf(BUCKET_BOUNDS[i + 1]! - 1);
      if (first !== bound || last !== bound) wrong.push({ bound, first, last });
    }
    expect(wrong).toEqual([]);
  });
});

describe('bucketOf', () => {
  it.each([
    [0, 0],
    [1, 1],
    [127, 127],
    [127.9, 127],
    [128, 128],
    [129, 128],
    [130, 130],
    [255, 254],
    [256, 256],
    [1_000, 1_000],
    [1_007, 1_000],
    [1_008, 1_008],
    [1_999, 1_984],
    [TOP - 1, TOP - 2 ** 17],
    [TOP, TOP],
    [TOP + 1, TOP],
    [1e12, TOP],
    [Number.MAX_SAFE_INTEGER, TOP],
  ])('puts %d ms in the bucket starting at %d', (ms, bound) => {
    expect(bucketOf(ms)).toBe(bound);
  });

  it('puts a negative duration in the first bucket', () => {
    expect(bucketOf(-5)).toBe(0);
  });

  it('names the attribute after the lower bound', () => {
    expect([bucketAttribute(0), bucketAttribute(1_999), bucketAttribute(1e9)]).toEqual(['h_0', 'h_1984', `h_${TOP}`]);
  });
});

describe('quantile', () => {
  it('is null for an empty histogram', () => {
    expect([quantile(new Map(), 0.5), quantile(new Map([[10, 0]]), 0.99)]).toEqual([null, null]);
  });

  it('reports any single duration below 2^24 ms within 1/128 of its value', () => {
    const random = seededRandom(1);
    // Every duration up to 5 s, then log-uniform ones up to the top, then the edges of each power of two.
    const values = Array.from({ length: 5_000 }, (_, i) => i + 1);
    for (let i = 0; i < 50_000; i++) values.push(Math.floor(2 ** (random() * 24)));
    for (let exponent = 7; exponent < 24; exponent++) values.push(2 ** exponent - 1, 2 ** exponent, 2 ** exponent + 1);
    const tooFar = values
      .filter((value) => value >= 1 && value < TOP)
      .map((value) => ({ value, reported: quantile(histogramOf([value]), 0.5)! }))
      .filter(({ value, reported }) => Math.abs(reported - value) / value > 1 / 128);
    expect(tooFar).toEqual([]);
  });

  it('reports a duration below 128 ms exactly', () => {
    expect([0, 1, 64, 127].map((ms) => quantile(histogramOf([ms]), 1))).toEqual([0, 1, 64, 127]);
  });

  it('reports the overflow bucket as 2^24', () => {
    expect(quantile(histogramOf([TOP * 10]), 0.5)).toBe(TOP);
  });

  it('takes the nearest rank on a known histogram', () => {
    // 100 durations: 50 of 10 ms, 45 of 20 ms, 4 of 1000 ms and 1 of 1999 ms (bucket 1984, width 16).
    const histogram: Histogram = new Map([
      [1_984, 1],
      [10, 50],
      [1_000, 4],
      [20, 45],
    ]);
    expect({
      p0: quantile(histogram, 0),
      p50: quantile(histogram, 0.5),
      p51: quantile(histogram, 0.51),
      p95: quantile(histogram, 0.95),
      p96: quantile(histogram, 0.96),
      p99: quantile(histogram, 0.99),
      p100: quantile(histogram, 1),
    }).toEqual({ p0: 10, p50: 10, p51: 20, p95: 20, p96: 1_004, p99: 1_004, p100: 1_992 });
  });

  it('takes the nearest rank of a handful of durations', () => {
    const histogram = histogramOf([40, 10, 30, 20]);
    expect([0.25, 0.5, 0.75, 0.76, 0.99].map((q) => quantile(histogram, q))).toEqual([10, 20, 30, 40, 40]);
  });
});
