/**
 * Layer: bench entry. `bench/failover` (root): client-observed failover, vigil against
 * keepalived, in one lab and with one client.
 *
 * Lab: hosts a and b run the implementation under test, host `client`
 * probes the HA IP every 10 ms over its own ARP socket and records which
 * MAC answered, with the kernel's receive time. For each configuration
 * (vigil default and aggressive, keepalived advert_int 1 and 0.1, VRRPv3
 * unicast) the pair is started, the wire traffic at rest is counted on the
 * bridge (client quiet), then faults are made at a uniformly random phase of
 * the configuration's cycle, the three kinds taking turns:
 *
 * - link-cut: the master's link is cut (its bridge port down: no carrier);
 *   healed by bringing the port back.
 * - host-gone: the master host vanishes: its veth pair is deleted (the
 *   addresses go with its eth0) and its daemon is killed with SIGKILL;
 *   healed by recreating the link (same MAC and address) and starting the
 *   daemon again with a fresh /run (no stale pid files), as a rebooted
 *   host would.
 * - graceful: SIGTERM to the master's daemon, which is what `vigil stop`
 *   sends (keepalived answers it with its priority-0 advert); healed by
 *   starting the daemon again.
 * - short-cut: the master's link is cut for less than the takeover window
 *   and healed (lib/short-cut.ts); measured: the dual-answer window after
 *   the heal (two MACs answering the client). Not a takeover: its rows are
 *   in `short_cut`, not in `runs` and `ratio`.
 *
 * With --ipv6 the same over IPv6 (the issue-20 row): IPv6 turned on in the
 * lab hosts, a unique-local HA IP (fd00::/8, /64), vigil probing by NDP and
 * keepalived's VRRPv3 carrying an IPv6 virtual_ipaddress with IPv6 unicast
 * peers; the client sends one DAD-form NS per period and counts NAs for the
 * HA IP (see lib/client-proc.ts). Only link-cut and graceful faults: a
 * recreated link (host-gone) would come back without the host's own IPv6
 * address, which keepalived's unicast needs. Output failover-ipv6.json.
 *
 * Measured per fault: takeover_ms = fault → the first ARP reply to the
 * client from the other node, the fault instant being the kernel's
 * notification that the master's bridge port went down (a netlink watcher in
 * the bridge namespace) or the SIGTERM; gap_after_heal_ms (see bench/README.md).
 * Output: bench/results/failover.json (--full: failover-full.json, so a long
 * run and a quick one never overwrite each other) and one SVG timeline per
 * configuration.
 */
import * as fs from 'node:fs';
import { createLab, type Lab, type LabHost } from '../test/support/lab';
import { scratchDir } from '../test/support/vigil';
import { startClient, nowNs, nsToMs, type ArpClient } from './lib/client';
import {
  ALL_CONFIGS, KNOWN_CONFIGS, findKeepalived, keepalivedVersion, label, slug, startPair,
  type HaConfig, type HaNode, type RoleEvent,
} from './lib/ha';
import { measureWire, type WireRate } from './lib/wire';
import { watchBridge, type NsWatch } from './lib/nswatch';
import { median, mean, reportedPercentile, percentileRule, bootstrapMedianRatioCi, excludesOne } from './lib/stats';
import { writeResult, resultsDir } from './lib/results';
import { useUnitEnvironment, vigilEnvironment } from './lib/unit-env';

import { parseBenchArgs, numberOption, requireRoot, progress, sleep, pollUntil, r1 } from './lib/common';
import { writeTimelineSvg, type Timeline } from './svg';
import { healStats, settledAfterHeal, waitStable, PROBE_PERIOD_MS, SETTLE_TIMEOUT_MS, STABLE_MS } from './lib/settle';
import { describeShortCut, plannedCutMs, runShortCut, summarizeShortCut, type ShortCutSummary, type ShortCutTrial } from './lib/short-cut';

export { healStats };

