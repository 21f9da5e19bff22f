// Three sites A, B, W (W runs the Consul TEST DOUBLE): A is cut from B and W while its promote
// step p2 is still running (p2 would take 120 s). A does not wait for p2: at its give-up
// deadline it interrupts p2 and demotes, before B (after Consul's invalidation + lock_delay)
// runs its first promote step — from both sites' timelines.
import t from 'tap';
import { skipUnlessRoot } from '../support/lab';
import { startScenario, TAKEOVER_BOUND_MS, TIMING, until } from '../support/promote-sites';

t.test('cut off during a long promote step: the step is interrupted, A demotes before B promotes', async (t) => {
  if (skipUnlessRoot(t, ['ip'])) return;
  const sc = await startScenario(t, 'longstep');
  const steps = [
    { name: 'p1', command: ['/bin/sh', '-c', sc.markCmd('a', 'p1')], timeout: '5s' },
    // Marks, then "works" for 120 s (longer than the whole takeover); marks p2-end only if it gets there.
    { name: 'p2', command: ['/bin/sh', '-c', `${sc.markCmd('a', 'p2')}; sleep 120; ${sc.markCmd('a', 'p2-end')}`], timeout: '180s' },
  ];
  sc.start('a', { promote_steps: steps });
  await until(sc, () => sc.whats('a').includes('p2'), 10 * TIMING.checkMs + 5000, "A's p2 under way (A starts alone: the lease is free)");
  sc.start('b');
  await until(sc, () => /promote check/.test(sc.logs('b')), 10_000, "B's first check");
  const cutAt = Date.now();
  await sc.lab.cut('a', 'b');
  await sc.lab.cut('a', 'w');
  const giveUpMs = TIMING.renewMs * (TIMING.retries + 1);
  await until(sc, () => sc.whats('a').includes('d1'), giveUpMs + TIMING.demoteTimeoutMs + 5000,
    "A's demote within renew_interval × (retries + 1) + demote_timeout of the cut (p2 interrupted, not awaited)");
  t.match(sc.logs('a'), /promote-step-interrupted/, 'A interrupted p2');
  t.match(sc.logs('a'), /"event":"promote-step-failed".*interrupted: this site is demoting/, 'p2 ended as interrupted');
  await until(sc, () => sc.whats('b').includes('p1'), TAKEOVER_BOUND_MS - (Date.now() - cutAt), "B's first promote step after the cut");
  const tl = sc.timeline();
  const aDemote = tl.find((m) => m.site === 'a' && m.what === 'd1')!.atMs;
  const bFirst = tl.find((m) => m.site === 'b' && m.what === 'p1')!.atMs;
  t.ok(aDemote < bFirst, `A's demote (${aDemote}) before B's first promote step (${bFirst})`);
  t.notOk(sc.whats('a').includes('p2-end'), "p2 never got to its end: its process group was killed");
});
