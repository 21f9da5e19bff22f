// The vip role drives a group (`vip.group`) through a failover, in the lab:
// a is master with its group active; a graceful stop of a deactivates the
// group while the HA IP still answers, then releases the HA IP; b takes the
// HA IP over and activates the group only once it holds it. The members
// record the host's addresses when they run, so the order is checked from
// the world, not from logs. A client that talked to the group's address on a
// has its neighbour entry moved to b's MAC by b's announcements, captured on
// the client's own ARP socket in its namespace. b's daemon monitors the
// group the vip role activated: a member that fails is restarted, and once
// it fails beyond migration_threshold the daemon gives the group up, the vip
// role sees that at its next master check and steps down, and a (back as a
// slave) takes the HA IP and the group over.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { skipUnlessRoot, type LabHost } from '../support/lab';
import { daemonStatus, startDaemon, testLab, waitFor, writeConfig } from '../support/vigil';
import { ArpSocket } from '../../src/net/arp/socket';

if (skipUnlessRoot(t)) process.exit(0);

const FAST = { check_interval: '200ms', failure_check_interval: '100ms', probe_timeout: '100ms', master_check_interval: '400ms', take_over_after: 3 };
const ARP = { count: 3, interval: '100ms' };
const MONITOR_MS = 200;

t.test('vip.group: takeover activates the group after the HA IP, step-down deactivates it before the HA IP goes', async (t) => {
  const { lab, dir, daemons } = await testLab(t, ['a', 'b', 'client'], 'grp-vip');
  const [a, b, client] = [lab.host('a'), lab.host('b'), lab.host('client')];
  const haIp = lab.freeIp(0);
  const svcIp = lab.freeIp(1);
  const node = (h: LabHost) => {
    const base = path.join(dir, h.name);
    const marks = path.join(base, 'marks');
    fs.mkdirSync(marks, { recursive: true });
    const pidfile = path.join(base, 'vigil.pid');
    const config = writeConfig(dir, h.name, {
      node: h.name, pidfile, state_dir: path.join(base, 'st'), log: { level: 'debug' },
      vip: { interface: h.ifname, address: `${haIp}/24`, group: 'svc', ...FAST },
      group: { svc: { state_dir: path.join(base, 'gstate'), monitor_interval: `${MONITOR_MS}ms`, migration_threshold: 1, members: [
        { type: 'address', name: 'svc-ip', address: `${svcIp}/24`, interface: h.ifname, arp: ARP },
        // Each records the host's addresses when it runs: the HA IP must be there at start and still there at stop.
        { type: 'command', name: 'db', start: `ip -4 -o addr show dev ${h.ifname} > ${marks}/db-start-addrs; touch ${marks}/db`,
          stop: `ip -4 -o addr show dev ${h.ifname} > ${marks}/db-stop-addrs; rm -f ${marks}/db`, monitor: `test -f ${marks}/db` },
      ] } },
    });
    const role = async () => (await daemonStatus(pidfile))?.roles?.vip?.role as string | undefined;
    const holds = async (ip: string) => (await h.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', h.ifname])).stdout.includes(` ${ip}/`);
    const read = (f: string) => (fs.existsSync(path.join(marks, f)) ? fs.readFileSync(path.join(marks, f), 'utf8') : '');
    const group = async () => (await daemonStatus(pidfile))?.roles?.group?.groups?.svc as { phase: string; restarts: number; last?: string } | undefined;
    return { h, pidfile, config, marks, role, holds, read, group, up: () => fs.existsSync(path.join(marks, 'db')) };
  };
  const na = node(a);
  const nb = node(b);
  const da = startDaemon(a, na.config, na.pidfile);
  daemons.push(da);
  const tail = (d: { logs(): string }) => `; daemon's last lines:\n${d.logs().split('\n').slice(-15).join('\n')}`;
  await waitFor(async () => (await na.role()) === 'master' && na.up() && (await na.holds(svcIp)), 20_000, () => `a master with its group active within 20 s${tail(da)}`);
  t.match(na.read('db-start-addrs'), ` ${haIp}/`, 'a started db while holding the HA IP (the group after the takeover)');

  const db = startDaemon(b, nb.config, nb.pidfile);
  daemons.push(db);
  await waitFor(async () => (await nb.role()) === 'slave', 20_000, () => `b slave within 20 s${tail(db)}`);
  t.notOk(nb.up(), 'the slave b did not start the group');
  t.notOk(await nb.holds(svcIp), 'nor its address');

  // The client talks to the group's address: its neighbour entry holds a's MAC.
  t.equal((await client.exec(['ping', '-c', '1', '-W', '2', svcIp])).code, 0, 'the client reaches the group address on a');
  const neigh = async () => (await client.exec(['ip', 'neigh', 'show', svcIp, 'dev', client.ifname])).stdout;
  t.match(await neigh(), a.mac, "the client's entry: a's MAC");
  // b's announcements as the client sees them, on vigil's ARP socket in the client's namespace.
  const frames: { op: number; mac: string; ethDst: string; targetIp: string }[] = [];
  const sock = client.inNetns(() => ArpSocket.open(client.ifname));
  t.teardown(() => sock.close());
  sock.on('frame', (p) => { if (p.senderIp === svcIp && p.senderMac === b.mac) frames.push({ op: p.op, mac: p.senderMac, ethDst: p.ethDst, targetIp: p.targetIp }); });

  // Graceful failover: a stops (group first, then the HA IP), b takes over.
  da.proc.kill('SIGTERM');
  t.equal(await da.exited, 0, "a's daemon exits 0 after deactivating its group", { logs: tail(da) });
  t.notOk(na.up(), "a's db stopped");
  t.match(na.read('db-stop-addrs'), ` ${haIp}/`, 'a stopped db while still holding the HA IP (the group before the HA IP)');
  t.notOk(await na.holds(svcIp), "a's group address removed");
  t.notOk(await na.holds(haIp), 'a released the HA IP');

  // b's takeover: generous bound from the config (take_over_after probes at failure_check_interval plus probe_timeout, a check interval, the group).
  const bound = 200 + 3 * (100 + 100) + 10_000;
  await waitFor(async () => (await nb.role()) === 'master' && nb.up() && (await nb.holds(svcIp)), bound, () => `b master with its group active within ${bound} ms${tail(db)}`);
  t.match(nb.read('db-start-addrs'), ` ${haIp}/`, 'b started db only once it held the HA IP');
  t.ok(await nb.holds(haIp), 'b holds the HA IP');

  // Gratuitous: target IP = sender IP, broadcast; arp.count rounds of request + reply.
  const garp = () => frames.filter((f) => f.targetIp === svcIp && f.ethDst === 'ff:ff:ff:ff:ff:ff');
  const arpWindow = ARP.count * 100 + 2000;
  await waitFor(() => garp().length >= 2 * ARP.count, arpWindow, `${2 * ARP.count} gratuitous frames from b for ${svcIp} within ${arpWindow} ms of b's group start`);
  t.equal(garp().filter((f) => f.op === 1).length, ARP.count, `${ARP.count} gratuitous requests from b's MAC`);
  t.equal(garp().filter((f) => f.op === 2).length, ARP.count, `${ARP.count} gratuitous replies from b's MAC`);
  const moved = await waitFor(async () => { const o = await neigh(); return o.includes(b.mac) ? o : undefined; }, 2000, () => `the client's entry for ${svcIp} to show b's MAC ${b.mac}`);
  t.match(moved, b.mac, "the client's ARP cache moved to b's MAC");

  // b's daemon monitors the group its vip role activated: a failed member is restarted.
  const adopted = await waitFor(async () => { const g = await nb.group(); return g?.phase === 'active' ? g : undefined; }, 3 * MONITOR_MS + 10_000, () => `b's daemon monitors group svc${tail(db)}`);
  t.match(adopted.last, /activated outside the daemon/, 'found through its journal');
  fs.rmSync(path.join(nb.marks, 'db'));
  const restartBound = 3 * MONITOR_MS + 2 * 30_000;
  await waitFor(async () => nb.up() && ((await nb.group())?.restarts ?? 0) >= 1, restartBound, () => `db restarted by b's daemon within ${restartBound} ms${tail(db)}`);
  t.pass("b's daemon restarted the failed db member");
  t.equal(await nb.role(), 'master', 'b stays master');

  // a comes back (as a slave: b holds the HA IP), then b's db fails once more than migration_threshold (1):
  // b's daemon deactivates the group, and b's vip role steps down at its next master check.
  const da2 = startDaemon(a, na.config, na.pidfile);
  daemons.push(da2);
  await waitFor(async () => (await na.role()) === 'slave', 20_000, () => `a back as a slave within 20 s${tail(da2)}`);
  fs.rmSync(path.join(nb.marks, 'db'));
  const giveUpBound = 3 * MONITOR_MS + 2 * 30_000 + 400 + 10_000;
  await waitFor(async () => (await nb.role()) === 'slave' && !(await nb.holds(haIp)), giveUpBound,
    () => `b gave the group up and stepped down within ${giveUpBound} ms${tail(db)}`);
  t.match(db.logs(), /the group is no longer active here: stepping down/, "b's log says why it stepped down");
  t.equal((await nb.group())?.phase, 'deactivated', "b's group deactivated by its monitor");
  await waitFor(async () => (await na.role()) === 'master' && na.up() && (await na.holds(svcIp)), bound, () => `a master with its group active again within ${bound} ms${tail(da2)}`);
  t.pass('a took the HA IP and the group over');
});
