// Unit tests of the issue-18 goal table (bench/lib/goals.ts, printed by
// bench/lib/report.ts) on small synthetic result documents, and of the
// failover bench's after-heal measures (bench/lib/settle.ts): each check
// would fail if a ratio, a verdict or the "not measured" fallback broke.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { goalRows, goalTable, verdict, GOALS, type GoalRow } from '../../bench/lib/goals';
import { report, goalsSection, replaceGoals, GOALS_BEGIN, GOALS_END } from '../../bench/lib/report';
import { dualWindow, healStats } from '../../bench/lib/settle';
import { plannedCutMs } from '../../bench/lib/short-cut';
import { VIGIL_AGGRESSIVE } from '../../bench/lib/ha';

type Json = Record<string, any>;

const ctx = { date: '2026-12-06T15:00:00.000Z', node: 'v20', kernel: 'k', cpu: 'c', cpus: 2, hostname: 'h' };

/** A failover document: link-cut runs with the given samples, optional short-cut rows. */
function failoverDoc(vigilAggr: number[], ka01: number[], shortCut?: Json[]): Json {
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const run = (impl: string, config: string, xs: number[]) => ({
    impl, config, fault: 'link-cut', n: xs.length, median_ms: med(xs), p95_ms: null, max_ms: Math.max(...xs),
    gap_after_heal_ms: 0, gap_after_heal_max_ms: 0, takeover_samples_ms: xs,
  });
  return {
    bench: 'failover', context: ctx, mode: 'quick', faults_per_kind: vigilAggr.length, keepalived: 'Keepalived v2',
    runs: [run('vigil', 'aggressive', vigilAggr), run('keepalived', 'advert_int 0.1', ka01), run('vigil', 'default', [1000, 1100, 1200]), run('keepalived', 'advert_int 1', [3000, 3100, 3200])],
    // No median_ratio_ci95 on purpose: the table recomputes it from the samples.
    ratio: [{ fault: 'link-cut', vigil: 'aggressive', keepalived: 'advert_int 0.1', median_ratio: med(vigilAggr) / med(ka01), traffic_ratio: 1.05, equal_traffic: true }],
    probes_per_s: { 'vigil default': 2.2, 'vigil aggressive': 10.5, 'keepalived advert_int 1': 1.1, 'keepalived advert_int 0.1': 10 },
    svg: {},
    ...(shortCut ? { short_cut: shortCut } : {}),
  };
}

const shortCutRow = (impl: string, config: string, period: number, maxMs: number): Json => ({
  impl, config, fault: 'short-cut', n: 5, failures: 0, period_ms: period, cut_median_ms: 100, cut_max_ms: 150,
  dual_window_ms: maxMs / 2, dual_window_max_ms: maxMs, trials_with_dual: maxMs > 0 ? 2 : 0,
  gap_after_heal_ms: 10, gap_after_heal_max_ms: 20, took_over_during_cut: 0, owner_changed: 1,
});

/** An idle document; `extra` adds the newer fields (samples, delivered counters) to the rest rows. */
function idleDoc(cpu: Record<string, number>, rssKb: number, extra?: (impl: string, config: string) => Json): Json {
  const runs = Object.entries(cpu).map(([k, c]) => {
    const [impl, ...cfg] = k.split(' ');
    const config = cfg.join(' ');
    return {
      impl, config, phase: 'rest', minutes: 5, cpu_s_per_h: c, cpu_s_per_h_master: c / 2, cpu_s_per_h_backup: c / 2,
      peak_rss_kb: impl === 'vigil' ? rssKb : 13_000, spawns: 0, false_takeovers: 0, role_changes: 0,
      nodes: [{ host: 'a', role: 'master', peak_rss_kb: impl === 'vigil' ? rssKb : 13_000 }, { host: 'b', role: 'backup', peak_rss_kb: impl === 'vigil' ? rssKb - 1000 : 12_000 }],
      ...(extra ? extra(impl!, config) : {}),
    };
  });
  return { bench: 'idle', context: ctx, mode: 'quick', rest_minutes: 5, busy_minutes: 2, busy_loops: 1, runs };
}

const row = (rows: GoalRow[], start: string) => {
  const r = rows.find((x) => x.figure.startsWith(start));
  if (!r) throw new Error(`no row starting '${start}'`);
  return r;
};

