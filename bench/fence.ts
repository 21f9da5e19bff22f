/**
 * Layer: bench. The self-fencing role (issue 4): decision latency and idle
 * cost of the real daemon, in a lab of network namespaces built for the run
 * (root needed), against Consul TEST DOUBLES (test/support/consul-double:
 * not Consul, which cannot be installed here) on the lab host's loopback.
 *
 *   node dist/bench/fence.js [--full] [--runs N] [--idle DURATION] [--only latency|idle]
 *
 * 1. Decision latency. Host `cmp` runs vigil with one agent (a double, started
 *    by the bench, not supervised by vigil) and a fence action that writes
 *    `date +%s%N` to a marker file; host `peer` is the neighbour and the
 *    Consul server address. Each run: a fresh vigil sees servers, then at a
 *    random phase of its cycle the bench cuts the link and switches the
 *    double to `servers-lost` (SIGUSR1, microseconds after the cut); the
 *    latency is the marker's CLOCK_REALTIME timestamp minus that moment.
 *    Scenarios:
 *    - link-cut: cmp's link goes down (eth0 loses carrier): the network
 *      check answers at once.
 *    - silent-neighbours: peer's link goes down instead, cmp keeps carrier,
 *      nothing answers ARP: each isolated cycle waits neighbour_probe_timeout.
 *    Full mode uses the documented defaults (check_interval 5s,
 *    confirm_cycles 2, request_timeout 2s, neighbour_probe_timeout 500ms);
 *    quick mode scales every timing by 1/5, and the ratio
 *    latency / (confirm_cycles × check_interval) makes both comparable.
 *
 *    Model: the role fences once confirm_cycles consecutive cycles saw every
 *    agent at 0 servers and no working interface. The first such cycle is
 *    the next one after the fault, so
 *      latency = wait to the next cycle (uniform in [0, I))
 *              + (confirm_cycles − 1) × (I + network check)
 *              + network check + decision → action start
 *    mean ≈ (confirm_cycles − ½) × I (+ confirm_cycles × neighbour_probe_timeout
 *    when carrier stays up), between (confirm_cycles − 1) × I and
 *    confirm_cycles × I: "near confirm_cycles × check_interval", ¾ of it on
 *    average with the default 2 cycles.
 *
 * 2. Idle cost. Three doubles (healthy) and vigil polling them every 5 s
 *    with the defaults. vigil runs alone in a fresh PID namespace (the
 *    doubles are started outside it): CPU from /proc/PID/stat utime+stime
 *    (and schedstat, in ns), peak RSS (VmHWM), tasks created from the
 *    namespace's ns_last_pid. The doubles' CPU is not counted.
 *
 * Writes bench/results/fence.json (--full: fence-full.json, so the long run
 * is never overwritten by a quick one) and prints a summary.
 */
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { createLab, type Lab, type LabHost } from '../test/support/lab';
import { BIN, ROOT, scratchDir, writeConfig, startDaemon, daemonStatus, waitFor, type Daemon } from '../test/support/vigil';
import { writeAgentConfig } from '../test/support/consul-double';
import { parseDurationMs } from '../src/util/duration';
import { median, mean, round, reportedPercentile, percentileRule } from './lib/stats';
import { writeResult } from './lib/results';
import { calibrateRealtime, nsToMs } from './lib/clock';
import { nsGetJson } from './lib/nshttp';
import { startAloneInPidNs, sampleProc, clockTicksPerSecond, type ProcSample } from './lib/pidns';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The Consul TEST DOUBLE's entry point, in the source tree (it is plain JS, not compiled into dist/). */
const DOUBLE_SERVER = path.join(ROOT, 'test', 'support', 'consul-double', 'server.js');
const NODE = 'cmp-01';
const FIRST_PORT = 18500;

