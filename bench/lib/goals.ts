/**
 * Layer: bench support, pure. The table of issue 18's goals for the HA IP
 * role (README, "Known limits (HA IP, after issue 18)"), computed from the
 * failover and idle result documents instead of copied by hand: each row
 * has vigil's figure, keepalived's, the ratio where there is one (with a
 * bootstrap 95 % interval where the samples allow it), the goal, and whether
 * it is met. A document written before a figure existed gives "not
 * measured" in that row, never an exception.
 */
import { bootstrapMedianRatioCi } from './stats';

type Json = Record<string, any>;

/** The goals, as numbers (issue 18, "What to deliver"). */
export const GOALS = {
  /** vigil aggressive / keepalived advert_int 0.1, median link-cut takeover. */
  linkCutRatio: 0.6,
  /** vigil / keepalived idle CPU per pair, at equal wire traffic. */
  idleCpuRatio: 1.5,
  /** Peak RSS per vigil node, MiB. */
  rssMiB: 45,
} as const;

/** One row of the table. */
export interface GoalRow {
  figure: string;
  vigil: string;
  keepalived: string;
  now: string;
  goal: string;
  /** 'yes', 'no', 'not measured' or '–' (no goal), with a short reason after a colon where useful. */
  met: string;
}

const NOT = 'not measured';
const ms = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? `${Math.round(x)} ms` : '–');
const x2 = (x: number) => `${x.toFixed(2)}×`;
const num = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);
const notMeasured = (figure: string, goal: string, why: string): GoalRow => ({ figure, vigil: NOT, keepalived: NOT, now: '', goal, met: `${NOT}: ${why}` });

/** "1.20× (0.95–1.43)" or "1.20× (single window)". */
function ratioText(r: number, ci: readonly [number, number] | undefined, noCi: string): string {
  return `${x2(r)} (${ci ? `95 % interval ${ci[0].toFixed(2)}–${ci[1].toFixed(2)}` : noCi})`;
}

/**
 * The verdict on an upper-bound goal for a ratio with (maybe) an interval:
 * met when the figure is at or below it, with a word when the interval
 * straddles the goal (this run cannot settle it either way).
 */
export function verdict(value: number, goal: number, ci?: readonly [number, number]): string {
  if (value <= goal) return ci && ci[1] > goal ? 'yes (the interval reaches above the goal)' : 'yes';
  return ci && ci[0] <= goal ? 'no (the interval reaches the goal)' : 'no';
}

function ratioCi(a: unknown, b: unknown): [number, number] | undefined {
  if (!Array.isArray(a) || !Array.isArray(b)) return undefined;
  const ci = bootstrapMedianRatioCi(a as number[], b as number[]);
  return ci ? [Math.round(ci[0] * 1000) / 1000, Math.round(ci[1] * 1000) / 1000] : undefined;
}

/** Row: median link-cut takeover at equal wire traffic. */
function linkCutRow(f: Json | undefined): GoalRow {
  const figure = 'link cut, equal wire traffic (vigil aggressive vs keepalived `advert_int 0.1`), median takeover';
  const goal = `≤ ${GOALS.linkCutRatio}×`;
  if (!f) return notMeasured(figure, goal, 'no failover results');
  const run = (impl: string, cfg: string) => (f.runs as Json[] | undefined)?.find((r) => r.impl === impl && r.config === cfg && r.fault === 'link-cut');
  const v = run('vigil', 'aggressive');
  const k = run('keepalived', 'advert_int 0.1');
  const vm = num(v?.median_ms);
  const km = num(k?.median_ms);
  if (vm === undefined || km === undefined || km === 0) {
    return { ...notMeasured(figure, goal, 'a configuration is missing from failover.json'), vigil: ms(vm), keepalived: ms(km) };
  }
  const entry = (f.ratio as Json[] | undefined)?.find((r) => r.fault === 'link-cut' && r.vigil === 'aggressive' && r.keepalived === 'advert_int 0.1');
  const ratio = vm / km;
  const ci = Array.isArray(entry?.median_ratio_ci95) ? entry!.median_ratio_ci95 as [number, number] : ratioCi(v?.takeover_samples_ms, k?.takeover_samples_ms);
  const traffic = num(entry?.traffic_ratio);
  const unequal = traffic !== undefined && !(traffic >= 1 / 1.5 && traffic <= 1.5);
  return {
    figure,
    vigil: `${ms(vm)} (n = ${v!.n})`,
    keepalived: `${ms(km)} (n = ${k!.n})`,
    now: ratioText(ratio, ci, 'no interval: too few samples'),
    goal,
    met: `${verdict(ratio, GOALS.linkCutRatio, ci)}${unequal ? ` (traffic ratio ${traffic}: not equal)` : ''}`,
  };
}

