// `vigil monitor release-spare HA` as a process against the Consul TEST DOUBLE: frees a latched spare
// (in_use := False, holder removed), refuses while a session holds it (a takeover in flight) and on bad
// input, exit codes 0 / 1 / 2. And a Nova password file readable by others is refused at load (exit 2).
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { doubleRequest, startDoubleForTest } from '../support/consul-double';
import { ConsulClient } from '../../src/consul/client';
import { runCli, scratchDir, writeConfig } from '../support/vigil';

t.test('release-spare', async (t) => {
  const d = await startDoubleForTest(t, { node_name: 'c1', server: true });
  const dir = scratchDir('mon-relspare');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const put = (key: string, value: string) => doubleRequest(d.url, 'PUT', `/v1/kv/${key}`, value);
  const get = async (key: string) => { const r = await doubleRequest(d.url, 'GET', `/v1/kv/${key}`); return r.status === 200 ? JSON.parse(r.body)[0] : undefined; };
  await put('ha_cluster/ha_nodes/ha-1/status/in_use', 'True');
  await put('ha_cluster/ha_nodes/ha-1/holder', JSON.stringify({ host: 'cmp-01', step: 'taken-over' }));
  const cfg = writeConfig(dir, 'm1', { node: 'm1', pidfile: path.join(dir, 'm1.pid'), state_dir: dir, monitor: { networks: { mgmt: { url: d.url }, tenant: { url: d.url } }, inventory: { source: 'kv' } } });

  let r = await runCli(['monitor', 'release-spare', 'ha-1', '-c', cfg]);
  t.equal(r.code, 0, 'released', { stderr: r.stderr });
  t.equal(Buffer.from((await get('ha_cluster/ha_nodes/ha-1/status/in_use')).Value, 'base64').toString(), 'False');
  t.equal(await get('ha_cluster/ha_nodes/ha-1/holder'), undefined, 'holder removed');

  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  const s = await c.sessionCreate({ name: 'claimer', lockDelay: '0s' });
  t.ok(await c.kvPut('ha_cluster/ha_nodes/ha-1/status/in_use', 'True', { acquire: s }));
  r = await runCli(['monitor', 'release-spare', 'ha-1', '-c', cfg]);
  t.equal(r.code, 1, 'refused while held');
  t.match(r.stderr, /refused: a monitor's session holds ha_cluster\/ha_nodes\/ha-1\/status\/in_use/);
  t.equal(Buffer.from((await get('ha_cluster/ha_nodes/ha-1/status/in_use')).Value, 'base64').toString(), 'True', 'unchanged');

  r = await runCli(['monitor', 'release-spare', 'ha-9', '-c', cfg]);
  t.equal(r.code, 2, 'unknown spare: exit 2');
  r = await runCli(['monitor', 'release-spare', '-c', cfg]);
  t.equal(r.code, 2, 'no HA: exit 2');
  r = await runCli(['monitor', 'release-spare', '--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /^usage: vigil monitor release-spare HA/);
});

t.test('publish-runtime: writes the JSON with its time, newer copies win, bad input exit 2', async (t) => {
  const d = await startDoubleForTest(t, { node_name: 'c1', server: true });
  const dir = scratchDir('mon-publish');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cfg = writeConfig(dir, 'cmp-01', { node: 'cmp-01', pidfile: path.join(dir, 'm1.pid'), state_dir: dir, monitor: { networks: { mgmt: { url: d.url }, tenant: { url: d.url } }, inventory: { source: 'kv' } } });
  const file = path.join(dir, 'rt.json');
  fs.writeFileSync(file, JSON.stringify({ vcpus: 8, instances_path: '/var/lib/nova/instances' }));
  const key = 'ha_cluster/compute_nodes/cmp-01/internal/runtime_config';
  const get = async () => { const r = await doubleRequest(d.url, 'GET', `/v1/kv/${key}`); return r.status === 200 ? JSON.parse(Buffer.from(JSON.parse(r.body)[0].Value, 'base64').toString()) : undefined; };
  let r = await runCli(['monitor', 'publish-runtime', '--file', file, '-c', cfg]);
  t.equal(r.code, 0, 'published', { stderr: r.stderr });
  const first = await get();
  t.match(first, { vcpus: 8, instances_path: '/var/lib/nova/instances', vigil_published_at_ms: Number });
  fs.writeFileSync(file, JSON.stringify({ vcpus: 16 }));
  r = await runCli(['monitor', 'publish-runtime', '--file', file, '-c', cfg]);
  t.equal(r.code, 0);
  t.equal((await get()).vcpus, 16, 'a newer copy replaces it');
  await doubleRequest(d.url, 'PUT', `/v1/kv/${key}`, JSON.stringify({ vcpus: 32, vigil_published_at_ms: Date.now() + 3_600_000 }));
  fs.writeFileSync(file, JSON.stringify({ vcpus: 4 }));
  r = await runCli(['monitor', 'publish-runtime', '--file', file, '-c', cfg]);
  t.equal(r.code, 1, 'an older copy never overwrites a newer one');
  t.match(r.stderr, /holds a newer copy/);
  t.equal((await get()).vcpus, 32);
  fs.writeFileSync(file, '[1, 2]');
  r = await runCli(['monitor', 'publish-runtime', '--file', file, '-c', cfg]);
  t.equal(r.code, 2, 'not an object: exit 2');
  r = await runCli(['monitor', 'publish-runtime', '-c', cfg]);
  t.equal(r.code, 2, 'no --file: exit 2');
});

t.test('a Nova password file readable by others is refused at load, naming it', async (t) => {
  const dir = scratchDir('mon-novapw');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pw = path.join(dir, 'nova.pw');
  fs.writeFileSync(pw, 'not-shown-anywhere\n', { mode: 0o644 });
  fs.chmodSync(pw, 0o644);
  const cfg = writeConfig(dir, 'm1', { node: 'm1', pidfile: path.join(dir, 'm1.pid'), state_dir: dir, monitor: {
    networks: { mgmt: { url: 'http://127.0.0.1:1' }, tenant: { url: 'http://127.0.0.1:1' } }, inventory: { source: 'kv' },
    recovery: { evacuate: { auth_url: 'http://127.0.0.1:1/v3', user: 'vigil', project: 'admin', password_file: pw } },
  } });
  const r = await runCli(['check-config', '-c', cfg]);
  t.equal(r.code, 2, 'exit 2', { stdout: r.stdout, stderr: r.stderr });
  t.match(r.stderr + r.stdout, /Nova password file/);
  t.notMatch(r.stderr + r.stdout, /not-shown-anywhere/);
});