/** The fault kinds, in the order they take turns. */
export const FAULTS = ['link-cut', 'host-gone', 'graceful'] as const;
/** One fault kind. */
export type FaultKind = (typeof FAULTS)[number];

/** Give up on a takeover (or a settle) after this. */
const TAKEOVER_TIMEOUT_MS = 30_000;

/** One fault and what the client saw. */
export interface Trial {
  fault: FaultKind;
  ok: boolean;
  error?: string;
  /** Host that was master at the fault, and the one expected to take over. */
  from: string;
  to: string;
  /** Time the fault command took (ip link …), from issuing it to its return. */
  fault_cmd_ms: number;
  /** Issuing the command → the kernel's link notification (the fault instant); absent: no notification seen, the return was used. */
  fault_event_ms?: number | undefined;
  takeover_ms?: number;
  gap_after_heal_ms?: number;
  /** Probes after the heal answered by two MACs / by none, before the settled stretch. */
  heal_dual_probes?: number;
  heal_silent_probes?: number;
  /** Host that holds the HA IP once settled. */
  final_owner?: string;
}

/** One row of `runs` in failover.json. */
export interface RunSummary {
  impl: string;
  config: string;
  fault: FaultKind;
  n: number;
  median_ms: number;
  /** null unless n >= 20 (below that the nearest-rank p95 is the max: see max_ms). */
  p95_ms: number | null;
  max_ms: number;
  gap_after_heal_ms: number;
  min_ms: number;
  mean_ms: number;
  gap_after_heal_p95_ms: number | null;
  gap_after_heal_max_ms: number;
  failures: number;
  takeover_samples_ms: number[];
  gap_after_heal_samples_ms: number[];
}

/** Options of {@link runFailover}. */
export interface FailoverOptions {
  full: boolean;
  /** Faults of each kind per configuration (default 10 quick, 50 full). */
  faults?: number;
  /** Seconds of wire counting at rest per configuration (default 10 quick, 30 full). */
  wireSeconds?: number;
  configs?: HaConfig[];
  /** IPv6 instead of IPv4 (see the file comment). */
  ipv6?: boolean;
  /** Leave out the short-cut fault (default: one per round, after the other kinds). */
  noShortCut?: boolean;
  /**
   * Result name (bench/results/<out>.json), taken as given; default
   * 'failover', or 'failover-partial' for a subset of configurations, with
   * '-full' appended for a full run.
   */
  out?: string;
}

const log = (msg: string) => progress('failover', msg);
const uniform = (maxMs: number) => Math.random() * maxMs;

/** Bring a pair back to a clean, stable state after a failed trial (restart both). */
async function recoverPair(nodes: HaNode[]): Promise<void> {
  for (const n of nodes) {
    try { await n.host.restoreLink(); } catch { /* it was up */ }
  }
  await Promise.all(nodes.map((n) => n.stop()));
  for (const n of nodes) await removeHaIp(n.host, n.spec.haIp);
  for (const n of nodes) n.start();
}

/** Remove the HA IP from a host if a daemon left it behind. */
async function removeHaIp(host: LabHost, ip: string): Promise<void> {
  const v6 = ip.includes(':');
  const r = await host.exec(['ip', v6 ? '-6' : '-4', '-o', 'addr', 'show', 'dev', host.ifname]);
  if (r.stdout.includes(` ${ip}/`)) await host.exec(['ip', 'addr', 'del', `${ip}/${v6 ? 64 : 24}`, 'dev', host.ifname]);
}

/** The lab's IPv6 prefix (unique-local, from the run prefix), RFC 5952 text. */
const ulaPrefix = (lab: Lab) => `fd${lab.prefix.slice(2, 4)}:${parseInt(lab.prefix.slice(4, 8), 16).toString(16)}::`;

