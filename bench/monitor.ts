/**
 * Layer: bench. The `monitor` role (issue 14), against Consul TEST DOUBLES
 * (test/support/consul-double: not Consul, which cannot be installed here).
 *
 *   npx ts-node-transpile-only bench/monitor.ts [--runs N] [--defaults] [--only latency|cycle|recovery] [--hosts 10,100,1000]
 *   (from the source tree: the Consul double's server.js is plain JS that tsc does not copy to dist/)
 *
 * 1. Latency (lab of network namespaces, root needed; test/support/monitor-lab.ts):
 *    three compute hosts on the three-bridge lab heartbeating to one double per
 *    network (suspicion 1.5 s), one ipmi_sim BMC each, two monitors running
 *    `vigil run` on mgmt and tenant (K-20). Each run cuts h1's veths on every
 *    bridge and reads from the fencer's log (a) the decision ("guards
 *    pass, claiming") and (b) the confirmed power-off ("host fenced"), both
 *    from the cut. Fast setting: interval 1 s, confirm 2; `--defaults` adds one
 *    run at interval 10 s, confirm 3. Model beside it:
 *      decision ≈ suspicion + confirm × interval (− up to one interval: the
 *      counter is shared by every monitor through KV, so with M monitors the
 *      count can rise up to M times per interval), + power polling for (b).
 * 2. Cycle cost (in process, loopback): one MonitorRunner with the real I/O
 *    against three doubles (one per network) whose member lists hold N hosts;
 *    N = 10, 100, 1000. Steady-state rounds (after the first, which writes
 *    every host's counters): CPU ms (process.cpuUsage), wall ms, HTTP requests
 *    per round (the doubles' request logs, by endpoint), RSS after the rounds;
 *    idle (nothing changes: the health and KV watches answer from their view)
 *    and busy (a check changes on every network before each round).
 *
 * Writes bench/results/monitor.json.
 */
import { parseArgs } from 'node:util';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startConsulDouble, tempAgentConfig, freeLoopbackPort, type ConsulDouble } from '../test/support/consul-double';
import { doubleRequest } from '../test/support/consul-double';
import { monitorLab, SUSPICION_MS } from '../test/support/monitor-lab';
import { scratchDir, waitFor } from '../test/support/vigil';
import { writeResult } from './lib/results';
import { median } from './lib/stats';
import { normalizeMonitor } from '../src/roles/monitor/config';
import { MonitorRunner } from '../src/roles/monitor/runner';
import { createRealIo } from '../src/roles/monitor/io';
import { rootLog } from '../src/log';
import type { VigilConfig } from '../src/config/types';

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

interface LatencyRun { decisionMs: number; poweredOffMs: number; recoveryStartMs?: number; recoveredMs?: number }

/**
 * One cut. With `recovery`, the monitors also carry os_nova's takeover
 * (method reserved) onto the spare ha1 — a live Consul member on both
 * networks, `in_use` False in KV — with a no-op takeover command, and the
 * run also reads (c) "recovery starts" and (d) "host recovered".
 */
async function latencyRun(setting: { interval: string; confirm: number; recovery?: boolean }): Promise<LatencyRun> {
  const teardowns: (() => unknown)[] = [];
  const t = { teardown: (fn: () => unknown) => { teardowns.push(fn); } };
  try {
    const L = await monitorLab(t, 'bench-mon', ['h1', 'h2', 'h3'], setting.recovery ? ['m1', 'm2', 'ha1'] : ['m1', 'm2']);
    if (setting.recovery) {
      const put = (k: string, v: string) => doubleRequest({ url: L.mgmt.url, socketPath: L.mgmtSock }, 'PUT', `/v1/kv/${k}`, v);
      await put('ha_cluster/ha_nodes/ha1/status/in_use', 'False');
      await put('ha_cluster/compute_nodes/h1/internal/runtime_config', JSON.stringify({ instances: ['vm1'] }));
    }
    const section = L.monitorSection({
      interval: setting.interval, confirm: setting.confirm, session_ttl: '30s',
      ...(setting.recovery ? { recovery: { method: 'reserved', spares: ['ha1'], takeover: { command: ['/bin/true'], timeout: '30s' } } } : {}),
    });
    const ms = ['m1', 'm2'].map((m) => L.startMonitor(m, section));
    const intervalMs = Number(setting.interval.replace('s', '')) * 1000;
    await new Promise((r) => setTimeout(r, 3000 + intervalMs));
    await L.cut('h1');
    const cut = Date.now();
    const last = setting.recovery ? 'host recovered' : 'host fenced';
    await waitFor(() => ms.map((m) => m.daemon.logs()).join('\n').includes(last), 120_000, `h1: ${last}`);
    const fencer = ms.find((m) => m.daemon.logs().includes(last))!.daemon.logs().split('\n');
    const at = (l: string | undefined) => (l ? Date.parse((JSON.parse(l) as { time: string }).time) - cut : NaN);
    const find = (s: string) => fencer.find((l) => l.includes(s));
    return {
      decisionMs: at(find('guards pass, claiming')), poweredOffMs: at(find('host fenced')),
      ...(setting.recovery ? { recoveryStartMs: at(find('recovery starts')), recoveredMs: at(find('host recovered')) } : {}),
    };
  } finally {
    for (const fn of teardowns.reverse()) await fn();
  }
}