/** Scratch directories of this run, removed on SIGINT/SIGTERM too (labs clean themselves up). */
const scratch = new Set<string>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function onSignal(sig: NodeJS.Signals): void {
  for (const d of scratch) fs.rmSync(d, { recursive: true, force: true });
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  // Deliver it again once every listener (the lab's teardown among them) has run: the default action ends the process.
  process.kill(process.pid, sig);
}

function tempDir(tag: string): string {
  if (scratch.size === 0) for (const s of SIGNALS) process.on(s, onSignal);
  const d = scratchDir(tag);
  scratch.add(d);
  return d;
}

function removeDir(d: string): void {
  fs.rmSync(d, { recursive: true, force: true });
  scratch.delete(d);
  if (scratch.size === 0) for (const s of SIGNALS) process.removeListener(s, onSignal);
}

/** Options of {@link main}; everything but `full` is for running by hand. */
export interface FenceBenchOptions {
  /** Long runs: documented timings, 50 runs per scenario, 1 h of idle. */
  full: boolean;
  /** Runs per latency scenario (default 10, full 50). */
  runs?: number;
  /** Idle measurement window, ms (default 2 min, full 1 h). */
  idleMs?: number;
  /** Only one half of the bench. */
  only?: 'latency' | 'idle';
}

/** The role's timings, in ms. */
interface Timing { checkIntervalMs: number; confirmCycles: number; requestTimeoutMs: number; neighbourProbeTimeoutMs: number }

/** The documented defaults (src/config/schema.ts, issue 4). */
const DOCUMENTED: Timing = { checkIntervalMs: 5000, confirmCycles: 2, requestTimeoutMs: 2000, neighbourProbeTimeoutMs: 500 };
/** Quick mode: every timing scaled by 1/5. */
const QUICK: Timing = { checkIntervalMs: 1000, confirmCycles: 2, requestTimeoutMs: 400, neighbourProbeTimeoutMs: 100 };

type ScenarioName = 'link-cut' | 'silent-neighbours';

const SCENARIOS: Record<ScenarioName, string> = {
  'link-cut': "cmp's link cut (eth0 loses carrier) and its agent at 0 servers",
  'silent-neighbours': "peer's link cut (cmp keeps carrier, no neighbour answers ARP) and cmp's agent at 0 servers",
};

/** One latency run. */
interface LatencyRun {
  run: number;
  /** Fault → first moment of the fence action (the marker's `date +%s%N`), ms. */
  latencyMs: number;
  /** latencyMs / (confirm_cycles × check_interval). */
  ratio: number;
  /** Fault → the next cycle (the double's log of GET /v1/agent/self), ms. */
  waitToCycleMs: number;
  /**
   * Cycles that started after the fault but did not see it: the cycle's
   * request reached the double before the double had handled its switch
   * signal (a race of a millisecond or two, an artefact of the trigger).
   */
  cyclesMissed: number;
  /** Where in the healthy cycle the fault fell, 0..1. */
  phase: number;
  /** Healthy cycle period measured before the fault (check_interval + the cycle's own work), ms. */
  healthyPeriodMs: number;
  /** Fault → the FENCING log line (ms resolution of pino's time), ms. */
  decisionMs: number;
  /** FENCING log line → the marker timestamp: evidence flush, spawn of sh and date, ms. */
  actionStartMs: number;
  /** latency − wait to the first cycle that saw the fault − the model's fixed part ((c − 1) × I + c × T when carrier stays up). */
  overheadMs: number;
  /** How long the link cut took (the `ip link set down` process) before the double was switched, ms. */
  cutTookMs: number;
  /** Why the fence evidence says the interface failed. */
  evidence: string;
}

/** Order statistics of one figure; p95 is null below 20 runs (nearest rank: it would be the max). */
interface Stat { median: number; p95: number | null; max: number; min: number; mean: number }

function stat(xs: number[], digits = 1): Stat {
  const p95 = reportedPercentile(xs, 95);
  return {
    median: round(median(xs), digits), p95: p95 === null ? null : round(p95, digits), max: round(Math.max(...xs), digits),
    min: round(Math.min(...xs), digits), mean: round(mean(xs), digits),
  };
}

