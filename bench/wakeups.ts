/**
 * Layer: bench entry. `bench/wakeups` (root): a quick look at what one vigil
 * pair at the aggressive timing (bench/lib/ha.ts VIGIL_AGGRESSIVE, ≈ 10
 * frames/s on the wire) costs at rest, per node and per thread: CPU seconds
 * per hour, wake-ups per second (schedstat timeslices) and CPU per wake-up.
 * The same figures as bench/idle's rest window, for one pair and a short
 * window, so a change to the hot path can be measured in a minute.
 *
 *   npx ts-node-transpile-only bench/wakeups.ts [--seconds 60] [--warmup 10] [--config aggressive|default|tuned] [--prof DIR]
 *     [--gc] [--tail] [--node-options '…'] [--v8-flags '…']
 *
 * `--gc` logs each garbage collection of the daemons on their stderr; `--tail`
 * prints the daemons' last lines after the window; `--v8-flags` sets V8 flags
 * in the daemons at preload (v8.setFlagsFromString), for flags NODE_OPTIONS refuses.
 *
 * `--prof DIR` runs the daemons under the V8 sampling profiler
 * (bench/lib/cpuprof-preload.js), a .cpuprofile per daemon in DIR when they stop. Prints a JSON document; writes nothing under bench/results.
 */
import * as fs from 'node:fs';
import { createLab } from '../test/support/lab';
import { scratchDir } from '../test/support/vigil';
import { nowNs, nsToMs } from './lib/client';
import { VIGIL_AGGRESSIVE, VIGIL_DEFAULT, VIGIL_TUNED, soleMaster, startPair, type HaNode } from './lib/ha';
import { cpuOf } from './lib/procstat';
import { parseBenchArgs, numberOption, requireRoot, progress, sleep, pollUntil } from './lib/common';

const log = (msg: string) => progress('wakeups', msg);
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

/** Per-thread CPU (ns) and timeslices of a process, keyed by `comm`. */
function threads(pid: number): Map<string, { ns: number; runs: number }> {
  const out = new Map<string, { ns: number; runs: number }>();
  let tids: string[] = [];
  try { tids = fs.readdirSync(`/proc/${pid}/task`); } catch { return out; }
  for (const tid of tids) {
    try {
      const comm = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const f = fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ');
      const key = tid === String(pid) ? 'main' : `${comm}:${tid}`;
      const t = out.get(key) ?? { ns: 0, runs: 0 };
      t.ns += Number(f[0]);
      t.runs += Number(f[2]);
      out.set(key, t);
    } catch { /* gone */ }
  }
  return out;
}

function sample(n: HaNode): { s: number; runs: number; threads: Map<string, { ns: number; runs: number }> } {
  const pid = n.pid!;
  const c = cpuOf(pid);
  return { s: c?.schedS ?? 0, runs: c?.runs ?? 0, threads: threads(pid) };
}

async function main(): Promise<void> {
  if (!requireRoot('wakeups')) return;
  const args = parseBenchArgs(process.argv.slice(2), { seconds: { type: 'string' }, config: { type: 'string' }, prof: { type: 'string' }, 'node-options': { type: 'string' }, tail: { type: 'boolean' }, gc: { type: 'boolean' }, 'v8-flags': { type: 'string' }, warmup: { type: 'string' } });
  const seconds = numberOption(args.values.seconds, 60, 'seconds');
  const warmupS = numberOption(args.values.warmup, 10, 'warmup');
  const name = String(args.values.config ?? 'aggressive');
  const cfg = name === 'default' ? VIGIL_DEFAULT : name === 'tuned' ? VIGIL_TUNED : VIGIL_AGGRESSIVE;
  const prof = typeof args.values.prof === 'string' ? args.values.prof : undefined;
  if (typeof args.values['v8-flags'] === 'string') {
    process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --require ${require.resolve('./lib/cpuprof-preload.js')}`.trim();
    process.env.VIGIL_V8FLAGS = args.values['v8-flags'];
  }
  if (args.values.gc) {
    process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --require ${require.resolve('./lib/cpuprof-preload.js')}`.trim();
    process.env.VIGIL_GCLOG = '1';
  }
  if (prof) {
    fs.mkdirSync(prof, { recursive: true });
    process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --require ${require.resolve('./lib/cpuprof-preload.js')}`.trim();
    process.env.VIGIL_CPUPROF_DIR = prof;
  }
  // Extra flags for the daemons (e.g. --trace-gc, with --tail to print their last lines).
  const extra = args.values['node-options'];
  if (typeof extra === 'string') process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} ${extra}`.trim();
  const dir = scratchDir('bench-wakeups');
  const lab = await createLab({ hosts: ['a', 'b'] });
  let nodes: [HaNode, HaNode] | undefined;
  try {
    nodes = startPair(cfg, lab.host('a'), lab.host('b'), { haIp: lab.freeIp(0), dir });
    const pair = nodes;
    if (!await pollUntil(() => soleMaster(pair), 60_000, 50)) throw new Error(`no single master within 60 s: ${pair.map((n) => `${n.host.name}: ${n.role}\n${n.tail.slice(-5).join('\n')}`).join('\n')}`);
    const lastChange = nodes.flatMap((n) => n.events).reduce((x, e) => (e.atNs > x ? e.atNs : x), 0n);
    await sleep(warmupS * 1000 - nsToMs(nowNs() - lastChange)); // past the start-up announcements (and the JIT's first tier-ups)
    log(`measuring ${seconds} s (vigil ${cfg.config})`);
    const t0 = nowNs();
    const before = nodes.map(sample);
    const roles = nodes.map((n) => n.role);
    await sleep(seconds * 1000);
    const after = nodes.map(sample);
    const secs = nsToMs(nowNs() - t0) / 1000;
    const changes = nodes.flatMap((n) => n.events.filter((e) => e.atNs >= t0)).length;
    const out = nodes.map((n, i) => {
      const a = after[i]!;
      const b = before[i]!;
      const cpu = a.s - b.s;
      const runs = a.runs - b.runs;
      const perThread: Record<string, { cpu_s_per_h: number; wakeups_per_s: number }> = {};
      for (const [k, v] of a.threads) {
        const w = b.threads.get(k) ?? { ns: 0, runs: 0 };
        if (v.runs - w.runs > 0) perThread[k] = { cpu_s_per_h: round(((v.ns - w.ns) / 1e9) * 3600 / secs), wakeups_per_s: round((v.runs - w.runs) / secs, 2) };
      }
      return {
        host: n.host.name, role: roles[i],
        cpu_s_per_h: round(cpu * 3600 / secs), wakeups_per_s: round(runs / secs, 2),
        cpu_us_per_wakeup: runs > 0 ? round(cpu * 1e6 / runs, 1) : 0,
        threads: perThread,
      };
    });
    const pairCpu = out.reduce((x, o) => x + o.cpu_s_per_h, 0);
    if (args.values.tail) for (const n of nodes) process.stderr.write(`--- ${n.host.name} (${n.role})\n${n.tail.slice(-40).join('\n')}\n`);
    process.stdout.write(`${JSON.stringify({ config: cfg.config, seconds: round(secs, 1), role_changes: changes, pair_cpu_s_per_h: round(pairCpu), nodes: out }, null, 2)}\n`);
  } finally {
    await Promise.all((nodes ?? []).map((n) => n.stop()));
    await lab.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`); process.exitCode = 1; });
