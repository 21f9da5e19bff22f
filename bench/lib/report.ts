/**
 * Layer: bench support, process entry. Prints the figures of the README's
 * performance section as Markdown, from the latest bench/results/*.json
 * (failover, failover-tuned if present, ipset, idle), so that the section
 * can be refreshed after every `npm run bench` without copying by hand.
 *
 *   node dist/bench/lib/report.js > /tmp/perf.md
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { resultsDir } from './results';

type Json = Record<string, any>;

function load(name: string): Json | undefined {
  const file = path.join(resultsDir(), `${name}.json`);
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Json) : undefined;
}

const n0 = (x: number) => (Number.isFinite(x) ? String(Math.round(x)) : '–');

/** The Markdown figures, or a line saying which results are missing. */
export function report(): string {
  const f = load('failover');
  const t = load('failover-tuned');
  const s = load('ipset');
  const i = load('idle');
  if (!f) return 'No bench/results/failover.json yet: run `sudo npm run bench` first.\n';
  const out: string[] = [];
  const c = f.context as Json;
  out.push(`Figures of ${String(c.date).slice(0, 10)}: \`sudo npm run bench\` (${f.mode}, ${f.faults_per_kind} faults of each kind per configuration) on ${c.cpus} CPUs (${c.cpu}), Linux ${c.kernel}, Node ${c.node}, ${f.keepalived}.`, '');
  const run = (doc: Json, impl: string, cfg: string, fault: string): Json | undefined =>
    (doc.runs as Json[]).find((r) => r.impl === impl && r.config === cfg && r.fault === fault);
  const cell = (doc: Json, impl: string, cfg: string, fault: string) => {
    const r = run(doc, impl, cfg, fault);
    return r ? `${n0(r.median_ms)} / ${n0(r.p95_ms)}` : '–';
  };
  const rows: Array<[Json, string, string, string]> = [
    [f, 'vigil', 'default', 'vigil, documented defaults'],
    [f, 'keepalived', 'advert_int 1', 'keepalived, `advert_int 1`'],
    [f, 'vigil', 'aggressive', 'vigil, aggressive'],
    [f, 'keepalived', 'advert_int 0.1', 'keepalived, `advert_int 0.1`'],
  ];
  if (t) rows.push([t, 'vigil', 'tuned', 'vigil, tuned (separate run)']);
  out.push('Takeover as the client sees it (fault → first ARP answer from the new owner), median / p95 ms, and the wire traffic at rest:', '');
  out.push('| configuration | link cut | host gone | graceful stop | wire traffic at rest |', '|---|---:|---:|---:|---:|');
  for (const [doc, impl, cfg, name] of rows) {
    const pps = (doc.probes_per_s as Json)[`${impl} ${cfg}`];
    if (pps === undefined) continue;
    out.push(`| ${name} | ${cell(doc, impl, cfg, 'link-cut')} | ${cell(doc, impl, cfg, 'host-gone')} | ${cell(doc, impl, cfg, 'graceful')} | ${pps} frames/s |`);
  }
  out.push('', 'Median takeover ratios vigil / keepalived (below 1: vigil is faster), with the traffic ratio:', '');
  out.push('| fault | vigil | keepalived | ratio | traffic ratio |', '|---|---|---|---:|---:|');
  for (const doc of [f, t]) {
    if (!doc) continue;
    for (const r of doc.ratio as Json[]) {
      if (doc === t && r.vigil !== 'tuned') continue;
      out.push(`| ${r.fault} | ${r.vigil} | ${r.keepalived} | ${r.median_ratio} | ${r.traffic_ratio}${r.equal_traffic ? ' (equal)' : ''} |`);
    }
  }
  const heal = (f.runs as Json[]).filter((r) => r.fault === 'link-cut').map((r) => `${r.impl} ${r.config} ${n0(r.gap_after_heal_ms)} / ${n0(r.gap_after_heal_max_ms)}`);
  out.push('', `After a link cut heals, until exactly one MAC answers (median / max ms): ${heal.join('; ')}.`);
  const svg = f.svg as Record<string, string>;
  out.push('', `Timelines: ${Object.entries(svg).map(([k, v]) => `[${k}](bench/results/${v})`).join(', ')}.`);
  if (s) {
    out.push('', `Address sets (${s.config}), medians in ms:`, '');
    out.push('| addresses | takeover | vigil adds the set | `ip addr add` loop | `ip -batch` |', '|---:|---:|---:|---:|---:|');
    for (const r of s.runs as Json[]) out.push(`| ${r.addresses} | ${n0(r.takeover_median_ms)} | ${r.add_median_ms} | ${n0(r.ip_loop_median_ms)} | ${r.ip_batch_median_ms} |`);
  }
  if (i) {
    out.push('', `At rest (${i.rest_minutes} min), then with ${i.busy_loops} busy loop(s) (${i.busy_minutes} min); per pair:`, '');
    out.push('| configuration | CPU s/h at rest | CPU s/h, busy | peak RSS per node | spawns | false takeovers |', '|---|---:|---:|---:|---:|---:|');
    const runs = i.runs as Json[];
    for (const a of runs.filter((r) => r.phase === 'rest')) {
      const b = runs.find((r) => r.phase === 'busy' && r.impl === a.impl && r.config === a.config);
      const spawns = a.spawns === null || b?.spawns === null ? 'n/a' : String(a.spawns + (b?.spawns ?? 0));
      out.push(`| ${a.impl} ${a.config} | ${a.cpu_s_per_h.toFixed(1)} | ${b ? b.cpu_s_per_h.toFixed(1) : '–'} | ${Math.round(a.peak_rss_kb / 1024)} MiB | ${spawns} | ${a.false_takeovers + (b?.false_takeovers ?? 0)} |`);
    }
  }
  return out.join('\n') + '\n';
}

if (require.main === module) process.stdout.write(report());
