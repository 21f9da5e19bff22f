// monitor, recovery lab: real `vigil run` monitors in lab namespaces, two Consul TEST DOUBLES, one ipmi_sim
// per host, and the Nova + Keystone TEST DOUBLE in a lab host. A host whose link is cut is fenced (BMC
// confirmed) and its servers evacuated exactly once although three monitors race; a host whose BMC is
// gone ends fence-unconfirmed and Nova is never called for it.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { skipUnlessRoot } from '../support/lab';
import { childEnv } from '../support/consul-double';
import { daemonStatus, waitFor } from '../support/vigil';
import { monitorLab, SUSPICION_MS, tail } from '../support/monitor-lab';
import { startNovaDouble } from '../support/nova-double';

if (skipUnlessRoot(t, ['ipmi_sim', 'ipmitool'])) process.exit(0);

const EVACUATE_MS = 300;
const SERVERS = 5;

t.test('three monitors, one host cut: fenced once, every server evacuated once, host forced down and latched', async (t) => {
  const L = await monitorLab(t, 'mon-recov', ['h1', 'h2', 'h3'], ['m1', 'm2', 'm3', 'nova']);
  const novaHost = L.lab.host('nova');
  const nova = await startNovaDouble(t, {
    user: 'vigil', password: L.secret, project: 'admin', computes: ['h1', 'h2', 'h3'].map((h) => ({ host: h })),
    servers: [...Array.from({ length: SERVERS }, (_, i) => ({ id: `vm${i + 1}`, host: 'h1' })), { id: 'other', host: 'h2' }], evacuateMs: EVACUATE_MS,
  }, { host: novaHost.ip, port: 8774, spawn: (argv) => novaHost.spawn(argv, { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] }) });
  const pw = path.join(L.dir, 'nova.pw');
  fs.writeFileSync(pw, `${L.secret}\n`, { mode: 0o600 });
  const recovery = { method: 'auto', evacuate: { auth_url: `${nova.url}/v3`, user: 'vigil', project: 'admin', password_file: pw, concurrency: 2, evacuate_retries: 1, server_timeout: '20s', poll: '200ms', request_timeout: '2s' } };
  // 2 of 3 hosts down must not trip the mass-failure guard in the second half (h1 stays off).
  const section = L.monitorSection({ recovery, guards: { max_down_fraction: 0.9, max_concurrent_recoveries: 1 } });
  const ms = ['m1', 'm2', 'm3'].map((m) => ({ name: m, ...L.startMonitor(m, section) }));
  const logs = () => ms.map((m) => `--- ${m.name}\n${tail(m.daemon, 40)}`).join('\n');
  await waitFor(async () => {
    const st = await Promise.all(ms.map((m) => daemonStatus(m.pidfile)));
    return st.every((s) => s?.roles?.monitor?.hosts?.every((h: any) => h.samples.mgmt?.state === 'up' && h.samples.tenant?.state === 'up'));
  }, 20_000, () => `every monitor seeing the hosts up; logs:\n${logs()}`);

  await L.cut('h1'); // every network: the host is gone
  // suspicion + confirm × interval + power-off with its confirmation (≤ power_timeout 8 s) + evacuations
  // (SERVERS / concurrency × (evacuate time + polls)), all doubled for a loaded machine.
  const boundMs = 2 * (SUSPICION_MS + 2 * 1000 + 8000 + Math.ceil(SERVERS / 2) * (EVACUATE_MS + 3 * 200) + 5000);
  const done = await waitFor(async () => {
    const all = await Promise.all(ms.map(async (m) => ({ m, h1: (await daemonStatus(m.pidfile))?.roles?.monitor?.hosts?.find((h: any) => h.host === 'h1') })));
    return all.find((x) => x.h1?.phase === 'recovered');
  }, boundMs, () => `a monitor reporting h1 recovered within ${boundMs} ms; logs:\n${logs()}`);
  t.pass(`${done.m.name} recovered h1`);
  t.equal(L.sims.h1!.power(), '0', 'h1 powered off, read back by its BMC');
  const calls = await nova.calls();
  const evac = calls.filter((c) => c.method === 'POST' && /\/action$/.test(c.path));
  t.same(evac.map((c) => c.path).sort(), Array.from({ length: SERVERS }, (_, i) => `/servers/vm${i + 1}/action`), 'each of h1\'s servers evacuated exactly once, no other server touched');
  const fdIdx = calls.findIndex((c) => c.method === 'PUT' && c.path.startsWith('/os-services/'));
  t.ok(fdIdx >= 0 && fdIdx < calls.indexOf(evac[0]!), 'force-down before the first evacuate');
  t.equal(calls.filter((c) => c.method === 'PUT').length, 1, 'one force-down call, and no un-force or enable call');
  const st = await nova.state();
  t.ok(st.maxRebuilding <= 2, `concurrency never above 2 (saw ${st.maxRebuilding})`);
  t.ok(st.servers.filter((s) => s.id !== 'other').every((s) => s['OS-EXT-SRV-ATTR:host'] !== 'h1' && s.status === 'ACTIVE'), 'every server ACTIVE elsewhere');
  t.match(st.services.find((s) => s.host === 'h1'), { forced_down: true, status: 'disabled', disabled_reason: /^vigil: fenced h1/ }, 'h1 stays forced down and disabled');
  t.equal(await L.kv('ha_cluster/compute_nodes/h1/status/recovered'), 'True', 'status/recovered latched');
  t.match(JSON.parse((await L.kv('ha_cluster/compute_nodes/h1/incident'))!), { step: 'recovered' }, 'the incident journal ends recovered');
  const all = ms.map((m) => m.daemon.logs()).join('\n');
  t.equal((all.match(/"msg":"fencing"/g) ?? []).length, 1, 'one fence across the three monitors');
  t.match(all, /recovery step forceDown: the host's nova-compute must be forced down/, 'each step logged with its reason before it is done');
  t.notMatch(all, new RegExp(L.secret), 'no password in any log');
  const status = (await daemonStatus(done.m.pidfile))?.roles?.monitor?.recovery;
  t.match(status?.hosts?.h1, { outcome: 'recovered', forcedDown: true, servers: { total: SERVERS, done: SERVERS, failed: 0 } }, 'status shows the recovery with per-server results');

  // A latched host is left alone: more rounds, no further Nova call.
  const before = (await nova.calls()).length;
  await new Promise((r) => setTimeout(r, 3000));
  t.equal((await nova.calls()).length, before, 'no Nova call after the recovery ended');
  for (const m of ms) t.ok(['recovered', 'latched'].includes((await daemonStatus(m.pidfile))?.roles?.monitor?.hosts?.find((h: any) => h.host === 'h1')?.phase), `${m.name}: h1 recovered or latched`);

  // h2's BMC is gone: fence-unconfirmed, and recovery never starts.
  L.sims.h2!.proc.kill('SIGKILL');
  await L.cut('h2'); // every network: the host is gone
  const bound2 = 2 * (SUSPICION_MS + 2 * 1000 + 8000 + 6000);
  await waitFor(async () => {
    const st2 = await Promise.all(ms.map((m) => daemonStatus(m.pidfile)));
    return st2.some((s) => s?.roles?.monitor?.hosts?.find((h: any) => h.host === 'h2')?.phase === 'fence-unconfirmed');
  }, bound2, () => `a monitor reporting h2 fence-unconfirmed within ${bound2} ms; logs:\n${logs()}`);
  await new Promise((r) => setTimeout(r, 2000));
  const after = await nova.calls();
  t.notOk(after.slice(before).some((c) => JSON.stringify(c).includes('h2') || c.path.includes('/servers/other')), 'no Nova call for h2 (fence unconfirmed)');
  t.equal((await nova.state()).services.find((s) => s.host === 'h2')!.forced_down, false, 'h2 not forced down');
});
