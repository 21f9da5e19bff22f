/**
 * Layer: bench. The `monitor` role's recovery (issue 15), from "fence
 * confirmed" to "recovered", through the real executor and its real I/O
 * (src/roles/monitor/recovery/) against the Consul TEST DOUBLE and the Nova
 * + Keystone TEST DOUBLE (test/support/nova-double: not OpenStack; each
 * evacuation takes `--evacuate-ms` in the double, as a rebuild would).
 *
 *   npx ts-node-transpile-only bench/recovery.ts [--runs N] [--evacuate-ms MS]
 *
 * 1. Evacuation of 10 and 100 servers at concurrency 1, 3 and 10 (poll
 *    200 ms). Model beside it: force-down + list + ⌈N / c⌉ × (evacuate
 *    time + up to one poll), since a worker takes the next server only
 *    once the last one is confirmed.
 * 2. Takeover on a spare with a no-op command (`/bin/true`): claim txn,
 *    record writes, one spawn.
 * Beside it (not measured, from the spec): Masakari waits 180 s
 * (`wait_period_after_service_update`) after disabling the service before
 * it evacuates, after a host monitor that samples every 60 s; hostha starts
 * rebuilds ≈ 2–3 min after a total loss (spec/seed-inventory.md K-57).
 * The detection and fence part (link cut → power off confirmed) is
 * bench/monitor.ts.
 *
 * Writes bench/results/recovery.json.
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { ConsulClient } from '../src/consul/client';
import { NovaClient } from '../src/net/nova/client';
import { runRecovery, type RecoveryRunConfig } from '../src/roles/monitor/recovery/executor';
import { createRecoveryIo } from '../src/roles/monitor/recovery/io';
import { inUseKey } from '../src/roles/monitor/recovery/kv';
import { freeLoopbackPort, startConsulDouble, tempAgentConfig } from '../test/support/consul-double';
import { startNovaDouble } from '../test/support/nova-double';
import { median } from './lib/stats';
import { writeResult } from './lib/results';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, 'evacuate-ms': { type: 'string', default: '200' } } });
const RUNS = Number(values.runs);
const EVAC_MS = Number(values['evacuate-ms']);
const POLL_MS = 200;
const PREFIX = 'ha_cluster';

async function main(): Promise<void> {
  const teardown: (() => unknown)[] = [];
  const t = { teardown: (fn: () => unknown) => { teardown.push(fn); } };
  const d = await startConsulDouble({ configDir: tempAgentConfig({ node_name: 'bench', server: true, double: { clients: [{ name: 'ha-1', addr: '192.0.2.61' }] } }), host: '127.0.0.1', port: await freeLoopbackPort() });
  teardown.push(() => d.stop());
  const kv = new ConsulClient({ url: d.url, timeoutMs: 5000 });
  const out: Record<string, unknown>[] = [];
  let incident = 0;
  const claim = async (host: string) => {
    const s = await kv.sessionCreate({ name: 'bench', ttl: '60s', lockDelay: '0s' });
    const id = `${host}-${++incident}`;
    await kv.kvPut(`${PREFIX}/compute_nodes/${host}/incident`, JSON.stringify({ id, step: 'fenced' }), { acquire: s });
    return { s, id };
  };
  try {
    for (const n of [10, 100]) {
      for (const c of [1, 3, 10]) {
        const runs = n === 100 && c === 1 ? 1 : RUNS;
        const samples: number[] = [];
        for (let r = 0; r < runs; r++) {
          const host = `cmp-${n}-${c}-${r}`;
          const nova = await startNovaDouble(t, { user: 'vigil', password: 'pw', project: 'admin', computes: [{ host }, { host: 'dest' }], servers: Array.from({ length: n }, (_, i) => ({ id: `s${i}`, host })), evacuateMs: EVAC_MS });
          const client = new NovaClient({ authUrl: nova.authUrl, user: 'vigil', userDomain: 'Default', project: 'admin', projectDomain: 'Default', password: { reveal: () => 'pw' }, interface: 'public', timeoutMs: 5000 });
          const io = createRecoveryIo({ kvPrefix: PREFIX, kv, networks: [kv], nova: client, log: () => undefined });
          const cfg: RecoveryRunConfig = { self: 'bench', kvPrefix: PREFIX, method: 'auto', sparePriority: [], evacuateConcurrency: c, evacuateRetries: 0, serverTimeoutMs: 60_000, pollMs: POLL_MS, callRetries: 1 };
          const { s, id } = await claim(host);
          const t0 = performance.now();
          const end = await runRecovery(io, cfg, { host, session: s, incident: id, journal: { id, step: 'fenced' }, runtimeConfig: '{}' });
          const ms = performance.now() - t0;
          if (end.end !== 'recovered') throw new Error(`run ${host} ended ${end.end}`);
          const st = await nova.state();
          if (st.maxRebuilding > c) throw new Error(`concurrency ${st.maxRebuilding} above ${c}`);
          samples.push(ms);
          await nova.stop();
        }
        const model = Math.ceil(n / c) * (EVAC_MS + POLL_MS / 2);
        out.push({ kind: 'evacuate', servers: n, concurrency: c, runs, medianMs: Math.round(median(samples)), samplesMs: samples.map(Math.round), modelMs: model });
        console.log(`evacuate ${n} servers, concurrency ${c}: median ${Math.round(median(samples))} ms over ${runs} run(s) (model ≈ ${model} ms)`);
      }
    }
    const samples: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const host = `cmp-t-${r}`;
      await kv.kvPut(inUseKey(PREFIX, 'ha-1'), 'False');
      await kv.kvDelete(`${PREFIX}/ha_nodes/ha-1/holder`);
      const io = createRecoveryIo({ kvPrefix: PREFIX, kv, networks: [kv], takeover: { argv: ['/bin/true'], timeoutMs: 10_000 }, log: () => undefined });
      const { s, id } = await claim(host);
      const t0 = performance.now();
      const end = await runRecovery(io, { self: 'bench', kvPrefix: PREFIX, method: 'reserved', sparePriority: ['ha-1'], evacuateConcurrency: 1, evacuateRetries: 0, serverTimeoutMs: 1000, pollMs: 100, callRetries: 0 }, { host, session: s, incident: id, journal: { id }, runtimeConfig: '{}' });
      if (end.end !== 'recovered') throw new Error(`takeover ${host} ended ${end.end}`);
      samples.push(performance.now() - t0);
      await kv.sessionDestroy(s);
    }
    out.push({ kind: 'takeover', runs: RUNS, medianMs: Math.round(median(samples)), samplesMs: samples.map(Math.round) });
    console.log(`takeover (/bin/true) on a spare: median ${Math.round(median(samples))} ms over ${RUNS} run(s)`);
    const file = writeResult('recovery', {
      evacuateMsInDouble: EVAC_MS, pollMs: POLL_MS, results: out,
      beside: { masakari: 'host monitor interval 60 s, then wait_period_after_service_update 180 s before the first evacuate; 3 instances in parallel, 1 s polls', hostha: '≈ 2–3 min from total loss to rebuilds starting (K-57)' },
    });
    console.log(`written ${file}`);
  } finally {
    for (const fn of teardown.reverse()) await fn();
  }
}

main().catch((e: unknown) => { console.error(e); process.exit(1); });
