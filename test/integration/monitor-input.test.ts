// monitor: safety of input and the operator verbs, against a Consul TEST DOUBLE on loopback.
// Bad inventory, a bad KV value, default credentials, a group-readable password file: `vigil run`
// exits 2 with one line naming the key or file, and nothing is written to Consul. Then
// `vigil monitor maintenance|reset|status` and their bad input (exit 2).
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startDoubleForTest, doubleRequest } from '../support/consul-double';
import { runCli, scratchDir, writeConfig } from '../support/vigil';

const WRITES = /^(PUT|POST|DELETE)$/;

t.test('refuses to start: one line, exit 2, nothing written', async (t) => {
  const d = await startDoubleForTest(t, { node_name: 'c1', server: true });
  const dir = scratchDir('mon-input');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pw = path.join(dir, 'bmc.pw');
  fs.writeFileSync(pw, 's3cret-not-default\n', { mode: 0o600 });
  const section = (over: Record<string, unknown> = {}, bmc: Record<string, unknown> = {}) => ({
    networks: { mgmt: { url: d.url }, tenant: { url: d.url } },
    inventory: { hosts: [{ name: 'h1', bmc: { ip: '192.0.2.10', user: 'admin', password_file: pw, ...bmc } }] },
    ...over,
  });
  const put = (key: string, value: string) => doubleRequest(d.url, 'PUT', `/v1/kv/${key}`, value);
  const run = async (name: string, monitor: unknown) => {
    const cfg = writeConfig(dir, name, { node: 'm1', pidfile: path.join(dir, `${name}.pid`), state_dir: dir, monitor });
    const r = await runCli(['run', '-c', cfg]);
    return { ...r, lines: r.stderr.trim().split('\n').filter(Boolean) };
  };
  const defaultPw = path.join(dir, 'default.pw');
  fs.writeFileSync(defaultPw, 'Test123.\n', { mode: 0o600 });
  const openPw = path.join(dir, 'open.pw');
  fs.writeFileSync(openPw, 'fine-password\n', { mode: 0o640 });
  fs.chmodSync(openPw, 0o640);

  const cases: [string, unknown, RegExp, (() => Promise<unknown>)?][] = [
    ['default BMC user', section({}, { user: 'test' }), /monitor\.inventory\.hosts\[0\]\.bmc\.user: 'test' is os_nova's default BMC user/],
    ['default BMC password', section({}, { password_file: defaultPw }), /default\.pw holds os_nova's default password/],
    ['group-readable password file', section({}, { password_file: openPw }), /open\.pw/],
    ['inline password', section({}, { password: 'x' }), /monitor\.inventory\.hosts\[0\]\.bmc\.password/],
    ['bad KV value', section({ inventory: { source: 'kv' } }), /ha_cluster\/compute_nodes\/h1\/status\/failed: "maybe" does not parse \(expected True or False\)/,
      () => put('ha_cluster/compute_nodes/h1/status/failed', 'maybe')],
    ['default credentials in KV', section({ inventory: { source: 'kv' } }), /ha_cluster\/compute_nodes\/h2\/config\/bmc\/user: 'test' is os_nova's default user/,
      async () => { await doubleRequest(d.url, 'DELETE', '/v1/kv/ha_cluster?recurse'); await put('ha_cluster/compute_nodes/h2/config/bmc/user', 'test'); }],
  ];
  for (const [name, monitor, re, before] of cases) {
    await before?.();
    const before0 = (await d.requests()).filter((r) => WRITES.test(r.method)).length;
    const r = await run(name.replace(/\W+/g, '-'), monitor);
    t.equal(r.code, 2, `${name}: exit 2`, { stderr: r.stderr, stdout: r.stdout });
    t.equal(r.lines.length, 1, `${name}: one line`, { stderr: r.stderr });
    t.match(r.stderr, re, `${name}: the line names the key or file`);
    t.notMatch(r.stderr, /s3cret|fine-password|Test123/, `${name}: no password in the line`);
    t.equal((await d.requests()).filter((x) => WRITES.test(x.method)).length, before0, `${name}: nothing written to Consul`);
  }
});

t.test('vigil monitor maintenance, reset, status', async (t) => {
  const d = await startDoubleForTest(t, { node_name: 'c1', server: true });
  const dir = scratchDir('mon-verbs');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pw = path.join(dir, 'bmc.pw');
  fs.writeFileSync(pw, 's3cret-not-default\n', { mode: 0o600 });
  const cfg = writeConfig(dir, 'm1', {
    node: 'm1', pidfile: path.join(dir, 'm1.pid'), state_dir: dir,
    monitor: { networks: { mgmt: { url: d.url }, tenant: { url: d.url } }, inventory: { hosts: [{ name: 'h1', bmc: { ip: '192.0.2.10', user: 'admin', password_file: pw } }] } },
  });
  const get = async (key: string) => {
    const r = await doubleRequest(d.url, 'GET', `/v1/kv/${key}`);
    return r.status === 200 ? Buffer.from((JSON.parse(r.body) as { Value: string }[])[0]!.Value, 'base64').toString() : undefined;
  };
  let r = await runCli(['monitor', 'maintenance', 'on', 'h1', '-c', cfg]);
  t.equal(r.code, 0, 'maintenance on: exit 0', { stderr: r.stderr });
  t.equal(await get('ha_cluster/compute_nodes/h1/status/maintenance'), 'True', 'status/maintenance True in KV');
  r = await runCli(['monitor', 'maintenance', 'off', 'h1', '-c', cfg]);
  t.equal(await get('ha_cluster/compute_nodes/h1/status/maintenance'), 'False', 'and False again');
  await doubleRequest(d.url, 'PUT', '/v1/kv/ha_cluster/compute_nodes/h1/status/failed', 'True');
  r = await runCli(['monitor', 'reset', 'h1', '-c', cfg]);
  t.equal(r.code, 0, 'reset: exit 0', { stderr: r.stderr });
  t.equal(await get('ha_cluster/compute_nodes/h1/status/failed'), 'False', 'reset clears status/failed');
  t.equal(await get('ha_cluster/compute_nodes/h1/internal/number_fails'), '0', 'and the counter');
  // An incident held by a monitor's session: reset refused (a fence may be in flight).
  const sid = JSON.parse((await doubleRequest(d.url, 'PUT', '/v1/session/create', JSON.stringify({ Name: 'other', LockDelay: '0s' }))).body).ID as string;
  await doubleRequest(d.url, 'PUT', `/v1/kv/ha_cluster/compute_nodes/h1/incident?acquire=${sid}`, '{}');
  r = await runCli(['monitor', 'reset', 'h1', '-c', cfg]);
  t.equal(r.code, 1, 'reset while an incident is held: exit 1', { stderr: r.stderr });
  t.match(r.stderr, /a monitor holds ha_cluster\/compute_nodes\/h1\/incident/);
  for (const [args, re] of [
    [['monitor', 'maintenance', 'maybe', 'h1'], /"maybe" is not on or off/],
    [['monitor', 'reset'], /HOST is missing/],
    [['monitor', 'reset', 'h9'], /"h9" is not in monitor\.inventory\.hosts/],
    [['monitor', 'frobnicate'], /unknown verb/],
    [['monitor', 'status', '--bogus'], /status:/],
  ] as [string[], RegExp][]) {
    r = await runCli([...args, '-c', cfg]);
    t.equal(r.code, 2, `vigil ${args.join(' ')}: exit 2`, { stderr: r.stderr });
    t.match(r.stderr, re);
  }
  for (const v of ['status', 'reset', 'maintenance']) {
    r = await runCli(['monitor', v, '--help']);
    t.equal(r.code, 0);
    t.match(r.stdout, new RegExp(`^usage: vigil monitor ${v}`), `vigil monitor ${v} --help`);
  }
  r = await runCli(['monitor', 'status', '-c', cfg]);
  t.equal(r.code, 3, 'status without a daemon: exit 3', { stdout: r.stdout, stderr: r.stderr });
});

t.test('a KV value that stops parsing at runtime: logged once with its key, the last good state kept', async (t) => {
  const { spawn } = await import('node:child_process');
  const { BIN, daemonStatus, waitFor } = await import('../support/vigil');
  const d = await startDoubleForTest(t, { node_name: 'c1', server: true, double: { clients: [{ name: 'h1', addr: '192.0.2.50' }] } });
  const dir = scratchDir('mon-kvrt');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const put = (key: string, value: string) => doubleRequest(d.url, 'PUT', `/v1/kv/${key}`, value);
  await put('ha_cluster/compute_nodes/h1/config/bmc/ip', '192.0.2.10');
  await put('ha_cluster/compute_nodes/h1/status/failed', 'False');
  const pidfile = path.join(dir, 'm1.pid');
  const cfg = writeConfig(dir, 'm1', { node: 'm1', pidfile, state_dir: dir, monitor: { networks: { mgmt: { url: d.url }, tenant: { url: d.url } }, inventory: { source: 'kv' }, interval: '1s', confirm: 2, session_ttl: '10s' } });
  const proc = spawn(process.execPath, [BIN, 'run', '-c', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  proc.stderr.on('data', (c: Buffer) => { out += c.toString(); });
  t.teardown(() => { proc.kill('SIGKILL'); });
  const hostOf = async () => (await daemonStatus(pidfile))?.roles?.monitor?.hosts?.find((h: any) => h.host === 'h1');
  await waitFor(async () => (await hostOf())?.samples?.mgmt?.state === 'up', 10_000, () => `h1 sampled up from the KV inventory; log:\n${out}`);
  await put('ha_cluster/compute_nodes/h1/status/failed', 'perhaps');
  const st = await waitFor(async () => {
    const s = (await daemonStatus(pidfile))?.roles?.monitor;
    return s?.kvProblems?.length ? s : undefined;
  }, 5000, () => `the status listing the KV problem; log:\n${out}`);
  t.match(st.kvProblems[0], { key: 'ha_cluster/compute_nodes/h1/status/failed', message: /"perhaps" does not parse/ });
  t.ok(st.hosts.some((h: any) => h.host === 'h1'), 'h1 still monitored (its last good record)');
  await new Promise((r) => setTimeout(r, 2500));
  t.equal((out.match(/perhaps\\?" does not parse/g) ?? []).length, 1, 'logged once, not every round', { log: out });
  t.match(out, /"code":"EKVPARSE","key":"ha_cluster\/compute_nodes\/h1\/status\/failed"/, 'with its code and key');
  t.equal(proc.exitCode, null, 'still running');
});
