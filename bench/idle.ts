/**
 * Layer: bench entry. `bench/idle` (root): what each configuration costs while nothing happens.
 *
 * The four configurations (vigil default and aggressive, keepalived
 * advert_int 1 and 0.1) run side by side, each pair in a lab of its own
 * (hosts a and b, no client), so that one five-minute (quick) or one-hour
 * (full) window covers all four. Measured per node over the window:
 *
 * - CPU seconds per hour: the daemon's processes (keepalived: parent and
 *   VRRP child), from each task's schedstat time on CPU (nanoseconds), with
 *   utime+stime+cutime+cstime from /proc/<pid>/stat as a cross-check;
 * - peak RSS: VmHWM (the process's lifetime peak) summed over its processes;
 * - process spawns: every fork under the daemon, from the kernel's process
 *   events connector (bench/lib/forkwatch-proc.ts), so none is missed;
 * - false takeovers: any node becoming master during the window;
 * - vigil only: ARP frames its kernel filter delivered to JavaScript, from
 *   `vigil status` (`roles.vip.arp.delivered`) read over the control socket
 *   at the window's start and end, scaled to an hour.
 *
 * The pair's CPU is also sampled per sub-window (a minute, or a fifth of a
 * shorter window) so the report can put a bootstrap interval on a ratio of
 * two pairs' CPU; the window's total stays the figure.
 *
 * Then the same again with (CPUs − 1, at least one) busy loops saturating
 * the machine's other core(s). The busy loops are the only thing the bench
 * runs outside the lab namespaces besides its own monitors.
 *
 * With `--gate` the bench stops between the two phases, prints `IDLE-GATE`
 * and waits for a line on stdin: `npm run bench -- --concurrent` uses it to
 * run the other benches during the rest phase (to save its minutes) and
 * nothing during the busy phase. That is not the default: the figures are
 * per process, but another bench's load still moves them (contention for
 * the CPUs and caches lengthens each wake-up; a rest window run that way
 * measured more CPU than the busy window after it), so published figures
 * come from the rest window run alone.
 *
 * Writes bench/results/idle.json (--full: idle-full.json).
 */
import * as os from 'node:os';
import * as fs from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { createLab, type Lab } from '../test/support/lab';
import { scratchDir } from '../test/support/vigil';
import { nowNs, nsToMs } from './lib/client';
import { ALL_CONFIGS, findKeepalived, keepalivedVersion, label, soleMaster, startPair, type HaConfig, type HaNode } from './lib/ha';
import { cpuOf, statusKb } from './lib/procstat';
import { startForkCounter, type ForkCounter } from './lib/forks';
import { writeResult } from './lib/results';
import { useUnitEnvironment, vigilEnvironment } from './lib/unit-env';

import { parseBenchArgs, numberOption, requireRoot, progress, sleep, pollUntil } from './lib/common';

const log = (msg: string) => progress('idle', msg);

/** One configuration in its lab. */
interface Pair { cfg: HaConfig; lab: Lab; nodes: [HaNode, HaNode] }

/** One node's figures over one window. */
export interface NodeFigures {
  host: string;
  role: string;
  cpu_s_per_h: number;
  cpu_stat_s_per_h: number;
  /** Times the daemon's threads were scheduled to run, per second (schedstat timeslices). */
  wakeups_per_s: number;
  cpu_us_per_wakeup: number;
  peak_rss_kb: number;
  rss_kb: number;
  processes: number;
  spawns: number | null;
  /** vigil: ARP frames delivered to JavaScript during the window, and per hour; null: keepalived, or not readable. */
  arp_delivered: number | null;
  arp_delivered_per_h: number | null;
}

