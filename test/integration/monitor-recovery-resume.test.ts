// monitor, recovery lab: the monitor recovering a fenced host is SIGKILLed in the middle of the evacuation
// and its host goes silent. Its claim session (bound to its own serfHealth) is invalidated; after
// lock-delay another monitor claims the incident, does not fence again, and resumes the recovery from the
// record in KV: force-down is not repeated and no server gets a second evacuate.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { skipUnlessRoot } from '../support/lab';
import { childEnv } from '../support/consul-double';
import { daemonStatus, runCli, waitFor } from '../support/vigil';
import { monitorLab, SUSPICION_MS, tail } from '../support/monitor-lab';
import { startNovaDouble } from '../support/nova-double';

if (skipUnlessRoot(t, ['ipmi_sim', 'ipmitool'])) process.exit(0);

const EVACUATE_MS = 2500;
const SERVERS = 4;
const LOCK_DELAY_MS = 15_000;

t.test('claimer killed mid-evacuation: another monitor resumes after lock-delay, nothing finished is repeated', async (t) => {
  const L = await monitorLab(t, 'mon-resume', ['h1', 'h2', 'h3'], ['m1', 'm2', 'nova']);
  const novaHost = L.lab.host('nova');
  const nova = await startNovaDouble(t, {
    user: 'vigil', password: L.secret, project: 'admin', computes: ['h1', 'h2', 'h3'].map((h) => ({ host: h })),
    servers: Array.from({ length: SERVERS }, (_, i) => ({ id: `vm${i + 1}`, host: 'h1' })), evacuateMs: EVACUATE_MS,
  }, { host: novaHost.ip, port: 8774, spawn: (argv) => novaHost.spawn(argv, { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] }) });
  const pw = path.join(L.dir, 'nova.pw');
  fs.writeFileSync(pw, `${L.secret}\n`, { mode: 0o600 });
  const section = L.monitorSection({
    lock_delay: `${LOCK_DELAY_MS / 1000}s`,
    recovery: { method: 'auto', evacuate: { auth_url: `${nova.url}/v3`, user: 'vigil', project: 'admin', password_file: pw, concurrency: 1, server_timeout: '30s', poll: '200ms', request_timeout: '2s' } },
  });
  const ms = ['m1', 'm2'].map((m) => ({ name: m, ...L.startMonitor(m, section) }));
  const logs = () => ms.map((m) => `--- ${m.name}\n${tail(m.daemon, 40)}`).join('\n');
  await waitFor(async () => {
    const st = await Promise.all(ms.map((m) => daemonStatus(m.pidfile)));
    return st.every((s) => s?.roles?.monitor?.hosts?.every((h: any) => h.samples.mgmt?.state === 'up' && h.samples.tenant?.state === 'up'));
  }, 20_000, () => `every monitor seeing the hosts up; logs:\n${logs()}`);

  await L.cut('h1'); // every network: the host is gone
  const record = async () => JSON.parse((await L.kv('ha_cluster/compute_nodes/h1/recovery')) || 'null');
  const doneCount = (r: any) => Object.values(r?.nova?.servers ?? {}).filter((x: any) => x.step === 'done').length;
  const firstBound = 2 * (SUSPICION_MS + 2 * 1000 + 8000 + EVACUATE_MS + 5000);
  await waitFor(async () => doneCount(await record()) >= 1, firstBound, () => `the first server evacuated within ${firstBound} ms; logs:\n${logs()}`);
  const claimer = ms.find((m) => /recovery starts/.test(m.daemon.logs()))!;
  const other = ms.find((m) => m !== claimer)!;
  // The journal says `fenced`, but the recovery runs: a reset now would stop it half-way, so it is refused.
  const reset = await runCli(['monitor', 'reset', 'h1', '-c', claimer.config], L.lab.host(claimer.name));
  t.equal(reset.code, 1, 'vigil monitor reset during the recovery: refused (exit 1)');
  t.match(reset.stderr, /refused: a monitor holds .*fenced, recovery running/);
  claimer.daemon.proc.kill('SIGKILL');
  L.silence(claimer.name);
  const mid = await record();
  t.ok(doneCount(mid) < SERVERS, `killed mid-recovery (${doneCount(mid)} of ${SERVERS} done)`);

  // suspicion (session invalidated) + lock-delay + a round or two + the remaining evacuations, doubled.
  const boundMs = 2 * (SUSPICION_MS + LOCK_DELAY_MS + 2 * 1000 + SERVERS * (EVACUATE_MS + 1000));
  await waitFor(async () => (await daemonStatus(other.pidfile))?.roles?.monitor?.hosts?.find((h: any) => h.host === 'h1')?.phase === 'recovered', boundMs,
    () => `${other.name} resuming and finishing h1's recovery within ${boundMs} ms; logs:\n${logs()}`);
  const calls = await nova.calls();
  for (let i = 1; i <= SERVERS; i++) t.equal(calls.filter((c) => c.method === 'POST' && c.path === `/servers/vm${i}/action`).length, 1, `vm${i} evacuated exactly once`);
  t.equal(calls.filter((c) => c.method === 'PUT').length, 1, 'force-down done once, not repeated by the resumer');
  const all = ms.map((m) => m.daemon.logs()).join('\n');
  t.equal((all.match(/"msg":"fencing"/g) ?? []).length, 1, 'the fence is not repeated');
  t.match(other.daemon.logs(), /power-off already confirmed, the fence is not repeated/);
  t.match(other.daemon.logs(), /recovery resumed from the record in KV/);
  const rec = await record();
  t.equal(rec.outcome, 'recovered');
  t.ok(rec.log.some((l: any) => l.by === claimer.name) && rec.log.some((l: any) => l.by === other.name), 'the record shows both monitors\' steps');
  t.equal(await L.kv('ha_cluster/compute_nodes/h1/status/recovered'), 'True');
  t.ok((await nova.state()).servers.every((s) => s['OS-EXT-SRV-ATTR:host'] !== 'h1'), 'no server left on h1');
});
