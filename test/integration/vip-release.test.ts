// A master's graceful stop sends a release notice after removing the HA IP,
// and the slave confirms with one probe instead of waiting out its failure
// count. With slow timings the two paths are seconds apart, so the test can
// tell them apart without measuring anything finely.
import t from 'tap';
import { skipUnlessRoot, type LabHost } from '../support/lab';
import { testLab, startDaemon, daemonStatus, waitFor, runCli, logsMatching, vipNode, expectedOf, vipTiming, takeoverBoundMs, START_MS, SLACK_MS } from '../support/vigil';

if (skipUnlessRoot(t)) process.exit(0);

// Without the notice a takeover needs at least 2 × (failure_check_interval +
// probe_timeout) + probe_timeout = 2.6 s after the HA IP went silent (and up
// to check_interval more); with it, one probe timeout and a short spread.
const TIMING = {
  check_interval: '3s', failure_check_interval: '1s', take_over_after: 3, probe_timeout: '200ms',
  master_check_interval: '3s', announce: { count: 1, interval: '100ms' }, command_timeout: '5s',
};

const V = vipTiming(TIMING);
/** The failure-count path, counted from the HA IP's silence: take_over_after silent probes, failure_check_interval apart. */
const FAILURE_PATH_MIN_MS = (V.takeOverAfter - 1) * (V.failureCheckIntervalMs + V.probeTimeoutMs) + V.probeTimeoutMs;

t.test('graceful stop of the master: the slave takes over on the release notice', async (t) => {
  const { lab, dir, daemons } = await testLab(t, ['a', 'b'], 'viprel');
  const haIp = lab.freeIp(0);
  const node = (h: LabHost) => vipNode(dir, h, haIp, TIMING);
  const a = node(lab.host('a'));
  const b = node(lab.host('b'));
  // a alone first: it becomes master; then b starts and settles as slave.
  daemons.push(startDaemon(a.h, a.config, a.pidfile));
  const aloneMs = START_MS + takeoverBoundMs(V);
  await waitFor(async () => (await a.role()) === 'master', aloneMs, expectedOf('a master (alone: a takeover after start)', aloneMs, daemons));
  const bd = startDaemon(b.h, b.config, b.pidfile);
  daemons.push(bd);
  // b's first probe: at start, within a check interval (the initial spread).
  const heardMs = START_MS + V.checkIntervalMs + V.probeTimeoutMs + SLACK_MS;
  await waitFor(async () => (await daemonStatus(b.pidfile))?.roles?.vip?.lastProbe?.result === 'answered', heardMs, expectedOf('b heard a answer (b\'s start, its first probe)', heardMs, daemons));
  t.equal(await b.role(), 'slave');

  const stop = await runCli(['stop', '-c', a.config]);
  t.equal(stop.code, 0, stop.stderr);
  const stoppedAt = Date.now();
  // Bounded by the failure-count path, so a missing notice shows as the assertion below, not as a timeout.
  await waitFor(async () => (await b.role()) === 'master', takeoverBoundMs(V), expectedOf('b takes over', takeoverBoundMs(V), daemons));
  const took = Date.now() - stoppedAt;
  t.ok(took < 2000, `b took over ${took} ms after a's stop returned (the failure-count path needs ≥ ${FAILURE_PATH_MIN_MS} ms)`);
  t.match(await logsMatching(bd.logs, /the holder released the HA IP/), /the holder released the HA IP: confirming with one probe/);
  const st = (await daemonStatus(b.pidfile))?.roles?.vip;
  t.equal(st?.takeovers, 1);
});