/** One row of idle.json `runs`. */
export interface IdleRun {
  impl: string;
  config: string;
  phase: 'rest' | 'busy';
  minutes: number;
  /** The pair's CPU seconds per hour (master + backup). */
  cpu_s_per_h: number;
  cpu_s_per_h_master: number;
  cpu_s_per_h_backup: number;
  /** The larger of the two nodes' peak RSS, kB. */
  peak_rss_kb: number;
  /** Processes spawned by either daemon during the window (null: the fork watcher failed). */
  spawns: number | null;
  /** Nodes that became master during the window. */
  false_takeovers: number;
  /** Every role change during the window. */
  role_changes: number;
  /** The pair's CPU s/h in each sub-window (see the file comment), in order. */
  cpu_s_per_h_samples: number[];
  sample_seconds: number;
  /** vigil: ARP frames delivered to JavaScript per hour, master and backup (null: keepalived, or not readable). */
  arp_delivered_per_h_master: number | null;
  arp_delivered_per_h_backup: number | null;
  nodes: NodeFigures[];
}

/** Options of {@link runIdle}. */
export interface IdleOptions {
  full: boolean;
  /** Rest window (default 5 quick, 60 full). */
  restMinutes?: number;
  /** Busy window (default 2 quick, 60 full). */
  busyMinutes?: number;
  /** Wait for a line on stdin between the phases (see the file comment). */
  gate?: boolean;
  configs?: HaConfig[];
  /** Result name (bench/results/<out>.json), default idle (idle-full with --full). */
  out?: string;
}

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

function cpuOfNode(n: HaNode): { sched: number; stat: number; runs: number } {
  let sched = 0;
  let stat = 0;
  let runs = 0;
  for (const pid of n.pids()) {
    const c = cpuOf(pid);
    if (c) { sched += c.schedS; stat += c.statS; runs += c.runs; }
  }
  return { sched, stat, runs };
}

/** The length of one CPU sub-window: a minute, or a fifth of a shorter window (at least 5 s). */
export function sampleSeconds(minutes: number): number {
  return Math.max(5, Math.min(60, (minutes * 60) / 5));
}

/** Read every vigil node's delivered-frames counter (undefined for keepalived or no answer). */
async function readDelivered(pairs: Pair[]): Promise<Map<HaNode, number | undefined>> {
  const out = new Map<HaNode, number | undefined>();
  await Promise.all(pairs.flatMap((p) => p.nodes.map(async (n) => { out.set(n, await n.arpDelivered()); })));
  return out;
}

