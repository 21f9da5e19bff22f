// Recovery of a fenced host through real HTTP: the Consul TEST DOUBLE (sessions, txn with check-session)
// and the Nova + Keystone TEST DOUBLE (test/support/nova-double), real takeover commands. The executor
// (src/roles/monitor/recovery/executor.ts) with its real I/O (recovery/io.ts) and the Nova client.
// Shows: force-down before any evacuate, concurrency never above the limit, exactly once (a second run
// does nothing), a failing server reported and retried a bounded number of times with the host left
// forced down and never re-enabled, bad Nova answers retried or reported (never skipped), a claimer whose
// session dies mid-recovery stops writing and another resumes without repeating finished steps, spare
// takeover with runtime_config on stdin and the next spare after a failure, and a dead holder's spare
// claim released.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { ConsulClient } from '../../src/consul/client';
import { NovaClient } from '../../src/net/nova/client';
import { runRecovery, type RecoveryRunConfig } from '../../src/roles/monitor/recovery/executor';
import { createRecoveryIo } from '../../src/roles/monitor/recovery/io';
import { holderKey, inUseKey, recordKey } from '../../src/roles/monitor/recovery/kv';
import { startDoubleForTest } from '../support/consul-double';
import { startNovaDouble, type NovaDoubleConfig } from '../support/nova-double';
import { waitFor } from '../support/vigil';

const PREFIX = 'ha_cluster';
const HOST = 'cmp-01';
const INCIDENT = 'cmp-01-1';
const incidentKey = `${PREFIX}/compute_nodes/${HOST}/incident`;
const RUNTIME = JSON.stringify({ instances_path: '/var/lib/nova/instances', vcpus: 8 }, null, 4);

function runCfg(o: Partial<RecoveryRunConfig> = {}): RecoveryRunConfig {
  return { self: 'mon-a', kvPrefix: PREFIX, method: 'auto', sparePriority: ['ha-1', 'ha-2'], evacuateConcurrency: 3, evacuateRetries: 1, serverTimeoutMs: 5000, pollMs: 50, callRetries: 2, ...o };
}

function novaCfg(servers: number, o: Partial<NovaDoubleConfig> = {}): NovaDoubleConfig {
  return {
    user: 'vigil', password: 'pw-s3cret', project: 'admin', computes: [{ host: HOST }, { host: 'cmp-02' }, { host: 'cmp-03' }],
    servers: Array.from({ length: servers }, (_, i) => ({ id: `s${i + 1}`, host: HOST })), evacuateMs: 200, ...o,
  };
}

