// The group role's multiple-active detection, run by the daemon in a lab
// host: another host that answers ARP for an address of an active group
// (a healed partition) is settled by the vip role's rule, the lower MAC
// keeps the address. With a higher MAC on the other side this node keeps
// the group (and says so); with a lower one it deactivates the group.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { skipUnlessRoot } from '../support/lab';
import { daemonStatus, startDaemon, testLab, waitFor, writeConfig } from '../support/vigil';
import { keepsOnConflict } from '../../src/roles/vip/machine';

if (skipUnlessRoot(t)) process.exit(0);

const INTERVAL_MS = 300;

t.test('multiple-active: the higher MAC deactivates, the lower keeps', async (t) => {
  const { lab, dir, daemons } = await testLab(t, ['a', 'b'], 'grp-multi');
  const [a, b] = [lab.host('a'), lab.host('b')];
  const vip = lab.freeIp(0);
  const marks = path.join(dir, 'marks');
  fs.mkdirSync(marks);
  const pidfile = path.join(dir, 'a.pid');
  const config = writeConfig(dir, 'a', {
    node: 'a', pidfile, state_dir: path.join(dir, 'vstate'), log: { level: 'debug' },
    group: { g: {
      autostart: true, state_dir: path.join(dir, 'state'), monitor_interval: `${INTERVAL_MS}ms`,
      members: [
        { type: 'address', name: 'vip', address: `${vip}/24`, interface: a.ifname, arp: { count: 1, interval: '100ms' } },
        { type: 'command', name: 'svc', start: `touch ${marks}/svc`, stop: `rm -f ${marks}/svc`, monitor: `test -f ${marks}/svc` },
      ],
    } },
  });
  const d = startDaemon(a, config, pidfile);
  daemons.push(d);
  const tail = () => `; daemon's last lines:\n${d.logs().split('\n').slice(-15).join('\n')}`;
  const holds = async () => (await a.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', a.ifname])).stdout.includes(` ${vip}/`);
  const group = async () => (await daemonStatus(pidfile))?.roles?.group?.groups?.g;
  await waitFor(async () => (await holds()) && fs.existsSync(path.join(marks, 'svc')) && (await group())?.phase === 'active', 20_000, () => `a activates its group at start within 20 s${tail()}`);

  // b takes the address too, with a MAC higher than a's: a keeps it.
  const higher = 'fe:ff:ff:ff:ff:fe';
  t.ok(keepsOnConflict(a.mac, higher), `a's MAC ${a.mac} is lower than ${higher}`);
  t.equal((await b.exec(['ip', 'link', 'set', 'dev', b.ifname, 'address', higher])).code, 0);
  t.equal((await b.exec(['ip', 'addr', 'add', `${vip}/24`, 'dev', b.ifname])).code, 0);
  // Several conflict checks (one per monitor_interval) plus the probe's wait, generously.
  const bound = 10 * INTERVAL_MS + 5000;
  await waitFor(() => /also held by fe:ff:ff:ff:ff:fe; ours is the lower MAC, keeping it/.test(d.logs()), bound, () => `a sees b's answer and keeps the address within ${bound} ms${tail()}`);
  t.ok(await holds(), 'a still holds the address');
  t.equal((await group())?.phase, 'active', 'the group stays active');

  // Now b's MAC is the lower one: a deactivates its whole group.
  const lower = '00:00:00:00:00:01';
  t.notOk(keepsOnConflict(a.mac, lower), `a's MAC ${a.mac} is higher than ${lower}`);
  t.equal((await b.exec(['ip', 'link', 'set', 'dev', b.ifname, 'address', lower])).code, 0);
  await waitFor(async () => !(await holds()) && !fs.existsSync(path.join(marks, 'svc')), bound, () => `a deactivates the group (address and svc gone) within ${bound} ms${tail()}`);
  const g = await group();
  t.equal(g?.phase, 'deactivated', 'status: deactivated', g);
  t.match(g?.last, /multiple-active: .* is also held by 00:00:00:00:00:01, a lower MAC than ours/, 'status says why');
  t.equal(d.proc.exitCode, null, 'the daemon keeps running');
});