/** Turn IPv6 on in the lab hosts (the lab keeps it off) and give each its own ULA. */
async function enableIpv6(lab: Lab): Promise<void> {
  await Promise.all(lab.hosts.map(async (h, i) => {
    const r = await h.exec(['sh', '-c', 'for c in all default eth0; do echo 0 > /proc/sys/net/ipv6/conf/$c/router_solicitations; done; '
      + 'for c in all default eth0; do echo 0 > /proc/sys/net/ipv6/conf/$c/disable_ipv6; done']);
    if (r.code !== 0) throw new Error(`enable IPv6 in ${h.ns}: ${r.stderr}`);
    const a = await h.exec(['ip', '-6', 'addr', 'add', `${ulaPrefix(lab)}${(10 + i).toString(16)}/64`, 'dev', 'eth0', 'nodad']);
    if (a.code !== 0) throw new Error(`IPv6 address in ${h.ns}: ${a.stderr}`);
  }));
}

interface TrialCapture { trial: Trial; timeline?: Timeline }

/** One fault on the current master, its takeover, the heal and the settle. */
async function runTrial(cfg: HaConfig, nodes: HaNode[], client: ArpClient, bridge: NsWatch, kind: FaultKind, capture: boolean): Promise<TrialCapture> {
  const master = await waitStable(nodes, client, SETTLE_TIMEOUT_MS);
  if (!master) {
    return { trial: { fault: kind, ok: false, error: 'no stable master before the fault', from: '?', to: '?', fault_cmd_ms: 0 } };
  }
  const other = nodes.find((n) => n !== master)!;
  // A uniformly random phase of the configuration's cycle (and so of the client's 10 ms cycle).
  await sleep(uniform(cfg.cycleMs));
  const trial: Trial = { fault: kind, ok: false, from: master.host.name, to: other.host.name, fault_cmd_ms: 0 };
  const issued = nowNs();
  let faultNs: bigint;
  let killed: Promise<void> = Promise.resolve();
  if (kind === 'graceful') {
    faultNs = nowNs();
    master.term();
  } else {
    if (kind === 'link-cut') await master.host.cutLink();
    else await master.host.deleteLink();
    const returned = nowNs();
    if (kind === 'host-gone') killed = master.kill();
    trial.fault_cmd_ms = r1(nsToMs(returned - issued));
    // The fault instant: the kernel's notification that the master's bridge
    // port went down (link-cut) or away (host-gone, it goes down first), as
    // the watcher in the bridge namespace received it. `ip link del` returns
    // 15-30 ms after the port is gone (RCU grace periods), so the command's
    // return would flatter every takeover after a host-gone.
    const ev = await pollUntil(() => bridge.links.find((e) => e.atNs >= issued && e.name !== 'br0' && (e.removed || !e.up)), 1000, 2);
    faultNs = ev ? ev.atNs : returned;
    trial.fault_event_ms = ev ? r1(nsToMs(ev.atNs - issued)) : undefined;
  }
  const first = await pollUntil(() => client.firstFrom(other.host.mac, faultNs), TAKEOVER_TIMEOUT_MS, 5);
  if (!first) {
    trial.error = `no answer from ${other.host.name} within ${TAKEOVER_TIMEOUT_MS} ms`;
  } else {
    trial.takeover_ms = r1(nsToMs(first.atNs - faultNs));
  }
  // Let the new master finish taking over (and the old daemon exit) before healing.
  await pollUntil(() => other.role === 'master', 5000, 10);
  if (kind !== 'link-cut') {
    await killed;
    const gone = await Promise.race([master.exited.then(() => true), sleep(10_000).then(() => false)]);
    if (!gone) await master.kill();
  }
  // Heal at a random phase of the daemons' upkeep cycle (vigil's master check, keepalived's advert).
  await sleep(100 + uniform(cfg.upkeepMs));
  let healNs: bigint;
  if (kind === 'link-cut') {
    await master.host.restoreLink();
    healNs = nowNs();
  } else if (kind === 'host-gone') {
    await master.host.restoreLink();
    healNs = nowNs();
    master.clearRuntimeFiles();
    master.start();
  } else {
    master.start();
    healNs = nowNs();
  }
  const settled = await settledAfterHeal(nodes, client, healNs);
  if (!settled) {
    const h = healStats(client.answers, healNs);
    trial.error = `${trial.error ? `${trial.error}; ` : ''}not settled within ${SETTLE_TIMEOUT_MS} ms of the heal `
      + `(roles ${nodes.map((n) => `${n.host.name}=${n.role}`).join(' ')}; client: last stretch ${r1(h.stretchMs)} ms from ${h.mac ?? 'none'}, dual ${h.dual}, silent ${h.silent})`;
    if (process.env.BENCH_DEBUG) for (const n of nodes) log(`${n.host.name} log tail:\n${n.tail.slice(-15).join('\n')}`);
    return { trial };
  }
  trial.gap_after_heal_ms = r1(settled.h.gapMs);
  trial.heal_dual_probes = settled.h.dual;
  trial.heal_silent_probes = settled.h.silent;
  trial.final_owner = settled.m.host.name;
  trial.ok = trial.takeover_ms !== undefined;
  let timeline: Timeline | undefined;
  if (capture && trial.ok) {
    // A little of the settled state after the heal, for the picture.
    await sleep(800);
    const endNs = nowNs();
    const startNs = faultNs - 1_000_000_000n;
    const inWin = (e: { atNs: bigint }) => e.atNs >= startNs && e.atNs <= endNs;
    timeline = {
      title: `${label(cfg)}: ${kind} of ${master.host.name}, takeover by ${other.host.name}`,
      startNs, endNs, faultNs, healNs,
      faultLabel: kind, healLabel: kind === 'link-cut' ? 'link restored' : kind === 'host-gone' ? 'host back, daemon started' : 'daemon restarted',
      takeoverMs: trial.takeover_ms!, gapAfterHealMs: trial.gap_after_heal_ms,
      periodMs: PROBE_PERIOD_MS,
      nodes: nodes.map((n) => ({
        name: n.host.name, mac: n.host.mac,
        roles: roleSlice(n.events, startNs, endNs),
        answers: client.answers.filter((a) => a.mac === n.host.mac && inWin(a)).map((a) => a.atNs),
      })),
    };
  }
  return { trial, ...(timeline ? { timeline } : {}) };
}

