// Three sites: B is promoted with failback auto (3 healthy checks over ≥ 5 s). A's service flaps
// (up 1 check in 3) → no failback; then it stays up → B fails back (demotes here first).
import t from 'tap';
import type { ChildProcess } from 'node:child_process';
import { skipUnlessRoot } from '../support/lab';
import { never, startScenario, TIMING, until } from '../support/promote-sites';

t.test('flapping primary: no failback; a steady one: failback', async (t) => {
  if (skipUnlessRoot(t, ['ip'])) return;
  const sc = await startScenario(t, 'flap');
  sc.start('b', { failback: { mode: 'auto', healthy_checks: 3, healthy_for: '5s' } });
  await until(sc, () => sc.whats('b').includes('p2'), 10 * TIMING.checkMs + 5000, "B's promote steps (A not running: its service is down)");
  const a = sc.lab.site('a');
  const serve = () => a.spawn([process.execPath, '-e', `require('net').createServer((s)=>s.end()).listen(7070,'${a.addr.b}')`]);
  let svc: ChildProcess | undefined;
  const down = () => { if (svc?.pid) { try { process.kill(-svc.pid, 'SIGKILL'); } catch { /* gone */ } } svc = undefined; };
  t.teardown(down);
  // Up for one check interval in every three, for 8 periods.
  const flapUntil = Date.now() + 8 * 3 * TIMING.checkMs;
  const flapping = (async () => {
    while (Date.now() < flapUntil) {
      svc = serve();
      await new Promise((r) => setTimeout(r, TIMING.checkMs));
      down();
      await new Promise((r) => setTimeout(r, 2 * TIMING.checkMs));
    }
  })();
  await never(sc, () => sc.whats('b').includes('d1'), 8 * 3 * TIMING.checkMs, 'B failing back to a flapping A');
  await flapping;
  t.pass('no failback while A is up 1 check in 3');
  svc = serve();
  await until(sc, () => sc.whats('b').includes('d1'), 5000 + 5 * TIMING.checkMs + 5000, 'B failing back once A is steadily up for healthy_for (5 s) and 3 checks');
  t.match(sc.logs('b'), /"event":"failback"/);
});
