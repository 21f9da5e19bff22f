/**
 * Layer: bench entry. `bench/memory` (root): what a daemon running the HA IP
 * role alone holds in memory, against an empty Node process on the same
 * machine, and what it loaded to get there.
 *
 * Side by side, each in a lab of its own (hosts a and b):
 *
 * - `node (empty)`: `node -e 'setInterval(() => {}, 1000)'` in each host,
 *   the floor no Node program goes below;
 * - `node + pino + unix socket`: with the unit's flags, pino logging once a
 *   second and a listening unix socket: the floor of a daemon built like
 *   vigil (its logger and control socket), before vigil's own code;
 * - `vigil (unit)`: a vip pair (the documented defaults, bench/lib/ha.ts)
 *   started with the V8 flags the systemd unit sets, passed the same way:
 *   `Environment=NODE_OPTIONS=…` and `Environment=VIGIL_V8_FLAGS=…` in
 *   etc/systemd/vigil.service (bin/vigil reads the second);
 * - `vigil (no flags)`: the same pair without them (only when the unit sets any);
 * - `--flags 'label=--a --b;label2=--c'`: more pairs, one per entry, each
 *   flag in the variable that takes it ({@link routeFlags}).
 *
 * Once each pair has one master and the start-up announcements are over,
 * the window (quick 60 s, `--seconds S`, `--full` 600 s) measures per
 * process: VmRSS and VmHWM (the lifetime peak, what the idle bench reports
 * as peak_rss_kb), RssAnon/RssFile (the file-backed part is mostly the node
 * binary's own pages, shared with every other Node process), and CPU
 * seconds per hour from schedstat (utime+stime as a cross-check).
 *
 * One more daemon, alone in its lab and not part of the comparison, runs
 * with the unit's flags plus `--require` of a small hook that writes, at
 * the end of the window, the modules it loaded (require.cache),
 * process.memoryUsage() and V8's heap spaces: what the memory is.
 *
 * Writes bench/results/memory.json (--full: memory-full.json).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { createLab, type Lab } from '../test/support/lab';
import { ROOT, scratchDir } from '../test/support/vigil';
import { unitEnv } from './lib/unit-env';
import { nowNs, nsToMs } from './lib/client';
import { VIGIL_DEFAULT, soleMaster, startPair, type HaNode } from './lib/ha';
import { cpuOf, statusKb, type CpuSample } from './lib/procstat';
import { writeResult } from './lib/results';
import { parseBenchArgs, numberOption, requireRoot, progress, sleep, pollUntil } from './lib/common';

const log = (msg: string) => progress('memory', msg);


/** Flags Node accepts in NODE_OPTIONS (of the V8 ones a daemon could want); the others go to VIGIL_V8_FLAGS (bin/vigil). */
const NODE_OPTIONS_FLAGS = /^--(max-semi-space-size|max-old-space-size|jitless|stack-trace-limit|require)(=|$)/;

/** Split flags into the two variables that carry them: NODE_OPTIONS and VIGIL_V8_FLAGS. */
export function routeFlags(flags: string): { NODE_OPTIONS: string; VIGIL_V8_FLAGS: string } {
  const all = flags.split(/\s+/).filter(Boolean);
  return { NODE_OPTIONS: all.filter((f) => NODE_OPTIONS_FLAGS.test(f)).join(' '), VIGIL_V8_FLAGS: all.filter((f) => !NODE_OPTIONS_FLAGS.test(f)).join(' ') };
}

/** `label=--a --b;label2=--c` → [[label, flags], …]. */
export function parseFlagVariants(v: string | undefined): [string, string][] {
  if (!v) return [];
  return v.split(';').map((s) => s.trim()).filter(Boolean).map((s) => {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new Error(`--flags: '${s}' is not label=flags`);
    return [s.slice(0, eq).trim(), s.slice(eq + 1).trim()];
  });
}

/** The hook the inspected daemon loads with --require: it dumps what it holds to MEMX_OUT every MEMX_EVERY_MS. */
const HOOK = `'use strict';
const fs = require('fs');
const v8 = require('v8');
const out = process.env.MEMX_OUT;
const every = Number(process.env.MEMX_EVERY_MS) || 10000;
setInterval(() => {
  const data = {
    modules: Object.keys(require.cache),
    memory_usage: process.memoryUsage(),
    heap_spaces: v8.getHeapSpaceStatistics().map((s) => ({ name: s.space_name, size_kb: Math.round(s.space_size / 1024), used_kb: Math.round(s.space_used_size / 1024) })),
  };
  fs.writeFileSync(out + '.tmp', JSON.stringify(data));
  fs.renameSync(out + '.tmp', out);
}, every).unref();
`;