/** A Consul TEST DOUBLE started by the bench in a lab host (not under vigil's supervision). */
interface DoubleProc { pid: number; url: string; proc: ChildProcess }

async function startDouble(host: LabHost, configDir: string): Promise<DoubleProc> {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const proc = host.spawn([process.execPath, DOUBLE_SERVER, 'agent', '-config-dir', configDir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  const lines = readline.createInterface({ input: proc.stdout! });
  const ready = await new Promise<{ url?: string; pid?: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`consul double did not start: ${stderr}`)), 10_000);
    lines.once('line', (l) => { clearTimeout(timer); try { resolve(JSON.parse(l) as { url?: string; pid?: number }); } catch { reject(new Error(`consul double: bad ready line ${l}`)); } });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`consul double exited (${code}): ${stderr}`)); });
  });
  lines.on('line', () => { /* drain */ });
  if (!ready.url || !ready.pid) throw new Error('consul double started without a URL');
  return { pid: ready.pid, url: ready.url, proc };
}

async function stopDouble(d: DoubleProc): Promise<void> {
  if (d.proc.exitCode !== null || d.proc.signalCode !== null) return;
  try { process.kill(d.pid, 'SIGTERM'); } catch { return; }
  await Promise.race([new Promise((r) => d.proc.once('exit', r)), sleep(3000)]);
  try { process.kill(d.pid, 'SIGKILL'); } catch { /* gone */ }
}

async function stopDaemon(d: Daemon): Promise<void> {
  if (d.proc.exitCode !== null || d.proc.signalCode !== null) return;
  d.proc.kill('SIGTERM');
  const r = await Promise.race([d.exited.then(() => 'exited'), sleep(5000).then(() => 'timeout')]);
  if (r === 'timeout') { d.proc.kill('SIGKILL'); await d.exited; }
}

/** The agent config of a double whose servers are `serverIp`; joins fail (the network is dead, not the agent). */
function agentConfig(port: number, serverIp: string): Parameters<typeof writeAgentConfig>[1] {
  return {
    node_name: NODE, server: false, addresses: { http: '127.0.0.1' }, ports: { http: port }, retry_join: [serverIp],
    double: { state: 'healthy', servers: [{ name: 'ctrl-01', addr: serverIp }], healOnJoin: false },
  };
}

function fenceSection(t: Timing, agents: { name: string; url: string }[], iface: string, marker: string): Record<string, unknown> {
  return {
    agents, interfaces: [iface], check_interval: `${t.checkIntervalMs}ms`, confirm_cycles: t.confirmCycles,
    request_timeout: `${t.requestTimeoutMs}ms`, neighbour_probe_timeout: `${t.neighbourProbeTimeoutMs}ms`,
    actions: [['/bin/sh', '-c', `date +%s%N >> ${marker}`]], dry_run: false,
  };
}

/** The model's latency for a fault at a uniformly random phase. */
function expected(t: Timing, carrierStaysUp: boolean): { minMs: number; meanMs: number; maxMs: number; meanRatio: number } {
  const probe = carrierStaysUp ? t.confirmCycles * t.neighbourProbeTimeoutMs : 0;
  const c = t.confirmCycles;
  const I = t.checkIntervalMs;
  return { minMs: (c - 1) * I + probe, meanMs: (c - 0.5) * I + probe, maxMs: c * I + probe, meanRatio: round(((c - 0.5) * I + probe) / (c * I), 3) };
}

interface FenceLogLine { msg?: string; time?: string; evidence?: { interfaces?: { iface: string; reason?: string }[] } }

/** The first log line whose message contains `text`. */
function logLine(logs: string, text: string): FenceLogLine | undefined {
  for (const l of logs.split('\n')) {
    if (!l.includes(text)) continue;
    try { return JSON.parse(l) as FenceLogLine; } catch { /* not JSON */ }
  }
  return undefined;
}