/** Row: the dual-answer window after a short link cut heals. */
function shortCutRow(f: Json | undefined, vigilCfg: string, kaCfg: string): GoalRow {
  const figure = `short link cut: dual-answer window after heal (vigil ${vigilCfg} vs keepalived \`${kaCfg}\`), median / max`;
  if (!f) return notMeasured(figure, '≤ one probe period, max', 'no failover results');
  if (!Array.isArray(f.short_cut)) return notMeasured(figure, '≤ one probe period, max', 'failover.json predates the short-cut fault');
  const row = (impl: string, cfg: string) => (f.short_cut as Json[]).find((r) => r.impl === impl && r.config === cfg && r.n > 0);
  const cell = (r: Json | undefined) => (r ? `${Math.round(r.dual_window_ms)} / ${ms(r.dual_window_max_ms)} (n = ${r.n})` : NOT);
  const v = row('vigil', vigilCfg);
  const k = row('keepalived', kaCfg);
  const period = num(v?.period_ms);
  const goal = `≤ one probe period${period !== undefined ? ` (${period} ms)` : ''}, max`;
  if (!v || period === undefined) return { figure, vigil: NOT, keepalived: cell(k), now: '', goal, met: `${NOT}: no vigil ${vigilCfg} short cuts in failover.json` };
  // Not a ratio: keepalived's window is usually 0 too; what else happened after the heal says more.
  const after = (r: Json) => `${r.owner_changed}/${r.n} changed owner, one owner answering alone ≤ ${ms(r.gap_after_heal_max_ms)} after the heal`;
  return {
    figure,
    vigil: cell(v),
    keepalived: cell(k),
    now: `vigil ${after(v)}${k ? `; keepalived ${after(k)}` : ''}`,
    goal,
    met: v.dual_window_max_ms <= period ? 'yes' : 'no',
  };
}

/** Row: CPU per pair at rest, one vigil configuration against one keepalived. */
function idleCpuRow(f: Json | undefined, i: Json | undefined, vigilCfg: string, kaCfg: string, figure: string, perFrame: boolean): GoalRow {
  const goal = `≤ ${GOALS.idleCpuRatio}×${perFrame ? ' at equal wire traffic' : ''}`;
  if (!i) return notMeasured(figure, goal, 'no idle results');
  const rest = (impl: string, cfg: string) => (i.runs as Json[] | undefined)?.find((r) => r.phase === 'rest' && r.impl === impl && r.config === cfg);
  const v = rest('vigil', vigilCfg);
  const k = rest('keepalived', kaCfg);
  const vc = num(v?.cpu_s_per_h);
  const kc = num(k?.cpu_s_per_h);
  const cpu = (c: number | undefined) => (c === undefined ? NOT : `${c.toFixed(1)} CPU s/h`);
  if (vc === undefined || kc === undefined || kc === 0) return { ...notMeasured(figure, goal, 'a configuration is missing from idle.json'), vigil: cpu(vc), keepalived: cpu(kc) };
  const ratio = vc / kc;
  const samples = (r: Json) => (Array.isArray(r.cpu_s_per_h_samples) && r.cpu_s_per_h_samples.length >= 2 ? r.cpu_s_per_h_samples as number[] : undefined);
  const ci = samples(v!) && samples(k!) ? ratioCi(samples(v!), samples(k!)) : undefined;
  const noCi = samples(v!) && samples(k!) ? 'no interval' : 'single window';
  // The goal is at equal wire traffic: where the two differ (the defaults),
  // the verdict is on CPU per frame on the wire, taken from failover.json.
  const pps = f?.probes_per_s as Record<string, number> | undefined;
  const traffic = pps && num(pps[`vigil ${vigilCfg}`]) !== undefined && num(pps[`keepalived ${kaCfg}`]) ? pps[`vigil ${vigilCfg}`]! / pps[`keepalived ${kaCfg}`]! : undefined;
  const unequal = traffic !== undefined && !(traffic >= 1 / 1.5 && traffic <= 1.5);
  let met: string;
  let now = ratioText(ratio, ci, noCi);
  if (perFrame && unequal) {
    const scaled = ratio / traffic!;
    const sci = ci ? [ci[0] / traffic!, ci[1] / traffic!] as [number, number] : undefined;
    now += `; per wire frame ${x2(scaled)} (traffic ${x2(traffic!)})`;
    met = `${verdict(scaled, GOALS.idleCpuRatio, sci)}, per wire frame`;
  } else {
    met = verdict(ratio, GOALS.idleCpuRatio, ci);
  }
  return { figure, vigil: cpu(vc), keepalived: cpu(kc), now, goal, met };
}

