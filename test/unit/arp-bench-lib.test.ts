// Unit tests of the generic bench helpers (bench/lib/) the ARP bench uses.
import t from 'tap';
import { median, mean, percentile, summarize, round } from '../../bench/lib/stats';
import { parseShellTimes, timedLoopArgv } from '../../bench/lib/proc';

t.test('median and nearest-rank percentiles', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.ok(Number.isNaN(median([])));
  const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
  t.equal(percentile(xs, 50), 50);
  t.equal(percentile(xs, 99), 99);
  t.equal(percentile(xs, 100), 100);
  t.equal(percentile(xs, 1), 1);
  t.equal(percentile([7], 99), 7);
  t.throws(() => percentile(xs, 0), RangeError);
  t.throws(() => percentile(xs, 101), RangeError);
  t.equal(mean([1, 2, 3, 6]), 3);
  t.same(xs.slice(0, 3), [100, 99, 98], 'input left unsorted');
});

t.test('summarize', async (t) => {
  const s = summarize([5, 1, 4, 2, 3]);
  t.same(s, { n: 5, min: 1, median: 3, p90: 5, p99: 5, max: 5, mean: 3 });
  t.equal(summarize([]).n, 0);
  t.equal(round(1.23456, 2), 1.23);
});

t.test('bash times parsing', async (t) => {
  t.same(parseShellTimes('noise\n0m0.004s 0m0.001s\n1m2.500s 0m0.250s\n'), { shellUs: 5000, childrenUs: 62_750_000 });
  t.equal(parseShellTimes('0m0.004s\n'), undefined);
  t.equal(parseShellTimes('garbage\nmore garbage'), undefined);
});

t.test('timed loop argv', async (t) => {
  const argv = timedLoopArgv(3, ['echo', 'hi there'], 10);
  t.equal(argv[0], 'bash');
  t.match(argv[2], /read -t 0\.010 -u "\$fd"/);
  t.same(argv.slice(3), ['bench-loop', '3', 'echo', 'hi there']);
  t.notMatch(timedLoopArgv(1, ['true'])[2], /read -t/);
  t.throws(() => timedLoopArgv(0, ['true']), RangeError);
});

t.test('the timed loop really runs, pauses and reports times', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const argv = timedLoopArgv(5, ['true'], 20);
  const t0 = performance.now();
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  const took = performance.now() - t0;
  t.equal(r.status, 0, r.stderr);
  t.ok(took >= 95, `5 pauses of 20 ms took ${took.toFixed(0)} ms`);
  t.ok(parseShellTimes(r.stderr), `times parsed from ${JSON.stringify(r.stderr)}`);
});