/** One process's figures at the end of the window. */
interface ProcFigures {
  host: string;
  role: string;
  rss_kb: number;
  peak_rss_kb: number;
  rss_anon_kb: number;
  rss_file_kb: number;
  cpu_s_per_h: number;
  cpu_stat_s_per_h: number;
}

/** One variant (a pair, or the two empty Node processes). */
interface Variant {
  label: string;
  node_options: string;
  lab: Lab;
  /** Per host: the process and its role now. */
  procs: () => { host: string; pid: number | undefined; role: string }[];
  stop: () => Promise<void>;
  cpu0?: Map<number, CpuSample>;
}

function pairVariant(label: string, nodeOptions: string, lab: Lab, dir: string, extraEnv: Record<string, string> = {}): { variant: Variant; nodes: [HaNode, HaNode] } {
  const saved = { ...process.env };
  // HaNode spawns with this process's environment: the flags travel as the
  // unit passes them, in NODE_OPTIONS and VIGIL_V8_FLAGS.
  const routed = routeFlags(nodeOptions);
  for (const [k, v] of Object.entries(routed)) if (v) process.env[k] = v; else delete process.env[k];
  Object.assign(process.env, extraEnv);
  let nodes: [HaNode, HaNode];
  try {
    nodes = startPair(VIGIL_DEFAULT, lab.host('a'), lab.host('b'), { haIp: lab.freeIp(0), dir: path.join(dir, label.replace(/[^a-z0-9]+/gi, '-')) });
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
  return {
    nodes,
    variant: {
      label, node_options: nodeOptions, lab,
      procs: () => nodes.map((n) => ({ host: n.host.name, pid: n.pid, role: n.role })),
      stop: async () => { await Promise.all(nodes.map((n) => n.stop())); },
    },
  };
}

function emptyNodeVariant(lab: Lab): Variant {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const procs: [string, ChildProcess][] = lab.hosts.map((h) => [h.name, h.spawn([process.execPath, '-e', 'setInterval(() => {}, 1000)'], { env, stdio: 'ignore' })]);
  return {
    label: 'node (empty)', node_options: '', lab,
    procs: () => procs.map(([host, p]) => ({ host, pid: p.pid, role: 'none' })),
    stop: async () => { for (const [, p] of procs) p.kill('SIGKILL'); },
  };
}

/**
 * The floor of vigil's make-up: Node with the unit's flags (set as the unit
 * and bin/vigil set them), pino writing a line a second through a sync
 * destination, and a listening unix socket (the control socket). No
 * config, no role, no native addon: what any daemon built like vigil
 * holds before its own code.
 */
function floorVariant(lab: Lab, dir: string, unitFlags: string): Variant {
  const routed = routeFlags(unitFlags);
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: routed.NODE_OPTIONS };
  if (!routed.NODE_OPTIONS) delete env.NODE_OPTIONS;
  const script = (sock: string) => [
    routed.VIGIL_V8_FLAGS ? `require('node:v8').setFlagsFromString(${JSON.stringify(routed.VIGIL_V8_FLAGS)});` : '',
    `const pino = require(${JSON.stringify(path.join(ROOT, 'node_modules', 'pino'))});`,
    "const log = pino({ base: { pid: process.pid } }, pino.destination({ dest: '/dev/null', sync: true }));",
    `require('node:net').createServer((c) => c.end()).listen(${JSON.stringify(sock)});`,
    "setInterval(() => log.info({ role: 'slave' }, 'tick'), 1000);",
  ].join('\n');
  const procs: [string, ChildProcess][] = lab.hosts.map((h) => [h.name, h.spawn([process.execPath, '-e', script(path.join(dir, `floor-${h.name}.sock`))], { env, stdio: 'ignore' })]);
  return {
    label: 'node + pino + unix socket (floor, unit flags)', node_options: unitFlags, lab,
    procs: () => procs.map(([host, p]) => ({ host, pid: p.pid, role: 'none' })),
    stop: async () => { for (const [, p] of procs) p.kill('SIGKILL'); },
  };
}