/** Pause before each busy round: the configured interval (1 s). */
const PAUSE_MS = 1000;

async function cycleCost(n: number): Promise<Record<string, unknown>> {
  const doubles: ConsulDouble[] = [];
  const dir = scratchDir('bench-mon-cycle');
  try {
    const members = Array.from({ length: n }, (_, i) => ({ name: `cmp-${i}`, addr: `10.1.${Math.floor(i / 250)}.${(i % 250) + 1}` }));
    for (const name of ['mgmt', 'tenant', 'storage']) {
      const d = await startConsulDouble({ configDir: tempAgentConfig({ node_name: `c-${name}`, server: true, double: { clients: members } }), host: '127.0.0.1', port: await freeLoopbackPort() });
      doubles.push(d);
    }
    const pw = path.join(dir, 'pw');
    fs.writeFileSync(pw, 'bench-password\n', { mode: 0o600 });
    const cfg = normalizeMonitor({
      networks: { mgmt: { url: doubles[0]!.url }, tenant: { url: doubles[1]!.url }, storage: { url: doubles[2]!.url } },
      inventory: { hosts: members.map((m) => ({ name: m.name, bmc: { ip: '192.0.2.1', user: 'admin', password_file: pw } })) },
      interval: '1s',
    });
    const log = rootLog().child({ module: 'bench' });
    log.level = 'silent';
    const all = { node: 'bench', monitor: cfg } as unknown as VigilConfig;
    // BMC presence pings are not part of a cycle's cost, and 192.0.2.1 is a documentation address: none is sent.
    const io = { ...createRealIo(all, cfg, log), probeBmc: async () => ({ reachable: 'unknown' as const, atMs: Date.now(), detail: 'not probed in the bench' }) };
    const runner = new MonitorRunner(cfg, 'bench', io, log);
    await runner.runRound();
    const rounds = 5;
    const count = async () => (await Promise.all(doubles.map((d) => d.requests()))).reduce((a, r) => a + r.length, 0);
    for (const d of doubles) await fetch(`${d.url}/_double/requests`, { method: 'DELETE' });
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    for (let i = 0; i < rounds; i++) await runner.runRound();
    const cpu = process.cpuUsage(c0);
    const wall = performance.now() - w0;
    const reqs = await count();
    const byPath: Record<string, number> = {};
    for (const d of doubles) for (const r of await d.requests()) { const k = `${r.method} ${r.path.split('?')[0]!.replace(/\/v1\/kv\/.*/, '/v1/kv/…')}`; byPath[k] = (byPath[k] ?? 0) + 1; }
    // A busy cycle: one host's check changes on every network before each round (the watches wake and re-read).
    // The pause between rounds is the interval, as in the daemon: the watches' rate limit is one read per interval.
    for (const d of doubles) await fetch(`${d.url}/_double/requests`, { method: 'DELETE' });
    const c1 = process.cpuUsage();
    const w1 = performance.now();
    for (let i = 0; i < rounds; i++) {
      // Through the control socket (not counted): a passing check on cmp-0, so the samples stay up.
      await Promise.all(doubles.map((d) => d.setChecks({ Node: 'cmp-0', CheckID: `bench-${i}`, Status: 'passing' })));
      await new Promise((r) => setTimeout(r, PAUSE_MS));
      await runner.runRound();
    }
    const cpuBusy = process.cpuUsage(c1);
    const wallBusy = performance.now() - w1;
    const busyReqs = await count();
    runner.stop();
    return {
      hosts: n, networks: 3,
      cpuMsPerCycle: round((cpu.user + cpu.system) / 1000 / rounds), wallMsPerCycle: round(wall / rounds), httpRequestsPerCycle: round(reqs / rounds),
      idleRequestsByEndpoint: Object.fromEntries(Object.entries(byPath).map(([k, v]) => [k, round(v / rounds)])),
      busyCpuMsPerCycle: round((cpuBusy.user + cpuBusy.system) / 1000 / rounds), busyWallMsPerCycle: round((wallBusy - PAUSE_MS * rounds) / rounds), busyHttpRequestsPerCycle: round(busyReqs / rounds),
      rssMiB: round(process.memoryUsage().rss / 2 ** 20),
    };
  } finally {
    for (const d of doubles) await d.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '2' }, defaults: { type: 'boolean' }, only: { type: 'string' }, hosts: { type: 'string', default: '10,100,1000' } } });
  if (values.only === 'recovery') return recoveryLatency(Number(values.runs));
  const result: Record<string, unknown> = { command: `npx ts-node-transpile-only bench/monitor.ts ${process.argv.slice(2).join(' ')}`.trim(), suspicionMs: SUSPICION_MS };
  if (values.only !== 'latency') {
    const cycles = [];
    for (const n of values.hosts!.split(',').map(Number)) { const c = await cycleCost(n); console.log(JSON.stringify(c)); cycles.push(c); }
    result.cycle = {
      note: 'idle: steady-state rounds, every host up on 3 networks, no KV writes. Health (/v1/health/state/any, one per network) and the KV tree (recurse) are blocking-query watches: an idle round reads their latest view; /v1/agent/members and /v1/agent/self (agent endpoints, not blocking) are read every round. busy: before each round one check changes on every network through the double control socket (the health watches wake and re-read); rounds 1 s apart (the interval), the wall time excludes the pause; busy CPU includes the background reads during the pause',
      rows: cycles, targetCpuMsFor1000: 100,
    };
  }
  if (values.only !== 'cycle') {
    const settings = [{ name: 'fast', interval: '1s', confirm: 2, runs: Number(values.runs) }, ...(values.defaults ? [{ name: 'defaults', interval: '10s', confirm: 3, runs: 1 }] : [])];
    const lat = [];
    for (const s of settings) {
      const runs = [];
      for (let i = 0; i < s.runs; i++) { const r = await latencyRun(s); console.log(s.name, JSON.stringify(r)); runs.push(r); }
      const iMs = Number(s.interval.replace('s', '')) * 1000;
      lat.push({
        setting: s.name, interval: s.interval, confirm: s.confirm, monitors: 2, runs,
        model: { decisionMs: SUSPICION_MS + s.confirm * iMs, note: 'suspicion + confirm × interval (the shared KV counter can reach confirm sooner with several monitors); power-off adds the ipmitool action and one power read (power_wait 500 ms)' },
        target: { decisionWithinMs: s.confirm * iMs + SUSPICION_MS + 1000 },
      });
    }
    result.latency = lat;
    result.peers = { masakariConsul: 'published: 60 s monitoring interval, then 180 s engine wait before recovery, no power check', hostha: '≈ 2–3 min from failure to fence (seed inventory §5)' };
  }
  console.log(`wrote ${writeResult('monitor', result)}`);
}

