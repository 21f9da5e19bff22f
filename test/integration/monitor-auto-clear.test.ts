// monitor, auto_clear_after: h1 carries os_nova's latch (status/failed True, as after an incident
// dealt with by hand) but answers on every network. With auto_clear_after 3 the daemon first shows
// it latched, then — after 3 consecutive healthy samples — clears its latches and counters in KV
// (vigil monitor reset's txn), logs it, and watches h1 again; h2's keys are untouched.
import t from 'tap';
import { skipUnlessRoot } from '../support/lab';
import { daemonStatus, START_MS, waitFor } from '../support/vigil';
import { doubleRequest } from '../support/consul-double';
import { monitorLab, tail } from '../support/monitor-lab';

if (skipUnlessRoot(t, ['ipmi_sim', 'ipmitool'])) process.exit(0);

const AFTER = 3;
const INTERVAL_MS = 1000;

t.test('a latched, healthy host is cleared after auto_clear_after healthy samples', async (t) => {
  const L = await monitorLab(t, 'mon-autoclr', ['h1', 'h2', 'h3'], ['m1']);
  const kv = { url: L.mgmt.url, socketPath: L.mgmtSock };
  await doubleRequest(kv, 'PUT', '/v1/kv/ha_cluster/compute_nodes/h1/status/failed', 'True');
  await doubleRequest(kv, 'PUT', '/v1/kv/ha_cluster/compute_nodes/h1/status/recovered', 'True');
  const m = L.startMonitor('m1', L.monitorSection({ auto_clear_after: AFTER }));
  const logs = () => tail(m.daemon);
  const h1 = async () => (await daemonStatus(m.pidfile))?.roles?.monitor?.hosts?.find((h: any) => h.host === 'h1');
  // Latched first (the latch is read before any healthy sample could clear it)...
  await waitFor(async () => (await h1())?.phase === 'latched' || (await L.kv('ha_cluster/compute_nodes/h1/status/failed')) === 'False',
    START_MS, () => `the daemon showing h1 latched within ${START_MS} ms; logs:\n${logs()}`);
  // ...then cleared: AFTER healthy samples at interval, doubled for load, + one KV round trip's slack.
  const boundMs = 2 * (AFTER + 2) * INTERVAL_MS + 4000;
  await waitFor(async () => (await L.kv('ha_cluster/compute_nodes/h1/status/failed')) === 'False',
    boundMs, () => `status/failed False within ${boundMs} ms; logs:\n${logs()}`);
  t.equal(await L.kv('ha_cluster/compute_nodes/h1/status/recovered'), 'False', 'status/recovered cleared too');
  t.match(m.daemon.logs(), /auto_clear_after: 3 consecutive healthy samples/, 'the reason logged before the write');
  t.match(m.daemon.logs(), /"code":"EMONITORAUTOCLEAR"/, 'the clear logged with its code');
  await waitFor(async () => (await h1())?.phase === 'healthy', boundMs, () => `h1 watched again (healthy); logs:\n${logs()}`);
  t.equal(await L.kv('ha_cluster/compute_nodes/h2/status/failed'), undefined, 'h2 untouched');
  t.equal((m.daemon.logs().match(/EMONITORAUTOCLEAR/g) ?? []).length, 1, 'cleared once');
});