t.test('verdict: at or below the goal is met; an interval straddling it is said', async (t) => {
  t.equal(verdict(0.5, 0.6), 'yes');
  t.equal(verdict(0.6, 0.6), 'yes', 'the goal itself is met (≤)');
  t.equal(verdict(0.61, 0.6), 'no');
  t.equal(verdict(0.5, 0.6, [0.4, 0.55]), 'yes');
  t.match(verdict(0.5, 0.6, [0.4, 0.7]), /^yes \(the interval reaches above/);
  t.match(verdict(0.7, 0.6, [0.55, 0.8]), /^no \(the interval reaches the goal/);
  t.equal(verdict(0.7, 0.6, [0.65, 0.8]), 'no');
});

t.test('link cut at equal traffic: the ratio of medians, its bootstrap interval, the verdict', async (t) => {
  const idle = idleDoc({ 'vigil default': 3, 'vigil aggressive': 6, 'keepalived advert_int 1': 1, 'keepalived advert_int 0.1': 5 }, 40_000);
  const fast = goalRows(failoverDoc([150, 160, 170, 180, 190], [300, 310, 320, 330, 340]), idle);
  const r = row(fast, 'link cut');
  t.equal(r.vigil, '170 ms (n = 5)');
  t.equal(r.keepalived, '320 ms (n = 5)');
  t.match(r.now, /^0\.53× \(95 % interval \d\.\d\d–\d\.\d\d\)$/, 'ratio 170/320 with an interval recomputed from the samples');
  t.equal(r.met, 'yes');
  t.equal(r.goal, `≤ ${GOALS.linkCutRatio}×`);
  const slow = row(goalRows(failoverDoc([380, 390, 400, 410, 420], [300, 310, 320, 330, 340]), idle), 'link cut');
  t.match(slow.now, /^1\.25×/);
  t.equal(slow.met, 'no');
});

t.test('short link cut: the max dual-answer window against one probe period', async (t) => {
  const sc = [shortCutRow('vigil', 'aggressive', 200, 150), shortCutRow('keepalived', 'advert_int 0.1', 100, 0),
    shortCutRow('vigil', 'default', 1000, 1200), shortCutRow('keepalived', 'advert_int 1', 1000, 0)];
  const rows = goalRows(failoverDoc([1, 2, 3], [1, 2, 3], sc), undefined);
  const aggr = row(rows, 'short link cut: dual-answer window after heal (vigil aggressive');
  t.equal(aggr.vigil, '75 / 150 ms (n = 5)');
  t.equal(aggr.keepalived, '0 / 0 ms (n = 5)');
  t.equal(aggr.goal, '≤ one probe period (200 ms), max');
  t.equal(aggr.met, 'yes', '150 ms ≤ 200 ms');
  t.equal(row(rows, 'short link cut: dual-answer window after heal (vigil default').met, 'no', '1200 ms > 1000 ms');
  const old = goalRows(failoverDoc([1, 2, 3], [1, 2, 3]), undefined);
  t.match(row(old, 'short link cut').met, /^not measured: failover.json predates the short-cut fault/, 'an older file: not measured, no exception');
});

t.test('idle CPU: ratio, per wire frame where traffic differs, interval from sub-window samples', async (t) => {
  const f = failoverDoc([1, 2, 3], [1, 2, 3]);
  const single = goalRows(f, idleDoc({ 'vigil default': 3.3, 'vigil aggressive': 7, 'keepalived advert_int 1': 1, 'keepalived advert_int 0.1': 5 }, 40_000));
  const d = row(single, 'idle CPU per pair, defaults');
  t.equal(d.vigil, '3.3 CPU s/h');
  t.match(d.now, /^3\.30× \(single window\); per wire frame 1\.65× \(traffic 2\.00×\)$/);
  t.equal(d.met, 'no, per wire frame', '3.3× the CPU at 2× the traffic is 1.65× per frame > 1.5×');
  const a = row(single, 'idle CPU per pair, ~10 frames/s');
  t.match(a.now, /^1\.40× \(single window\)$/);
  t.equal(a.met, 'yes', '7 / 5 = 1.4 ≤ 1.5 (equal traffic: no scaling)');
  const sampled = goalRows(f, idleDoc({ 'vigil default': 2, 'vigil aggressive': 10, 'keepalived advert_int 1': 1, 'keepalived advert_int 0.1': 5 }, 40_000,
    (impl, config) => ({ cpu_s_per_h_samples: impl === 'vigil' ? (config === 'default' ? [2, 2.1, 1.9, 2] : [10, 11, 9, 10]) : (config === 'advert_int 1' ? [1, 1.1, 0.9, 1] : [5, 5.1, 4.9, 5]) })));
  const s = row(sampled, 'idle CPU per pair, ~10 frames/s');
  t.match(s.now, /^2\.00× \(95 % interval 1\.\d\d–2\.\d\d\)$/);
  t.equal(s.met, 'no');
  t.equal(row(sampled, 'idle CPU per pair, defaults').met, 'yes, per wire frame', '2× the CPU at 2× the traffic');
});

t.test('RSS and delivered frames; older idle files say not measured', async (t) => {
  const f = failoverDoc([1, 2, 3], [1, 2, 3]);
  const cpu = { 'vigil default': 3, 'vigil aggressive': 6, 'keepalived advert_int 1': 1, 'keepalived advert_int 0.1': 5 };
  const small = goalRows(f, idleDoc(cpu, 40 * 1024));
  t.equal(row(small, 'RSS').vigil, '39–40 MiB');
  t.equal(row(small, 'RSS').met, 'yes');
  const big = goalRows(f, idleDoc(cpu, 60 * 1024));
  t.equal(row(big, 'RSS').met, 'no: 60 MiB at most');
  t.match(row(big, 'ARP frames').met, /^not measured/, 'no counters in an older idle.json');
  t.match(row(big, 'ARP frames').keepalived, /≈ 36000\/h/, 'keepalived: its backup reads each advert (10/s on the wire)');
  const withCounters = goalRows(f, idleDoc(cpu, 40 * 1024, (impl) => (impl === 'vigil' ? { arp_delivered_per_h_master: 0, arp_delivered_per_h_backup: 3600.4 } : {})));
  t.equal(row(withCounters, 'ARP frames').vigil, 'default: 0 / 3600; aggressive: 0 / 3600');
  t.equal(row(withCounters, 'ARP frames').met, '–');
  const none = goalRows(undefined, undefined);
  t.equal(none.length, 7);
  for (const r of none) t.match(r.met, /^not measured/, `${r.figure}: not measured without results`);
  t.match(goalTable(none), /^\| figure \| vigil \| keepalived \| now \| goal \| met\? \|\n\|---/);
});

t.test('report and the README markers, from a results directory of older files', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-report-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'failover.json'), JSON.stringify(failoverDoc([380, 390, 400], [300, 310, 320])));
  fs.writeFileSync(path.join(dir, 'idle.json'), JSON.stringify(idleDoc({ 'vigil default': 3, 'vigil aggressive': 6, 'keepalived advert_int 1': 1, 'keepalived advert_int 0.1': 5 }, 68 * 1024)));
  const full = report('latest', dir);
  t.match(full, /Short link cut: not measured/);
  t.match(full, /\| link cut, equal wire traffic .* \| no \|/);
  const section = goalsSection('latest', dir);
  t.match(section, /^Against the issue's goals \(failover: quick run of 2026-12-06/);
  const readme = `# x\n\nbefore\n${GOALS_BEGIN}\nold table\n${GOALS_END}\n\nafter\n`;
  const out = replaceGoals(readme, section);
  t.ok(out.startsWith(`# x\n\nbefore\n${GOALS_BEGIN}\nAgainst`), 'the text before the markers is kept');
  t.ok(out.endsWith(`${GOALS_END}\n\nafter\n`), 'the text after them too');
  t.notMatch(out, /old table/);
  t.equal(replaceGoals(out, section), out, 'idempotent');
  t.throws(() => replaceGoals('no markers', section), /goal markers are missing/);
});

