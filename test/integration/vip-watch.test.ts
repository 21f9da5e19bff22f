// The HA IP role at rest runs its probes in the native loop (native/arpwatch.c):
// a pair in the lab, the slave's answers are taken natively (its ARP frames
// delivered to JavaScript stay flat while its rounds climb), the master watches
// for a competitor the same way, status stays current, and a cut still moves
// the IP within the configured bound.
import * as path from 'node:path';
import t from 'tap';
import { skipUnlessRoot, type LabHost } from '../support/lab';
import {
  testLab, startDaemon, daemonStatus, waitFor, writeConfig, expectedOf, vipTiming, takeoverBoundMs, START_MS, SLACK_MS,
} from '../support/vigil';

if (skipUnlessRoot(t)) process.exit(0);

const TIMING = {
  check_interval: '100ms', failure_check_interval: '0ms', take_over_after: 3, probe_timeout: '100ms', probe_timeout_min: '20ms',
  master_check_interval: '500ms', announce: { count: 1, interval: '100ms' }, command_timeout: '5s',
};
const V = vipTiming(TIMING);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function node(dir: string, h: LabHost, haIp: string, neighbours: string[]) {
  const pidfile = path.join(dir, h.name, 'vigil.pid');
  const config = writeConfig(dir, h.name, {
    node: h.name, pidfile, state_dir: path.join(dir, h.name, 'st'), log: { level: 'info' },
    vip: { interface: h.ifname, address: `${haIp}/24`, neighbours, ...TIMING },
  });
  return { h, pidfile, config, vip: async () => (await daemonStatus(pidfile))?.roles?.vip as Record<string, any> | undefined };
}

t.test('at rest the probes run natively: JavaScript is not woken per probe, and a cut still moves the IP', async (t) => {
  // c is the neighbour both ask (vip.neighbours): the master in every round of its watch.
  const { lab, dir, daemons } = await testLab(t, ['a', 'b', 'c'], 'watch');
  const haIp = lab.freeIp(0);
  const nb = [lab.host('c').ip];
  const a = node(dir, lab.host('a'), haIp, nb);
  const b = node(dir, lab.host('b'), haIp, nb);
  daemons.push(startDaemon(a.h, a.config, a.pidfile));
  const aloneMs = START_MS + takeoverBoundMs(V);
  await waitFor(async () => (await a.vip())?.role === 'master', aloneMs, expectedOf('a master (alone)', aloneMs, daemons));
  daemons.push(startDaemon(b.h, b.config, b.pidfile));
  // b: after its first answered probe; a: after its first clean master check.
  const watchingMs = START_MS + 2 * Math.max(V.checkIntervalMs, V.masterCheckIntervalMs) + V.probeTimeoutMs + SLACK_MS;
  await waitFor(async () => (await b.vip())?.watch?.active === true && (await a.vip())?.watch?.active === true, watchingMs,
    expectedOf('b watching a, and a watching for a competitor, natively', watchingMs, daemons));

  const windowMs = 50 * V.checkIntervalMs;
  const [a0, b0] = [(await a.vip())!, (await b.vip())!];
  await sleep(windowMs);
  const [a1, b1] = [(await a.vip())!, (await b.vip())!];
  const rounds = b1.watch.totalRounds - b0.watch.totalRounds;
  const delivered = b1.arp.delivered - b0.arp.delivered;
  t.ok(rounds >= 25, `b: ${rounds} native rounds in ${windowMs} ms (one is due every ${V.checkIntervalMs} ms)`);
  t.ok(delivered <= rounds / 10, `b: ${delivered} ARP frames reached JavaScript in the same window: the answers were taken natively`);
  t.equal(b1.role, 'slave');
  t.equal(b1.lastProbe?.result, 'answered', 'status: the last probe was answered');
  t.equal(b1.lastProbe?.mac, a.h.mac, 'by a');
  const ageMs = Date.now() - Date.parse(b1.lastProbe.at);
  t.ok(ageMs <= 2 * V.checkIntervalMs + SLACK_MS, `status shows a probe ${ageMs} ms old, not one from the start of the watch`);
  t.equal(a1.watch?.active, true, 'a, the master, watches for a competitor natively too');
  const aRounds = a1.watch.totalRounds - a0.watch.totalRounds;
  const aDelivered = a1.arp.delivered - a0.arp.delivered;
  t.ok(aRounds >= windowMs / V.masterCheckIntervalMs / 2, `a: ${aRounds} native rounds (one due every ${V.masterCheckIntervalMs} ms), each asking c`);
  t.ok(aDelivered <= aRounds / 5, `a: ${aDelivered} ARP frames reached JavaScript: c's replies were taken natively`);
  t.equal(a1.neighbours?.ips?.[0], nb[0], 'status names the neighbour');

  await lab.host('a').cutLink();
  await waitFor(async () => (await b.vip())?.role === 'master', takeoverBoundMs(V), expectedOf('b takes over after a\'s link cut', takeoverBoundMs(V), daemons));
  t.match(daemons[1]!.logs(), /HA IP silent for take_over_after consecutive probes: taking over/, 'b took over on silence, the log says');
});
