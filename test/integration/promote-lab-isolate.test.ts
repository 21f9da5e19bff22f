// Three sites A, B, W (W runs the Consul TEST DOUBLE): A holds the lease and is promoted;
// cut A from B and W → B promotes, and A has demoted before B's first promote step.
import t from 'tap';
import { skipUnlessRoot } from '../support/lab';
import { startScenario, TAKEOVER_BOUND_MS, TIMING, until } from '../support/promote-sites';
import { scrape, sample } from '../support/metrics';

t.test('cut A from B and W: B promotes after A demoted', async (t) => {
  if (skipUnlessRoot(t, ['ip'])) return;
  const sc = await startScenario(t, 'isolate');
  sc.start('a');
  await until(sc, () => sc.whats('a').includes('p2'), 10 * TIMING.checkMs + 5000, "A's promote steps p1 and p2 (A starts alone, the lease is free)");
  sc.start('b');
  await until(sc, () => /"event":"check"|promote check/.test(sc.logs('b')), 10_000, "B's first check");
  const cutAt = Date.now();
  await sc.lab.cut('a', 'b');
  await sc.lab.cut('a', 'w');
  await until(sc, () => sc.whats('b').includes('p1'), TAKEOVER_BOUND_MS, "B's first promote step within 2 × ttl + lock_delay + checks after the cut");
  const tl = sc.timeline();
  const aDemote = tl.find((m) => m.site === 'a' && m.what === 'd1');
  const bFirst = tl.find((m) => m.site === 'b' && m.what === 'p1')!;
  t.ok(aDemote, `A demoted (from A's timeline)${sc.tails()}`);
  t.ok(aDemote!.atMs < bFirst.atMs, `A's demote (${aDemote!.atMs}) is before B's first promote step (${bFirst.atMs})`);
  t.ok(aDemote!.atMs - cutAt < TIMING.renewMs * (TIMING.retries + 1) + TIMING.demoteTimeoutMs + 2000,
    'A gave up within renew_interval × (retries + 1) + demote_timeout of the cut (its own deadline, nobody told it)');
  await until(sc, () => sc.whats('b').includes('p2'), 10_000, "B's second promote step");
  t.equal(sc.whats('a').filter((w) => w === 'p1').length, 1, 'A promoted once');
  t.equal(sc.whats('b').filter((w) => w === 'p1').length, 1, 'B promoted once');
  // The metrics tell the same: B promoted now, A went promoted -> demoting once.
  const mb = (await scrape(sc.metricsSocket('b'))).body;
  t.equal(sample(mb, 'vigil_role_state', { role: 'promote', state: 'promoted' }), 1, 'metrics: B promoted');
  t.equal(sample(mb, 'vigil_role_transitions_total', { role: 'promote', from: 'promoting', to: 'promoted' }), 1, 'metrics: B promoted once');
  const ma = (await scrape(sc.metricsSocket('a'))).body;
  t.equal(sample(ma, 'vigil_role_transitions_total', { role: 'promote', from: 'promoted', to: 'demoting' }), 1, 'metrics: A demoted once');
  t.equal(sample(ma, 'vigil_role_state', { role: 'promote', state: 'promoted' }), 0, 'metrics: A no longer promoted');
});
