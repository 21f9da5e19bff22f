/**
 * Layer: bench support, pure. Order statistics for latency samples, shared
 * by every bench: median and percentiles by the nearest-rank method (no
 * interpolation, so each figure is a sample that was actually measured),
 * the rule for when a tail percentile is worth reporting at all, and a
 * seeded bootstrap confidence interval of a ratio of medians.
 */

/** Samples sorted ascending (a copy; the input is left as it is). */
export function sorted(samples: readonly number[]): number[] {
  return [...samples].sort((a, b) => a - b);
}

/**
 * The p-th percentile (0 < p ≤ 100) by nearest rank: the smallest sample
 * with at least p % of the samples at or below it. NaN for no samples.
 * With fewer than {@link minSamplesFor}(p) samples this IS the maximum;
 * use {@link reportedPercentile} for figures that get published.
 */
export function percentile(samples: readonly number[], p: number): number {
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  if (samples.length === 0) return NaN;
  const s = sorted(samples);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)]!;
}

/**
 * The fewest samples for which the nearest-rank p-th percentile can be
 * anything but the maximum: rank ⌈p·n/100⌉ < n ⇔ n ≥ 100 / (100 − p).
 * p90 → 10, p95 → 20, p99 → 100; p100 never (Infinity). Below it a "p95"
 * column is a max column under another name, which is what a reviewer
 * found in our tables.
 */
export function minSamplesFor(p: number): number {
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  if (p === 100) return Infinity;
  // The epsilon keeps 100/(100-95) = 20.000000000000004 from rounding up to 21.
  return Math.ceil(100 / (100 - p) - 1e-9);
}

/**
 * The p-th percentile for publication: null unless there are at least
 * {@link minSamplesFor}(p) samples (otherwise it would be the max, which
 * is reported as such).
 */
export function reportedPercentile(samples: readonly number[], p: number): number | null {
  return samples.length >= minSamplesFor(p) ? percentile(samples, p) : null;
}

/** Why a percentile column may be null, for the `definitions` of a result file. */
export function percentileRule(...ps: number[]): string {
  return `${ps.map((p) => `p${p} only with n >= ${minSamplesFor(p)}`).join(', ')}, null otherwise: `
    + 'by nearest rank, with fewer samples the percentile is the max, which is reported as max';
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

/**
 * Summarize samples (all NaN but `n` when empty). Raw order statistics:
 * p90 and p99 are computed whatever `n`; for published figures use
 * {@link summarizeReported}.
 */
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

/** {@link Summary} for publication: a percentile is null where `n` is too small for it to differ from `max`. */
export interface ReportedSummary { n: number; min: number; median: number; p90: number | null; p99: number | null; max: number; mean: number }

/** Summarize samples for a result file (see {@link reportedPercentile}). */
export function summarizeReported(samples: readonly number[]): ReportedSummary {
  const s = summarize(samples);
  return {
    ...s,
    p90: samples.length >= minSamplesFor(90) ? s.p90 : null,
    p99: samples.length >= minSamplesFor(99) ? s.p99 : null,
  };
}

/** Round to `digits` decimals, for JSON and printed tables. */
export function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** {@link round} that keeps null (a percentile not reported). */
export function roundOrNull(x: number | null, digits = 3): number | null {
  return x === null ? null : round(x, digits);
}

/**
 * A small seeded PRNG (mulberry32): uniform in [0, 1). Seeded so that a
 * bootstrap interval written to a result file comes out the same when the
 * report is recomputed from the same samples.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Options of {@link bootstrapMedianRatioCi}. */
export interface BootstrapOptions {
  /** Resamples (default 10 000). */
  iterations?: number;
  /** Confidence level in (0, 1) (default 0.95). */
  level?: number;
  /** PRNG seed (default a fixed constant: the same samples give the same interval). */
  seed?: number;
}

/** The default seed of {@link bootstrapMedianRatioCi}. */
export const BOOTSTRAP_SEED = 20_261_122;

/**
 * Percentile-bootstrap confidence interval of median(a) / median(b): both
 * samples are resampled independently with replacement (they come from
 * separate trials), the ratio of the resampled medians is taken each time,
 * and the interval is the (1 − level)/2 and (1 + level)/2 quantiles of those
 * ratios (nearest rank). If it excludes 1, the two medians differ at that
 * level; at n = 10 the interval is wide, which is the honest answer.
 * Undefined when either sample has fewer than 2 values, or when a
 * resampled median of `b` is 0 (the ratio does not exist).
 */
export function bootstrapMedianRatioCi(a: readonly number[], b: readonly number[], opts: BootstrapOptions = {}): [number, number] | undefined {
  const iterations = opts.iterations ?? 10_000;
  const level = opts.level ?? 0.95;
  if (!(level > 0 && level < 1)) throw new RangeError(`level must be in (0, 1), got ${level}`);
  if (!Number.isInteger(iterations) || iterations < 100) throw new RangeError(`iterations must be an integer >= 100, got ${iterations}`);
  if (a.length < 2 || b.length < 2) return undefined;
  const rnd = seededRandom(opts.seed ?? BOOTSTRAP_SEED);
  const ra = new Array<number>(a.length);
  const rb = new Array<number>(b.length);
  const ratios = new Array<number>(iterations);
  for (let i = 0; i < iterations; i++) {
    for (let j = 0; j < a.length; j++) ra[j] = a[Math.floor(rnd() * a.length)]!;
    for (let j = 0; j < b.length; j++) rb[j] = b[Math.floor(rnd() * b.length)]!;
    const mb = median(rb);
    if (mb === 0) return undefined;
    ratios[i] = median(ra) / mb;
  }
  const tail = ((1 - level) / 2) * 100;
  return [percentile(ratios, tail), percentile(ratios, 100 - tail)];
}

/** Whether an interval lies wholly on one side of 1 (null: no interval). */
export function excludesOne(ci: readonly [number, number] | undefined | null): boolean | null {
  return ci ? ci[0] > 1 || ci[1] < 1 : null;
}
