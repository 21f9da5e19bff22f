// monitor, scenario 2: the dead host's BMC does not answer. The fence is never "done": the monitor
// ends in fence-unconfirmed with an alarm (stable code), and nothing further happens.
import t from 'tap';
import { skipUnlessRoot } from '../support/lab';
import { daemonStatus, runCli, waitFor } from '../support/vigil';
import { doubleRequest } from '../support/consul-double';
import { monitorLab, SUSPICION_MS, tail } from '../support/monitor-lab';

if (skipUnlessRoot(t, ['ipmi_sim', 'ipmitool'])) process.exit(0);

t.test('BMC unreachable: fence-unconfirmed, alarm, no further action', async (t) => {
  const L = await monitorLab(t, 'mon-bmcdown', ['h1', 'h2', 'h3'], ['m1', 'm2']);
  const ms = ['m1', 'm2'].map((m) => ({ name: m, ...L.startMonitor(m) }));
  const logs = () => ms.map((m) => `--- ${m.name}\n${tail(m.daemon)}`).join('\n');
  await waitFor(async () => {
    const st = await Promise.all(ms.map((m) => daemonStatus(m.pidfile)));
    return st.every((s) => s?.roles?.monitor?.hosts?.every((h: any) => h.samples.mgmt?.state === 'up' && h.samples.tenant?.state === 'up'));
  }, 20_000, () => `every monitor seeing the hosts up; logs:\n${logs()}`);
  L.sims.h1!.proc.kill('SIGKILL');
  await L.cut('h1');
  // suspicion + confirm × interval + power_timeout (8 s) + one ipmitool bound (-N 1 -R 2 ≈ 3 s per call, twice), doubled.
  const boundMs = 2 * (SUSPICION_MS + 2 * 1000 + 8000 + 6000);
  const st = await waitFor(async () => {
    const all = await Promise.all(ms.map((m) => daemonStatus(m.pidfile)));
    return all.map((s) => s?.roles?.monitor?.hosts?.find((h: any) => h.host === 'h1')).find((h: any) => h?.phase === 'fence-unconfirmed');
  }, boundMs, () => `a monitor reporting h1 fence-unconfirmed within ${boundMs} ms; logs:\n${logs()}`);
  t.match(st.lastAlarm, /^fence-unconfirmed:/, 'the status shows the alarm');
  await new Promise((r) => setTimeout(r, 4000));
  const all = ms.map((m) => m.daemon.logs()).join('\n');
  t.equal((all.match(/"msg":"fencing"/g) ?? []).length, 1, 'one fence attempt, none after it', { logs: logs() });
  t.match(all, /"code":"EMONITORFENCEUNCONFIRMED"/, 'an error line with the stable alarm code');
  t.notMatch(all, /host fenced/, 'never reported fenced');
  for (const m of ms) {
    const h1 = (await daemonStatus(m.pidfile))?.roles?.monitor?.hosts?.find((h: any) => h.host === 'h1');
    t.ok(['fence-unconfirmed', 'observing'].includes(h1?.phase), `${m.name}: h1 ${h1?.phase} (fence-unconfirmed, or observing the other's incident)`);
  }
  t.equal(L.sims.h2!.power(), '1', 'h2 untouched');

  // The operator dealt with h1 by hand: it is back, and the finished incident is reset.
  await L.restore('h1');
  const r = await runCli(['monitor', 'reset', 'h1', '-c', ms[0]!.config], L.lab.host('m1'));
  t.equal(r.code, 0, 'vigil monitor reset h1 on a finished (fence-unconfirmed) incident: exit 0', { stderr: r.stderr });
  t.equal(await L.kv('ha_cluster/compute_nodes/h1/status/failed'), 'False', 'latch cleared');
  await waitFor(async () => {
    const all = await Promise.all(ms.map((m) => daemonStatus(m.pidfile)));
    return all.every((s) => s?.roles?.monitor?.hosts?.find((h: any) => h.host === 'h1')?.phase === 'healthy');
  }, 10_000, () => `every monitor back to h1 healthy after the reset; logs:\n${logs()}`);
  const key = await doubleRequest({ url: L.mgmt.url, socketPath: L.mgmtSock }, 'GET', '/v1/kv/ha_cluster/compute_nodes/h1/incident');
  t.notOk(key.status === 200 && 'Session' in (JSON.parse(key.body) as object[])[0]!, 'the claimer released the incident');
});