t.test('after a heal: the dual-answer window and the settle gap', async (t) => {
  const heal = 1_000_000_000n;
  const ms = (x: number) => heal + BigInt(Math.round(x * 1e6));
  // Probe 0 answered before the heal by A; after it, probes 1–3 answered by A and B, then A alone.
  const answers = [
    { seq: 0, mac: 'A', atNs: ms(-5) },
    { seq: 1, mac: 'A', atNs: ms(2) }, { seq: 1, mac: 'B', atNs: ms(3) },
    { seq: 2, mac: 'B', atNs: ms(12) }, { seq: 2, mac: 'A', atNs: ms(12.5) },
    { seq: 3, mac: 'A', atNs: ms(22) }, { seq: 3, mac: 'B', atNs: ms(24) },
    ...Array.from({ length: 10 }, (_, i) => ({ seq: 4 + i, mac: 'A', atNs: ms(32 + 10 * i) })),
  ];
  t.same(dualWindow(answers, heal), { ms: 24, probes: 3 }, 'until the last answer to the last probe two MACs answered');
  const h = healStats(answers, heal);
  t.equal(h.mac, 'A');
  t.equal(h.dual, 3);
  t.equal(h.gapMs, 32, 'A alone from probe 4 on');
  const clean = answers.filter((a) => a.mac === 'A');
  t.same(dualWindow(clean, heal), { ms: 0, probes: 0 }, 'one MAC: no window');
  t.equal(healStats(clean, heal).gapMs, 0);
  // A probe answered before the heal and again after it is not a dual answer after the heal.
  t.same(dualWindow([{ seq: 0, mac: 'A', atNs: ms(-1) }, { seq: 0, mac: 'B', atNs: ms(1) }], heal), { ms: 0, probes: 0 });
});

t.test('a short cut is shorter than every link-cut takeover seen so far', async (t) => {
  t.equal(plannedCutMs(VIGIL_AGGRESSIVE, [400, 300, 350], () => 0), 30, '0.1 × the shortest');
  t.ok(plannedCutMs(VIGIL_AGGRESSIVE, [400, 300, 350], () => 0.999999) < 300, 'below the shortest takeover');
  t.equal(plannedCutMs(VIGIL_AGGRESSIVE, [], () => 1), VIGIL_AGGRESSIVE.cycleMs, 'before any link cut: the cycle');
});
