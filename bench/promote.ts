/**
 * Layer: bench. The promote role over seeded random partitions of three
 * sites A, B, W (W runs the Consul TEST DOUBLE), root needed:
 *
 *   node dist/bench/promote.js [--runs 50] [--seed N] [--out promote]
 *
 * Each run builds a fresh three-site lab (test/support/promote-sites.ts),
 * lets A promote, starts B, then applies one fault drawn from the seed:
 * isolate A (cut A–B and A–W), cut A–B, cut A–W, cut B–W, stall A's daemon
 * (SIGSTOP for a random time shorter than the TTL, then SIGCONT), or restart
 * the witness (keeping its state, as on a leader election). It waits for
 * B's first promote step or 2 × TTL + lock-delay + 10 s, heals, and reads
 * both sites' timelines (the marker-writing stand-ins). Per run:
 * - takeoverMs: from the fault to B's first promote step (when B promotes);
 * - overlapMs: the time both sites were promoted at once (A from its first
 *   promote step to its demote step, B likewise); must be 0 in every run.
 * TTL 15 s, lock-delay 15 s, acquire_after 0, check_interval 250 ms (the
 * standby's detection is part of the figure): the model bound is
 * 2 × TTL + lock-delay + 1 s = 46 s. Prints the seed (replay with --seed).
 * Writes bench/results/<out>.json.
 */
import { parseArgs } from 'node:util';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startScenario, type Mark, type Scenario, type Timing } from '../test/support/promote-sites';
import { doubleRequest } from '../test/support/consul-double';
import { seededRandom } from './lib/stats';

const TIMING: Timing = { ttlMs: 15_000, lockDelayMs: 15_000, renewMs: 3000, retries: 2, demoteTimeoutMs: 5000, checkMs: 250 };
const MODEL_MS = 2 * TIMING.ttlMs + TIMING.lockDelayMs + 1000;
const FAULTS = ['isolate-a', 'cut-ab', 'cut-aw', 'cut-bw', 'stall-a', 'witness-restart'] as const;
type Fault = (typeof FAULTS)[number];

/** mulberry32 (bench/lib/stats): a small seeded PRNG, so a run can be replayed from its seed. */
const prng = seededRandom;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Promoted intervals of a site from its timeline: first promote step → demote step (or the end). */
export function promotedIntervals(tl: Mark[], site: string, endMs: number): [number, number][] {
  const out: [number, number][] = [];
  let from: number | undefined;
  for (const m of tl.filter((x) => x.site === site)) {
    if (m.what === 'p1' && from === undefined) from = m.atMs;
    if (m.what === 'd1' && from !== undefined) { out.push([from, m.atMs]); from = undefined; }
  }
  if (from !== undefined) out.push([from, endMs]);
  return out;
}

/** Total time two sets of intervals overlap. */
export function overlapMs(x: [number, number][], y: [number, number][]): number {
  let sum = 0;
  for (const [a0, a1] of x) for (const [b0, b1] of y) sum += Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));
  return sum;
}

async function waitUntil(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (cond()) return true; await sleep(100); }
  return cond();
}

interface RunResult { run: number; fault: Fault; detail: string; bPromoted: boolean; takeoverMs?: number; overlapMs: number; aDemotedBeforeB?: boolean }