/** Run one latency scenario `runs` times in a fresh lab. */
async function latencyScenario(scn: ScenarioName, t: Timing, runs: number, log: (s: string) => void): Promise<Record<string, unknown>> {
  let lab: Lab | undefined;
  let dbl: DoubleProc | undefined;
  let daemon: Daemon | undefined;
  const dir = tempDir('fence-bench');
  try {
    lab = await createLab({ hosts: ['cmp', 'peer'] });
    const cmp = lab.host('cmp');
    const peer = lab.host('peer');
    const adir = writeAgentConfig(path.join(dir, 'agent0'), agentConfig(FIRST_PORT, peer.ip));
    dbl = await startDouble(cmp, adir);
    const marker = path.join(dir, 'FENCED');
    const pidfile = path.join(dir, 'run', 'vigil.pid');
    fs.mkdirSync(path.dirname(pidfile), { recursive: true, mode: 0o755 });
    const fence = fenceSection(t, [{ name: 'management', url: dbl.url }], cmp.ifname, marker);
    const config = writeConfig(dir, 'vigil', { node: NODE, pidfile, state_dir: path.join(dir, 'state'), log: { level: 'info' }, fence });
    const cut = scn === 'link-cut' ? cmp : peer;
    const c = t.confirmCycles;
    const I = t.checkIntervalMs;
    const fixedMs = (c - 1) * I + (scn === 'silent-neighbours' ? c * t.neighbourProbeTimeoutMs : 0);
    const samples: LatencyRun[] = [];
    const failures: { run: number; error: string }[] = [];
    for (let run = 1; run <= runs; run++) {
      try {
        // A healthy start: links up, servers known, no marker, a fresh daemon (a fenced loop takes no more decisions).
        await cmp.restoreLink();
        await peer.restoreLink();
        process.kill(dbl.pid, 'SIGUSR2');
        fs.rmSync(marker, { force: true });
        const startedAt = Date.now();
        daemon = startDaemon(cmp, config, pidfile);
        await waitFor(async () => {
          const f = (await daemonStatus(pidfile))?.roles?.fence as { seenServers?: boolean; verdict?: string } | undefined;
          return f?.seenServers && f.verdict === 'healthy';
        }, 20_000, 'vigil healthy with servers seen');
        // A random phase: one to two cycles on (the moment we saw "healthy" is itself at an arbitrary point of the cycle).
        await sleep(I + Math.random() * I);
        const clock = calibrateRealtime();
        const cutStart = clock.nowNs();
        // Cut first, then switch the double: both hold from t0 on (the signal is handled within microseconds).
        await cut.cutLink();
        process.kill(dbl.pid, 'SIGUSR1');
        const t0 = clock.nowNs();
        const m = marker;
        await waitFor(() => fs.existsSync(m) && fs.readFileSync(m, 'utf8').includes('\n'), c * I + 3 * I + c * t.neighbourProbeTimeoutMs + 10_000, 'the fence marker', 10);
        const markerNs = BigInt(fs.readFileSync(marker, 'utf8').trim().split('\n')[0]!);
        const logs = daemon.logs();
        await stopDaemon(daemon);
        daemon = undefined;
        const t0Ms = nsToMs(t0);
        const reqs = await nsGetJson<{ method: string; path: string; at: number }[]>(cmp, `${dbl.url}/_double/requests`);
        const selfAt = reqs.filter((r) => r.path === '/v1/agent/self' && r.at >= startedAt).map((r) => r.at).sort((a, b) => a - b);
        const before = selfAt.filter((x) => x < t0Ms);
        const next = selfAt.find((x) => x >= t0Ms);
        const prev = before[before.length - 1];
        if (next === undefined || prev === undefined) throw new Error('the double did not record the cycles around the fault');
        const diffs = before.slice(1).map((x, i) => x - before[i]!);
        const fl = logLine(logs, 'FENCING');
        // The first cycle that saw every server lost: the last request before its log line.
        const seen = logLine(logs, 'every agent has lost every server');
        const seenAt = seen?.time ? Date.parse(seen.time) : NaN;
        const counted = [...selfAt].reverse().find((x) => x <= seenAt && x >= t0Ms - 1) ?? next;
        const cyclesMissed = selfAt.filter((x) => x >= t0Ms && x < counted).length;
        const decisionAt = fl?.time ? Date.parse(fl.time) : NaN;
        const latencyMs = nsToMs(markerNs - t0);
        const waitToCycleMs = next - t0Ms;
        const r: LatencyRun = {
          run,
          latencyMs: round(latencyMs, 2),
          ratio: round(latencyMs / (c * I), 4),
          waitToCycleMs: round(waitToCycleMs, 1),
          phase: round((t0Ms - prev) / (next - prev), 3),
          healthyPeriodMs: round(diffs.length ? median(diffs) : NaN, 1),
          decisionMs: round(decisionAt - t0Ms, 1),
          actionStartMs: round(nsToMs(markerNs) - decisionAt, 1),
          cyclesMissed,
          overheadMs: round(latencyMs - (counted - t0Ms) - fixedMs, 1),
          cutTookMs: round(nsToMs(t0 - cutStart), 2),
          evidence: (fl?.evidence?.interfaces ?? []).map((i) => `${i.iface}: ${i.reason ?? 'ok'}`).join('; ') || 'no FENCING line',
        };
        samples.push(r);
        log(`  ${scn} run ${run}/${runs}: ${r.latencyMs} ms (ratio ${r.ratio}; next cycle after ${r.waitToCycleMs} ms${cyclesMissed ? `, which missed the fault (${cyclesMissed})` : ''}; overhead ${r.overheadMs} ms)\n`);
      } catch (e) {
        failures.push({ run, error: e instanceof Error ? e.message : String(e) });
        log(`  ${scn} run ${run}/${runs}: FAILED: ${failures[failures.length - 1]!.error}\n`);
        if (daemon) { await stopDaemon(daemon); daemon = undefined; }
        if (failures.length > Math.max(2, runs / 2)) throw new Error(`${scn}: too many failed runs (${failures.length})`);
      }
    }
    const lat = samples.map((s) => s.latencyMs);
    return {
      scenario: scn,
      what: SCENARIOS[scn],
      runs: samples.length,
      failures,
      runsWithAMissedCycle: samples.filter((s) => s.cyclesMissed > 0).length,
      latencyMs: stat(lat),
      ratio: stat(samples.map((s) => s.ratio), 3),
      expected: expected(t, scn === 'silent-neighbours'),
      breakdown: {
        waitToCycleMs: stat(samples.map((s) => s.waitToCycleMs)),
        healthyPeriodMs: stat(samples.map((s) => s.healthyPeriodMs)),
        decisionMs: stat(samples.map((s) => s.decisionMs)),
        actionStartMs: stat(samples.map((s) => s.actionStartMs)),
        overheadMs: stat(samples.map((s) => s.overheadMs)),
        cutTookMs: stat(samples.map((s) => s.cutTookMs), 2),
      },
      evidence: [...new Set(samples.map((s) => s.evidence))],
      samples,
    };
  } finally {
    if (daemon) await stopDaemon(daemon);
    if (dbl) await stopDouble(dbl);
    await lab?.destroy();
    removeDir(dir);
  }
}

