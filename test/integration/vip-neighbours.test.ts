// Neighbour reachability gates takeover (vip.neighbours). A node whose link
// keeps carrier but reaches nobody (its bridge port detached: every frame is
// lost) hears the HA IP's silence too: as slave it must never take over, and
// as master it must release once a peer has had the time to take over, so
// that the heal finds one owner. Host c is the neighbour both nodes probe.
import t from 'tap';
import { skipUnlessRoot, type LabHost } from '../support/lab';
import { testLab, startDaemon, daemonStatus, waitFor, logsMatching, vipNode, type Daemon } from '../support/vigil';
import { takeoverWindowMs } from '../../src/roles/vip/machine';

if (skipUnlessRoot(t, ['ip'])) process.exit(0);

const TIMING = {
  check_interval: '1s', failure_check_interval: '300ms', take_over_after: 3, probe_timeout: '200ms',
  master_check_interval: '2s', announce: { count: 1, interval: '100ms' }, command_timeout: '5s',
};
// From the config: the longest a healthy peer needs to take over (1 s + 3 × 500 ms).
const WINDOW_MS = takeoverWindowMs({
  haIp: { address: '0.0.0.0', prefix: 32 }, checkIntervalMs: 1000, failureCheckIntervalMs: 300, takeOverAfter: 3, probeTimeoutMs: 200,
  masterCheckIntervalMs: 2000, announce: { count: 1, intervalMs: 100 }, hasOnMaster: false, hasOnSlave: false,
});

async function holds(h: LabHost, ip: string): Promise<boolean> {
  const r = await h.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', h.ifname]);
  return r.stdout.includes(` ${ip}/`);
}
const tail = (d: Daemon) => () => d.logs().split('\n').slice(-15).join('\n');

t.test('a node that reaches nobody never takes over; a master that reaches nobody releases before the heal', async (t) => {
  const { lab, dir, daemons } = await testLab(t, ['a', 'b', 'c'], 'vipnb');
  const haIp = lab.freeIp(0);
  const c = lab.host('c');
  const opts = { ...TIMING, neighbours: [c.ip] };
  const a = vipNode(dir, lab.host('a'), haIp, opts);
  const b = vipNode(dir, lab.host('b'), haIp, opts);
  const da = startDaemon(a.h, a.config, a.pidfile);
  daemons.push(da);
  await waitFor(async () => (await a.role()) === 'master', 20_000, () => `a master within 20 s; last log lines:\n${tail(da)()}`);
  const db = startDaemon(b.h, b.config, b.pidfile);
  daemons.push(db);
  await waitFor(async () => (await daemonStatus(b.pidfile))?.roles?.vip?.lastProbe?.result === 'answered', 20_000, 'b heard a answer within 20 s');
  const st = (await daemonStatus(b.pidfile))?.roles?.vip;
  t.match(st?.neighbours, { ips: [c.ip], source: 'config' }, 'status shows the gate');

  // b isolated with carrier up: three takeover windows of silence, and no takeover.
  await b.h.isolate();
  const until = Date.now() + 3 * WINDOW_MS;
  let roleSeen: string | undefined;
  while (Date.now() < until && roleSeen !== 'master') {
    roleSeen = await b.role();
    await new Promise((r) => setTimeout(r, 200));
  }
  t.not(roleSeen, 'master', `b never takes over during ${3 * WINDOW_MS} ms of reaching nobody; last log lines:\n${tail(db)()}`);
  t.match(await logsMatching(db.logs, /no neighbour answers/), /no neighbour answers \([\d.]+\): this node reaches nobody/, 'the log says why');
  t.equal(await holds(b.h, haIp), false, 'b holds nothing');
  await b.h.unisolate();
  await waitFor(async () => (await daemonStatus(b.pidfile))?.roles?.vip?.lastProbe?.result === 'answered', 20_000, () => `b hears a again within 20 s; last log lines:\n${tail(db)()}`);
  t.equal(await a.role(), 'master', 'a still master');

  // Now the master reaches nobody: b takes over, and a has released before the heal.
  await a.h.isolate();
  const bound = TIMING_BOUND();
  await waitFor(async () => (await b.role()) === 'master', bound, () => `b master within ${bound} ms; last log lines:\n${tail(db)()}`);
  await waitFor(async () => !(await holds(a.h, haIp)) && (await a.role()) === 'slave', bound,
    () => `a released the HA IP within ${bound} ms of reaching nobody; last log lines:\n${tail(da)()}`);
  t.match(da.logs(), /no neighbour answers/, 'a says why it released');
  await a.h.unisolate();
  await new Promise((r) => setTimeout(r, 2 * WINDOW_MS));
  t.equal(await a.role(), 'slave', 'a stays slave after the heal');
  t.equal(await holds(a.h, haIp), false, 'only b holds the HA IP after the heal');
  t.equal(await holds(b.h, haIp), true);
});

/** Generous: a master check, the takeover window, and a master check again, three times over. */
function TIMING_BOUND(): number { return 3 * (2000 + WINDOW_MS + 2000); }
