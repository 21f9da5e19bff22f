// monitor, scenario 6: this monitor's own agent on the tenant network loses its servers (the monitor
// is the one cut off there; the double's `servers-lost` state: members failed, server RPCs refused).
// Nothing it says about the hosts counts: their tenant samples are `unknown` (never down), the status
// shows the agent not ok, and nobody is acted on, although this matrix fences on tenant alone.
import t from 'tap';
import { skipUnlessRoot } from '../support/lab';
import { daemonStatus, waitFor } from '../support/vigil';
import { monitorLab, tail } from '../support/monitor-lab';

if (skipUnlessRoot(t, ['ipmi_sim', 'ipmitool'])) process.exit(0);

t.test('monitor cut from one network: no action against anyone', async (t) => {
  const L = await monitorLab(t, 'mon-iso', ['h1', 'h2', 'h3'], ['m1']);
  const m = L.startMonitor('m1', L.monitorSection({
    guards: { max_down_fraction: 0.99 },
    matrix: [
      { when: { mgmt: 'up', tenant: 'up' }, actions: [] },
      { when: { mgmt: 'up', tenant: 'down' }, actions: ['ipmi'] },
      { when: { mgmt: 'down', tenant: 'up' }, actions: ['email'] },
      { when: { mgmt: 'down', tenant: 'down' }, actions: ['ipmi', 'evacuate'] },
    ],
  }));
  const logs = () => tail(m.daemon);
  await waitFor(async () => (await daemonStatus(m.pidfile))?.roles?.monitor?.hosts?.filter((h: any) => h.samples.tenant?.state === 'up').length === 3, 20_000, () => `hosts up; logs:\n${logs()}`);
  await L.tenant.setState('servers-lost');
  await waitFor(async () => {
    const hs = (await daemonStatus(m.pidfile))?.roles?.monitor?.hosts ?? [];
    return hs.length === 3 && hs.every((h: any) => h.samples.tenant?.state === 'unknown');
  }, 10_000, () => `every host's tenant sample unknown within 10 s; logs:\n${logs()}`);
  // Two confirm windows (confirm 2 × interval 1 s, twice) and a margin.
  await new Promise((r) => setTimeout(r, 4000));
  const st = (await daemonStatus(m.pidfile))?.roles?.monitor;
  t.match(st.networks.find((n: any) => n.name === 'tenant'), { agent: { ok: false } }, 'the status shows the tenant agent not ok');
  for (const h of st.hosts) {
    t.equal(h.counts.tenant ?? 0, 0, `${h.host}: unknown neither counts nor resets (tenant count 0)`);
    t.notOk(['awaiting-guards', 'held', 'claiming', 'fencing', 'fenced'].includes(h.phase), `${h.host}: no decision (${h.phase})`);
  }
  await new Promise((r) => setTimeout(r, 3000));
  t.notMatch(m.daemon.logs(), /"msg":"fencing"/, 'nobody fenced', { logs: logs() });
  for (const h of ['h1', 'h2', 'h3']) t.equal(L.sims[h]!.power(), '1', `${h} on`);
});
