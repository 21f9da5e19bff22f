// monitor: two monitors × 1000 interleaved counter updates through the role's own write path
// (KV tree read → decodeInventory → applySamples → counterWrite → /v1/txn cas on number_fails and
// number_fails_by_network, re-read on a lost CAS), with injected delays, against the Consul TEST
// DOUBLE: no update is lost, and the two keys never disagree.
import t from 'tap';
import { startDoubleForTest } from '../support/consul-double';
import { normalizeMonitor } from '../../src/roles/monitor/config';
import { createRealIo } from '../../src/roles/monitor/io';
import { decodeInventory } from '../../src/roles/monitor/kvschema';
import { applySamples, counterWrite, storedCounts } from '../../src/roles/monitor/counter';
import { rootLog } from '../../src/log';
import type { VigilConfig } from '../../src/config/types';

const N = Number(process.env.VIGIL_CAS_RACE_N ?? 1000);

t.test(`two monitors × ${N} counter updates, delays injected: none lost`, async (t) => {
  const d = await startDoubleForTest(t, { node_name: 'c1', server: true });
  const cfg = normalizeMonitor({ networks: { mgmt: { url: d.url }, tenant: { url: d.url } }, inventory: { source: 'kv' } });
  const log = rootLog().child({ module: 'test' });
  log.level = 'silent';
  // Each I/O keeps a KV watch (a blocking read in the background): closed when the test ends.
  const ios: ReturnType<typeof createRealIo>[] = [];
  t.teardown(() => { for (const x of ios) x.close?.(); });
  const io = () => { const x = createRealIo({ node: 'm', monitor: cfg } as unknown as VigilConfig, cfg, log); ios.push(x); return x; };
  // The host exists in the KV inventory (os_nova's general key).
  await fetch(`${d.url}/v1/kv/ha_cluster/compute_nodes/h1/general`, { method: 'PUT', body: 'x' });
  await d.setFaults([{ path: '^/v1/(kv|txn)', jitterMs: 3 }]);
  const monitor = async (m: ReturnType<typeof io>) => {
    let lost = 0;
    for (let i = 0; i < N; i++) {
      for (;;) {
        const rec = decodeInventory(await m.readKv('ha_cluster'), 'ha_cluster').computeNodes.h1!;
        const stored = { ...(rec.numberFails ? { numberFails: rec.numberFails } : {}), ...(rec.failsByNetwork ? { failsByNetwork: rec.failsByNetwork } : {}) };
        const next = applySamples(storedCounts(stored, ['mgmt', 'tenant']), { mgmt: 'down', tenant: 'down' }, ['mgmt', 'tenant']);
        const w = counterWrite('ha_cluster', 'h1', stored, next)!;
        if ((await m.txn(w.ops)).ok) break;
        lost += 1;
      }
    }
    return lost;
  };
  const [la, lb] = await Promise.all([monitor(io()), monitor(io())]);
  const rec = decodeInventory(await io().readKv('ha_cluster'), 'ha_cluster').computeNodes.h1!;
  t.equal(rec.numberFails?.value, 2 * N, `number_fails is ${2 * N}: no update lost`);
  t.same(rec.failsByNetwork?.value, { mgmt: 2 * N, tenant: 2 * N }, 'number_fails_by_network agrees');
  t.ok(la + lb > 0, `the delays made the monitors interleave (${la + lb} CAS attempts lost and retried)`);
});
