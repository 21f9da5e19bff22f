// monitor, scenario 3: two of four hosts cut at once with max_down_fraction 1/3: the mass-failure
// guard holds, with an alarm, and nobody is fenced.
import t from 'tap';
import { skipUnlessRoot } from '../support/lab';
import { daemonStatus, waitFor } from '../support/vigil';
import { monitorLab, SUSPICION_MS, tail } from '../support/monitor-lab';

if (skipUnlessRoot(t, ['ipmi_sim', 'ipmitool'])) process.exit(0);

t.test('2 of 4 hosts cut with a 1/3 cap: no action, alarm', async (t) => {
  const L = await monitorLab(t, 'mon-mass', ['h1', 'h2', 'h3', 'h4'], ['m1']);
  const m = L.startMonitor('m1');
  const logs = () => tail(m.daemon);
  await waitFor(async () => (await daemonStatus(m.pidfile))?.roles?.monitor?.hosts?.filter((h: any) => h.samples.mgmt?.state === 'up').length === 4, 20_000, () => `h1..h4 up; logs:\n${logs()}`);
  await Promise.all([L.cut('h1'), L.cut('h2')]);
  const boundMs = 2 * (SUSPICION_MS + 2 * 1000) + 5000;
  const held = await waitFor(async () => {
    const hs = (await daemonStatus(m.pidfile))?.roles?.monitor?.hosts ?? [];
    const h = hs.filter((x: any) => x.phase === 'held');
    return h.length === 2 ? h : undefined;
  }, boundMs, () => `h1 and h2 held by the guards within ${boundMs} ms; logs:\n${logs()}`);
  for (const h of held) {
    const mass = h.guards?.results?.find((g: any) => g.guard === 'mass-failure');
    t.match(mass, { ok: false }, `${h.host}: mass-failure guard failed`);
  }
  await new Promise((r) => setTimeout(r, 3000));
  t.notMatch(m.daemon.logs(), /"msg":"fencing"/, 'nobody fenced', { logs: logs() });
  t.match(m.daemon.logs(), /"code":"EMONITORGUARD"/, 'alarm with its code');
  for (const h of ['h1', 'h2', 'h3', 'h4']) t.equal(L.sims[h]!.power(), '1', `${h} powered on`);
  t.equal(await L.kv('ha_cluster/compute_nodes/h1/status/failed'), undefined, 'no latch written');
});
