/**
 * Layer: bench support, process entry. Prints the figures of the README's
 * performance section as Markdown, from bench/results/*.json (failover,
 * failover-tuned if present, ipset, idle, fence), so that the section can be
 * refreshed after every `npm run bench` without copying by hand.
 *
 * A quick run writes `<name>.json`, a `--full` run `<name>-full.json`; each
 * section is printed from whichever of the two exists (the newer when both
 * do, or the one `--mode` asks for) and says which it was.
 *
 *   node dist/bench/lib/report.js [--mode latest|quick|full] > /tmp/perf.md
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { resultsDir } from './results';
import { bootstrapMedianRatioCi, excludesOne, minSamplesFor } from './stats';

type Json = Record<string, any>;

/** Which run a section is printed from. */
export type ReportMode = 'latest' | 'quick' | 'full';

/** A result document and where it came from. */
interface Loaded { doc: Json; file: string; full: boolean }

function read(name: string, dir: string): Json | undefined {
  const file = path.join(dir, `${name}.json`);
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Json) : undefined;
}

/**
 * `<base>.json` or `<base>-full.json`: the one `mode` asks for, or with
 * 'latest' the newer of the two by the date in its context (a week-old full
 * run is not quoted over this morning's quick one without saying so).
 */
export function pick(base: string, mode: ReportMode = 'latest', dir = resultsDir()): Loaded | undefined {
  const quick = read(base, dir);
  const full = read(`${base}-full`, dir);
  const q: Loaded | undefined = quick ? { doc: quick, file: `${base}.json`, full: quick.mode === 'full' } : undefined;
  const f: Loaded | undefined = full ? { doc: full, file: `${base}-full.json`, full: true } : undefined;
  if (mode === 'quick') return q;
  if (mode === 'full') return f;
  if (!q || !f) return q ?? f;
  return String(f.doc.context?.date ?? '') >= String(q.doc.context?.date ?? '') ? f : q;
}

/** "quick run of 2026-11-22, bench/results/failover.json" */
function label(l: Loaded): string {
  return `${l.full ? 'full' : 'quick'} run of ${String(l.doc.context?.date ?? '?').slice(0, 10)}, \`bench/results/${l.file}\``;
}

const n0 = (x: number) => (Number.isFinite(x) ? String(Math.round(x)) : '–');

/** The tail figure of a row: p95 where n is large enough for it to differ from the max, else the max. */
function tail(r: Json): { value: number; isP95: boolean } {
  const p95 = r.p95_ms;
  return typeof p95 === 'number' && r.n >= minSamplesFor(95) ? { value: p95, isP95: true } : { value: r.max_ms, isP95: false };
}

/**
 * The ratio's bootstrap interval: from the file, or (files written before
 * it was recorded) recomputed from the samples with the same seeded helper,
 * which gives the same interval the bench would have written.
 */
function ratioCi(doc: Json, r: Json): [number, number] | undefined {
  if (Array.isArray(r.median_ratio_ci95)) return r.median_ratio_ci95 as [number, number];
  const samples = (impl: string, cfg: string) => ((doc.runs as Json[]).find((x) => x.impl === impl && x.config === cfg && x.fault === r.fault)?.takeover_samples_ms ?? []) as number[];
  const ci = bootstrapMedianRatioCi(samples('vigil', r.vigil), samples('keepalived', r.keepalived));
  return ci ? [Math.round(ci[0] * 1000) / 1000, Math.round(ci[1] * 1000) / 1000] : undefined;
}