/** Three healthy agents polled every 5 s: vigil's CPU, memory and spawns at rest. */
async function idleCost(windowMs: number, warmupMs: number, log: (s: string) => void): Promise<Record<string, unknown>> {
  let lab: Lab | undefined;
  const doubles: DoubleProc[] = [];
  let alone: ReturnType<typeof startAloneInPidNs> | undefined;
  const dir = tempDir('fence-idle');
  try {
    lab = await createLab({ hosts: ['cmp', 'peer'] });
    const cmp = lab.host('cmp');
    const peer = lab.host('peer');
    for (let i = 0; i < 3; i++) {
      doubles.push(await startDouble(cmp, writeAgentConfig(path.join(dir, `agent${i}`), agentConfig(FIRST_PORT + i, peer.ip))));
    }
    const pidfile = path.join(dir, 'run', 'vigil.pid');
    fs.mkdirSync(path.dirname(pidfile), { recursive: true, mode: 0o755 });
    const fence = fenceSection(DOCUMENTED, doubles.map((d, i) => ({ name: `net${i}`, url: d.url })), cmp.ifname, path.join(dir, 'FENCED'));
    const configObj = { node: NODE, pidfile, state_dir: path.join(dir, 'state'), log: { level: 'info' }, fence };
    const config = writeConfig(dir, 'vigil', configObj);
    alone = startAloneInPidNs(cmp, [process.execPath, BIN, 'run', '-c', config], path.join(dir, 'vigil.log'));
    const pid = await alone.targetPid();
    type FenceStatus = { seenServers?: boolean; verdict?: string; cycles?: number; agents?: { state: { kind: string; knownServers?: number } }[] };
    const fenceStatus = async (): Promise<FenceStatus | undefined> => (await daemonStatus(pidfile))?.roles?.fence as FenceStatus | undefined;
    await waitFor(async () => {
      const f = await fenceStatus();
      return f?.seenServers && f.verdict === 'healthy' && f.agents?.length === 3 && f.agents.every((a) => a.state.kind === 'client' && (a.state.knownServers ?? 0) > 0);
    }, 30_000, 'vigil healthy with three agents');
    log(`  idle: vigil pid ${pid} alone in a PID namespace, 3 doubles outside it; warm-up ${warmupMs / 1000} s, then ${windowMs / 1000} s measured\n`);
    await sleep(warmupMs);
    // The status query first: answering it is vigil's work, kept out of the window.
    const cycles0 = (await fenceStatus())?.cycles ?? NaN;
    const s0 = { last: await alone.lastPid(), proc: sampleProc(pid), cycles: cycles0, at: process.hrtime.bigint(), wall: Date.now() };
    let maxRssKb = s0.proc.rssKb;
    let maxThreads = s0.proc.threads;
    const end = Date.now() + windowMs;
    while (Date.now() < end) {
      await sleep(Math.min(10_000, Math.max(0, end - Date.now())));
      const s = sampleProc(pid);
      maxRssKb = Math.max(maxRssKb, s.rssKb);
      maxThreads = Math.max(maxThreads, s.threads);
    }
    const s1 = { last: await alone.lastPid(), proc: sampleProc(pid), at: process.hrtime.bigint(), wall: Date.now() };
    const st = await fenceStatus();
    const seconds = Number(s1.at - s0.at) / 1e9;
    const perHour = (x: number): number => (x * 3600) / seconds;
    const tck = clockTicksPerSecond();
    const cpuS = (s1.proc.cpuTicks - s0.proc.cpuTicks) / tck;
    const schedS = (s1.proc.schedNs - s0.proc.schedNs) / 1e9;
    const cycles = (st?.cycles ?? NaN) - s0.cycles;
    // Requests the doubles served inside the window (they log Date.now()).
    let requests = 0;
    for (const d of doubles) {
      const reqs = await nsGetJson<{ path: string; at: number }[]>(cmp, `${d.url}/_double/requests`);
      requests += reqs.filter((r) => r.at >= s0.wall && r.at <= s1.wall).length;
    }
    const tasks = s1.last - s0.last;
    const sample = (p: ProcSample) => ({ ...p });
    return {
      windowS: round(seconds, 1),
      warmupS: warmupMs / 1000,
      agents: 3,
      cycles,
      verdictAtEnd: st?.verdict ?? 'no status',
      consulRequests: requests,
      requestsPerCycle: round(requests / cycles, 2),
      cpu: {
        secondsPerHour: round(perHour(cpuS), 2),
        schedSecondsPerHour: round(perHour(schedS), 3),
        percentOfOneCore: round((schedS / seconds) * 100, 4),
        msPerCycle: round((schedS * 1000) / cycles, 2),
        ticks: s1.proc.cpuTicks - s0.proc.cpuTicks,
        clockTicksPerSecond: tck,
      },
      memory: { peakRssKb: s1.proc.hwmKb, rssKbAtEnd: s1.proc.rssKb, maxRssKbInWindow: maxRssKb },
      threads: { atEnd: s1.proc.threads, max: maxThreads },
      spawns: { tasksCreated: tasks, perHour: round(perHour(tasks), 1), lastPidBefore: s0.last, lastPidAfter: s1.last },
      start: sample(s0.proc),
      end: sample(s1.proc),
      config: {
        ...configObj, pidfile: '<scratch>', state_dir: '<scratch>', fence: { ...fence, actions: [['/bin/sh', '-c', 'date +%s%N >> <scratch>/FENCED']] },
        consulDoubles: [0, 1, 2].map((i) => agentConfig(FIRST_PORT + i, '<peer ip>')),
      },
    };
  } finally {
    await alone?.stop();
    for (const d of doubles) await stopDouble(d);
    await lab?.destroy();
    removeDir(dir);
  }
}