function figures(v: Variant, seconds: number): ProcFigures[] {
  return v.procs().flatMap(({ host, pid, role }) => {
    if (pid === undefined) return [];
    const c0 = v.cpu0?.get(pid);
    const c1 = cpuOf(pid);
    const perH = (x: number) => Math.round((x / seconds) * 3600 * 1000) / 1000;
    return [{
      host, role,
      rss_kb: statusKb(pid, 'VmRSS') ?? NaN,
      peak_rss_kb: statusKb(pid, 'VmHWM') ?? NaN,
      rss_anon_kb: statusKb(pid, 'RssAnon') ?? NaN,
      rss_file_kb: statusKb(pid, 'RssFile') ?? NaN,
      cpu_s_per_h: c0 && c1 ? perH(c1.schedS - c0.schedS) : NaN,
      cpu_stat_s_per_h: c0 && c1 ? perH(c1.statS - c0.statS) : NaN,
    }];
  });
}

/** Modules grouped by package (node_modules/<pkg>) or by vigil folder (dist/src/…). */
function groupModules(mods: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of mods) {
    const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(m);
    const key = nm ? nm[1]! : path.relative(ROOT, path.dirname(m)).replace(/^dist\//, '');
    out[key] = (out[key] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(out).sort((a, b) => b[1] - a[1]));
}

export async function runMemory(opts: { seconds: number; full: boolean; variants: [string, string][] }): Promise<Record<string, unknown>> {
  const unitFlags = [unitEnv('NODE_OPTIONS'), unitEnv('VIGIL_V8_FLAGS')].filter(Boolean).join(' ');
  const dir = scratchDir('bench-memory');
  fs.chmodSync(dir, 0o755);
  const hook = path.join(dir, 'memx-hook.js');
  fs.writeFileSync(hook, HOOK, { mode: 0o644 });
  const dump = path.join(dir, 'memx.json');
  const variants: Variant[] = [];
  const pairs: HaNode[][] = [];
  let inspect: HaNode[] = [];
  const labs: Lab[] = [];
  const newLab = async () => { const l = await createLab({ hosts: ['a', 'b'] }); labs.push(l); return l; };
  let result: Record<string, unknown>;
  try {
    variants.push(emptyNodeVariant(await newLab()));
    variants.push(floorVariant(await newLab(), dir, unitFlags));
    const wanted: [string, string][] = [[`vigil (unit${unitFlags ? `: ${unitFlags}` : ', no flags'})`, unitFlags], ...(unitFlags ? [['vigil (no flags)', ''] as [string, string]] : []), ...opts.variants.map(([l, f]) => [`vigil (${l}: ${f})`, f] as [string, string])];
    for (const [label, flags] of wanted) {
      const { variant, nodes } = pairVariant(label, flags, await newLab(), dir);
      variants.push(variant);
      pairs.push(nodes);
    }
    // The inspected daemon: alone (its peer would only add a second hook), not compared.
    const iLab = await newLab();
    inspect = pairVariant('inspect', `${unitFlags} --require=${hook}`.trim(), iLab, dir, { MEMX_OUT: dump, MEMX_EVERY_MS: String(Math.max(1000, Math.min(10_000, opts.seconds * 250))) }).nodes;
    for (const nodes of [...pairs, inspect]) {
      const m = await pollUntil(() => soleMaster(nodes), 60_000, 50);
      if (!m) throw new Error(`no single master within 60 s: ${nodes.map((n) => n.tail.slice(-5).join('\n')).join('\n')}`);
    }
    // Past the start-up announcements (3 at 1 s), as the idle bench does.
    const lastChange = pairs.flat().flatMap((n) => n.events).reduce((x, e) => (e.atNs > x ? e.atNs : x), 0n);
    await sleep(10_000 - nsToMs(nowNs() - lastChange));
    for (const v of variants) v.cpu0 = new Map(v.procs().flatMap(({ pid }) => { const c = pid !== undefined ? cpuOf(pid) : undefined; return c && pid !== undefined ? [[pid, c] as [number, CpuSample]] : []; }));
    log(`window: ${opts.seconds} s, ${variants.map((v) => v.label).join(', ')} side by side, each in its own lab`);
    await sleep(opts.seconds * 1000);
    const runs = variants.map((v) => {
      const procs = figures(v, opts.seconds);
      const max = (k: keyof ProcFigures) => Math.max(...procs.map((p) => p[k] as number));
      return {
        variant: v.label, flags: v.node_options, env: routeFlags(v.node_options), seconds: opts.seconds,
        peak_rss_kb: max('peak_rss_kb'), rss_kb: max('rss_kb'),
        cpu_s_per_h: Math.round(procs.reduce((s, p) => s + p.cpu_s_per_h, 0) * 1000) / 1000,
        processes: procs,
      };
    });
    const ifig = figures({ label: 'inspect', node_options: '', lab: iLab, procs: () => inspect.map((n) => ({ host: n.host.name, pid: n.pid, role: n.role })), stop: async () => {} }, opts.seconds);
    await pollUntil(() => fs.existsSync(dump), 15_000, 100);
    let dumped: { modules: string[]; memory_usage: Record<string, number>; heap_spaces: unknown[] } | undefined;
    try { dumped = JSON.parse(fs.readFileSync(dump, 'utf8')) as typeof dumped; } catch { log('the inspected daemon wrote no dump'); }
    const mods = (dumped?.modules ?? []).filter((m) => m !== hook);
    result = {
      mode: opts.full ? 'full' : 'quick',
      window_s: opts.seconds,
      unit_flags: { NODE_OPTIONS: unitEnv('NODE_OPTIONS'), VIGIL_V8_FLAGS: unitEnv('VIGIL_V8_FLAGS') },
      runs,
      inspected: {
        note: 'one more vip pair with the unit flags plus --require of a dump hook (not part of the comparison); figures of its two nodes, the dump from one of them',
        processes: ifig,
        modules_total: mods.length,
        modules_by_package: groupModules(mods),
        modules: mods.map((m) => path.relative(ROOT, m)),
        memory_usage_kb: Object.fromEntries(Object.entries(dumped?.memory_usage ?? {}).map(([k, v]) => [k, Math.round(v / 1024)])),
        heap_spaces: dumped?.heap_spaces ?? [],
      },
      definitions: {
        peak_rss_kb: 'VmHWM, the process\'s lifetime peak resident set (what the idle bench reports), the larger of the two processes',
        rss_kb: 'VmRSS at the end of the window, the larger of the two',
        rss_file_kb: 'RssFile: file-backed resident pages, mostly the node binary itself (shared between Node processes, counted in each RSS)',
        cpu_s_per_h: 'CPU seconds per hour over the window, both processes together, from schedstat (cpu_stat_s_per_h: utime+stime, 10 ms ticks)',
      },
    };
  } finally {
    await Promise.all([...variants.map((v) => v.stop()), ...inspect.map((n) => n.stop())]);
    await Promise.all(labs.map((l) => l.destroy()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const file = writeResult(opts.full ? 'memory-full' : 'memory', result);
  log(`wrote ${file}`);
  return result;
}

function print(doc: Record<string, any>): void {
  const mib = (kb: number) => `${(kb / 1024).toFixed(1)} MiB`;
  const out = ['', `memory (per process; window ${doc.window_s} s)`, 'variant                                        peak RSS (VmHWM)  RSS now    CPU s/h (both)'];
  for (const r of doc.runs) out.push(`${String(r.variant).padEnd(46)} ${mib(r.peak_rss_kb).padStart(16)}  ${mib(r.rss_kb).padStart(9)}  ${String(r.cpu_s_per_h).padStart(8)}`);
  out.push(`inspected daemon: ${doc.inspected.modules_total} modules; ${Object.entries(doc.inspected.modules_by_package).slice(0, 8).map(([k, n]) => `${k} ${n}`).join(', ')}`);
  process.stdout.write(out.join('\n') + '\n');
}

async function main(): Promise<number> {
  const args = parseBenchArgs(process.argv.slice(2), { seconds: { type: 'string' }, flags: { type: 'string' } });
  if (args.help) {
    process.stdout.write('usage: node dist/bench/memory.js [--full] [--seconds S] [--flags "label=--v8-flag ...;label2=..."]\n'
      + 'quick (default): a 60 s window -> memory.json; --full: 600 s -> memory-full.json\n');
    return 0;
  }
  if (!requireRoot('bench/memory')) return 2;
  const doc = await runMemory({
    full: args.full,
    seconds: numberOption(args.values.seconds, args.full ? 600 : 60, 'seconds'),
    variants: parseFlagVariants(args.values.flags as string | undefined),
  });
  print(doc);
  return 0;
}

if (require.main === module) {
  main().then((code) => process.exit(code), (e) => {
    process.stderr.write(`bench/memory failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exit(1);
  });
}
