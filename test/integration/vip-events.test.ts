// The HA IP role reacts to carrier and address events as they happen (the
// native netlink event socket), not at its next master check: the master
// check is set far longer than every bound below, so only the event path can
// pass them. An address storm of 100,000 changes leaves the daemon running,
// still master, still able to react.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { skipUnlessRoot, type LabHost } from '../support/lab';
import { testLab, startDaemon, daemonStatus, waitFor, logsMatching, vipNode, type Daemon } from '../support/vigil';

if (skipUnlessRoot(t, ['ip'])) process.exit(0);

// master_check_interval 60 s: anything within 15 s below is the event path.
const TIMING = {
  check_interval: '1s', failure_check_interval: '300ms', take_over_after: 3, probe_timeout: '200ms',
  master_check_interval: '60s', announce: { count: 1, interval: '100ms' }, command_timeout: '5s',
};
/** Generous: well under master_check_interval, far over the event path's few ms. */
const REACT_MS = 15_000;

async function holds(h: LabHost, ip: string): Promise<boolean> {
  const r = await h.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', h.ifname]);
  return r.stdout.includes(` ${ip}/`);
}

const tail = (d: Daemon) => () => d.logs().split('\n').slice(-15).join('\n');

t.test('an address removed behind our back is put back at once, also after a 100,000-change storm', async (t) => {
  const { lab, dir, daemons } = await testLab(t, ['a'], 'vipev');
  const haIp = lab.freeIp(0);
  const a = vipNode(dir, lab.host('a'), haIp, TIMING);
  const d = startDaemon(a.h, a.config, a.pidfile);
  daemons.push(d);
  await waitFor(async () => (await a.role()) === 'master' && (await holds(a.h, haIp)), 20_000, () => `a master holding ${haIp} within 20 s; last log lines:\n${tail(d)()}`);

  const del = await a.h.exec(['ip', 'addr', 'del', `${haIp}/24`, 'dev', a.h.ifname]);
  t.equal(del.code, 0, del.stderr);
  await waitFor(() => holds(a.h, haIp), REACT_MS, () => `${haIp} back on ${a.h.ifname} within ${REACT_MS} ms (master check is 60 s); last log lines:\n${tail(d)()}`);
  t.match(await logsMatching(d.logs, /not by vigil/), /removed from the interface, not by vigil/, 'the log says an address was removed behind our back');

  // The storm: 50,000 /32s added and removed in a's namespace (100,000 address events).
  const lines: string[] = [];
  for (let i = 0; i < 50_000; i++) {
    const x = `10.249.${Math.floor(i / 250)}.${(i % 250) + 1}/32`;
    lines.push(`addr add ${x} dev ${a.h.ifname}`, `addr del ${x} dev ${a.h.ifname}`);
  }
  const file = path.join(dir, 'storm.batch');
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  const r = await a.h.exec(['ip', '-batch', file], { timeoutMs: 170_000 });
  t.equal(r.code, 0, `ip -batch: ${r.stderr.slice(0, 300)}`);
  t.equal(d.proc.exitCode, null, 'the daemon is still running after the storm');
  const st = await waitFor(() => daemonStatus(a.pidfile), 10_000, () => `a status answer within 10 s of the storm; last log lines:\n${tail(d)()}`);
  t.equal(st.roles?.vip?.role, 'master', 'still master');
  t.ok(await holds(a.h, haIp), 'the HA IP is still on the interface');
  t.same(st.roles?.vip?.held, [`${haIp}/24`], 'the books hold the HA IP only');

  // Still reacting after the storm (and whatever overrun it caused).
  await a.h.exec(['ip', 'addr', 'del', `${haIp}/24`, 'dev', a.h.ifname]);
  await waitFor(() => holds(a.h, haIp), REACT_MS, () => `${haIp} back within ${REACT_MS} ms after the storm; last log lines:\n${tail(d)()}`);
  t.equal(d.proc.exitCode, null, 'still running');
});

t.test('carrier lost on the master releases before a peer can take over; carrier back probes at once', async (t) => {
  const { lab, dir, daemons } = await testLab(t, ['a', 'b'], 'vipcar');
  const haIp = lab.freeIp(0);
  const a = vipNode(dir, lab.host('a'), haIp, TIMING);
  const b = vipNode(dir, lab.host('b'), haIp, TIMING);
  const da = startDaemon(a.h, a.config, a.pidfile);
  daemons.push(da);
  await waitFor(async () => (await a.role()) === 'master', 20_000, () => `a master within 20 s; last log lines:\n${tail(da)()}`);
  const db = startDaemon(b.h, b.config, b.pidfile);
  daemons.push(db);
  await waitFor(async () => (await daemonStatus(b.pidfile))?.roles?.vip?.lastProbe?.result === 'answered', 20_000, 'b heard a answer within 20 s');

  // A short cut: carrier back before the release, so a stays master and probes at once.
  await a.h.cutLink();
  await logsMatching(da.logs, /carrier lost while master/, 5000);
  await a.h.restoreLink();
  const probedBefore = (await daemonStatus(a.pidfile))?.roles?.vip?.lastProbe?.at;
  t.match(await logsMatching(da.logs, /carrier back/, REACT_MS), /carrier back before the release: still master; probing for a competing owner now|carrier back: probing now/);
  await waitFor(async () => (await daemonStatus(a.pidfile))?.roles?.vip?.lastProbe?.at !== probedBefore, REACT_MS,
    () => `a probed for a competing owner within ${REACT_MS} ms of the carrier's return (master check is 60 s); last log lines:\n${tail(da)()}`);

  // A long cut: a releases (the event, not a 60 s master check), b takes over.
  await a.h.cutLink();
  await waitFor(async () => !(await holds(a.h, haIp)), REACT_MS, () => `a released ${haIp} within ${REACT_MS} ms of losing carrier; last log lines:\n${tail(da)()}`);
  t.match(da.logs(), /carrier lost while master/, 'the log says why');
  await waitFor(async () => (await b.role()) === 'master', REACT_MS, () => `b master within ${REACT_MS} ms; last log lines:\n${tail(db)()}`);
  await a.h.restoreLink();
  await waitFor(async () => (await a.role()) === 'slave', REACT_MS, 'a slave after the heal');
  t.equal(await holds(a.h, haIp), false, 'after the heal only b holds the HA IP');
  t.equal(await holds(b.h, haIp), true, 'b holds it');
  t.equal((await daemonStatus(a.pidfile))?.roles?.vip?.carrier, true, 'status shows the carrier back');
});
