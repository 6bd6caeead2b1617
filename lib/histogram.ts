/**
 * A fixed log-linear histogram of durations (the HDR histogram layout): 1 ms buckets below 128 ms, then
 * 64 buckets per power of two up to 2^24 ms (4.6 h), with one overflow bucket above. Durations are whole
 * milliseconds; reporting a bucket's middle errs by at most 1/128 (0.8%) of the value. The bucket set is fixed, so each bucket can be a
 * top-level counter attribute that `ADD` moves in the same transaction as the order.
 */

const SUB_BUCKETS = 64;
const LINEAR_BELOW = 2 * SUB_BUCKETS; // 128: width 1 up to here
const TOP_EXPONENT = 24;
const TOP = 2 ** TOP_EXPONENT;

/** Lower bounds of every bucket, ascending; the last one also takes everything above the top. */
export const BUCKET_BOUNDS: readonly number[] = (() => {
  const bounds: number[] = [];
  for (let ms = 0; ms < LINEAR_BELOW; ms++) bounds.push(ms);
  for (let exponent = Math.log2(LINEAR_BELOW); exponent < TOP_EXPONENT; exponent++) {
    const width = 2 ** exponent / SUB_BUCKETS;
    for (let i = 0; i < SUB_BUCKETS; i++) bounds.push(2 ** exponent + i * width);
  }
  bounds.push(TOP);
  return bounds;
})();

const widthOf = (bound: number): number =>
  bound < LINEAR_BELOW ? 1 : bound >= TOP ? 0 : 2 ** Math.floor(Math.log2(bound)) / SUB_BUCKETS;

/** The lower bound of the bucket that holds `ms`. */
export const bucketOf = (ms: number): number => {
  const value = Math.max(0, Math.floor(ms));
  if (value < LINEAR_BELOW) return value;
  if (value >= TOP) return TOP;
  const width = widthOf(value);
  return Math.floor(value / width) * width;
};

/** The attribute name of the bucket that holds `ms`. */
export const bucketAttribute = (ms: number): string => `h_${bucketOf(ms)}`;

/** Counts per bucket lower bound. */
export type Histogram = ReadonlyMap<number, number>;

/**
 * The value at quantile `q` (0..1): the middle of the bucket holding the rank-th value (nearest-rank
 * definition), or null for an empty histogram.
 */
export const quantile = (histogram: Histogram, q: number): number | null => {
  let total = 0;
  for (const count of histogram.values()) total += count;
  if (total === 0) return null;
  // The epsilon keeps float noise (0.07 * 100 = 7.000000000000001) from skipping a rank.
  const rank = Math.max(1, Math.ceil(q * total - 1e-9));
  let seen = 0;
  for (const bound of [...histogram.keys()].sort((a, b) => a - b)) {
    seen += histogram.get(bound) ?? 0;
    if (seen >= rank) return bound + Math.floor(widthOf(bound) / 2);
  }
  return null;
};