/** Measure every pair over one window of `minutes`. */
async function measureWindow(pairs: Pair[], forks: ForkCounter | undefined, minutes: number, phase: 'rest' | 'busy'): Promise<IdleRun[]> {
  // The counters are read outside the CPU window (before its start, after
  // its end), so the status requests' own CPU is not counted.
  const delivered0 = await readDelivered(pairs);
  const deliveredStartNs = nowNs();
  const startNs = nowNs();
  const start = new Map<HaNode, { cpu: { sched: number; stat: number; runs: number }; role: string }>();
  for (const p of pairs) {
    for (const n of p.nodes) {
      start.set(n, { cpu: cpuOfNode(n), role: n.role });
      forks?.watch(`${label(p.cfg)}/${n.host.name}`, n.pids());
    }
  }
  const pairCpu = (p: Pair) => p.nodes.reduce((a, n) => a + cpuOfNode(n).sched, 0);
  const stepS = sampleSeconds(minutes);
  const samples = new Map<Pair, number[]>(pairs.map((p) => [p, []]));
  let mark = { ns: startNs, cpu: new Map(pairs.map((p) => [p, pairCpu(p)])) };
  const endAt = Date.now() + minutes * 60_000;
  let lastReport = Date.now();
  while (Date.now() < endAt) {
    const nextSample = Number(mark.ns - startNs) / 1e6 + stepS * 1000 - nsToMs(nowNs() - startNs);
    await sleep(Math.min(5000, endAt - Date.now(), Math.max(0, nextSample)));
    const elapsedS = nsToMs(nowNs() - mark.ns) / 1000;
    if (elapsedS >= stepS - 0.05 || Date.now() >= endAt) {
      const now = { ns: nowNs(), cpu: new Map(pairs.map((p) => [p, pairCpu(p)])) };
      // A tail shorter than half a step is too short to stand beside the others.
      if (elapsedS >= stepS / 2) for (const p of pairs) samples.get(p)!.push(round((now.cpu.get(p)! - mark.cpu.get(p)!) / (elapsedS / 3600)));
      mark = now;
    }
    if (Date.now() - lastReport >= 60_000) {
      lastReport = Date.now();
      log(`${phase}: ${Math.round((endAt - Date.now()) / 1000)} s left`);
    }
  }
  const hours = nsToMs(nowNs() - startNs) / 3_600_000;
  const cpuEnd = new Map(pairs.flatMap((p) => p.nodes.map((n) => [n, cpuOfNode(n)] as const)));
  const delivered1 = await readDelivered(pairs);
  const deliveredHours = nsToMs(nowNs() - deliveredStartNs) / 3_600_000;
  return pairs.map((p) => {
    const nodes: NodeFigures[] = p.nodes.map((n) => {
      const s = start.get(n)!;
      const c = cpuEnd.get(n)!;
      const pids = n.pids();
      const d0 = delivered0.get(n);
      const d1 = delivered1.get(n);
      // A restarted daemon starts its counter again: no figure rather than a negative one.
      const frames = d0 !== undefined && d1 !== undefined && d1 >= d0 ? d1 - d0 : null;
      return {
        host: n.host.name,
        role: s.role,
        cpu_s_per_h: round((c.sched - s.cpu.sched) / hours),
        cpu_stat_s_per_h: round((c.stat - s.cpu.stat) / hours),
        wakeups_per_s: round((c.runs - s.cpu.runs) / (hours * 3600), 2),
        cpu_us_per_wakeup: c.runs > s.cpu.runs ? round(((c.sched - s.cpu.sched) * 1e6) / (c.runs - s.cpu.runs), 1) : 0,
        peak_rss_kb: pids.reduce((x, pid) => x + (statusKb(pid, 'VmHWM') ?? 0), 0),
        rss_kb: pids.reduce((x, pid) => x + (statusKb(pid, 'VmRSS') ?? 0), 0),
        processes: pids.length,
        spawns: forks && forks.healthy() ? forks.count(`${label(p.cfg)}/${n.host.name}`) : null,
        arp_delivered: frames,
        arp_delivered_per_h: frames === null ? null : round(frames / deliveredHours, 1),
      };
    });
    const inWindow = p.nodes.flatMap((n) => n.events.filter((e) => e.atNs >= startNs));
    const byRole = (r: string) => nodes.filter((x) => x.role === r).reduce((a, x) => a + x.cpu_s_per_h, 0);
    const deliveredOf = (r: string) => nodes.find((x) => x.role === r)?.arp_delivered_per_h ?? null;
    return {
      impl: p.cfg.impl, config: p.cfg.config, phase, minutes: round(hours * 60, 2),
      cpu_s_per_h: round(nodes.reduce((a, x) => a + x.cpu_s_per_h, 0)),
      cpu_s_per_h_master: round(byRole('master')),
      cpu_s_per_h_backup: round(byRole('backup')),
      peak_rss_kb: Math.max(...nodes.map((x) => x.peak_rss_kb)),
      spawns: nodes.some((x) => x.spawns === null) ? null : nodes.reduce((a, x) => a + (x.spawns ?? 0), 0),
      false_takeovers: inWindow.filter((e) => e.role === 'master').length,
      role_changes: inWindow.length,
      cpu_s_per_h_samples: samples.get(p)!,
      sample_seconds: stepS,
      arp_delivered_per_h_master: deliveredOf('master'),
      arp_delivered_per_h_backup: deliveredOf('backup'),
      nodes,
    };
  });
}

/**
 * Start the busy loops: one per CPU but one (at least one). Each spins, and
 * every few million iterations checks that the bench is still its parent
 * and that its time is not up, so a loop can never outlive the bench.
 */
function startBusyLoops(minutes: number): ChildProcess[] {
  const n = Math.max(1, os.cpus().length - 1);
  const limitMs = Math.round((minutes + 5) * 60_000);
  const code = `const p = process.ppid, end = Date.now() + ${limitMs}; for (;;) { for (let i = 0; i < 5e6; i++); if (process.ppid !== p || Date.now() > end) process.exit(0); }`;
  return Array.from({ length: n }, () => spawn(process.execPath, ['-e', code], { stdio: 'ignore' }));
}

