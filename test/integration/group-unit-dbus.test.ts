// `unit` members through systemd's D-Bus API, against a D-Bus systemd
// stand-in: a private dbus-daemon and Debian python3-dbusmock's systemd
// template (the test machines do not run systemd as PID 1). `vigil group`
// runs as a process with DBUS_SYSTEM_BUS_ADDRESS pointing at the private
// bus; `systemctl` is set to /bin/false so any use of it would fail. The
// auto backend falls back to a systemctl stand-in when there is no bus.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import * as dbus from '@particle/dbus-next';
import { BIN, daemonStatus, scratchDir, waitFor, writeConfig } from '../support/vigil';
import { runGroup, type GroupRun } from '../support/group';

const show = (r: GroupRun) => ({ code: r.code, stdout: r.stdout.split('\n').slice(-10), stderr: r.stderr.split('\n').slice(-6) });

/** A private bus with the systemd stand-in on it; returns its address and a client. */
async function standIn(t: { teardown(fn: () => unknown): void }, dir: string) {
  const kill = (p: ChildProcess) => { try { p.kill('SIGTERM'); } catch { /* gone */ } };
  const sock = path.join(dir, 'bus');
  const daemon = spawn('dbus-daemon', ['--session', '--nofork', '--print-address=1', `--address=unix:path=${sock}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => kill(daemon));
  let printed = '';
  daemon.stdout!.on('data', (c: Buffer) => { printed += c.toString(); });
  const address = (await waitFor(() => printed.includes('\n') && printed.trim(), 10_000, 'dbus-daemon prints its address')).split('\n')[0]!;
  // Debian's python3-dbusmock lives in Debian's python3 (not a pyenv or venv one).
  const mock = spawn('/usr/bin/python3', ['-m', 'dbusmock', '--template', 'systemd'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: address } });
  let mockErr = '';
  mock.stderr!.on('data', (c: Buffer) => { mockErr += c.toString(); });
  t.teardown(() => kill(mock));
  const client = dbus.sessionBus({ busAddress: address });
  client.on('error', () => undefined);
  t.teardown(() => client.disconnect());
  const mockIface = await waitFor(async () => {
    try {
      const o = await client.getProxyObject('org.freedesktop.systemd1', '/org/freedesktop/systemd1');
      return o.getInterface('org.freedesktop.DBus.Mock');
    } catch { return undefined; }
  }, 30_000, () => `the systemd template on the private bus (python3 -m dbusmock: ${mockErr.slice(-300)})`, 200);
  const activeState = async (unit: string) => {
    const m = (await client.getProxyObject('org.freedesktop.systemd1', '/org/freedesktop/systemd1')).getInterface('org.freedesktop.systemd1.Manager');
    const p = await m.GetUnit(unit) as string;
    const props = (await client.getProxyObject('org.freedesktop.systemd1', p)).getInterface('org.freedesktop.DBus.Properties');
    return String((await props.Get('org.freedesktop.systemd1.Unit', 'ActiveState')).value);
  };
  /** The unit's ActiveState changed behind systemd's back (dbusmock's own Mock interface on the unit object): a crash. */
  const setState = async (unit: string, state: string) => {
    const m = (await client.getProxyObject('org.freedesktop.systemd1', '/org/freedesktop/systemd1')).getInterface('org.freedesktop.systemd1.Manager');
    const p = await m.GetUnit(unit) as string;
    const mock = (await client.getProxyObject('org.freedesktop.systemd1', p)).getInterface('org.freedesktop.DBus.Mock');
    await mock.UpdateProperties('org.freedesktop.systemd1.Unit', { ActiveState: new dbus.Variant('s', state) });
  };
  return { address, addUnit: (u: string) => mockIface.AddMockUnit(u) as Promise<void>, activeState, setState };
}

t.test('unit members through the D-Bus systemd stand-in', async (t) => {
  const dir = scratchDir('group-dbus');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const s = await standIn(t, dir);
  await s.addUnit('xcatd.service');
  await s.addUnit('ntpd.service');
  const saved = process.env.DBUS_SYSTEM_BUS_ADDRESS;
  process.env.DBUS_SYSTEM_BUS_ADDRESS = s.address;
  t.teardown(() => { if (saved === undefined) delete process.env.DBUS_SYSTEM_BUS_ADDRESS; else process.env.DBUS_SYSTEM_BUS_ADDRESS = saved; });
  const config = (members: Record<string, unknown>[], name = 'vigil') => writeConfig(dir, name, { group: { g: { state_dir: path.join(dir, `state-${name}`), members } } });
  const c = config([
    { type: 'unit', name: 'xcatd', unit: 'xcatd.service', backend: 'dbus', systemctl: '/bin/false', timeout: '5s' },
    { type: 'unit', name: 'ntpd', unit: 'ntpd.service', backend: 'auto', systemctl: '/bin/false', timeout: '5s' },
  ]);

  t.equal(await s.activeState('xcatd.service'), 'inactive', 'before: inactive');
  const plan = await runGroup(['plan', 'g', '-c', c]);
  t.equal(plan.code, 0, 'plan', show(plan));
  t.match(plan.stdout, /xcatd dbus: StartUnit\(xcatd\.service, replace\)/, 'the plan names the D-Bus call');
  t.equal(await s.activeState('xcatd.service'), 'inactive', 'plan changed nothing');

  const on = await runGroup(['activate', 'g', '-c', c]);
  t.equal(on.code, 0, 'activate exits 0 (systemctl is /bin/false: only D-Bus can have done it)', show(on));
  t.equal(await s.activeState('xcatd.service'), 'active', 'xcatd.service active (StartUnit)');
  t.equal(await s.activeState('ntpd.service'), 'active', 'ntpd.service active (auto: D-Bus)');
  const st = await runGroup(['status', 'g', '-c', c]);
  t.match(st.stdout, /xcatd \(unit\): running \(D-Bus ActiveState active\)/, 'status reads ActiveState');
  t.match(st.stdout, /active 2\/2/);
  const again = await runGroup(['activate', 'g', '-c', c]);
  t.match(again.stdout, /already active/, 'activate again: nothing to do');

  const off = await runGroup(['deactivate', 'g', '-c', c]);
  t.equal(off.code, 0, 'deactivate exits 0', show(off));
  t.equal(await s.activeState('xcatd.service'), 'inactive', 'xcatd.service inactive (StopUnit)');
  t.equal(await s.activeState('ntpd.service'), 'inactive', 'ntpd.service inactive');

  // A unit systemd does not know: StartUnit fails, the started member is rolled back, exit 4.
  const bad = config([
    { type: 'unit', name: 'xcatd', unit: 'xcatd.service', backend: 'dbus', systemctl: '/bin/false', timeout: '5s' },
    { type: 'unit', name: 'nope', unit: 'nope.service', backend: 'dbus', systemctl: '/bin/false', timeout: '5s' },
  ], 'bad');
  const r = await runGroup(['activate', 'g', '-c', bad]);
  t.equal(r.code, 4, 'an unknown unit fails the activation: exit 4', show(r));
  t.match(r.stdout, /step 2\/2 \(nope\) failed: D-Bus StartUnit nope\.service/, 'the failure names the D-Bus call');
  t.equal(await s.activeState('xcatd.service'), 'inactive', 'xcatd rolled back');
});

t.test('the daemon monitors a unit by D-Bus (no spawn: systemctl is /bin/false) and restarts it when it fails', async (t) => {
  const dir = scratchDir('group-dbus-daemon');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const s = await standIn(t, dir);
  await s.addUnit('xcatd.service');
  const INTERVAL_MS = 200;
  const pidfile = path.join(dir, 'vigil.pid');
  const config = writeConfig(dir, 'vigil', { node: 'mn-a', pidfile, state_dir: path.join(dir, 'vstate'), log: { level: 'debug' },
    group: { g: { autostart: true, state_dir: path.join(dir, 'state'), monitor_interval: `${INTERVAL_MS}ms`, migration_threshold: 3,
      members: [{ type: 'unit', name: 'xcatd', unit: 'xcatd.service', backend: 'dbus', systemctl: '/bin/false', timeout: '5s' }] } } });
  const proc = spawn(process.execPath, [BIN, 'run', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: s.address } });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  proc.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
  t.teardown(() => { proc.kill('SIGKILL'); });
  const tail = () => `; daemon's last lines:\n${out.split('\n').slice(-12).join('\n')}`;
  await waitFor(async () => (await s.activeState('xcatd.service')) === 'active', 30_000, () => `xcatd.service started by the daemon (StartUnit) within 30 s${tail()}`);
  const group = async () => (await daemonStatus(pidfile))?.roles?.group?.groups?.g as { phase: string; restarts: number; last?: string } | undefined;
  await waitFor(async () => (await group())?.phase === 'active', 10_000, () => `group g active in vigil status${tail()}`);
  await s.setState('xcatd.service', 'failed');
  // The next monitor round (one interval) plus a StopUnit and a StartUnit, each bounded by the member's timeout.
  const bound = 3 * INTERVAL_MS + 2 * 5000 + 5000;
  const st = await waitFor(async () => { const g = await group(); return g && g.restarts >= 1 && /^restart xcatd/.test(g.last ?? '') && (await s.activeState('xcatd.service')) === 'active' ? g : undefined; }, bound,
    () => `the failed unit restarted within ${bound} ms${tail()}`);
  t.match(st.last, /restart xcatd \(1\/3\): ok/, 'restarted through D-Bus (systemctl would have failed)', st);
  t.equal(st.phase, 'active', 'the group stays active');
});

t.test('backend auto without a system bus: the systemctl fallback', async (t) => {
  const dir = scratchDir('group-dbus-fallback');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'calls');
  const ctl = path.join(dir, 'systemctl');
  // A systemctl stand-in: records its argv, keeps the unit state in a file.
  fs.writeFileSync(ctl, `#!/bin/sh\necho "$*" >> ${log}\ncase "$1" in start) touch ${dir}/up;; stop) rm -f ${dir}/up;; is-active) [ -f ${dir}/up ] && { echo active; exit 0; }; echo inactive; exit 3;; esac\n`, { mode: 0o755 });
  const saved = process.env.DBUS_SYSTEM_BUS_ADDRESS;
  process.env.DBUS_SYSTEM_BUS_ADDRESS = `unix:path=${path.join(dir, 'no-bus-here')}`;
  t.teardown(() => { if (saved === undefined) delete process.env.DBUS_SYSTEM_BUS_ADDRESS; else process.env.DBUS_SYSTEM_BUS_ADDRESS = saved; });
  const c = writeConfig(dir, 'vigil', { group: { g: { state_dir: path.join(dir, 'state'), members: [{ type: 'unit', unit: 'db.service', systemctl: ctl, timeout: '5s' }] } } });
  const on = await runGroup(['activate', 'g', '-c', c]);
  t.equal(on.code, 0, 'activate through systemctl', show(on));
  t.match(fs.readFileSync(log, 'utf8'), /^is-active db\.service\nstart db\.service\nis-active db\.service\n/, 'systemctl is-active, start, is-active');
});
