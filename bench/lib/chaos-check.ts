/**
 * Layer: bench support, pure. The chaos bench's fault kinds, its bounds
 * (derived from the vip timing the nodes run with, through the real config
 * loader) and the client-gap check.
 */
import { vipTiming } from '../../test/support/vigil';
import type { HaConfig } from './ha';

/** The fault kinds, drawn uniformly. */
export const FAULT_KINDS = ['cut', 'cut-many', 'kill', 'stall', 'graceful', 'lossy', 'ip-file', 'bad-reload'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** One invariant's result for one fault. */
export interface Check { ok: boolean; detail: string }

/** One fault as carried out and judged. */
export interface FaultRecord {
  n: number;
  kind: FaultKind;
  targets: string[];
  params: Record<string, unknown>;
  /** Bench-relative ms. */
  startMs: number;
  healMs: number;
  endMs?: number;
  settleMs?: number | null;
  boundMs?: number;
  maxGapMs?: number;
  started?: boolean;
  checks: Partial<Record<'oneHolder' | 'clientGap' | 'graceful' | 'reload', Check>>;
}

/** A node became unavailable (cut or stopped) or available again. */
export interface Unavailable { atNs: bigint; node: number; down: boolean; why: string }

/**
 * Scheduling slack added once to each bound: process wake-ups and the `ip`
 * reads on a loaded 2-core machine. Reported with the results.
 */
export const SLACK_MS = 1000;

/** The bounds of one setting, in ms. */
export interface Bounds {
  /** After a heal: exactly one holder within master_check_interval + one probe period (check_interval) + slack. */
  settleMs: number;
  /** After an IP-file rewrite: ip_file_check_interval + master_check_interval + slack. */
  ipFileMs: number;
  /** Longest the client may go unanswered: the takeover window + the client's probe period + slack. */
  gapMs: number;
  /** The takeover window: check_interval + take_over_after × (failure_check_interval + probe_timeout). */
  takeoverMs: number;
  startMs: number;
  stopMs: number;
  slackMs: number;
}

/** Bounds of a setting, from its vip timing (defaults filled in by the real loader). */
export function boundsOf(cfg: HaConfig): Bounds {
  const v = vipTiming(cfg.vip ?? {});
  const takeoverMs = v.checkIntervalMs + v.takeOverAfter * (v.failureCheckIntervalMs + v.probeTimeoutMs);
  return {
    settleMs: v.masterCheckIntervalMs + v.checkIntervalMs + SLACK_MS,
    ipFileMs: v.ipFileCheckIntervalMs + v.masterCheckIntervalMs + SLACK_MS,
    gapMs: takeoverMs + 10 + SLACK_MS,
    takeoverMs,
    startMs: 15_000,
    stopMs: 10_000,
    slackMs: SLACK_MS,
  };
}

/** A stretch without answers, bench-relative; `countedMs` leaves out the time every node was down. */
export interface Gap { startMs: number; totalMs: number; countedMs: number }

/** The intervals (ns) during which all `nodes` nodes were unavailable at once. */
export function allDownWindows(events: readonly Unavailable[], nodes: number, endNs: bigint): [bigint, bigint][] {
  const down = new Set<number>();
  const out: [bigint, bigint][] = [];
  let since: bigint | undefined;
  for (const e of [...events].sort((a, b) => (a.atNs < b.atNs ? -1 : a.atNs > b.atNs ? 1 : 0))) {
    if (e.down) down.add(e.node); else down.delete(e.node);
    if (down.size === nodes && since === undefined) since = e.atNs;
    if (down.size < nodes && since !== undefined) { out.push([since, e.atNs]); since = undefined; }
  }
  if (since !== undefined) out.push([since, endNs]);
  return out;
}

/**
 * Gaps between consecutive client answers longer than 100 ms, with the
 * all-down time inside each taken out. `answers` in ns on the bench clock.
 */
export function clientGaps(answers: readonly bigint[], events: readonly Unavailable[], nodes: number, t0: bigint, endNs: bigint): Gap[] {
  const windows = allDownWindows(events, nodes, endNs);
  const sortedAnswers = [...answers].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const gaps: Gap[] = [];
  for (let i = 1; i <= sortedAnswers.length; i++) {
    const a = sortedAnswers[i - 1]!;
    const b = i < sortedAnswers.length ? sortedAnswers[i]! : endNs;
    const totalMs = Number(b - a) / 1e6;
    if (totalMs <= 100) continue;
    let downNs = 0n;
    for (const [s, e] of windows) {
      const lo = s > a ? s : a;
      const hi = e < b ? e : b;
      if (hi > lo) downNs += hi - lo;
    }
    gaps.push({ startMs: Number(a - t0) / 1e6, totalMs, countedMs: totalMs - Number(downNs) / 1e6 });
  }
  return gaps;
}
