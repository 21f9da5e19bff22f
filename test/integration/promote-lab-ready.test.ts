// Three sites: A's ready probe (a local HTTP health URL) fails while A holds the lease →
// A releases and demotes within one renewal period, and B acquires (a release has no lock-delay).
import t from 'tap';
import { skipUnlessRoot } from '../support/lab';
import { startScenario, TIMING, until } from '../support/promote-sites';

const HEALTH_PORT = 7171;

t.test('ready failing while holding: release within one renewal period; the peer acquires', async (t) => {
  if (skipUnlessRoot(t, ['ip'])) return;
  const sc = await startScenario(t, 'ready');
  const a = sc.lab.site('a');
  const health = a.spawn([process.execPath, '-e', `require('http').createServer((q,s)=>s.end('ok')).listen(${HEALTH_PORT},'127.0.0.1')`]);
  await new Promise((r) => setTimeout(r, 500));
  sc.start('a', { ready: [{ kind: 'http', url: `http://127.0.0.1:${HEALTH_PORT}/`, timeout: '300ms' }] });
  await until(sc, () => sc.whats('a').includes('p2'), 10 * TIMING.checkMs + 5000, "A's promote steps (ready up)");
  sc.start('b');
  await until(sc, () => /promote check/.test(sc.logs('b')), 10_000, "B's first check");
  const failAt = Date.now();
  process.kill(-health.pid!, 'SIGKILL');
  await until(sc, () => sc.whats('a').includes('d1'), TIMING.renewMs + TIMING.demoteTimeoutMs + 2000, 'A demoting within one renewal period (+ demote_timeout)');
  t.ok(sc.timeline().find((m) => m.site === 'a' && m.what === 'd1')!.atMs - failAt <= TIMING.renewMs + TIMING.demoteTimeoutMs + 2000);
  // A released: no lock-delay; B's probe of A's service now says down, so B acquires at its next checks.
  await until(sc, () => sc.whats('b').includes('p1'), 10 * TIMING.checkMs + 5000, 'B acquiring after the release');
  const tl = sc.timeline();
  t.ok(tl.find((m) => m.site === 'a' && m.what === 'd1')!.atMs < tl.find((m) => m.site === 'b' && m.what === 'p1')!.atMs, 'A demoted before B promoted');
});