/** Role events within a window, with the role held at its start first. */
function roleSlice(events: readonly RoleEvent[], fromNs: bigint, toNs: bigint): RoleEvent[] {
  let initial: RoleEvent | undefined;
  const out: RoleEvent[] = [];
  for (const e of events) {
    if (e.atNs < fromNs) initial = e;
    else if (e.atNs <= toNs) out.push(e);
  }
  return initial ? [{ ...initial, atNs: fromNs }, ...out] : out;
}

/** Summarize the trials of one configuration and fault kind. */
function summarize(cfg: HaConfig, kind: FaultKind, trials: Trial[]): RunSummary {
  const ok = trials.filter((t) => t.fault === kind && t.ok);
  const take = ok.map((t) => t.takeover_ms!);
  const gaps = ok.map((t) => t.gap_after_heal_ms!).filter((x) => Number.isFinite(x));
  const p95 = (xs: number[]) => { const v = reportedPercentile(xs, 95); return v === null ? null : r1(v); };
  return {
    impl: cfg.impl, config: cfg.config, fault: kind, n: ok.length,
    median_ms: r1(median(take)), p95_ms: p95(take), max_ms: r1(Math.max(...take)),
    gap_after_heal_ms: r1(median(gaps)),
    min_ms: r1(Math.min(...take)), mean_ms: r1(mean(take)),
    gap_after_heal_p95_ms: p95(gaps), gap_after_heal_max_ms: r1(Math.max(...gaps)),
    failures: trials.filter((t) => t.fault === kind && !t.ok).length,
    takeover_samples_ms: take, gap_after_heal_samples_ms: gaps,
  };
}

/** Everything one configuration produced. */
interface ConfigResult { cfg: HaConfig; wire: WireRate; trials: Trial[]; shortCuts: ShortCutTrial[]; timeline?: Timeline; probePeriodMs: number }

