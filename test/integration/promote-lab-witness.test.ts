// Three sites: the witness unreachable from both A and B from the start → no promotion and a logged witness-unknown.
import t from 'tap';
import { skipUnlessRoot } from '../support/lab';
import { never, startScenario, TIMING, until } from '../support/promote-sites';

t.test('witness unreachable: no promotion, witness-unknown logged', async (t) => {
  if (skipUnlessRoot(t, ['ip'])) return;
  const sc = await startScenario(t, 'witness');
  await sc.lab.cut('a', 'w');
  await sc.lab.cut('b', 'w');
  sc.start('a');
  sc.start('b');
  await until(sc, () => /witness-unknown/.test(sc.logs('a')) && /witness-unknown/.test(sc.logs('b')), 10 * TIMING.checkMs + 5000, 'witness-unknown from A and B');
  await never(sc, () => sc.timeline().length > 0, 2 * TIMING.ttlMs, 'a promote step');
  t.notMatch(sc.logs('a') + sc.logs('b'), /"event":"attempt"/, 'no attempt without witness contact');
});