/**
 * Run the fence benchmark: decision latency (quick: 10 runs per scenario,
 * scaled timings; full: 50 runs, documented timings) and idle cost (quick:
 * 2 min; full: 1 h). Writes bench/results/fence.json (full: fence-full.json). Needs root.
 */
export async function main(opts: FenceBenchOptions): Promise<void> {
  const out = (s: string): void => { process.stdout.write(s); };
  if (process.getuid?.() !== 0) {
    out('bench/fence: skipped: needs root (it builds network namespaces)\n');
    return;
  }
  const timing = opts.full ? DOCUMENTED : QUICK;
  const runs = opts.runs ?? (opts.full ? 50 : 10);
  const idleMs = opts.idleMs ?? (opts.full ? 3_600_000 : 120_000);
  const warmupMs = opts.full ? 60_000 : 15_000;
  const mode = opts.full ? 'full' : 'quick';
  out(`bench/fence (${mode}): Consul TEST DOUBLES, not Consul\n`);
  const result: Record<string, unknown> = {
    mode,
    percentiles: percentileRule(95),
    params: { runsPerScenario: runs, idleWindowS: idleMs / 1000, idleWarmupS: warmupMs / 1000, only: opts.only ?? null },
  };
  if (opts.only !== 'idle') {
    out(`decision latency: check_interval ${timing.checkIntervalMs} ms, confirm_cycles ${timing.confirmCycles}, request_timeout ${timing.requestTimeoutMs} ms, neighbour_probe_timeout ${timing.neighbourProbeTimeoutMs} ms, ${runs} runs per scenario\n`);
    const scenarios: Record<string, unknown> = {};
    for (const scn of Object.keys(SCENARIOS) as ScenarioName[]) scenarios[scn] = await latencyScenario(scn, timing, runs, out);
    result.latency = {
      timing,
      scaled: opts.full ? 'no: the documented defaults' : 'yes: every timing × 1/5 of the documented defaults; compare ratios',
      config: {
        node: NODE, log: { level: 'info' },
        fence: fenceSection(timing, [{ name: 'management', url: `http://127.0.0.1:${FIRST_PORT}` }], 'eth0', '<scratch>/FENCED'),
        consulDouble: agentConfig(FIRST_PORT, '<peer ip>'),
      },
      scenarios,
    };
  }
  if (opts.only !== 'latency') {
    out(`idle cost: 3 agents, check_interval 5 s (documented defaults)\n`);
    result.idle = await idleCost(idleMs, warmupMs, out);
  }
  // A full run gets a file of its own: the quick run of `npm run bench` must not overwrite it.
  const file = writeResult(opts.full ? 'fence-full' : 'fence', result);
  out(`\n${summary(result)}\nwrote ${file}\n`);
}

