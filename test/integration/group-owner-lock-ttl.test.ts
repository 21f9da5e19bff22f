// owner_lock.ttl, against the Consul TEST DOUBLE (test/support/consul-double,
// not Consul; session_ttl_min lowered to 1s so expiry shows in seconds):
// the session gets the TTL; the daemon (`vigil run`) renews it while the
// group is active, so it outlives 2 × ttl (the double invalidates an
// unrenewed session then); a session found gone makes the daemon
// deactivate the group. Without a daemon the lock ends after 2 × ttl.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runDaemonHere, daemonStatus, scratchDir, waitFor, writeConfig } from '../support/vigil';
import { runGroup } from '../support/group';
import { startDoubleForTest } from '../support/consul-double';
import { ConsulClient } from '../../src/consul/client';
import { normalizeGroups } from '../../src/roles/group/config';

const KEY = 'vigil/group/g/owner';
const TTL_MS = 2000;
const INTERVAL_MS = 200;

t.test('owner_lock.ttl: optional, in range, at least monitor_interval', async (t) => {
  const base = { members: [{ type: 'command', start: 'true' }] };
  const lock = (extra: Record<string, unknown>) => ({ consul: { url: 'http://127.0.0.1:8500' }, ...extra });
  t.equal(normalizeGroups({ g: { ...base, owner_lock: lock({}) } }).get('g')!.ownerLock!.ttlMs, undefined, 'unset by default (no TTL)');
  t.equal(normalizeGroups({ g: { ...base, owner_lock: lock({ ttl: '30s' }) } }).get('g')!.ownerLock!.ttlMs, 30_000);
  t.throws(() => normalizeGroups({ g: { ...base, owner_lock: lock({ ttl: '500ms' }) } }), /owner_lock\.ttl: '500ms' is out of range/);
  t.throws(() => normalizeGroups({ g: { ...base, owner_lock: lock({ ttl: '25h' }) } }), /owner_lock\.ttl: '25h' is out of range/);
  t.throws(() => normalizeGroups({ g: { ...base, monitor_interval: '10s', owner_lock: lock({ ttl: '5s' }) } }), /owner_lock\.ttl: is shorter than monitor_interval/);
});

t.test('the daemon renews the session past 2 × ttl and deactivates the group when it is gone', async (t) => {
  const d = await startDoubleForTest(t, { node_name: 'consul-agent', server: true, session_ttl_min: '1s' });
  const consul = new ConsulClient({ url: d.url, timeoutMs: 5000 });
  const dir = scratchDir('group-lock-ttl');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const marks = path.join(dir, 'marks');
  fs.mkdirSync(marks);
  const pidfile = path.join(dir, 'vigil.pid');
  const config = writeConfig(dir, 'vigil', {
    node: 'mn-a', pidfile, state_dir: path.join(dir, 'vstate'), log: { level: 'debug' },
    group: { g: {
      autostart: true, state_dir: path.join(dir, 'state'), monitor_interval: `${INTERVAL_MS}ms`,
      owner_lock: { consul: { url: d.url }, ttl: `${TTL_MS}ms` },
      members: [{ type: 'command', name: 'a', timeout: '5s', start: `touch ${marks}/a.up`, stop: `rm -f ${marks}/a.up`, monitor: `test -f ${marks}/a.up` }],
    } },
  });
  const { proc, out, tail } = runDaemonHere(t, config);
  const up = () => fs.existsSync(path.join(marks, 'a.up'));

  await waitFor(() => up(), 30_000, () => `a started by the daemon (autostart) within 30 s${tail()}`);
  const held = await waitFor(async () => (await consul.kvGet(KEY))?.session, 10_000, () => `the key held${tail()}`);
  const s = await consul.sessionInfo(held);
  t.equal(s?.ttl, '2s', 'the session carries owner_lock.ttl');
  // Unrenewed, the double invalidates at 2 × ttl; wait three times that.
  await new Promise((r) => setTimeout(r, 3 * 2 * TTL_MS));
  t.ok(await consul.sessionInfo(held), `the session lives after ${3 * 2 * TTL_MS} ms: the daemon renews it`);
  t.equal((await consul.kvGet(KEY))?.session, held, 'the key still held by it');
  t.ok(up(), 'a still runs');

  // The session invalidated behind the daemon's back (as the servers do when renewals stop reaching them).
  t.ok(await consul.sessionDestroy(held), 'session destroyed in the double');
  // The next renewal (ttl/2) finds it gone; then the deactivation (a stop command with its timeout), on a loaded machine.
  const bound = TTL_MS / 2 + 30_000 + 5000;
  await waitFor(() => !up(), bound, () => `the group deactivated within ${bound} ms after its session went${tail()}`);
  const st = await waitFor(async () => { const g = (await daemonStatus(pidfile))?.roles?.group?.groups?.g; return g?.phase === 'deactivated' && /^deactivated/.test(g.last ?? '') ? g : undefined; },
    10_000, () => `status deactivated, the deactivation finished${tail()}`);
  t.match(st.last, /owner lock lost/, 'status says why', st);
  t.equal(proc.exitCode, null, 'the daemon keeps running');
});

t.test('without a daemon a ttl lock ends after at most 2 × ttl', async (t) => {
  const d = await startDoubleForTest(t, { node_name: 'consul-agent', server: true, session_ttl_min: '1s' });
  const consul = new ConsulClient({ url: d.url, timeoutMs: 5000 });
  const dir = scratchDir('group-lock-ttl-cli');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const config = writeConfig(dir, 'vigil', {
    node: 'mn-a',
    group: { g: { state_dir: path.join(dir, 'state'), monitor_interval: `${INTERVAL_MS}ms`, owner_lock: { consul: { url: d.url }, ttl: `${TTL_MS}ms` },
      members: [{ type: 'command', name: 'a', start: 'true' }] } },
  });
  const on = await runGroup(['activate', 'g', '-c', config]);
  t.equal(on.code, 0, 'activate', { stdout: on.stdout, stderr: on.stderr });
  t.ok((await consul.kvGet(KEY))?.session, 'held right after activate');
  await waitFor(async () => (await consul.kvGet(KEY))?.session === undefined, 2 * TTL_MS + 5000, `the key released by the double within 2 × ttl + 5 s`);
  t.pass('nobody renewed it: released');
});