async function runConfig(lab: Lab, bridge: NsWatch, dir: string, cfg: HaConfig, faults: number, wireSeconds: number, ipv6 = false, shortCut = true): Promise<ConfigResult> {
  const a = lab.host('a');
  const b = lab.host('b');
  const haIp = ipv6 ? `${ulaPrefix(lab)}100` : lab.freeIp(0);
  const hostIdx = (h: LabHost) => lab.hosts.indexOf(h);
  const nodes = startPair(cfg, a, b, ipv6
    ? { haIp, dir, prefixLen: 64, unicastOf: (h) => `${ulaPrefix(lab)}${(10 + hostIdx(h)).toString(16)}` }
    : { haIp, dir });
  const kinds: readonly FaultKind[] = ipv6 ? ['link-cut', 'graceful'] : FAULTS;
  let client: ArpClient | undefined;
  try {
    log(`${label(cfg)}: started on a and b, waiting for one master`);
    const m = await waitStable(nodes, undefined, 60_000);
    if (!m) throw new Error(`${label(cfg)}: no single master within 60 s (a: ${nodes[0]!.role}, b: ${nodes[1]!.role})\n${nodes.map((n) => n.tail.slice(-10).join('\n')).join('\n')}`);
    // At rest means after the start-up announcements too (vigil: announce
    // count 3 at 1 s; keepalived: a second gratuitous ARP burst 5 s after
    // becoming master), so count from 7 s after the last role change on.
    const lastChange = nodes.flatMap((n) => n.events).reduce((x, e) => (e.atNs > x ? e.atNs : x), 0n);
    await sleep(7000 - nsToMs(nowNs() - lastChange));
    const wire = await measureWire(lab, wireSeconds);
    log(`${label(cfg)}: wire at rest ${wire.frames_per_s} frames/s (${JSON.stringify(wire)})`);
    client = await startClient(lab.host('client'), haIp, PROBE_PERIOD_MS);
    const trials: Trial[] = [];
    const shortCuts: ShortCutTrial[] = [];
    let timeline: Timeline | undefined;
    for (let i = 0; i < faults; i++) {
      for (const kind of kinds) {
        // The timeline shows a link cut, not the very first (the client has just started).
        const capture = !timeline && kind === 'link-cut' && (i > 0 || faults === 1);
        const { trial, timeline: tl } = await runTrial(cfg, nodes, client, bridge, kind, capture);
        trials.push(trial);
        if (tl) timeline = tl;
        log(`${label(cfg)} #${i + 1} ${kind}: ${trial.ok ? `takeover ${trial.takeover_ms} ms, settled ${trial.gap_after_heal_ms} ms after the heal (dual ${trial.heal_dual_probes}, silent ${trial.heal_silent_probes})` : `FAILED: ${trial.error}`}`);
        if (!trial.ok) {
          log(`${label(cfg)}: recovering the pair`);
          await recoverPair(nodes);
        }
      }
      if (shortCut) {
        const linkCuts = trials.filter((x) => x.fault === 'link-cut' && x.ok).map((x) => x.takeover_ms!);
        const sc = await runShortCut(cfg, nodes, client, bridge, plannedCutMs(cfg, linkCuts));
        shortCuts.push(sc);
        log(describeShortCut(cfg, i + 1, sc));
        if (!sc.ok) {
          log(`${label(cfg)}: recovering the pair`);
          await recoverPair(nodes);
        }
      }
    }
    return { cfg, wire, trials, shortCuts, ...(timeline ? { timeline } : {}), probePeriodMs: client.periodMs() };
  } finally {
    await client?.stop();
    await Promise.all(nodes.map((n) => n.stop()));
    for (const n of nodes) {
      try { await n.host.restoreLink(); } catch { /* already up */ }
      await removeHaIp(n.host, haIp);
    }
  }
}