/**
 * 3. Link cut → recovery (issue 15), `--only recovery`: the latency lab with
 *    a takeover onto a spare (no-op command). Written to
 *    bench/results/monitor-recovery.json (the other parts' file is kept).
 *    Model: recovery starts when the fence is confirmed (same round), and is
 *    done one claim txn + record writes + one spawn later (bench/recovery.ts
 *    measures that part alone; evacuation of N servers adds force-down +
 *    ⌈N / concurrency⌉ × (evacuation + up to one poll), also there).
 */
async function recoveryLatency(runsN: number): Promise<void> {
  const s = { interval: '1s', confirm: 2, recovery: true };
  const runs: LatencyRun[] = [];
  for (let i = 0; i < runsN; i++) { const r = await latencyRun(s); console.log('recovery', JSON.stringify(r)); runs.push(r); }
  const med = (k: keyof LatencyRun) => median(runs.map((r) => r[k] as number));
  const result = {
    command: `npx ts-node-transpile-only bench/monitor.ts ${process.argv.slice(2).join(' ')}`.trim(), suspicionMs: SUSPICION_MS,
    setting: { interval: s.interval, confirm: s.confirm, monitors: 2, recovery: 'reserved (takeover on spare ha1, command /bin/true)', powerWait: '500ms' },
    runs,
    medianMs: { decision: med('decisionMs'), poweredOff: med('poweredOffMs'), recoveryStart: med('recoveryStartMs'), recovered: med('recoveredMs') },
    model: {
      decisionMs: SUSPICION_MS + s.confirm * 1000,
      recoveryStartMs: 'poweredOff + 0 (the fence result starts the recovery, no wait)',
      recoveredMs: 'recoveryStart + one claim txn, record writes and one spawn (bench/recovery.ts: takeover ≈ 35 ms)',
    },
    peers: {
      masakari: 'published defaults: host monitor interval 60 s, then wait_period_after_service_update 180 s before the first evacuate: ≥ 240 s from failure to recovery start',
      hostha: '≈ 2–3 min from failure to fence (3 × 10 s samples, 60 s consul-fence power wait), then wait_for_evacuation 60 s before the first evacuate',
    },
  };
  console.log(`wrote ${writeResult('monitor-recovery', result)}`);
}

main().then(() => process.exit(0), (e: unknown) => { console.error(e); process.exit(1); });
