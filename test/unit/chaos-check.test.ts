// Unit: the chaos bench's pure parts — the all-down windows, the client-gap
// check that leaves them out, and the bounds derived from the vip timing.
import t from 'tap';
import { allDownWindows, boundsOf, clientGaps, SLACK_MS, type Unavailable } from '../../bench/lib/chaos-check';
import { VIGIL_DEFAULT, VIGIL_AGGRESSIVE } from '../../bench/lib/ha';

const ms = (x: number) => BigInt(x) * 1_000_000n;
const ev = (atMs: number, node: number, down: boolean): Unavailable => ({ atNs: ms(atMs), node, down, why: down ? 'cut' : 'healed' });

t.test('all-down windows need every node down at once', async (t) => {
  const events = [ev(100, 0, true), ev(200, 1, true), ev(300, 2, true), ev(500, 1, false), ev(600, 1, true), ev(900, 0, false)];
  t.same(allDownWindows(events, 3, ms(1000)), [[ms(300), ms(500)], [ms(600), ms(900)]]);
  t.same(allDownWindows(events.slice(0, 3), 3, ms(1000)), [[ms(300), ms(1000)]], 'still down at the end');
  t.same(allDownWindows([ev(100, 0, true), ev(200, 0, false)], 3, ms(1000)), [], 'one node down is not all');
  t.same(allDownWindows([ev(300, 2, true), ev(100, 0, true), ev(200, 1, true)], 3, ms(1000)), [[ms(300), ms(1000)]], 'events in any order');
});

t.test('client gaps leave out the time every node was down', async (t) => {
  const answers = [0, 10, 20, 2020, 2030, 5030].map(ms);
  const events = [ev(500, 0, true), ev(600, 1, true), ev(700, 2, true), ev(1700, 2, false)];
  const gaps = clientGaps(answers, events, 3, 0n, ms(5100));
  t.same(gaps.map((g) => [g.startMs, g.totalMs, g.countedMs]), [[20, 2000, 1000], [2030, 3000, 3000]]);
  t.same(clientGaps(answers, [], 3, 0n, ms(5030)).map((g) => g.countedMs), [2000, 3000], 'without down time every ms counts');
  t.same(clientGaps([ms(0), ms(50)], [], 3, 0n, ms(100)), [], 'gaps of 100 ms or less are not listed');
});

t.test('bounds follow the timing the nodes run with', async (t) => {
  const d = boundsOf(VIGIL_DEFAULT);
  // Defaults: check 1 s, failure check 200 ms, probe timeout 200 ms, take_over_after 3, master check 2 s, ip file 5 s.
  t.equal(d.takeoverMs, 1000 + 3 * (200 + 200));
  t.equal(d.settleMs, 2000 + 1000 + SLACK_MS);
  t.equal(d.ipFileMs, 5000 + 2000 + SLACK_MS);
  t.equal(d.gapMs, d.takeoverMs + 10 + SLACK_MS);
  const a = boundsOf(VIGIL_AGGRESSIVE);
  t.equal(a.takeoverMs, 200 + 3 * (0 + 50), 'aggressive: a burst (failure_check_interval 0), probe_timeout 50 ms as the ceiling');
  t.ok(a.gapMs < d.gapMs);
});