async function stopBusyLoops(loops: ChildProcess[]): Promise<void> {
  await Promise.all(loops.map((p) => new Promise<void>((r) => {
    if (p.exitCode !== null || p.signalCode !== null) { r(); return; }
    p.once('exit', () => r());
    p.kill('SIGKILL');
  })));
}

/** Wait for a line on stdin (the gate of `npm run bench`). */
function waitForStdinLine(): Promise<void> {
  return new Promise((resolve) => {
    process.stdin.setEncoding('utf8');
    const done = () => { process.stdin.pause(); resolve(); };
    process.stdin.once('data', done);
    process.stdin.once('end', done);
    process.stdin.resume();
  });
}

/** Run the idle bench and write bench/results/idle.json. */
export async function runIdle(opts: IdleOptions): Promise<Record<string, unknown>> {
  const restMinutes = opts.restMinutes ?? (opts.full ? 60 : 5);
  const busyMinutes = opts.busyMinutes ?? (opts.full ? 60 : 2);
  let configs = opts.configs ?? ALL_CONFIGS;
  if (!findKeepalived()) {
    log('keepalived is not installed (apt-get install keepalived): running vigil only');
    configs = configs.filter((c) => c.impl !== 'keepalived');
  }
  const dir = scratchDir('bench-idle');
  const pairs: Pair[] = [];
  let forks: ForkCounter | undefined;
  let loops: ChildProcess[] = [];
  const runs: IdleRun[] = [];
  let forkError: string | undefined;
  try {
    try {
      forks = await startForkCounter();
    } catch (e) {
      forkError = e instanceof Error ? e.message : String(e);
      log(`cannot count spawns: ${forkError}`);
    }
    for (const cfg of configs) {
      const lab = await createLab({ hosts: ['a', 'b'] });
      pairs.push({ cfg, lab, nodes: startPair(cfg, lab.host('a'), lab.host('b'), { haIp: lab.freeIp(0), dir }) });
    }
    for (const p of pairs) {
      const m = await pollUntil(() => soleMaster(p.nodes), 60_000, 50);
      if (!m) throw new Error(`${label(p.cfg)}: no single master within 60 s`);
    }
    // Past the start-up announcements (vigil: 3 at 1 s; keepalived: a second burst after 5 s).
    const lastChange = pairs.flatMap((p) => p.nodes.flatMap((n) => n.events)).reduce((x, e) => (e.atNs > x ? e.atNs : x), 0n);
    await sleep(10_000 - nsToMs(nowNs() - lastChange));
    log(`rest: ${restMinutes} min, ${pairs.length} configurations side by side (${pairs.map((p) => `${label(p.cfg)} in ${p.lab.prefix}`).join(', ')})`);
    runs.push(...await measureWindow(pairs, forks, restMinutes, 'rest'));
    if (opts.gate) {
      process.stdout.write('IDLE-GATE\n');
      log('rest done; waiting for the go to start the busy phase');
      await waitForStdinLine();
    }
    loops = startBusyLoops(busyMinutes);
    log(`busy: ${busyMinutes} min with ${loops.length} busy loop(s) on a ${os.cpus().length}-CPU machine`);
    runs.push(...await measureWindow(pairs, forks, busyMinutes, 'busy'));
  } finally {
    await stopBusyLoops(loops);
    await Promise.all(pairs.flatMap((p) => p.nodes.map((n) => n.stop())));
    await Promise.all(pairs.map((p) => p.lab.destroy()));
    await forks?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const doc = {
    runs,
    mode: opts.full ? 'full' : 'quick',
    rest_minutes: restMinutes,
    busy_minutes: busyMinutes,
    busy_loops: Math.max(1, os.cpus().length - 1),
    keepalived: keepalivedVersion() ?? 'not installed',
    vigil_environment: vigilEnvironment(),
    spawn_counting: forkError ? `unavailable: ${forkError}` : 'kernel process events connector (forks under each daemon)',
    concurrent_with_other_benches: opts.gate === true,
    side_by_side: opts.gate
      ? 'the four pairs ran at once, each in its own lab; during the rest window npm run bench --concurrent also ran the other benches, whose load can move these figures (not for publication); the busy window ran alone'
      : 'the four pairs ran at once, each in its own lab; no other bench was run alongside by npm run bench',
    definitions: {
      cpu_s_per_h: 'CPU seconds per hour of the pair (master + backup): sum over the daemon processes and their threads of schedstat time on CPU',
      cpu_stat_s_per_h: 'the same from /proc/<pid>/stat utime+stime+cutime+cstime (10 ms ticks), a cross-check',
      wakeups_per_s: 'timeslices the daemon threads ran, per second (schedstat field 3): how often the daemon wakes up',
      peak_rss_kb: 'VmHWM summed over the daemon processes of a node (lifetime peak), the larger node',
      spawns: 'processes forked by the daemons (or their descendants) during the window',
      false_takeovers: 'transitions to master during the window (nothing failed, so every one is false)',
      cpu_s_per_h_samples: 'the pair\'s CPU s/h in consecutive sub-windows of sample_seconds (a minute, or a fifth of a shorter window), for a bootstrap interval of a CPU ratio',
      arp_delivered_per_h: 'vigil: ARP frames its kernel filter delivered to JavaScript during the window (roles.vip.arp.delivered of vigil status, read over the control socket at the window\'s start and end), per hour; null for keepalived (no ARP socket: it reads every VRRP advert sent to it)',
    },
  };
  // A full run gets a file of its own: it must not overwrite the quick figures.
  const file = writeResult(opts.out ?? (opts.full ? 'idle-full' : 'idle'), doc);
  log(`wrote ${file}`);
  return doc;
}

/** Print the headline table. */
export function printIdle(doc: { runs: IdleRun[] }): void {
  const out = ['', 'idle (per pair; CPU s/h = CPU seconds per hour)', 'configuration              phase  minutes  CPU s/h (master/backup)     peak RSS  spawns  false takeovers  ARP to JS/h (master/backup)'];
  for (const r of doc.runs) {
    out.push(`${`${r.impl} ${r.config}`.padEnd(26)} ${r.phase.padEnd(5)} ${String(r.minutes).padStart(8)}  ${`${r.cpu_s_per_h} (${r.cpu_s_per_h_master}/${r.cpu_s_per_h_backup})`.padEnd(26)} ${`${Math.round(r.peak_rss_kb / 1024 * 10) / 10} MiB`.padStart(9)}  ${String(r.spawns).padStart(6)}  ${String(r.false_takeovers).padStart(15)}  ${r.impl === 'vigil' ? `${r.arp_delivered_per_h_master ?? '?'}/${r.arp_delivered_per_h_backup ?? '?'}` : 'n/a'}`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

async function main(): Promise<number> {
  const args = parseBenchArgs(process.argv.slice(2), { minutes: { type: 'string' }, 'busy-minutes': { type: 'string' }, gate: { type: 'boolean' }, out: { type: 'string' } });
  if (args.help) {
    process.stdout.write('usage: node dist/bench/idle.js [--full] [--minutes M] [--busy-minutes M] [--gate] [--out NAME]\n'
      + 'quick (default): 5 min at rest, 2 min busy -> idle.json; --full: 60 and 60 min -> idle-full.json\n'
      + 'BENCH_RESULTS_DIR=DIR writes the result there instead of bench/results (a trial run).\n');
    return 0;
  }
  if (!requireRoot('bench/idle')) return 2;
  // vigil as the systemd unit runs it (its NODE_OPTIONS and VIGIL_V8_FLAGS).
  useUnitEnvironment();
  const doc = await runIdle({
    full: args.full,
    gate: args.values.gate === true,
    ...(args.values.minutes !== undefined ? { restMinutes: numberOption(args.values.minutes, 5, 'minutes') } : {}),
    ...(args.values['busy-minutes'] !== undefined ? { busyMinutes: numberOption(args.values['busy-minutes'], 2, 'busy-minutes') } : {}),
    ...(typeof args.values.out === 'string' ? { out: args.values.out } : {}),
  }) as { runs: IdleRun[] };
  printIdle(doc);
  return 0;
}

if (require.main === module) {
  main().then((code) => process.exit(code), (e) => {
    process.stderr.write(`bench/idle failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exit(1);
  });
}
