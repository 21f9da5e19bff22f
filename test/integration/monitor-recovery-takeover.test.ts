// monitor, recovery lab (os_nova's spare takeover): real `vigil run` monitors, spare HA nodes that are live
// Consul members, their os_nova keys in KV. The first spare's takeover fails → it is released and the
// second spare is claimed; the claimer is SIGKILLed during the second spare's takeover → after lock-delay
// the other monitor re-claims that spare (its claim was released with the dead session) and re-runs the
// unfinished takeover once, told it is resumed; the fence is not repeated. The takeover gets the failed
// host's runtime_config on stdin and the names in its environment.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { skipUnlessRoot } from '../support/lab';
import { doubleRequest } from '../support/consul-double';
import { daemonStatus, waitFor } from '../support/vigil';
import { monitorLab, SUSPICION_MS, tail } from '../support/monitor-lab';

if (skipUnlessRoot(t, ['ipmi_sim', 'ipmitool'])) process.exit(0);

const LOCK_DELAY_MS = 15_000;
const RUNTIME = { instances: ['vm1', 'vm2'], nova_mountpoint: '/var/lib/nova/instances' };

t.test('takeover: failing spare released, next spare claimed; claimer killed mid-takeover → resumed once elsewhere', async (t) => {
  // ha1 and ha2 heartbeat like the monitors do, so they are healthy members on both networks.
  const L = await monitorLab(t, 'mon-spare', ['h1', 'h2', 'h3'], ['m1', 'm2', 'ha1', 'ha2']);
  const put = (k: string, v: string) => doubleRequest({ url: L.mgmt.url, socketPath: L.mgmtSock }, 'PUT', `/v1/kv/${k}`, v);
  for (const ha of ['ha1', 'ha2']) await put(`ha_cluster/ha_nodes/${ha}/status/in_use`, 'False');
  await put('ha_cluster/compute_nodes/h1/internal/runtime_config', JSON.stringify(RUNTIME));
  const runs = path.join(L.dir, 'takeover-runs');
  // ha1 fails; ha2's first run hangs (its claimer dies in it), a resumed run succeeds.
  const script = [
    `cat > ${L.dir}/stdin.$VIGIL_SPARE`,
    `echo "$VIGIL_HOST $VIGIL_SPARE $VIGIL_INCIDENT $VIGIL_RESUMED" >> ${runs}`,
    '[ "$VIGIL_SPARE" = ha1 ] && exit 3',
    '[ "$VIGIL_RESUMED" = 1 ] || exec sleep 40',
    'exit 0',
  ].join('\n');
  const section = L.monitorSection({
    lock_delay: `${LOCK_DELAY_MS / 1000}s`,
    recovery: { method: 'reserved', spares: ['ha1', 'ha2'], takeover: { command: ['/bin/sh', '-c', script, 'take-over'], timeout: '60s' } },
  });
  const ms = ['m1', 'm2'].map((m) => ({ name: m, ...L.startMonitor(m, section) }));
  const logs = () => ms.map((m) => `--- ${m.name}\n${tail(m.daemon, 40)}`).join('\n');
  await waitFor(async () => {
    const st = await Promise.all(ms.map((m) => daemonStatus(m.pidfile)));
    return st.every((s) => s?.roles?.monitor?.hosts?.every((h: any) => h.samples.mgmt?.state === 'up' && h.samples.tenant?.state === 'up'));
  }, 20_000, () => `every monitor seeing the hosts up; logs:\n${logs()}`);

  await L.cut('h1'); // every network: the host is gone
  const bound = 2 * (SUSPICION_MS + 2 * 1000 + 8000 + 5000);
  await waitFor(() => fs.existsSync(runs) && fs.readFileSync(runs, 'utf8').includes(' ha2 '), bound, () => `the takeover on ha2 started within ${bound} ms; logs:\n${logs()}`);
  const claimer = ms.find((m) => /recovery starts/.test(m.daemon.logs()))!;
  const other = ms.find((m) => m !== claimer)!;
  t.equal(await L.kv('ha_cluster/ha_nodes/ha1/status/in_use'), 'False', 'ha1 released after its takeover failed');
  t.equal(await L.kv('ha_cluster/ha_nodes/ha1/holder'), undefined, 'ha1 holder record removed');
  t.equal(await L.kv('ha_cluster/ha_nodes/ha2/status/in_use'), 'True', 'ha2 claimed');
  claimer.daemon.proc.kill('SIGKILL');
  L.silence(claimer.name);

  const boundMs = 2 * (SUSPICION_MS + LOCK_DELAY_MS + 2 * 1000 + 5000);
  await waitFor(async () => (await daemonStatus(other.pidfile))?.roles?.monitor?.hosts?.find((h: any) => h.host === 'h1')?.phase === 'recovered', boundMs,
    () => `${other.name} completing the takeover within ${boundMs} ms; logs:\n${logs()}`);
  const lines = fs.readFileSync(runs, 'utf8').trim().split('\n');
  const incident = lines[0]!.split(' ')[2]!;
  t.same(lines, [`h1 ha1 ${incident} 0`, `h1 ha2 ${incident} 0`, `h1 ha2 ${incident} 1`], 'ha1 failed, ha2 started, ha2 resumed once (same incident); never ha1 again');
  t.same(JSON.parse(fs.readFileSync(path.join(L.dir, 'stdin.ha2'), 'utf8')), RUNTIME, 'runtime_config on stdin');
  t.equal(await L.kv('ha_cluster/ha_nodes/ha2/status/in_use'), 'True', 'ha2 in use');
  t.match(JSON.parse((await L.kv('ha_cluster/ha_nodes/ha2/holder'))!), { host: 'h1', step: 'taken-over', by: other.name });
  t.equal(await L.kv('ha_cluster/compute_nodes/h1/status/recovered'), 'True');
  const all = ms.map((m) => m.daemon.logs()).join('\n');
  t.equal((all.match(/"msg":"fencing"/g) ?? []).length, 1, 'the fence is not repeated');
  t.match(other.daemon.logs(), /resuming: spare ha2 was claimed by an earlier claimer/, 'the resumer says why it takes ha2 again');
});
