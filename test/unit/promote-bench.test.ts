// bench/promote.ts's timeline arithmetic: promoted intervals from marks, and their overlap.
import t from 'tap';
import { overlapMs, promotedIntervals } from '../../bench/promote';

t.test('promoted intervals: p1 opens, d1 closes, an open one ends at the end', async (t) => {
  const tl = [{ atMs: 10, site: 'a', what: 'p1' }, { atMs: 12, site: 'a', what: 'p2' }, { atMs: 50, site: 'a', what: 'd1' }, { atMs: 60, site: 'b', what: 'p1' }];
  t.same(promotedIntervals(tl, 'a', 100), [[10, 50]]);
  t.same(promotedIntervals(tl, 'b', 100), [[60, 100]]);
});

t.test('overlap: 0 when disjoint, the shared time otherwise', async (t) => {
  t.equal(overlapMs([[10, 50]], [[60, 100]]), 0);
  t.equal(overlapMs([[10, 50]], [[50, 100]]), 0, 'touching is not overlapping');
  t.equal(overlapMs([[10, 70]], [[60, 100]]), 10);
  t.equal(overlapMs([[0, 10], [20, 30]], [[5, 25]]), 10);
});
