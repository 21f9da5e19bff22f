// A master's graceful stop sends a release notice after removing the HA IP,
// and the slave confirms with one probe instead of waiting out its failure
// count. With slow timings the two paths are seconds apart, so the test can
// tell them apart without measuring anything finely.
import t from 'tap';
import { skipUnlessRoot, type LabHost } from '../support/lab';
import { testLab, startDaemon, daemonStatus, waitFor, runCli, logsMatching, vipNode } from '../support/vigil';

if (skipUnlessRoot(t)) process.exit(0);

// Without the notice a takeover needs at least 2 × (failure_check_interval +
// probe_timeout) + probe_timeout = 2.6 s after the HA IP went silent (and up
// to check_interval more); with it, one probe timeout and a short spread.
const TIMING = {
  check_interval: '3s', failure_check_interval: '1s', take_over_after: 3, probe_timeout: '200ms',
  master_check_interval: '3s', announce: { count: 1, interval: '100ms' }, command_timeout: '5s',
};

t.test('graceful stop of the master: the slave takes over on the release notice', async (t) => {
  const { lab, dir, daemons } = await testLab(t, ['a', 'b'], 'viprel');
  const haIp = lab.freeIp(0);
  const node = (h: LabHost) => vipNode(dir, h, haIp, TIMING);
  const a = node(lab.host('a'));
  const b = node(lab.host('b'));
  // a alone first: it becomes master; then b starts and settles as slave.
  daemons.push(startDaemon(a.h, a.config, a.pidfile));
  await waitFor(async () => (await a.role()) === 'master', 20_000, 'a master');
  const bd = startDaemon(b.h, b.config, b.pidfile);
  daemons.push(bd);
  await waitFor(async () => (await daemonStatus(b.pidfile))?.roles?.vip?.lastProbe?.result === 'answered', 20_000, 'b heard a answer');
  t.equal(await b.role(), 'slave');

  const stop = await runCli(['stop', '-c', a.config]);
  t.equal(stop.code, 0, stop.stderr);
  const stoppedAt = Date.now();
  await waitFor(async () => (await b.role()) === 'master', 15_000, 'b takes over');
  const took = Date.now() - stoppedAt;
  t.ok(took < 2000, `b took over ${took} ms after a's stop returned (the failure-count path needs ≥ 2600 ms)`);
  t.match(await logsMatching(bd.logs, /the holder released the HA IP/), /the holder released the HA IP: confirming with one probe/);
  const st = (await daemonStatus(b.pidfile))?.roles?.vip;
  t.equal(st?.takeovers, 1);
});
