// The runtime role (`runtime_publish:`) in the real daemon against the Consul TEST DOUBLE on loopback
// (a client agent that sees servers): the file's JSON appears under os_nova's runtime_config key; a
// changed file is republished; an unchanged one is not rewritten (ModifyIndex stays); a file that is
// not JSON is never published; an agent without servers, or without a leader, gets no write (not even
// a KV read); `vigil status` shows the last publication and the last cycle's result.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { doubleRequest, startDoubleForTest } from '../support/consul-double';
import { runDaemonHere, SLACK_MS, START_MS, daemonStatus, runCli, scratchDir, waitFor, writeConfig } from '../support/vigil';

const INTERVAL = '1s';
const INTERVAL_MS = 1000;
const REQUEST_TIMEOUT_MS = 2000;
/** One cycle: the interval, then up to three requests (self, leader, KV read) and a write, each bounded. */
const CYCLE_BOUND_MS = INTERVAL_MS + 4 * REQUEST_TIMEOUT_MS + SLACK_MS;

t.test('runtime_publish: publishes while healthy, once per change, never garbage', async (t) => {
  const d = await startDoubleForTest(t, { node_name: 'cmp-01', retry_join: ['10.99.0.5'] });
  const dir = scratchDir('runtime-pub');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'runtime_config.json');
  const pidfile = path.join(dir, 'vigil.pid');
  const config = writeConfig(dir, 'cmp-01', {
    node: 'cmp-01', pidfile, state_dir: dir,
    runtime_publish: { consul: { url: d.url }, kv_prefix: 'ha_cluster', file, interval: INTERVAL, request_timeout: `${REQUEST_TIMEOUT_MS}ms` },
  });
  const KEY = 'ha_cluster/compute_nodes/cmp-01/internal/runtime_config';
  const read = async () => {
    const r = await doubleRequest(d.url, 'GET', `/v1/kv/${KEY}?stale`);
    if (r.status !== 200) return undefined;
    const e = JSON.parse(r.body)[0];
    return { obj: JSON.parse(Buffer.from(e.Value, 'base64').toString()), modifyIndex: e.ModifyIndex as number };
  };

  // No file yet: the daemon starts, skips, and writes nothing.
  const { proc, out, tail } = runDaemonHere(t, config);
  const status = async () => (await daemonStatus(pidfile))?.roles?.runtime as Record<string, any> | undefined;
  /** Wait until `n` more cycles than now have finished, and return the status then. */
  const cyclesLater = async (n: number, what: string) => {
    const from = (await status())?.cycles ?? 0;
    return waitFor(async () => { const s = await status(); return s && s.cycles >= from + n ? s : undefined; }, n * CYCLE_BOUND_MS, () => `${n} more cycles (${what}) within ${n} × ${CYCLE_BOUND_MS} ms${tail()}`);
  };

  const first = await waitFor(async () => { const s = await status(); return s?.last ? s : undefined; }, START_MS + CYCLE_BOUND_MS, () => `a first cycle within ${START_MS + CYCLE_BOUND_MS} ms${tail()}`);
  t.match(first.last, { result: 'skipped', reason: 'file-missing' }, 'no file: skipped');
  t.equal(await read(), undefined, 'nothing in KV');

  // A valid file appears: published under os_nova's key, with its time.
  fs.writeFileSync(file, JSON.stringify({ vcpus: 8, instances_path: '/var/lib/nova/instances' }));
  const before = Date.now();
  const v1 = await waitFor(read, CYCLE_BOUND_MS, () => `${KEY} written within one cycle (${CYCLE_BOUND_MS} ms)${tail()}`);
  t.match(v1.obj, { vcpus: 8, instances_path: '/var/lib/nova/instances', vigil_published_at_ms: Number });
  t.ok(v1.obj.vigil_published_at_ms >= before - SLACK_MS, 'dated by the publication');

  // Unchanged: several cycles later the key was not rewritten; each cycle cost one KV read and no write.
  const c0 = (await status())!.cycles as number;
  const t0 = Date.now();
  let s = await cyclesLater(3, 'unchanged file');
  const daemonKv = (await d.requests()).filter((r) => r.at >= t0 && r.path.startsWith('/v1/kv/') && !r.query.includes('stale'));
  t.equal(daemonKv.filter((r) => r.method !== 'GET').length, 0, 'unchanged: no KV write at all');
  t.ok(daemonKv.length <= s.cycles - c0 + 1, `at most one KV read per cycle (${daemonKv.length} reads in ${s.cycles - c0} cycles)`);
  t.match(s.last, { result: 'skipped', reason: 'unchanged' });
  t.equal((await read())!.modifyIndex, v1.modifyIndex, 'unchanged file: ModifyIndex stays');
  t.equal(s.publishes, 1, 'one publication so far');

  // Changed: republished, once.
  fs.writeFileSync(file, JSON.stringify({ vcpus: 16, instances_path: '/var/lib/nova/instances' }));
  const v2 = await waitFor(async () => { const v = await read(); return v && v.obj.vcpus === 16 ? v : undefined; }, CYCLE_BOUND_MS, () => `the changed file republished within ${CYCLE_BOUND_MS} ms${tail()}`);
  t.ok(v2.modifyIndex > v1.modifyIndex, 'a new ModifyIndex');
  t.ok(v2.obj.vigil_published_at_ms >= v1.obj.vigil_published_at_ms, 'a later copy');
  s = await cyclesLater(2, 'after the change');
  t.equal((await read())!.modifyIndex, v2.modifyIndex, 'written once per change');

  // Not JSON: never published, the last good copy stays; logged once.
  fs.writeFileSync(file, '{"vcpus": 32, ');
  s = await cyclesLater(3, 'invalid file');
  t.match(s.last, { result: 'skipped', reason: 'file-invalid' });
  t.same((await read())!, v2, 'invalid JSON: the stored copy is untouched');
  t.equal(out().split('\n').filter((l) => /not published/.test(l) && /file-invalid/.test(l)).length, 1, 'the skip is logged once');

  // An agent without servers: no write, not even a KV request.
  fs.writeFileSync(file, JSON.stringify({ vcpus: 24 }));
  await d.setState('servers-lost');
  await cyclesLater(1, 'the state switch seen');
  const since = Date.now();
  s = await cyclesLater(3, 'agent without servers');
  t.match(s.last, { result: 'skipped', reason: 'unhealthy', detail: /known_servers 0/ });
  t.same((await d.requests()).filter((r) => r.at >= since && r.path.startsWith('/v1/kv/')), [], 'no KV request while the agent sees no servers');

  // Servers, but no cluster leader: still no write (the double answers ?stale reads then, so the copy is checked).
  await d.setState('healthy', { leader: false });
  s = await cyclesLater(2, 'agent without a leader');
  t.match(s.last, { result: 'skipped', reason: 'unhealthy', detail: /no cluster leader/ });
  t.same((await read())!, v2, 'nothing published without a leader');

  // Healthy again: the pending change goes out.
  await d.configure({ leader: true });
  const v3 = await waitFor(async () => { const v = await read(); return v && v.obj.vcpus === 24 ? v : undefined; }, 2 * CYCLE_BOUND_MS, () => `the pending change published once healthy${tail()}`);
  t.ok(v3.modifyIndex > v2.modifyIndex);

  // `vigil status` (human form) shows the last publication and the last cycle.
  const r = await runCli(['status', '-c', config]);
  t.equal(r.code, 0, 'status answers', { stderr: r.stderr });
  t.match(r.stdout, /runtime: publishing .*runtime_config\.json to ha_cluster\/compute_nodes\/cmp-01\/internal\/runtime_config every 1s; last cycle: (published|skipped \(unchanged)/);
  t.match(r.stdout, /last publish: \d{4}-\d\d-\d\dT[\d:.]+Z.*publishes 3 in \d+ cycles/);

  proc.kill('SIGTERM');
  const code = await new Promise<number | null>((res) => proc.on('exit', (c) => res(c)));
  t.equal(code, 0, 'clean exit');
});
