// Unit tests of the bench statistics helpers (bench/lib/stats.ts): when a
// tail percentile may be reported, and the seeded bootstrap interval of a
// ratio of medians that failover.json and ipset.json carry.
import t from 'tap';
import {
  minSamplesFor, reportedPercentile, percentile, summarizeReported, percentileRule,
  seededRandom, bootstrapMedianRatioCi, excludesOne, median, roundOrNull,
} from '../../bench/lib/stats';

t.test('a percentile is reported only where it can differ from the max', async (t) => {
  t.equal(minSamplesFor(95), 20);
  t.equal(minSamplesFor(99), 100);
  t.equal(minSamplesFor(90), 10);
  t.equal(minSamplesFor(50), 2);
  t.equal(minSamplesFor(100), Infinity);
  t.throws(() => minSamplesFor(0), RangeError);
  // The rule is exact: one sample fewer and nearest rank lands on the max.
  for (const p of [90, 95, 99]) {
    const n = minSamplesFor(p);
    const at = Array.from({ length: n }, (_, i) => i + 1);
    const below = at.slice(0, -1);
    t.ok(percentile(at, p) < Math.max(...at), `p${p} at n = ${n} is below the max`);
    t.equal(percentile(below, p), Math.max(...below), `p${p} at n = ${n - 1} is the max`);
  }
  const ten = [5, 9, 1, 3, 7, 2, 8, 4, 10, 6];
  t.equal(reportedPercentile(ten, 95), null, 'n = 10: no p95');
  t.equal(percentile(ten, 95), 10, '(it would have been the max)');
  const twenty = Array.from({ length: 20 }, (_, i) => 20 - i);
  t.equal(reportedPercentile(twenty, 95), 19, 'n = 20: p95 is the 19th of 20');
  t.equal(reportedPercentile([], 95), null);
  t.match(percentileRule(95, 99), /p95 only with n >= 20, p99 only with n >= 100/);
  t.equal(roundOrNull(null), null);
  t.equal(roundOrNull(1.23456, 2), 1.23);
});

t.test('summarizeReported nulls the tails it cannot tell from the max', async (t) => {
  const s = summarizeReported([5, 1, 4, 2, 3]);
  t.same(s, { n: 5, min: 1, median: 3, p90: null, p99: null, max: 5, mean: 3 });
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  const h = summarizeReported(hundred);
  t.equal(h.p90, 90);
  t.equal(h.p99, 99);
  t.equal(h.max, 100);
  const fifty = summarizeReported(hundred.slice(0, 50));
  t.equal(fifty.p90, 45);
  t.equal(fifty.p99, null);
});

t.test('seeded PRNG: reproducible, in [0, 1), seed-dependent', async (t) => {
  const a = seededRandom(42);
  const b = seededRandom(42);
  const xs = Array.from({ length: 1000 }, () => a());
  t.same(Array.from({ length: 1000 }, () => b()), xs, 'same seed, same stream');
  t.ok(xs.every((x) => x >= 0 && x < 1));
  const m = xs.reduce((s, x) => s + x, 0) / xs.length;
  t.ok(m > 0.45 && m < 0.55, `mean of 1000 draws ${m.toFixed(3)} near 0.5`);
  t.not(seededRandom(43)(), seededRandom(42)(), 'another seed, another stream');
});

t.test('bootstrap interval of a median ratio', async (t) => {
  // Two clearly different samples: the interval holds the point ratio and excludes 1.
  const slow = [300, 310, 290, 305, 295, 320, 280, 315, 298, 302];
  const fast = [100, 104, 97, 101, 99, 106, 95, 103, 98, 102];
  const ci = bootstrapMedianRatioCi(slow, fast)!;
  t.ok(ci, 'an interval');
  const point = median(slow) / median(fast);
  t.ok(ci[0] <= point && point <= ci[1], `[${ci}] holds the point ratio ${point.toFixed(3)}`);
  t.ok(ci[0] > 2.5 && ci[1] < 3.5, `[${ci}] is near 3`);
  t.equal(excludesOne(ci), true);
  t.same(bootstrapMedianRatioCi(slow, fast), ci, 'seeded: the same samples give the same interval');
  t.not(bootstrapMedianRatioCi(slow, fast, { seed: 7 })![0], undefined);

  // Two samples from one distribution: the interval straddles 1.
  const rnd = seededRandom(1);
  const x = Array.from({ length: 30 }, () => 100 + 50 * rnd());
  const y = Array.from({ length: 30 }, () => 100 + 50 * rnd());
  const same = bootstrapMedianRatioCi(x, y)!;
  t.ok(same[0] < 1 && same[1] > 1, `[${same}] contains 1`);
  t.equal(excludesOne(same), false);

  // A wider level gives a wider interval.
  const ci80 = bootstrapMedianRatioCi(slow, fast, { level: 0.8 })!;
  t.ok(ci80[0] >= ci[0] && ci80[1] <= ci[1], `80 % [${ci80}] inside 95 % [${ci}]`);

  // No interval from one sample, nor from a denominator whose median is 0.
  t.equal(bootstrapMedianRatioCi([5], fast), undefined);
  t.equal(bootstrapMedianRatioCi(slow, [0, 0, 0]), undefined);
  t.equal(excludesOne(undefined), null);
  t.throws(() => bootstrapMedianRatioCi(slow, fast, { level: 1 }), RangeError);
  t.throws(() => bootstrapMedianRatioCi(slow, fast, { iterations: 10 }), RangeError);
});