async function setup(t: Tap.Test, nova?: NovaDoubleConfig, spares: string[] = []) {
  const d = await startDoubleForTest(t, { node_name: 'mon-a', server: true, double: { clients: spares.map((s, i) => ({ name: s, addr: `192.0.2.${60 + i}` })) } });
  const kv = new ConsulClient({ url: d.url, timeoutMs: 3000 });
  for (const s of spares) await kv.kvPut(inUseKey(PREFIX, s), 'False');
  const nd = nova ? await startNovaDouble(t, nova) : undefined;
  const client = nd ? new NovaClient({ authUrl: nd.authUrl, user: 'vigil', userDomain: 'Default', project: 'admin', projectDomain: 'Default', password: { reveal: () => 'pw-s3cret' }, interface: 'public', timeoutMs: 1000 }) : undefined;
  const logs: string[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-rec-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const mk = (takeover?: string[]) => createRecoveryIo({
    kvPrefix: PREFIX, kv, networks: [kv], ...(client ? { nova: client } : {}),
    ...(takeover ? { takeover: { argv: takeover, timeoutMs: 10_000 } } : {}),
    log: (level, msg, data) => { logs.push(`${level} ${msg} ${JSON.stringify(data)}`); },
  });
  /** A claim on the incident key, as the monitor's ConsulLock holds it (lock-delay 0 here: the test hands over at once). */
  const claim = async () => {
    const s = await kv.sessionCreate({ name: 'test claim', ttl: '30s', lockDelay: '0s', behavior: 'release' });
    t.ok(await kv.kvPut(incidentKey, JSON.stringify({ id: INCIDENT, step: 'fenced' }), { acquire: s }), 'incident claimed');
    return s;
  };
  const record = async () => JSON.parse((await kv.kvGet(recordKey(PREFIX, HOST)))?.value?.toString() ?? 'null');
  return { d, kv, nd, mk, claim, record, logs, dir };
}

const args = (session: string) => ({ host: HOST, session, incident: INCIDENT, journal: { id: INCIDENT, step: 'fenced' }, runtimeConfig: RUNTIME });
const count = (calls: { method: string; path: string }[], method: string, re: RegExp) => calls.filter((c) => c.method === method && re.test(c.path)).length;

t.test('evacuate: force-down first, concurrency within the limit, every server moved, exactly once', async (t) => {
  const { kv, nd, mk, claim, record } = await setup(t, novaCfg(7));
  const s = await claim();
  const cfg = runCfg({ evacuateConcurrency: 3 });
  const end = await runRecovery(mk(), cfg, args(s));
  t.equal(end.end, 'recovered');
  const calls = await nd!.calls();
  const firstEvac = calls.findIndex((c) => c.method === 'POST' && /\/action$/.test(c.path));
  const forceDown = calls.findIndex((c) => c.method === 'PUT' && /^\/os-services\//.test(c.path));
  t.ok(forceDown >= 0 && forceDown < firstEvac, `force-down (call ${forceDown}) before the first evacuate (call ${firstEvac})`);
  t.same(calls[forceDown]!.body, { status: 'disabled', disabled_reason: `vigil: fenced ${HOST} (incident ${INCIDENT})`, forced_down: true });
  t.equal(calls[forceDown]!.version, '2.53');
  const st = await nd!.state();
  t.ok(st.maxRebuilding <= 3, `at most 3 evacuations at once (saw ${st.maxRebuilding})`);
  t.ok(st.servers.every((x) => x['OS-EXT-SRV-ATTR:host'] !== HOST), 'no server left on the fenced host');
  t.equal(count(calls, 'POST', /\/action$/), 7, 'one evacuate per server');
  t.equal((await kv.kvGet(`${PREFIX}/compute_nodes/${HOST}/status/recovered`))?.value?.toString(), 'True', 'status/recovered written');
  t.match(JSON.parse((await kv.kvGet(incidentKey))!.value!.toString()), { step: 'recovered' }, 'the journal ends in the same txn');
  t.equal((await record()).outcome, 'recovered');
  const again = await runRecovery(mk(), cfg, args(s));
  t.equal(again.end, 'recovered');
  t.equal((await nd!.calls()).length, calls.length, 'a second run makes no Nova call at all');
  t.equal(st.services.find((x) => x.host === HOST)!.forced_down, true, 'host stays forced down');
});

t.test('one server failing: retried evacuate_retries times, reported, host still forced down, never re-enabled', async (t) => {
  const { kv, nd, mk, claim, record, logs } = await setup(t, novaCfg(3));
  await nd!.knobs({ fail: { s2: 'error' } });
  const s = await claim();
  const end = await runRecovery(mk(), runCfg({ evacuateRetries: 2 }), args(s));
  t.equal(end.end, 'failed');
  const rec = await record();
  t.match(rec.nova.servers, { s1: { step: 'done' }, s2: { step: 'failed', attempts: 3 }, s3: { step: 'done' } });
  const calls = await nd!.calls();
  t.equal(count(calls, 'POST', /^\/servers\/s2\/action$/), 3, '1 + evacuate_retries attempts');
  t.notOk(calls.some((c) => c.method === 'PUT' && (JSON.stringify(c.body).includes('"forced_down":false') || JSON.stringify(c.body).includes('"enabled"'))), 'no un-force or enable call, ever');
  t.equal((await nd!.state()).services.find((x) => x.host === HOST)!.forced_down, true);
  t.not((await kv.kvGet(`${PREFIX}/compute_nodes/${HOST}/status/recovered`))?.value?.toString(), 'True', 'not marked recovered');
  t.ok(logs.some((l) => /^error recovery step finish: evacuation failed for s2/.test(l)), 'the failure is reported with the server');
});

t.test('bad Nova answers (401, 500, garbage JSON, a hang) fail the call cleanly; it is retried, never skipped', async (t) => {
  const { nd, mk, claim, logs } = await setup(t, novaCfg(2));
  await nd!.knobs({ faults: [
    { method: 'GET', path: '/os-services', status: 500, times: 1 },
    { method: 'GET', path: '/os-services', garbage: true, times: 1 },
    { method: 'PUT', path: '/os-services/', status: 401, times: 1 },
    { method: 'GET', path: '/servers/detail', hang: true, times: 1 },
  ] });
  const s = await claim();
  const end = await runRecovery(mk(), runCfg({ callRetries: 3 }), args(s));
  t.equal(end.end, 'recovered');
  const calls = await nd!.calls();
  t.equal(count(calls, 'POST', /^\/v3\/auth\/tokens$/), 2, 'the 401 re-authenticated once');
  t.equal(count(calls, 'GET', /^\/servers\/detail$/), 2, 'the hung list timed out and was asked again');
  t.ok(logs.some((l) => /force-down failed \(attempt 1 of 4\).*HTTP 500/.test(l)), '500 logged and retried');
  t.ok(logs.some((l) => /force-down failed \(attempt 2 of 4\).*not JSON/.test(l)), 'garbage JSON logged and retried');
  t.notOk(logs.some((l) => l.includes('pw-s3cret')), 'the password is never logged');
  await nd!.knobs({ faults: [{ method: 'POST', path: '/action', status: 500, times: 100 }] });
});

t.test('evacuate refused every time → the server fails, is reported, the stage fails (never skipped)', async (t) => {
  const { nd, mk, claim, record } = await setup(t, novaCfg(1));
  await nd!.knobs({ fail: { s1: 'refuse' } });
  const s = await claim();
  const end = await runRecovery(mk(), runCfg({ evacuateRetries: 1 }), args(s));
  t.equal(end.end, 'failed');
  t.match((await record()).nova.servers.s1, { step: 'failed', attempts: 2, error: /HTTP 500/ });
});

t.test('claimer\'s session dies mid-evacuation: it writes nothing more; another resumes, no finished step repeated', async (t) => {
  const { kv, nd, mk, claim, record } = await setup(t, novaCfg(4, { evacuateMs: 700 }));
  const a = await claim();
  const cfg = runCfg({ evacuateConcurrency: 1 });
  const runA = runRecovery(mk(), cfg, args(a));
  await waitFor(async () => Object.values((await record())?.nova?.servers ?? {}).filter((x: any) => x.step === 'done').length >= 1, 10_000, 'the first server evacuated by claimer A');
  await kv.sessionDestroy(a);
  const endA = await runA;
  t.equal(endA.end, 'claim-lost', 'A stops at its next write');
  const mid = await record();
  const b = await claim();
  const endB = await runRecovery(mk(), { ...cfg, self: 'mon-b' }, args(b));
  t.equal(endB.end, 'recovered', 'B finished it');
  const calls = await nd!.calls();
  t.equal(count(calls, 'PUT', /^\/os-services\//), 1, 'force-down done once (A), not repeated by B');
  for (const id of ['s1', 's2', 's3', 's4']) t.equal(count(calls, 'POST', new RegExp(`^/servers/${id}/action$`)), 1, `${id} evacuated exactly once`);
  const rec = await record();
  t.ok(rec.log.some((l: any) => l.by === 'mon-a') && rec.log.some((l: any) => l.by === 'mon-b'), 'the record shows both claimers');
  t.ok(Object.values(mid.nova.servers).some((x: any) => x.step === 'done'), 'A had finished a server before it died');
});

t.test('takeover: runtime_config on stdin, names in the environment; a failing spare is released and the next tries', async (t) => {
  const { kv, mk, claim, record, dir } = await setup(t, undefined, ['ha-1', 'ha-2']);
  const script = path.join(dir, 'takeover.sh');
  fs.writeFileSync(script, `#!/bin/sh\ncat > "${dir}/stdin.$VIGIL_SPARE"\necho "$VIGIL_HOST $VIGIL_SPARE $VIGIL_INCIDENT $VIGIL_RESUMED" >> "${dir}/runs"\n[ "$VIGIL_SPARE" = ha-2 ] || exit 3\n`, { mode: 0o755 });
  const s = await claim();
  const end = await runRecovery(mk([script]), runCfg({ method: 'reserved' }), args(s));
  t.equal(end.end, 'recovered');
  t.equal(fs.readFileSync(path.join(dir, 'runs'), 'utf8'), `${HOST} ha-1 ${INCIDENT} 0\n${HOST} ha-2 ${INCIDENT} 0\n`, 'ha-1 first (priority), then ha-2');
  t.equal(fs.readFileSync(path.join(dir, 'stdin.ha-2'), 'utf8'), RUNTIME, 'the failed host\'s runtime_config on stdin');
  const ha1 = await kv.kvGet(inUseKey(PREFIX, 'ha-1'));
  t.equal(ha1?.value?.toString(), 'False', 'ha-1 released');
  t.equal(ha1?.session, undefined);
  t.equal(await kv.kvGet(holderKey(PREFIX, 'ha-1')), undefined, 'ha-1 holder removed');
  const ha2 = await kv.kvGet(inUseKey(PREFIX, 'ha-2'));
  t.equal(ha2?.value?.toString(), 'True', 'ha-2 in use');
  t.match(JSON.parse((await kv.kvGet(holderKey(PREFIX, 'ha-2')))!.value!.toString()), { host: HOST, incident: INCIDENT, step: 'taken-over' });
  t.same((await record()).spares, { 'ha-1': 'failed', 'ha-2': 'taken-over' });
});

t.test('a dead holder\'s spare claim is released (N-19); the resumer takes the same spare again and re-runs the unfinished takeover', async (t) => {
  const { kv, mk, claim, dir } = await setup(t, undefined, ['ha-1']);
  const script = path.join(dir, 'takeover.sh');
  // The first run hangs (its claimer dies during it); a resumed run finishes.
  fs.writeFileSync(script, `#!/bin/sh\necho "$VIGIL_RESUMED" >> "${dir}/runs"\n[ "$VIGIL_RESUMED" = 1 ] || sleep 8\n`, { mode: 0o755 });
  const a = await claim();
  const runA = runRecovery(mk([script]), runCfg({ method: 'reserved' }), args(a));
  await waitFor(() => fs.existsSync(path.join(dir, 'runs')), 10_000, 'the takeover started on ha-1');
  t.equal((await kv.kvGet(inUseKey(PREFIX, 'ha-1')))?.session, a, 'ha-1 locked by the claimer\'s session');
  await kv.sessionDestroy(a);
  const freed = await kv.kvGet(inUseKey(PREFIX, 'ha-1'));
  t.equal(freed?.session, undefined, 'the dead holder\'s lock on in_use is gone');
  t.match(JSON.parse((await kv.kvGet(holderKey(PREFIX, 'ha-1')))!.value!.toString()), { step: 'claimed' }, 'holder says the takeover never finished: free for the next claim');
  const b = await claim();
  const endB = await runRecovery(mk([script]), runCfg({ method: 'reserved', self: 'mon-b' }), args(b));
  t.equal(endB.end, 'recovered');
  t.equal(fs.readFileSync(path.join(dir, 'runs'), 'utf8'), '0\n1\n', 'the unfinished takeover re-run once, told it is resumed');
  t.equal((await kv.kvGet(inUseKey(PREFIX, 'ha-1')))?.session, b, 'held by the resumer');
  t.equal((await runA).end, 'claim-lost', 'A wrote nothing after its session died');
});

t.test('a takeover command that never reads its stdin (input larger than a pipe) fails or succeeds by its exit status, never crashes the monitor', async (t) => {
  const { mk, claim } = await setup(t, undefined, ['ha-1']);
  const s = await claim();
  const big = JSON.stringify({ blob: 'x'.repeat(256 * 1024) });
  const end = await runRecovery(mk(['/bin/true']), runCfg({ method: 'reserved', sparePriority: ['ha-1'] }), { ...args(s), runtimeConfig: big });
  t.equal(end.end, 'recovered', '/bin/true exits 0 without reading: recovered, the EPIPE ignored');
});

t.test('a cloud without 2.53 (406): legacy force-down and disable-log-reason at 2.14, evacuation still works', async (t) => {
  const { nd, mk, claim, record } = await setup(t, novaCfg(2, { maxVersion: '2.52' }));
  const s = await claim();
  const end = await runRecovery(mk(), runCfg(), args(s));
  t.equal(end.end, 'recovered');
  const calls = await nd!.calls();
  const puts = calls.filter((c) => c.method === 'PUT');
  t.same(puts.map((c) => [c.path, c.version]), [['/os-services/force-down', '2.14'], ['/os-services/disable-log-reason', '2.14']]);
  t.ok(calls.findIndex((c) => c.method === 'PUT') < calls.findIndex((c) => c.method === 'POST' && /\/action$/.test(c.path)), 'force-down before the first evacuate');
  t.match((await record()).log.find((l: any) => l.step === 'forced-down'), { detail: /legacy calls at 2.14/ });
  t.match((await nd!.state()).services.find((x) => x.host === HOST), { forced_down: true, status: 'disabled' });
});
