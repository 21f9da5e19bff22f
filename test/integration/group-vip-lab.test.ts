// The vip role drives a group (`vip.group`) through a failover, in the lab:
// a is master with its group active; a graceful stop of a deactivates the
// group while the HA IP still answers, then releases the HA IP; b takes the
// HA IP over and activates the group only once it holds it. The members
// record the host's addresses when they run, so the order is checked from
// the world, not from logs.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { skipUnlessRoot, type LabHost } from '../support/lab';
import { daemonStatus, startDaemon, testLab, waitFor, writeConfig } from '../support/vigil';

if (skipUnlessRoot(t)) process.exit(0);

const FAST = { check_interval: '200ms', failure_check_interval: '100ms', probe_timeout: '100ms', master_check_interval: '400ms', take_over_after: 3 };

t.test('vip.group: takeover activates the group after the HA IP, step-down deactivates it before the HA IP goes', async (t) => {
  const { lab, dir, daemons } = await testLab(t, ['a', 'b'], 'grp-vip');
  const [a, b] = [lab.host('a'), lab.host('b')];
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
      group: { svc: { state_dir: path.join(base, 'gstate'), members: [
        { type: 'address', name: 'svc-ip', address: `${svcIp}/24`, interface: h.ifname, arp: { count: 1, interval: '100ms' } },
        // Each records the host's addresses when it runs: the HA IP must be there at start and still there at stop.
        { type: 'command', name: 'db', start: `ip -4 -o addr show dev ${h.ifname} > ${marks}/db-start-addrs; touch ${marks}/db`,
          stop: `ip -4 -o addr show dev ${h.ifname} > ${marks}/db-stop-addrs; rm -f ${marks}/db`, monitor: `test -f ${marks}/db` },
      ] } },
    });
    const role = async () => (await daemonStatus(pidfile))?.roles?.vip?.role as string | undefined;
    const holds = async (ip: string) => (await h.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', h.ifname])).stdout.includes(` ${ip}/`);
    const read = (f: string) => (fs.existsSync(path.join(marks, f)) ? fs.readFileSync(path.join(marks, f), 'utf8') : '');
    return { h, pidfile, config, marks, role, holds, read, up: () => fs.existsSync(path.join(marks, 'db')) };
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
});
