// monitor, the per-network matrix over three real lab bridges (mgmt, tenant, storage): cutting only
// h1's tenant veth turns h1 failed on tenant alone (its heartbeat to the tenant double stops), which
// is hostha's row 101 of the default 3-network matrix: email + disabled, no fence. Cutting its mgmt
// and storage veths as well is row 000: ipmi, and the host is fenced, confirmed by its BMC.
import t from 'tap';
import { skipUnlessRoot } from '../support/lab';
import { daemonStatus, waitFor } from '../support/vigil';
import { monitorLab, NETWORKS, SUSPICION_MS, tail } from '../support/monitor-lab';

if (skipUnlessRoot(t, ['ipmi_sim', 'ipmitool'])) process.exit(0);

t.test('three bridges: down on tenant only → row 101 (no fence); down everywhere → row 000 (fenced)', async (t) => {
  const L = await monitorLab(t, 'mon-nets', ['h1', 'h2', 'h3'], ['m1']);
  const m = L.startMonitor('m1', L.monitorSection({ networks: L.networks(NETWORKS) }));
  const logs = () => tail(m.daemon);
  const host = async (name: string) => (await daemonStatus(m.pidfile))?.roles?.monitor?.hosts?.find((h: any) => h.host === name);
  await waitFor(async () => (await daemonStatus(m.pidfile))?.roles?.monitor?.hosts?.filter((h: any) => NETWORKS.every((n) => h.samples[n]?.state === 'up')).length === 3,
    20_000, () => `h1..h3 up on mgmt, tenant and storage; logs:\n${logs()}`);

  await L.cut('h1', ['tenant']);
  // suspicion + confirm (2) × interval (1 s), doubled, + slack.
  const boundMs = 2 * (SUSPICION_MS + 2 * 1000) + 5000;
  const h1 = await waitFor(async () => { const h = await host('h1'); return h?.phase === 'degraded' ? h : undefined; }, boundMs,
    () => `h1 degraded (a matrix row without fencing) within ${boundMs} ms; logs:\n${logs()}`);
  t.match(h1.samples, { mgmt: { state: 'up' }, tenant: { state: 'down' }, storage: { state: 'up' } }, 'a real cut of the tenant veth: down on tenant only');
  t.match(h1.decision, { row: '101', actions: ['email', 'disabled'] }, 'hostha\'s row 101 (K-19)');
  t.match(m.daemon.logs(), /"code":"EMONITORNOTIFY"/, 'the row\'s email action is a notification');
  t.match(m.daemon.logs(), /row 101: no fencing/, 'the decision is logged with its row');
  await new Promise((r) => setTimeout(r, 3000));
  t.notMatch(m.daemon.logs(), /"msg":"fencing"/, 'no fence for a host down on tenant only', { logs: logs() });
  t.equal(L.sims.h1!.power(), '1', 'h1 powered on');
  for (const h of ['h2', 'h3']) t.match((await host(h))?.samples, { mgmt: { state: 'up' }, tenant: { state: 'up' }, storage: { state: 'up' } }, `${h} up everywhere`);

  await L.cut('h1', ['mgmt', 'storage']);
  // suspicion + confirm × interval + power_timeout (8 s) + ipmitool's retries, doubled.
  const fenceMs = 2 * (SUSPICION_MS + 2 * 1000 + 8000 + 6000);
  await waitFor(() => L.sims.h1!.power() === '0', fenceMs, () => `h1 powered off within ${fenceMs} ms of its last cut; logs:\n${logs()}`);
  const fenced = await waitFor(async () => { const h = await host('h1'); return h?.phase === 'fenced' ? h : undefined; }, 10_000, () => `h1 fenced; logs:\n${logs()}`);
  t.match(fenced.decision, { row: '000' }, 'row 000: ipmi');
  t.equal(L.sims.h2!.power(), '1', 'h2 untouched');
});
