// monitor, scenario 1: a compute host dies on every network (its veth is cut) while three monitors
// race. Exactly one of them fences it, through the real ipmitool against its ipmi_sim BMC, and the
// fence is confirmed by the power state; the other hosts are left alone; the latch is in KV.
import t from 'tap';
import { skipUnlessRoot } from '../support/lab';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { daemonStatus, runCli, waitFor } from '../support/vigil';
import { scrape, sample } from '../support/metrics';
import { recordingIpmitool } from '../support/ipmi-sim';
import { monitorLab, SUSPICION_MS, tail } from '../support/monitor-lab';

if (skipUnlessRoot(t, ['ipmi_sim', 'ipmitool'])) process.exit(0);

t.test('host dies on all networks: exactly one fence, confirmed, with three monitors racing', async (t) => {
  const L = await monitorLab(t, 'mon-fence', ['h1', 'h2', 'h3'], ['m1', 'm2', 'm3']);
  // Each monitor's ipmitool is a wrapper that records its argv and environment names, then runs the real one.
  const wrappers = Object.fromEntries(['m1', 'm2', 'm3'].map((m) => {
    const d = path.join(L.dir, `ipmitool-${m}`);
    fs.mkdirSync(d, { mode: 0o700 });
    return [m, recordingIpmitool(d, L.lab.host(m))];
  }));
  const sock = (m: string) => path.join(L.dir, `${m}-metrics.sock`);
  const ms = ['m1', 'm2', 'm3'].map((m) => ({ name: m, ...L.startMonitor(m, L.monitorSection({ fence: { power_timeout: '8s', power_wait: '500ms', ipmitool: wrappers[m]!.program } }), { metrics: { listen: sock(m) } }) }));
  const logs = () => ms.map((m) => `--- ${m.name}\n${tail(m.daemon)}`).join('\n');
  // Every monitor has sampled every host up on both networks.
  await waitFor(async () => {
    const st = await Promise.all(ms.map((m) => daemonStatus(m.pidfile)));
    return st.every((s) => s?.roles?.monitor?.hosts?.length === 3 && s.roles.monitor.hosts.every((h: any) => h.samples.mgmt?.state === 'up' && h.samples.tenant?.state === 'up'));
  }, 20_000, () => `every monitor seeing h1..h3 up on mgmt and tenant; logs:\n${logs()}`);

  await L.cut('h1');
  const cut = Date.now();
  // Bound from the config: suspicion + confirm × interval (2 × 1 s) + power_timeout (8 s) + ipmitool's own retries, generously doubled.
  const boundMs = 2 * (SUSPICION_MS + 2 * 1000 + 8000 + 6000);
  await waitFor(() => L.sims.h1!.power() === '0', boundMs, () => `h1's BMC powered off within ${boundMs} ms of the cut; logs:\n${logs()}`);
  t.pass(`h1 powered off ${Date.now() - cut} ms after the cut`);
  await waitFor(async () => {
    const st = await Promise.all(ms.map((m) => daemonStatus(m.pidfile)));
    return st.some((s) => s?.roles?.monitor?.hosts?.find((h: any) => h.host === 'h1')?.phase === 'fenced');
  }, 10_000, () => `one monitor reporting h1 fenced (power off confirmed); logs:\n${logs()}`);
  // A few more rounds: nobody fences a second time.
  await new Promise((r) => setTimeout(r, 4000));
  const fencers = ms.filter((m) => /"msg":"fencing"/.test(m.daemon.logs()));
  t.equal(fencers.length, 1, `exactly one monitor fenced h1 (fencers: ${fencers.map((m) => m.name).join(', ') || 'none'})`, { logs: logs() });
  t.equal(fencers[0] ? (fencers[0].daemon.logs().match(/"msg":"fencing"/g) ?? []).length : 0, 1, 'and it fenced once');
  t.equal(await L.kv('ha_cluster/compute_nodes/h1/status/failed'), 'True', 'status/failed latched in KV (os_nova\'s True)');
  t.equal(L.sims.h2!.power(), '1', 'h2 untouched');
  t.equal(L.sims.h3!.power(), '1', 'h3 untouched');
  for (const m of ms) t.notOk(m.daemon.logs().includes(L.secret), `${m.name}: the BMC password is in no log line`);
  const runs = Object.values(wrappers).flatMap((w) => w.runs());
  t.ok(runs.length >= 2, `ipmitool ran for the action and the power read (${runs.length} runs)`);
  for (const r of runs) {
    t.notOk(r.cmdline.some((a) => a.includes(L.secret)), `argv ${r.cmdline.slice(1).join(' ')} holds no password`);
    t.ok(r.cmdline.includes('-E'), 'the password goes through the environment (-E)');
  }
  const text = await runCli(['status', '-c', fencers[0]!.config]);
  t.match(text.stdout, /monitor on m\d: 3 hosts/, 'vigil status shows the monitor\'s lines');
  t.match(text.stdout, /h1\s+fenced/, 'and h1 fenced');
  const st = await daemonStatus(fencers[0]!.pidfile);
  const h1 = st?.roles?.monitor?.hosts?.find((h: any) => h.host === 'h1');
  t.match(h1, { phase: 'fenced', incident: { held: true, fence: { method: 'ipmi', outcome: 'off' } } }, 'the fencer\'s status shows the confirmed fence');
  // The fencer's metrics: h1's way to fenced, and the role back to watching.
  const m = (await scrape(sock(fencers[0]!.name))).body;
  t.equal(sample(m, 'vigil_role_transitions_total', { role: 'monitor-host', from: 'fencing', to: 'fenced' }), 1, 'metrics: one host went fencing -> fenced');
  t.equal(sample(m, 'vigil_role_state', { role: 'monitor', state: 'acting' }), 0, 'metrics: the monitor acted, and is no longer acting');
  t.ok((sample(m, 'vigil_consul_requests_total', { endpoint: '/v1/txn', method: 'PUT', result: '2xx' }) ?? 0) >= 1, 'metrics: its KV writes went through /v1/txn');
});