/** A few lines for the terminal. */
function summary(r: Record<string, any>): string {
  const lines: string[] = [];
  if (r.latency) {
    const t = r.latency.timing as Timing;
    lines.push(`decision latency (${r.mode}; check_interval ${t.checkIntervalMs} ms × confirm_cycles ${t.confirmCycles} = ${t.checkIntervalMs * t.confirmCycles} ms):`);
    for (const s of Object.values(r.latency.scenarios) as any[]) {
      // p95 only where it is not the max under another name (n >= 20).
      const p95 = (x: Stat, unit = '') => (x.p95 === null ? '' : `p95 ${x.p95}${unit}, `);
      lines.push(`  ${s.scenario}: n=${s.runs}, median ${s.latencyMs.median} ms, ${p95(s.latencyMs, ' ms')}max ${s.latencyMs.max} ms `
        + `(ratio median ${s.ratio.median}, ${p95(s.ratio)}max ${s.ratio.max}; model mean ${s.expected.meanMs} ms = ratio ${s.expected.meanRatio}, range ${s.expected.minMs}–${s.expected.maxMs} ms); `
        + `overhead beyond the model median ${s.breakdown.overheadMs.median} ms, action start ${s.breakdown.actionStartMs.median} ms after the decision`);
    }
  }
  if (r.idle) {
    const i = r.idle;
    lines.push(`idle, 3 agents every 5 s, ${i.windowS} s measured (${i.cycles} cycles, ${i.consulRequests} HTTP requests):`);
    lines.push(`  CPU ${i.cpu.secondsPerHour} s/h (stat ticks), ${i.cpu.schedSecondsPerHour} s/h (schedstat), ${i.cpu.msPerCycle} ms per cycle; `
      + `peak RSS ${(i.memory.peakRssKb / 1024).toFixed(1)} MiB; tasks created ${i.spawns.tasksCreated} (${i.spawns.perHour} per hour)`);
  }
  return lines.join('\n');
}