/** The failover.json document. */
export interface FailoverResult {
  runs: RunSummary[];
  ratio: Array<{
    fault: FaultKind; vigil: string; keepalived: string; median_ratio: number;
    /** Bootstrap 95 % interval of median_ratio (null: too few samples on a side). */
    median_ratio_ci95: [number, number] | null;
    /** The interval lies wholly above or below 1: the two medians are distinguishable. */
    ci95_excludes_1: boolean | null;
    traffic_ratio: number; equal_traffic: boolean;
  }>;
  probes_per_s: Record<string, number>;
  /** The short-cut fault per configuration (empty with --no-short-cut). */
  short_cut: ShortCutSummary[];
  [k: string]: unknown;
}

/** Run the whole failover bench and write its results. */
export async function runFailover(opts: FailoverOptions): Promise<FailoverResult> {
  const faults = opts.faults ?? (opts.full ? 50 : 10);
  const wireSeconds = opts.wireSeconds ?? (opts.full ? 30 : 10);
  let configs = opts.configs ?? ALL_CONFIGS;
  const kaVersion = keepalivedVersion();
  if (!findKeepalived()) {
    log('keepalived is not installed (apt-get install keepalived): running vigil only');
    configs = configs.filter((c) => c.impl !== 'keepalived');
  }
  const lab = await createLab({ hosts: ['a', 'b', 'client'] });
  const dir = scratchDir('bench-failover');
  const results: ConfigResult[] = [];
  let bridge: NsWatch | undefined;
  try {
    bridge = await watchBridge(lab);
    if (opts.ipv6) await enableIpv6(lab);
    log(`lab ${lab.prefix} (${opts.ipv6 ? `${ulaPrefix(lab)}/64, IPv6` : lab.subnet}); ${faults} faults of each kind per configuration`);
    for (const cfg of configs) results.push(await runConfig(lab, bridge, dir, cfg, faults, wireSeconds, opts.ipv6 === true, opts.noShortCut !== true));
  } finally {
    await bridge?.stop();
    await lab.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const runs: RunSummary[] = [];
  for (const r of results) for (const k of FAULTS) if (!opts.ipv6 || k !== 'host-gone') runs.push(summarize(r.cfg, k, r.trials));
  const probes_per_s: Record<string, number> = {};
  for (const r of results) probes_per_s[label(r.cfg)] = r.wire.frames_per_s;
  const ratio: FailoverResult['ratio'] = [];
  const vigils = results.filter((r) => r.cfg.impl === 'vigil');
  const kas = results.filter((r) => r.cfg.impl === 'keepalived');
  for (const k of FAULTS) {
    if (opts.ipv6 && k === 'host-gone') continue;
    for (const v of vigils) {
      for (const ka of kas) {
        const vr = runs.find((x) => x.impl === 'vigil' && x.config === v.cfg.config && x.fault === k)!;
        const kr = runs.find((x) => x.impl === 'keepalived' && x.config === ka.cfg.config && x.fault === k)!;
        const traffic = v.wire.frames_per_s / ka.wire.frames_per_s;
        // With 10 faults a side a median ratio of 1.2 can be noise: the
        // interval says whether it is (seeded, so recomputing gives the same).
        const ci = bootstrapMedianRatioCi(vr.takeover_samples_ms, kr.takeover_samples_ms);
        const ci95: [number, number] | null = ci ? [Math.round(ci[0] * 1000) / 1000, Math.round(ci[1] * 1000) / 1000] : null;
        ratio.push({
          fault: k, vigil: v.cfg.config, keepalived: ka.cfg.config,
          median_ratio: Math.round((vr.median_ms / kr.median_ms) * 1000) / 1000,
          median_ratio_ci95: ci95,
          ci95_excludes_1: excludesOne(ci95),
          traffic_ratio: Math.round(traffic * 100) / 100,
          // Equal traffic: within a factor 1.5 either way.
          equal_traffic: traffic >= 1 / 1.5 && traffic <= 1.5,
        });
      }
    }
  }
  const svgs: Record<string, string> = {};
  // A full run gets files of its own: it must not overwrite the quick figures (nor they it).
  const outName = opts.out ?? `${opts.configs ? 'failover-partial' : 'failover'}${opts.ipv6 ? '-ipv6' : ''}${opts.full ? '-full' : ''}`;
  for (const r of results) {
    if (!r.timeline) continue;
    const file = `${outName}-${slug(r.cfg)}.svg`;
    writeTimelineSvg(`${resultsDir()}/${file}`, r.timeline);
    svgs[label(r.cfg)] = file;
  }
  const short_cut = results.filter((r) => r.shortCuts.length > 0).map((r) => summarizeShortCut(r.cfg, r.shortCuts));
  const doc: FailoverResult = {
    runs, ratio, probes_per_s, short_cut,
    mode: opts.full ? 'full' : 'quick',
    family: opts.ipv6 ? 'ipv6' : 'ipv4',
    faults_per_kind: faults,
    keepalived: kaVersion ?? 'not installed',
    vigil_environment: vigilEnvironment(),
    probe_period_ms: Object.fromEntries(results.map((r) => [label(r.cfg), r1(r.probePeriodMs)])),
    wire_at_rest: Object.fromEntries(results.map((r) => [label(r.cfg), r.wire])),
    svg: svgs,
    trials: Object.fromEntries(results.map((r) => [label(r.cfg), r.trials])),
    short_cut_trials: Object.fromEntries(results.map((r) => [label(r.cfg), r.shortCuts])),
    definitions: {
      takeover_ms: "fault instant (link-cut, host-gone: the kernel's notification that the master's bridge port went down, received in the bridge namespace; graceful: SIGTERM sent) to the first ARP reply to the client from the other node (kernel receive time)",
      gap_after_heal_ms: `heal instant to the first probe of the final run of probes each answered by exactly one MAC, the same one, lasting >= ${STABLE_MS} ms with one node master and the other backup; 0 when that run starts with the first probe after the heal`,
      median_ratio: 'vigil median takeover / keepalived median takeover (below 1: vigil is faster)',
      median_ratio_ci95: 'percentile-bootstrap 95 % confidence interval of median_ratio: 10000 resamples of each side\'s takeover samples with replacement (seeded PRNG, reproducible); ci95_excludes_1 true when the interval lies wholly above or below 1',
      p95_ms: percentileRule(95),
      traffic_ratio: 'vigil probes_per_s / keepalived probes_per_s; equal_traffic when within a factor 1.5',
      probes_per_s: 'frames per second the pair puts on the bridge at rest: ARP requests + ARP replies + VRRP adverts (client quiet)',
      short_cut: 'the master\'s link cut for uniform [0.1, 1) x the shortest link-cut takeover of the configuration so far in the run (before any: its cycle), then healed; cut_ms from the kernel\'s port-down notification to the heal command\'s return',
      dual_window_ms: 'short cut: heal to the last answer to the last client probe that two MACs answered (0: no probe after the heal had two answers); period_ms is the configuration\'s probe period (vigil check_interval, keepalived advert_int)',
      took_over_during_cut: 'short cut: trials in which the other node answered the client before the heal (the cut was not shorter than this takeover)',
    },
  };
  const file = writeResult(outName, doc);
  log(`wrote ${file}`);
  return doc;
}

/** Print the headline table. */
export function printFailover(doc: FailoverResult): void {
  // p95 shows only where n >= 20; below that '–' (it would be the max, printed beside it).
  const out: string[] = ['', 'failover (client-observed takeover, ms; p95 only where n >= 20)', 'configuration              fault       n   median    p95     max   gap_after_heal'];
  for (const r of doc.runs) {
    out.push(`${`${r.impl} ${r.config}`.padEnd(26)} ${r.fault.padEnd(10)} ${String(r.n).padStart(3)} ${String(r.median_ms).padStart(8)} ${String(r.p95_ms ?? '–').padStart(6)} ${String(r.max_ms).padStart(7)} ${String(r.gap_after_heal_ms).padStart(8)}${r.failures ? `  (${r.failures} failed)` : ''}`);
  }
  for (const r of doc.short_cut ?? []) {
    out.push(`${`${r.impl} ${r.config}`.padEnd(26)} short-cut  ${String(r.n).padStart(3)}  dual-answer window after the heal median ${r.dual_window_ms} ms, max ${r.dual_window_max_ms} ms (cuts ${r.cut_median_ms} ms median; took over during the cut ${r.took_over_during_cut}, owner changed ${r.owner_changed})${r.failures ? `  (${r.failures} failed)` : ''}`);
  }
  out.push('', 'wire traffic at rest (frames/s): ' + Object.entries(doc.probes_per_s).map(([k, v]) => `${k} ${v}`).join(', '));
  out.push('ratios (vigil median / keepalived median, bootstrap 95 % interval; traffic = vigil frames/s / keepalived frames/s):');
  for (const x of doc.ratio) {
    const ci = x.median_ratio_ci95 ? `[${x.median_ratio_ci95[0]}, ${x.median_ratio_ci95[1]}]${x.ci95_excludes_1 ? '' : ' includes 1'}` : 'no interval';
    out.push(`  ${x.fault.padEnd(10)} vigil ${x.vigil.padEnd(10)} / keepalived ${x.keepalived.padEnd(14)}: ${String(x.median_ratio).padEnd(6)} ${ci} (traffic ${x.traffic_ratio}${x.equal_traffic ? ', equal' : ''})`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

async function main(): Promise<number> {
  const args = parseBenchArgs(process.argv.slice(2), { faults: { type: 'string' }, 'wire-seconds': { type: 'string' }, only: { type: 'string' }, out: { type: 'string' }, ipv6: { type: 'boolean' }, 'no-short-cut': { type: 'boolean' } });
  if (args.help) {
    process.stdout.write('usage: node dist/bench/failover.js [--full] [--ipv6] [--faults N] [--wire-seconds S] [--only "vigil default,keepalived advert_int 1"] [--out NAME] [--no-short-cut]\n'
      + `configurations: ${KNOWN_CONFIGS.map(label).join(', ')} (the last one only with --only)\n`
      + 'quick (default): 10 faults of each kind per configuration -> failover.json; --full: 50 -> failover-full.json.\n'
      + 'With --only the result is failover-partial.json (failover-partial-full.json with --full) unless --out NAME.\n'
      + 'Each round makes one fault of each kind (link-cut, host-gone, graceful), then a short-cut (--no-short-cut: none).\n'
      + 'BENCH_RESULTS_DIR=DIR writes the results (and timelines) there instead of bench/results.\n');
    return 0;
  }
  if (!requireRoot('bench/failover')) return 2;
  // vigil as the systemd unit runs it (its NODE_OPTIONS and VIGIL_V8_FLAGS).
  useUnitEnvironment();
  const only = typeof args.values.only === 'string' ? args.values.only.split(',').map((s) => s.trim()) : undefined;
  const configs = only ? KNOWN_CONFIGS.filter((c) => only.includes(label(c))) : undefined;
  if (only && configs!.length !== only.length) {
    process.stderr.write(`bench/failover: unknown configuration in --only (known: ${KNOWN_CONFIGS.map(label).join(', ')})\n`);
    return 2;
  }
  const out = typeof args.values.out === 'string' ? args.values.out : undefined;
  const doc = await runFailover({
    full: args.full,
    ...(args.values.faults !== undefined ? { faults: numberOption(args.values.faults, 10, 'faults') } : {}),
    ...(args.values['wire-seconds'] !== undefined ? { wireSeconds: numberOption(args.values['wire-seconds'], 10, 'wire-seconds') } : {}),
    ...(configs ? { configs } : {}),
    ...(out ? { out } : {}),
    ...(args.values.ipv6 === true ? { ipv6: true } : {}),
    ...(args.values['no-short-cut'] === true ? { noShortCut: true } : {}),
  });
  printFailover(doc);
  return 0;
}

if (require.main === module) {
  main().then((code) => process.exit(code), (e) => {
    process.stderr.write(`bench/failover failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exit(1);
  });
}
