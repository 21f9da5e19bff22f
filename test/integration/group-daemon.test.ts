// The group role run by the daemon (`vigil run`), outside any lab namespace
// (its members are commands that leave marker files): an autostart group is
// activated with its Consul owner lock (the Consul TEST DOUBLE, not
// Consul), a member that goes down is restarted up to migration_threshold
// times within failure_timeout, and one failure more deactivates the whole
// group in reverse and releases the lock.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runDaemonHere, daemonStatus, scratchDir, waitFor, writeConfig } from '../support/vigil';
import { scrape, sample } from '../support/metrics';
import { startDoubleForTest } from '../support/consul-double';
import { ConsulClient } from '../../src/consul/client';

const KEY = 'vigil/group/g/owner';
const INTERVAL_MS = 200;
const THRESHOLD = 2;

t.test('autostart, restart up to migration_threshold, then deactivate and release the lock', async (t) => {
  const d = await startDoubleForTest(t, { node_name: 'consul-agent', server: true });
  const consul = new ConsulClient({ url: d.url, timeoutMs: 5000 });
  const dir = scratchDir('group-daemon');
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
    metrics: { listen: path.join(dir, 'metrics.sock') },
    group: { g: {
      autostart: true, state_dir: path.join(dir, 'state'), monitor_interval: `${INTERVAL_MS}ms`, migration_threshold: THRESHOLD, failure_timeout: '60s',
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
  // Generous bound for one restart: the next monitor round plus the stop and start commands' timeouts, on a loaded machine.
  const restartBound = 3 * INTERVAL_MS + 2 * 5000 + 5000;

  await waitFor(() => up('a') && up('b'), 30_000, () => `a and b started by the daemon (autostart) within 30 s${tail()}`);
  t.equal(await holder(), 'mn-a', 'the daemon holds the owner lock for node mn-a');
  // The members run before the activation ends (its owner-lock bookkeeping and log follow): wait for the phase.
  const st = await waitFor(async () => { const g = (await daemonStatus(pidfile))?.roles?.group?.groups?.g; return g?.phase === 'active' ? g : undefined; },
    10_000, () => `vigil status answers with group g active${tail()}`);
  t.equal(st.phase, 'active', 'status: the group is active');

  for (let i = 1; i <= THRESHOLD; i++) {
    fs.rmSync(path.join(marks, 'b.up'));
    await waitFor(() => count('b.start') === i + 1 && up('b'), restartBound, () => `restart ${i} of b within ${restartBound} ms (b started ${count('b.start')} times)${tail()}`);
    t.pass(`b restarted (${i} of ${THRESHOLD})`);
  }
  t.equal(count('a.start'), 1, 'a was never restarted');
  t.ok(up('a'), 'a still runs');

  // One failure more than migration_threshold within failure_timeout: the whole group goes, the lock is released.
  fs.rmSync(path.join(marks, 'b.up'));
  await waitFor(async () => !up('a') && (await holder()) === undefined, restartBound, () => `the group deactivated and the lock released within ${restartBound} ms${tail()}`);
  t.equal(count('b.start'), THRESHOLD + 1, 'b was not started again after the last failure');
  t.equal(count('a.stop'), 1, 'a was stopped once');
  const after = await waitFor(async () => (await daemonStatus(pidfile))?.roles?.group?.groups?.g, 10_000, 'vigil status');
  t.equal(after.phase, 'deactivated', 'status: deactivated', after);
  t.match(after.last, /exceeds migration_threshold 2/, 'status says why');
  t.equal(proc.exitCode, null, 'the daemon keeps running');

  // The metrics tell the same story: the group's state and its transitions.
  const m = (await scrape(path.join(dir, 'metrics.sock'))).body;
  t.equal(sample(m, 'vigil_role_state', { role: 'group/g', state: 'deactivated' }), 1, 'metrics: group/g deactivated');
  t.equal(sample(m, 'vigil_role_state', { role: 'group/g', state: 'active' }), 0, 'metrics: and no longer active');
  t.equal(sample(m, 'vigil_role_transitions_total', { role: 'group/g', from: 'activating', to: 'active' }), 1, 'metrics: activated once');
  t.ok((sample(m, 'vigil_consul_requests_total', { endpoint: '/v1/session/create', method: 'PUT', result: '2xx' }) ?? 0) >= 1, 'metrics: the owner lock\'s session was created');
});
