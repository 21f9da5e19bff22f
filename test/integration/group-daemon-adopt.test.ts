// The daemon (`vigil run`) monitors a group it did not activate: a group
// without autostart, activated by hand with `vigil group activate` while
// the daemon runs (vip.group's activations go through the same journal; the
// vip lab test shows the daemon monitoring one). The daemon finds it
// through the group's journal within a monitor_interval, restarts a failed
// member up to migration_threshold times within failure_timeout, then
// deactivates the group and releases its owner lock (the Consul TEST
// DOUBLE, not Consul). A group deactivated by hand is no longer monitored:
// its stopped members are not restarted.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runDaemonHere, daemonStatus, scratchDir, waitFor, writeConfig } from '../support/vigil';
import { runGroup, type GroupRun } from '../support/group';
import { startDoubleForTest } from '../support/consul-double';
import { ConsulClient } from '../../src/consul/client';

const KEY = 'vigil/group/g/owner';
const INTERVAL_MS = 200;
const THRESHOLD = 2;
const show = (r: GroupRun) => ({ code: r.code, stdout: r.stdout.split('\n').slice(-10), stderr: r.stderr.split('\n').slice(-6) });

t.test('a group activated by hand while the daemon runs is monitored, restarted, then deactivated; one deactivated by hand is left alone', async (t) => {
  const d = await startDoubleForTest(t, { node_name: 'consul-agent', server: true });
  const consul = new ConsulClient({ url: d.url, timeoutMs: 5000 });
  const dir = scratchDir('group-adopt');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const marks = path.join(dir, 'marks');
  fs.mkdirSync(marks);
  const cmd = (name: string) => ({
    type: 'command', name, timeout: '5s', stop_timeout: '5s', kill_grace: '1s',
    start: `echo start >> ${marks}/${name}.start; touch ${marks}/${name}.up`,
    stop: `echo stop >> ${marks}/${name}.stop; rm -f ${marks}/${name}.up`,
    monitor: `test -f ${marks}/${name}.up`,
  });
  const pidfile = path.join(dir, 'vigil.pid');
  const config = writeConfig(dir, 'vigil', {
    node: 'mn-a', pidfile, state_dir: path.join(dir, 'vstate'), log: { level: 'debug' },
    group: { g: {
      autostart: false, state_dir: path.join(dir, 'state'), monitor_interval: `${INTERVAL_MS}ms`, migration_threshold: THRESHOLD, failure_timeout: '60s',
      owner_lock: { consul: { url: d.url } }, members: [cmd('a'), cmd('b')],
    } },
  });
  const { proc, out, tail } = runDaemonHere(t, config);
  const count = (f: string) => (fs.existsSync(path.join(marks, f)) ? fs.readFileSync(path.join(marks, f), 'utf8').split('\n').filter(Boolean).length : 0);
  const up = (m: string) => fs.existsSync(path.join(marks, `${m}.up`));
  const holder = async () => {
    const e = await consul.kvGet(KEY);
    return e?.session ? (await consul.sessionInfo(e.session))?.node : undefined;
  };
  const phase = async () => (await daemonStatus(pidfile))?.roles?.group?.groups?.g as { phase: string; last?: string } | undefined;
  // Adoption: the next journal read (one interval) plus a monitor of each member (command timeouts), on a loaded machine.
  const adoptBound = 3 * INTERVAL_MS + 2 * 5000 + 5000;
  const restartBound = 3 * INTERVAL_MS + 2 * 5000 + 5000;

  const idle = await waitFor(phase, 15_000, () => `vigil status answers with group g${tail()}`);
  t.equal(idle.phase, 'idle', 'no autostart: the daemon leaves the group alone');
  t.notOk(up('a') || up('b'), 'nothing started by the daemon');

  // Round 1: activated by hand, deactivated by hand; the daemon follows and restarts nothing.
  const on = await runGroup(['activate', 'g', '-c', config]);
  t.equal(on.code, 0, 'vigil group activate by hand', show(on));
  const adopted = await waitFor(async () => { const p = await phase(); return p?.phase === 'active' ? p : undefined; }, adoptBound, () => `the daemon monitors the group within ${adoptBound} ms${tail()}`);
  t.match(adopted.last, /activated outside the daemon/, 'status says where the activation came from');
  const off = await runGroup(['deactivate', 'g', '-c', config]);
  t.equal(off.code, 0, 'vigil group deactivate by hand', show(off));
  t.equal(await holder(), undefined, 'the lock released by the deactivate');
  await waitFor(async () => (await phase())?.phase === 'idle', adoptBound, () => `the daemon stops monitoring within ${adoptBound} ms${tail()}`);
  // Three intervals more: a monitor that still ran would restart the stopped members.
  await new Promise((r) => setTimeout(r, 3 * INTERVAL_MS));
  t.equal(count('a.start'), 1, 'a not restarted after the hand deactivate');
  t.equal(count('b.start'), 1, 'b not restarted after the hand deactivate');
  t.notOk(up('a') || up('b'), 'both stay stopped');

  // Round 2: activated by hand again; failures of b are the daemon's to handle.
  const on2 = await runGroup(['activate', 'g', '-c', config]);
  t.equal(on2.code, 0, 'activate by hand again', show(on2));
  t.equal(await holder(), 'mn-a', 'the activate holds the owner lock for node mn-a');
  await waitFor(async () => (await phase())?.phase === 'active', adoptBound, () => `monitored again within ${adoptBound} ms${tail()}`);
  for (let i = 1; i <= THRESHOLD; i++) {
    fs.rmSync(path.join(marks, 'b.up'));
    await waitFor(() => count('b.start') === i + 2 && up('b'), restartBound, () => `restart ${i} of b within ${restartBound} ms (b started ${count('b.start')} times)${tail()}`);
    t.pass(`b restarted by the daemon (${i} of ${THRESHOLD})`);
  }
  fs.rmSync(path.join(marks, 'b.up'));
  await waitFor(async () => !up('a') && (await holder()) === undefined, restartBound, () => `the group deactivated and the lock released within ${restartBound} ms${tail()}`);
  t.equal(count('b.start'), THRESHOLD + 2, 'b not started again after the last failure');
  t.equal(count('a.stop'), 2, 'a stopped by the daemon (its second stop)');
  const after = await waitFor(phase, 10_000, 'vigil status');
  t.equal(after.phase, 'deactivated', 'status: deactivated', after);
  t.match(after.last, /exceeds migration_threshold 2/, 'status says why');
  const st = await runGroup(['status', 'g', '-c', config]);
  t.match(st.stdout, /inactive 0\/2/, 'vigil group status: inactive');
  t.equal(proc.exitCode, null, 'the daemon keeps running');
});
