// Three sites A, B, W (W runs the Consul TEST DOUBLE): A's daemon is SIGKILLed between two
// promote steps, and p2 has no verify. The restart does not guess: it stops, asks the
// operator (`vigil promote status` says so, exit 1) and runs no promote step again — a crash
// never causes a second promotion.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { skipUnlessRoot } from '../support/lab';
import { never, startScenario, TIMING, until } from '../support/promote-sites';

t.test('SIGKILL between two promote steps, no verify: the restart stops and asks the operator', async (t) => {
  if (skipUnlessRoot(t, ['ip'])) return;
  const sc = await startScenario(t, 'crashop');
  const go = path.join(sc.dir, 'go');
  // p2 says it runs: the journal marks a step started before its process is spawned (write-ahead),
  // so a kill right after the mark could come before p2 exists (seen under load).
  const running = path.join(sc.dir, 'p2-running');
  // The loop also ends once the scenario's directory is gone (teardown), so no orphan outlives the test.
  t.teardown(() => { try { fs.writeFileSync(go, ''); } catch { /* the directory is gone */ } });
  const steps = [
    { name: 'p1', command: ['/bin/sh', '-c', sc.markCmd('a', 'p1')], timeout: '5s' },
    { name: 'p2', command: ['/bin/sh', '-c', `touch ${running}; while [ ! -e ${go} ] && [ -d ${sc.dir} ]; do sleep 0.1; done; ${sc.markCmd('a', 'p2')}`], timeout: '60s' },
  ];
  sc.start('a', { promote_steps: steps });
  const p2Started = () => sc.journal('a')?.steps.some((s) => s.name === 'p2' && s.status === 'started') === true;
  await until(sc, () => p2Started() && fs.existsSync(running), 10 * TIMING.checkMs + 5000, "A's journal marking p2 started, and p2 running (A starts with the lease free)");
  sc.kill('a', 'SIGKILL');
  // p2 (its own process group) survives its daemon and finishes: its mark shows its effect was made once.
  fs.writeFileSync(go, '');
  await until(sc, () => sc.whats('a').includes('p2'), 5000, "the orphaned p2's mark");

  sc.start('a', { promote_steps: steps });
  await until(sc, () => /operator-needed/.test(sc.logs('a')), 10 * TIMING.checkMs + 5000, 'the restarted daemon logging operator-needed');
  const st = await sc.cli('a', ['promote', 'status']);
  t.equal(st.code, 1, `status exits 1 while the operator is needed; said:\n${st.stdout}${st.stderr}`);
  t.match(st.stdout, /STOPPED, operator needed: promote step p2 was started and never finished/);
  // Longer than a check and a renewal period of the restarted daemon: no step runs again.
  await never(sc, () => sc.whats('a').length > 2, 5 * Math.max(TIMING.checkMs, TIMING.renewMs), 'a repeated promote step on A');
  t.same(sc.whats('a'), ['p1', 'p2'], 'p1 and p2 once each: no second promotion after the crash');
});
