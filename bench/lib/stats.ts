/**
 * Layer: bench support, pure. Order statistics for latency samples, shared
 * by every bench: median and percentiles by the nearest-rank method (no
 * interpolation, so each figure is a sample that was actually measured).
 */

/** Samples sorted ascending (a copy; the input is left as it is). */
export function sorted(samples: readonly number[]): number[] {
  return [...samples].sort((a, b) => a - b);
}

/**
 * The p-th percentile (0 < p ≤ 100) by nearest rank: the smallest sample
 * with at least p % of the samples at or below it. NaN for no samples.
 */
export function percentile(samples: readonly number[], p: number): number {
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  if (samples.length === 0) return NaN;
  const s = sorted(samples);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** The median: the mean of the two middle samples for an even count. NaN for none. */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) return NaN;
  const s = sorted(samples);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Arithmetic mean; NaN for none. */
export function mean(samples: readonly number[]): number {
  if (samples.length === 0) return NaN;
  let sum = 0;
  for (const x of samples) sum += x;
  return sum / samples.length;
}

/** The usual summary of a latency distribution. */
export interface Summary { n: number; min: number; median: number; p90: number; p99: number; max: number; mean: number }

/** Summarize samples (all NaN but `n` when empty). */
export function summarize(samples: readonly number[]): Summary {
  const s = sorted(samples);
  return {
    n: s.length,
    min: s.length ? s[0]! : NaN,
    median: median(s),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s.length ? s[s.length - 1]! : NaN,
    mean: mean(s),
  };
}

/** Round to `digits` decimals, for JSON and printed tables. */
export function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