async function oneRun(run: number, rnd: () => number): Promise<RunResult> {
  const teardowns: (() => unknown)[] = [];
  const sc: Scenario = await startScenario({ teardown: (fn) => teardowns.push(fn) }, `bench${run}`, TIMING);
  try {
    sc.start('a');
    if (!(await waitUntil(() => sc.whats('a').includes('p2'), 20_000))) throw new Error(`run ${run}: A did not promote in 20 s${sc.tails()}`);
    sc.start('b');
    await sleep(2000 + Math.floor(rnd() * 3000));
    const fault = FAULTS[Math.floor(rnd() * FAULTS.length)]!;
    let detail = '';
    const faultAt = Date.now();
    switch (fault) {
      case 'isolate-a': await sc.lab.cut('a', 'b'); await sc.lab.cut('a', 'w'); break;
      case 'cut-ab': await sc.lab.cut('a', 'b'); break;
      case 'cut-aw': await sc.lab.cut('a', 'w'); break;
      case 'cut-bw': await sc.lab.cut('b', 'w'); break;
      case 'stall-a': {
        const ms = 1000 + Math.floor(rnd() * (TIMING.ttlMs - 2000));
        detail = `SIGSTOP ${ms} ms`;
        sc.signal('a', 'SIGSTOP');
        await sleep(ms);
        sc.signal('a', 'SIGCONT');
        break;
      }
      case 'witness-restart': {
        const downMs = Math.floor(rnd() * 3000);
        detail = `down ${downMs} ms, state kept`;
        await doubleRequest({ url: 'http://double', socketPath: sc.doubleSocket }, 'PUT', '/_double/restart', JSON.stringify({ keepState: true, downMs }));
        break;
      }
    }
    const bPromoted = await waitUntil(() => sc.whats('b').includes('p1'), MODEL_MS + 10_000 - (Date.now() - faultAt));
    for (const [x, y] of [['a', 'b'], ['a', 'w'], ['b', 'w']] as const) { try { await sc.lab.heal(x, y); } catch { /* not cut */ } }
    await sleep(3000);
    const end = Date.now();
    const tl = sc.timeline();
    const overlap = overlapMs(promotedIntervals(tl, 'a', end), promotedIntervals(tl, 'b', end));
    const bFirst = tl.find((m) => m.site === 'b' && m.what === 'p1');
    const aDemote = tl.find((m) => m.site === 'a' && m.what === 'd1');
    return {
      run, fault, detail, bPromoted, overlapMs: overlap,
      ...(bFirst ? { takeoverMs: bFirst.atMs - faultAt, aDemotedBeforeB: aDemote !== undefined && aDemote.atMs < bFirst.atMs } : {}),
    };
  } finally {
    for (const fn of teardowns.reverse()) await fn();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '50' }, seed: { type: 'string' }, out: { type: 'string', default: 'promote' }, help: { type: 'boolean' } } });
  if (values.help) { process.stdout.write('usage: node dist/bench/promote.js [--runs 50] [--seed N] [--out promote]\n'); return; }
  const runs = Number(values.runs);
  const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
  console.log(`promote bench: seed ${seed} (replay: --seed ${seed}), ${runs} runs, TTL ${TIMING.ttlMs / 1000}s, lock-delay ${TIMING.lockDelayMs / 1000}s, model bound ${MODEL_MS / 1000}s`);
  const rnd = prng(seed);
  const results: RunResult[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await oneRun(i, rnd);
    results.push(r);
    console.log(`run ${i}: ${r.fault}${r.detail ? ` (${r.detail})` : ''}: ${r.bPromoted ? `B promoted after ${r.takeoverMs} ms, A demoted first: ${r.aDemotedBeforeB}` : 'no takeover'}; overlap ${r.overlapMs} ms`);
  }
  const takeovers = results.filter((r) => r.takeoverMs !== undefined).map((r) => r.takeoverMs!);
  const summary = {
    runs, seed, modelBoundMs: MODEL_MS, timing: TIMING,
    takeovers: takeovers.length, takeoverMinMs: takeovers.length ? Math.min(...takeovers) : null,
    takeoverMaxMs: takeovers.length ? Math.max(...takeovers) : null,
    takeoverMedianMs: takeovers.length ? [...takeovers].sort((a, b) => a - b)[Math.floor(takeovers.length / 2)] : null,
    overlapMaxMs: Math.max(0, ...results.map((r) => r.overlapMs)),
    overlapTotalMs: results.reduce((sum, r) => sum + r.overlapMs, 0),
    faults: Object.fromEntries(FAULTS.map((f) => [f, results.filter((r) => r.fault === f).length])),
    allDemotedFirst: results.every((r) => r.aDemotedBeforeB !== false),
  };
  const out = path.join(__dirname, '..', '..', 'bench', 'results', `${values.out}.json`);
  fs.writeFileSync(out, `${JSON.stringify({ context: { host: os.hostname(), kernel: os.release(), node: process.version, date: new Date().toISOString(), command: `node dist/bench/promote.js --runs ${runs} --seed ${seed}` }, summary, results }, null, 2)}\n`);
  console.log(JSON.stringify(summary));
  console.log(`wrote ${out}`);
}

if (require.main === module) {
  // A signal ends the process through exit, so the labs' exit hook removes namespaces and daemons.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => process.exit(130));
}
if (require.main === module) main().catch((e) => { console.error(e); process.exit(1); });