async function cli(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { full: { type: 'boolean', default: false }, runs: { type: 'string' }, idle: { type: 'string' }, only: { type: 'string' }, help: { type: 'boolean', default: false } },
  });
  if (values.help) {
    process.stdout.write('usage: node dist/bench/fence.js [--full] [--runs N] [--idle DURATION] [--only latency|idle]\n'
      + '  quick (default): 10 runs per latency scenario with timings × 1/5, 2 min idle -> fence.json;\n'
      + '  --full: 50 runs, documented timings, 1 h idle -> fence-full.json\n');
    return 0;
  }
  const runs = values.runs === undefined ? undefined : Number(values.runs);
  const idleMs = values.idle === undefined ? undefined : parseDurationMs(values.idle);
  if ((runs !== undefined && (!Number.isInteger(runs) || runs < 1)) || (values.idle !== undefined && (idleMs === undefined || idleMs < 10_000))
    || (values.only !== undefined && values.only !== 'latency' && values.only !== 'idle')) {
    process.stderr.write('bench/fence: usage: [--full] [--runs N≥1] [--idle DURATION≥10s] [--only latency|idle]\n');
    return 2;
  }
  await main({ full: values.full ?? false, ...(runs !== undefined ? { runs } : {}), ...(idleMs !== undefined ? { idleMs } : {}), ...(values.only ? { only: values.only as 'latency' | 'idle' } : {}) });
  return 0;
}

if (require.main === module) {
  cli(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: unknown) => {
    process.stderr.write(`bench/fence: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
