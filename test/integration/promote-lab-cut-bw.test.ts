// Three sites: cut B↔W → nothing changes (A keeps the lease; B cannot reach the witness and decides nothing).
import t from 'tap';
import { skipUnlessRoot } from '../support/lab';
import { never, startScenario, TAKEOVER_BOUND_MS, TIMING, until } from '../support/promote-sites';

t.test('cut B↔W: nothing happens', async (t) => {
  if (skipUnlessRoot(t, ['ip'])) return;
  const sc = await startScenario(t, 'cutbw');
  sc.start('a');
  await until(sc, () => sc.whats('a').includes('p2'), 10 * TIMING.checkMs + 5000, "A's promote steps");
  sc.start('b');
  await sc.lab.cut('b', 'w');
  await until(sc, () => /witness-unknown/.test(sc.logs('b')), 10 * TIMING.checkMs + 5000, 'B logging witness-unknown');
  await never(sc, () => sc.whats('b').length > 0 || sc.whats('a').includes('d1'), TAKEOVER_BOUND_MS, 'any promote or demote step');
  t.pass('nothing over 2 × ttl + lock_delay');
});