/** Row: peak RSS per node. */
function rssRow(i: Json | undefined): GoalRow {
  const figure = 'RSS per node (peak, VmHWM)';
  const goal = `≤ ${GOALS.rssMiB} MiB`;
  if (!i) return notMeasured(figure, goal, 'no idle results');
  const of = (impl: string) => (i.runs as Json[] | undefined ?? []).filter((r) => r.impl === impl).flatMap((r) => (Array.isArray(r.nodes) ? r.nodes as Json[] : [{ peak_rss_kb: r.peak_rss_kb }]))
    .map((n) => num(n.peak_rss_kb)).filter((x): x is number => x !== undefined && x > 0).map((kb) => kb / 1024);
  const range = (xs: number[]) => {
    if (xs.length === 0) return NOT;
    const lo = Math.round(Math.min(...xs));
    const hi = Math.round(Math.max(...xs));
    return lo === hi ? `${hi} MiB` : `${lo}–${hi} MiB`;
  };
  const v = of('vigil');
  if (v.length === 0) return { ...notMeasured(figure, goal, 'no vigil rows in idle.json'), keepalived: range(of('keepalived')) };
  const worst = Math.max(...v);
  return { figure, vigil: range(v), keepalived: range(of('keepalived')), now: '', goal, met: worst <= GOALS.rssMiB ? 'yes' : `no: ${Math.round(worst)} MiB at most` };
}

/** Row: ARP frames the kernel filter delivered to JavaScript per hour at rest. */
function deliveredRow(f: Json | undefined, i: Json | undefined): GoalRow {
  const figure = 'ARP frames delivered to JS per hour at rest, per node (master / backup)';
  if (!i) return { ...notMeasured(figure, '–', 'no idle results'), met: NOT };
  const rows = (i.runs as Json[] | undefined ?? []).filter((r) => r.phase === 'rest' && r.impl === 'vigil');
  const has = rows.filter((r) => 'arp_delivered_per_h_master' in r || 'arp_delivered_per_h_backup' in r);
  const n = (x: unknown) => (num(x) === undefined ? '?' : String(Math.round(x as number)));
  const vigil = has.length === 0 ? NOT : has.map((r) => `${r.config}: ${n(r.arp_delivered_per_h_master)} / ${n(r.arp_delivered_per_h_backup)}`).join('; ');
  // keepalived has no ARP socket; what wakes it is each VRRP advert, which
  // with unicast peers the backup alone receives: the pair's wire count.
  const pps = num((f?.probes_per_s as Record<string, number> | undefined)?.['keepalived advert_int 0.1']);
  const keepalived = `n/a (no ARP socket${pps !== undefined ? `; its backup reads every VRRP advert, ≈ ${Math.round(pps * 3600)}/h at \`advert_int 0.1\` by the wire count` : ''})`;
  return { figure, vigil, keepalived, now: '', goal: '– (new figure)', met: has.length === 0 ? `${NOT}: idle.json predates the counter` : '–' };
}

/** Every row, in the README's order. */
export function goalRows(failover: Json | undefined, idle: Json | undefined): GoalRow[] {
  return [
    linkCutRow(failover),
    shortCutRow(failover, 'aggressive', 'advert_int 0.1'),
    shortCutRow(failover, 'default', 'advert_int 1'),
    idleCpuRow(failover, idle, 'default', 'advert_int 1', 'idle CPU per pair, defaults (vigil default vs keepalived `advert_int 1`)', true),
    idleCpuRow(failover, idle, 'aggressive', 'advert_int 0.1', 'idle CPU per pair, ~10 frames/s (vigil aggressive vs keepalived `advert_int 0.1`)', false),
    rssRow(idle),
    deliveredRow(failover, idle),
  ];
}

/** The rows as a Markdown table. */
export function goalTable(rows: readonly GoalRow[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return ['| figure | vigil | keepalived | now | goal | met? |', '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${[r.figure, r.vigil, r.keepalived, r.now, r.goal, r.met].map(esc).join(' | ')} |`)].join('\n') + '\n';
}