/** The Markdown figures, or a line saying which results are missing. */
export function report(mode: ReportMode = 'latest', dir = resultsDir()): string {
  const fl = pick('failover', mode, dir);
  const tl = pick('failover-tuned', mode, dir);
  const sl = pick('ipset', mode, dir);
  const il = pick('idle', mode, dir);
  const fe = pick('fence', mode, dir);
  if (!fl) return `No bench/results/failover${mode === 'full' ? '-full' : ''}.json yet: run \`sudo npm run bench${mode === 'full' ? ' -- --full' : ''}\` first.\n`;
  const f = fl.doc;
  const t = tl?.doc;
  const out: string[] = [];
  const c = f.context as Json;
  out.push(`Figures of ${String(c.date).slice(0, 10)}: \`sudo npm run bench${fl.full ? ' -- --full' : ''}\` (${f.mode}, ${f.faults_per_kind} faults of each kind per configuration) on ${c.cpus} CPUs (${c.cpu}), Linux ${c.kernel}, Node ${c.node}, ${f.keepalived}. Failover: ${label(fl)}${tl ? `; tuned: ${label(tl)}` : ''}.`, '');
  const run = (doc: Json, impl: string, cfg: string, fault: string): Json | undefined =>
    (doc.runs as Json[]).find((r) => r.impl === impl && r.config === cfg && r.fault === fault);
  const rows: Array<[Json, string, string, string]> = [
    [f, 'vigil', 'default', 'vigil, documented defaults'],
    [f, 'keepalived', 'advert_int 1', 'keepalived, `advert_int 1`'],
    [f, 'vigil', 'aggressive', 'vigil, aggressive'],
    [f, 'keepalived', 'advert_int 0.1', 'keepalived, `advert_int 0.1`'],
  ];
  if (t) rows.push([t, 'vigil', 'tuned', 'vigil, tuned (separate run)']);
  // One tail column for the whole table: p95 only if every row has the samples for it.
  const shown = rows.flatMap(([doc, impl, cfg]) => ['link-cut', 'host-gone', 'graceful'].map((k) => run(doc, impl, cfg, k)).filter((r): r is Json => !!r));
  const allP95 = shown.length > 0 && shown.every((r) => tail(r).isP95);
  const cell = (doc: Json, impl: string, cfg: string, fault: string) => {
    const r = run(doc, impl, cfg, fault);
    return r ? `${n0(r.median_ms)} / ${n0(allP95 ? r.p95_ms : r.max_ms)}` : '–';
  };
  const minN = Math.min(...shown.map((r) => r.n as number));
  out.push(`Takeover as the client sees it (fault → first ARP answer from the new owner), median / ${allP95 ? 'p95' : `max (n = ${minN} or more per cell: a p95 needs n ≥ ${minSamplesFor(95)})`} ms, and the wire traffic at rest:`, '');
  out.push(`| configuration | link cut | host gone | graceful stop | wire traffic at rest |`, '|---|---:|---:|---:|---:|');
  for (const [doc, impl, cfg, name] of rows) {
    const pps = (doc.probes_per_s as Json)[`${impl} ${cfg}`];
    if (pps === undefined) continue;
    out.push(`| ${name} | ${cell(doc, impl, cfg, 'link-cut')} | ${cell(doc, impl, cfg, 'host-gone')} | ${cell(doc, impl, cfg, 'graceful')} | ${pps} frames/s |`);
  }
  out.push('', 'Median takeover ratios vigil / keepalived (below 1: vigil is faster), with a bootstrap 95 % interval (if it contains 1, this run cannot tell the two apart) and the traffic ratio:', '');
  out.push('| fault | vigil | keepalived | ratio | 95 % interval | traffic ratio |', '|---|---|---|---:|---:|---:|');
  for (const doc of [f, t]) {
    if (!doc) continue;
    for (const r of doc.ratio as Json[]) {
      if (doc === t && r.vigil !== 'tuned') continue;
      const ci = ratioCi(doc, r);
      const ciCell = ci ? `${ci[0]}–${ci[1]}${excludesOne(ci) ? '' : ' (contains 1)'}` : '–';
      out.push(`| ${r.fault} | ${r.vigil} | ${r.keepalived} | ${r.median_ratio} | ${ciCell} | ${r.traffic_ratio}${r.equal_traffic ? ' (equal)' : ''} |`);
    }
  }
  const heal = (f.runs as Json[]).filter((r) => r.fault === 'link-cut').map((r) => `${r.impl} ${r.config} ${n0(r.gap_after_heal_ms)} / ${n0(r.gap_after_heal_max_ms)}`);
  out.push('', `After a link cut heals, until exactly one MAC answers (median / max ms): ${heal.join('; ')}. `
    + 'The heal falls at a random point of each tool\'s upkeep period (vigil master_check_interval, keepalived advert_int), so these compare different periods, not one mechanism (bench/README.md, failover).');
  const svg = f.svg as Record<string, string>;
  out.push('', `Timelines: ${Object.entries(svg).map(([k, v]) => `[${k}](bench/results/${v})`).join(', ')}.`);
  if (sl) {
    const s = sl.doc;
    const runs = s.runs as Json[];
    const sameInterval = runs.every((r) => r.ip_loop_wall_median_ms !== undefined);
    out.push('', `Address sets (${s.config}; ${label(sl)}), medians in ms${sameInterval
      ? '; the adds are timed alike, first address present → last present (the loop\'s wall time in parentheses)'
      : '; NOTE: an older file, whose loop figure is its wall time, not the first → last interval of vigil\'s add'}:`, '');
    out.push('| addresses | takeover | vigil adds the set | `ip addr add` loop | `ip -batch` | loop / vigil [95 % interval] |', '|---:|---:|---:|---:|---:|---:|');
    for (const r of runs) {
      const loop = r.ip_loop_wall_median_ms !== undefined ? `${n0(r.ip_loop_median_ms)} (${n0(r.ip_loop_wall_median_ms)})` : n0(r.ip_loop_median_ms);
      const ratio = !sameInterval || r.loop_vs_netlink_ratio === null || r.loop_vs_netlink_ratio === undefined
        ? '–' : `${r.loop_vs_netlink_ratio}${Array.isArray(r.loop_vs_netlink_ratio_ci95) ? ` [${r.loop_vs_netlink_ratio_ci95[0]}, ${r.loop_vs_netlink_ratio_ci95[1]}]` : ''}`;
      out.push(`| ${r.addresses} | ${n0(r.takeover_median_ms)} | ${r.add_median_ms} | ${loop} | ${r.ip_batch_median_ms} | ${ratio} |`);
    }
  }
  if (il) {
    const i = il.doc;
    const concurrent = i.concurrent_with_other_benches ?? /also ran the other benches/.test(String(i.side_by_side ?? ''));
    out.push('', `At rest (${i.rest_minutes} min), then with ${i.busy_loops} busy loop(s) (${i.busy_minutes} min); per pair; ${label(il)}${concurrent
      ? '; NOTE: its rest window ran alongside the other benches (the old default, now opt-in with `--concurrent`), whose load moves these figures'
      : ', run alone'}:`, '');
    out.push('| configuration | CPU s/h at rest | CPU s/h, busy | peak RSS per node | spawns | false takeovers |', '|---|---:|---:|---:|---:|---:|');
    const runs = i.runs as Json[];
    for (const a of runs.filter((r) => r.phase === 'rest')) {
      const b = runs.find((r) => r.phase === 'busy' && r.impl === a.impl && r.config === a.config);
      const spawns = a.spawns === null || b?.spawns === null ? 'n/a' : String(a.spawns + (b?.spawns ?? 0));
      out.push(`| ${a.impl} ${a.config} | ${a.cpu_s_per_h.toFixed(1)} | ${b ? b.cpu_s_per_h.toFixed(1) : '–'} | ${Math.round(a.peak_rss_kb / 1024)} MiB | ${spawns} | ${a.false_takeovers + (b?.false_takeovers ?? 0)} |`);
    }
  }
  if (fe) {
    const d = fe.doc;
    out.push('', `Self-fencing (${label(fe)}${d.latency?.scaled ? `; timings scaled: ${d.latency.scaled}` : ''}):`, '');
    for (const s of Object.values((d.latency?.scenarios ?? {}) as Record<string, Json>)) {
      const l = s.latencyMs as Json;
      const tailTxt = typeof l.p95 === 'number' && s.runs >= minSamplesFor(95) ? `p95 ${l.p95} ms, max ${l.max} ms` : `max ${l.max} ms`;
      out.push(`- ${s.scenario}: n = ${s.runs}, median ${l.median} ms, ${tailTxt}, mean ${l.mean} ms against a model mean of ${s.expected?.meanMs} ms.`);
    }
    const id = d.idle as Json | undefined;
    if (id) out.push(`- idle, 3 agents every 5 s, ${id.windowS} s: ${id.cpu?.secondsPerHour} CPU s/h, peak RSS ${Math.round((id.memory?.peakRssKb ?? NaN) / 1024)} MiB, ${id.spawns?.tasksCreated} tasks created.`);
  }
  return out.join('\n') + '\n';
}

if (require.main === module) {
  const { values } = parseArgs({ args: process.argv.slice(2), options: { mode: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  const mode = (values.mode ?? 'latest') as ReportMode;
  if (values.help || !['latest', 'quick', 'full'].includes(mode)) {
    (values.help ? process.stdout : process.stderr).write('usage: node dist/bench/lib/report.js [--mode latest|quick|full]\n'
      + '  latest (default): per section, the newer of <name>.json (quick) and <name>-full.json (full)\n');
    process.exit(values.help ? 0 : 2);
  }
  process.stdout.write(report(mode));
}
