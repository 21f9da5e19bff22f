// monitor, operator verb against a running daemon: `vigil monitor maintenance on h1` keeps the
// monitor off h1 while it dies (not counted, not claimed, not fenced); after `maintenance off h1`
// the same dead host is fenced, confirmed by its BMC.
import t from 'tap';
import { skipUnlessRoot } from '../support/lab';
import { daemonStatus, runCli, waitFor } from '../support/vigil';
import { monitorLab, SUSPICION_MS, tail } from '../support/monitor-lab';

if (skipUnlessRoot(t, ['ipmi_sim', 'ipmitool'])) process.exit(0);

t.test('a host in maintenance is not acted on when it dies; after maintenance off it is', async (t) => {
  const L = await monitorLab(t, 'mon-maint', ['h1', 'h2', 'h3'], ['m1']);
  const m = L.startMonitor('m1');
  const logs = () => tail(m.daemon);
  const host = async (name: string) => (await daemonStatus(m.pidfile))?.roles?.monitor?.hosts?.find((h: any) => h.host === name);
  await waitFor(async () => (await daemonStatus(m.pidfile))?.roles?.monitor?.hosts?.filter((h: any) => h.samples.mgmt?.state === 'up' && h.samples.tenant?.state === 'up').length === 3,
    20_000, () => `h1..h3 up on mgmt and tenant; logs:\n${logs()}`);

  let r = await runCli(['monitor', 'maintenance', 'on', 'h1', '-c', m.config], L.lab.host('m1'));
  t.equal(r.code, 0, 'vigil monitor maintenance on h1: exit 0', { stderr: r.stderr });
  t.equal(await L.kv('ha_cluster/compute_nodes/h1/status/maintenance'), 'True', 'status/maintenance True in KV (os_nova\'s form)');
  // The daemon reads it back from KV (its KV watch wakes on the write): a few intervals.
  await waitFor(async () => (await host('h1'))?.phase === 'maintenance', 10_000, () => `the daemon showing h1 in maintenance; logs:\n${logs()}`);

  await L.cut('h1');
  // Long enough for a decision had h1 not been in maintenance: suspicion + confirm (2) × interval (1 s), doubled, + slack.
  const decisionMs = 2 * (SUSPICION_MS + 2 * 1000) + 4000;
  await waitFor(async () => {
    const h = await host('h1');
    return h?.samples?.mgmt?.state === 'down' && h?.samples?.tenant?.state === 'down';
  }, decisionMs, () => `h1 sampled down on both networks; logs:\n${logs()}`);
  await new Promise((res) => setTimeout(res, decisionMs));
  const h1 = await host('h1');
  t.equal(h1?.phase, 'maintenance', 'h1 dead on every network but still in maintenance', { logs: logs() });
  t.notMatch(m.daemon.logs(), /"msg":"fencing"/, 'no fence');
  t.equal(L.sims.h1!.power(), '1', 'h1 powered on');
  t.equal(await L.kv('ha_cluster/compute_nodes/h1/status/failed'), undefined, 'no latch');

  r = await runCli(['monitor', 'maintenance', 'off', 'h1', '-c', m.config], L.lab.host('m1'));
  t.equal(r.code, 0, 'vigil monitor maintenance off h1: exit 0', { stderr: r.stderr });
  const off = Date.now();
  // confirm × interval + power_timeout (8 s) + ipmitool's retries, doubled.
  const boundMs = 2 * (2 * 1000 + 8000 + 6000);
  await waitFor(() => L.sims.h1!.power() === '0', boundMs, () => `h1 powered off within ${boundMs} ms of maintenance off; logs:\n${logs()}`);
  t.pass(`h1 powered off ${Date.now() - off} ms after maintenance off`);
  await waitFor(async () => (await host('h1'))?.phase === 'fenced', 10_000, () => `h1 fenced (confirmed); logs:\n${logs()}`);
  t.equal(L.sims.h2!.power(), '1', 'h2 untouched');
});
