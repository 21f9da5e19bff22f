// Three sites A, B, W (W runs the Consul TEST DOUBLE): A's daemon is SIGKILLed between two
// promote steps (p1 done, p2 started and its effect made). The restart reads the journal,
// takes its session back (still alive: within TTL), runs p2's verify (it took effect), goes
// on with p3 and never runs p1 or p2 again. B, whose probe of A says down all along (A's
// steps here start no service), never promotes: A's lease is held across the crash.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { skipUnlessRoot } from '../support/lab';
import { never, startScenario, TIMING, until } from '../support/promote-sites';

t.test('SIGKILL between two promote steps: the restart verifies p2, runs p3, repeats nothing', async (t) => {
  if (skipUnlessRoot(t, ['ip'])) return;
  const sc = await startScenario(t, 'crash');
  const go = path.join(sc.dir, 'go');
  // p2 makes its effect (its mark), then blocks until the test lets it go: the crash point.
  // Steps run in their own process group, so the SIGKILL of the daemon leaves p2 running; `go` ends it.
  // The loop also ends once the scenario's directory is gone (teardown), so no orphan outlives the test.
  t.teardown(() => { try { fs.writeFileSync(go, ''); } catch { /* the directory is gone */ } });
  const steps = [
    { name: 'p1', command: ['/bin/sh', '-c', sc.markCmd('a', 'p1')], timeout: '5s' },
    { name: 'p2', command: ['/bin/sh', '-c', `${sc.markCmd('a', 'p2')}; while [ ! -e ${go} ] && [ -d ${sc.dir} ]; do sleep 0.1; done`], timeout: '60s',
      verify: ['/bin/sh', '-c', `grep -q ' a p2 ' ${path.join(sc.dir, 'timeline')}`] },
    { name: 'p3', command: ['/bin/sh', '-c', sc.markCmd('a', 'p3')], timeout: '5s' },
  ];
  sc.start('a', { promote_steps: steps });
  const p2Started = () => sc.journal('a')?.steps.some((s) => s.name === 'p2' && s.status === 'started') === true;
  await until(sc, () => p2Started() && sc.whats('a').includes('p2'), 10 * TIMING.checkMs + 5000,
    "A's journal marking p2 started and p2's mark (A starts with the lease free)");
  // B only now: started with A, its probe (A's service is down) would race A for the free lease.
  sc.start('b');
  await until(sc, () => /promote check/.test(sc.logs('b')), 10_000, "B's first check");
  sc.kill('a', 'SIGKILL');
  const killedAt = Date.now();
  t.same(sc.journal('a')!.steps.map((s) => `${s.name}:${s.status}`), ['p1:done', 'p2:started'], 'the journal at the crash: p1 done, p2 started');
  fs.writeFileSync(go, '');

  // Restart at once: the session is still alive (< TTL since the last renewal), so A adopts it.
  sc.start('a', { promote_steps: steps });
  await until(sc, () => sc.whats('a').includes('p3'), TIMING.ttlMs - TIMING.renewMs,
    "A's p3 after the restart (adopt + verify of p2 + p3, before the old session's TTL could run out)");
  t.ok(Date.now() - killedAt < TIMING.ttlMs, 'p3 ran while the session taken back was still alive');
  t.match(sc.logs('a'), /lease-adopted/, 'A took its session back');
  t.match(sc.logs('a'), /"event":"verify-result".*"ok":true/, "p2's verify said it took effect");
  t.same(sc.whats('a'), ['p1', 'p2', 'p3'], 'each promote step ran once: nothing repeated after the crash');
  t.same(sc.journal('a')!.phase, 'promoted');
  // A keeps renewing the adopted session: for longer than the old session could have lived, B never promotes.
  await never(sc, () => sc.whats('b').length > 0, 2 * TIMING.ttlMs, "B's promote step while A holds the adopted lease");
  t.same(sc.whats('a'), ['p1', 'p2', 'p3'], 'still once each');
});
