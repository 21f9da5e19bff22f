/**
 * Layer: bench support. The failover bench's `short-cut` fault: the
 * master's link is cut for less than the takeover window and healed, so a
 * tool that keeps the address through the cut and one that drops it (or a
 * slave that took over just as the link came back) show what a client gets
 * right after the heal: the dual-answer window, from the heal to the last
 * probe that two MACs answered (bench/README.md, "short link cut").
 *
 * The cut's length is uniform in [0.1, 1) × the shortest link-cut takeover
 * this configuration showed so far in the run (the fault kinds take turns,
 * link cut first), so it is shorter than any takeover the run has seen;
 * before the first link cut, or if none succeeded, the configuration's
 * detection cycle. The trial records when a takeover happened anyway.
 */
import { nowNs, nsToMs, type ArpClient } from './client';
import { label, type HaConfig, type HaNode } from './ha';
import { type NsWatch } from './nswatch';
import { median, reportedPercentile } from './stats';
import { r1, sleep } from './common';
import { dualWindow, settledAfterHeal, SETTLE_TIMEOUT_MS, waitStable } from './settle';


/** One short cut and what the client saw after the heal. */
export interface ShortCutTrial {
  fault: 'short-cut';
  ok: boolean;
  error?: string;
  from: string;
  /** The cut as made: the kernel's port-down notification (or the command's return) → the heal. */
  cut_ms: number;
  /** The length asked for (see the file comment). */
  planned_cut_ms: number;
  /** The other node answered the client before the heal: the cut was not short enough for this tool. */
  took_over_during_cut: boolean;
  /** Heal → last answer to the last probe two MACs answered (0: none). */
  dual_window_ms?: number;
  dual_probes?: number;
  /** Heal → the settled stretch of one MAC (as `gap_after_heal_ms` of the other faults). */
  gap_after_heal_ms?: number;
  silent_probes?: number;
  final_owner?: string;
  /** The HA IP ended on the other node. */
  owner_changed?: boolean;
}

/** One row of `short_cut` in failover.json. */
export interface ShortCutSummary {
  impl: string;
  config: string;
  fault: 'short-cut';
  n: number;
  failures: number;
  /** The configuration's probe period (vigil check_interval, keepalived advert_int), the goal's unit. */
  period_ms: number;
  cut_median_ms: number;
  cut_max_ms: number;
  dual_window_ms: number;
  dual_window_p95_ms: number | null;
  dual_window_max_ms: number;
  /** Trials with any probe answered by two MACs after the heal. */
  trials_with_dual: number;
  gap_after_heal_ms: number;
  gap_after_heal_max_ms: number;
  took_over_during_cut: number;
  owner_changed: number;
  dual_window_samples_ms: number[];
  cut_samples_ms: number[];
}

/** The cut length for the next trial (see the file comment). */
export function plannedCutMs(cfg: HaConfig, linkCutTakeovers: readonly number[], rnd: () => number = Math.random): number {
  const window = linkCutTakeovers.length ? Math.min(...linkCutTakeovers) : cfg.cycleMs;
  return window * (0.1 + 0.9 * rnd());
}

/** Cut the master's link for `cutMs`, heal, and watch the client until the pair settles. */
export async function runShortCut(cfg: HaConfig, nodes: HaNode[], client: ArpClient, bridge: NsWatch, cutMs: number): Promise<ShortCutTrial> {
  const master = await waitStable(nodes, client, SETTLE_TIMEOUT_MS);
  const trial: ShortCutTrial = { fault: 'short-cut', ok: false, from: master?.host.name ?? '?', cut_ms: 0, planned_cut_ms: r1(cutMs), took_over_during_cut: false };
  if (!master) return { ...trial, error: 'no stable master before the fault' };
  const other = nodes.find((n) => n !== master)!;
  await sleep(Math.random() * cfg.cycleMs);
  const issued = nowNs();
  await master.host.cutLink();
  const returned = nowNs();
  // Timed from the command's return; the cut is measured afterwards from the
  // kernel's notification (polling for it here would lengthen the cut).
  await sleep(cutMs - nsToMs(nowNs() - returned));
  await master.host.restoreLink();
  const healNs = nowNs();
  const ev = bridge.links.find((e) => e.atNs >= issued && e.name !== 'br0' && !e.up);
  const faultNs = ev && ev.atNs <= healNs ? ev.atNs : returned;
  trial.cut_ms = r1(nsToMs(healNs - faultNs));
  const early = client.firstFrom(other.host.mac, faultNs);
  trial.took_over_during_cut = !!early && early.atNs < healNs;
  const settled = await settledAfterHeal(nodes, client, healNs);
  if (!settled) {
    return { ...trial, error: `not settled within ${SETTLE_TIMEOUT_MS} ms of the heal (roles ${nodes.map((n) => `${n.host.name}=${n.role}`).join(' ')})` };
  }
  const d = dualWindow(client.answers, healNs);
  return {
    ...trial, ok: true,
    dual_window_ms: r1(d.ms), dual_probes: d.probes,
    gap_after_heal_ms: r1(settled.h.gapMs), silent_probes: settled.h.silent,
    final_owner: settled.m.host.name, owner_changed: settled.m !== master,
  };
}

/** Summarize one configuration's short cuts. */
export function summarizeShortCut(cfg: HaConfig, trials: readonly ShortCutTrial[]): ShortCutSummary {
  const ok = trials.filter((t) => t.ok);
  const dual = ok.map((t) => t.dual_window_ms!);
  const cuts = ok.map((t) => t.cut_ms);
  const gaps = ok.map((t) => t.gap_after_heal_ms!).filter((x) => Number.isFinite(x));
  const p95 = reportedPercentile(dual, 95);
  return {
    impl: cfg.impl, config: cfg.config, fault: 'short-cut', n: ok.length, failures: trials.length - ok.length,
    period_ms: cfg.cycleMs,
    cut_median_ms: r1(median(cuts)), cut_max_ms: r1(Math.max(...cuts)),
    dual_window_ms: r1(median(dual)), dual_window_p95_ms: p95 === null ? null : r1(p95), dual_window_max_ms: r1(Math.max(...dual)),
    trials_with_dual: ok.filter((t) => (t.dual_probes ?? 0) > 0).length,
    gap_after_heal_ms: r1(median(gaps)), gap_after_heal_max_ms: r1(Math.max(...gaps)),
    took_over_during_cut: ok.filter((t) => t.took_over_during_cut).length,
    owner_changed: ok.filter((t) => t.owner_changed).length,
    dual_window_samples_ms: dual, cut_samples_ms: cuts,
  };
}

/** A progress line for one trial. */
export function describeShortCut(cfg: HaConfig, i: number, t: ShortCutTrial): string {
  return `${label(cfg)} #${i} short-cut ${t.cut_ms} ms: ${t.ok
    ? `dual answers for ${t.dual_window_ms} ms after the heal (${t.dual_probes} probes), settled ${t.gap_after_heal_ms} ms after it${t.took_over_during_cut ? ', took over during the cut' : ''}${t.owner_changed ? ', owner changed' : ''}`
    : `FAILED: ${t.error}`}`;
}
