// Three sites: cut A↔B only → B's probe says A is down, but A still holds the lease through W: no promotion.
import t from 'tap';
import { skipUnlessRoot } from '../support/lab';
import { never, startScenario, TAKEOVER_BOUND_MS, TIMING, until } from '../support/promote-sites';

t.test('cut A↔B only: no promotion of B', async (t) => {
  if (skipUnlessRoot(t, ['ip'])) return;
  const sc = await startScenario(t, 'cutab');
  sc.start('a');
  await until(sc, () => sc.whats('a').includes('p2'), 10 * TIMING.checkMs + 5000, "A's promote steps");
  sc.start('b');
  await sc.lab.cut('a', 'b');
  // B's peer probe now fails (silence), but the witness says the lease is A's.
  await until(sc, () => /"peer":"down","ready":"up","leaseHeldByOther":true/.test(sc.logs('b')), 10 * TIMING.checkMs + 5000,
    "B's check seeing A down by probe and holding the lease by the witness");
  await never(sc, () => sc.whats('b').includes('p1') || sc.whats('a').includes('d1'), TAKEOVER_BOUND_MS,
    'B promoting or A demoting while A holds the lease through W');
  t.pass('no promotion and no demotion over 2 × ttl + lock_delay');
});
