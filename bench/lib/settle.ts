/**
 * Layer: bench support. What the failover bench's client saw around a
 * fault: when a pair counts as settled (one MAC answering every probe), and
 * what happened after a heal (how long until one MAC alone answered, and how
 * long two MACs answered at once). The last two are pure functions of the
 * client's answers, so they are unit-tested on synthetic answer lists.
 */
import { nowNs, nsToMs, type Answer, type ArpClient } from './client';
import { soleMaster, type HaNode } from './ha';
import { pollUntil } from './common';

/** The client's probe period. */
export const PROBE_PERIOD_MS = 10;
/** A stretch this long of answers from one MAC only (and one master) counts as settled. */
export const STABLE_MS = 600;

/** The last answers (newest first) received at/after `sinceNs`. */
export function answersSince(client: ArpClient, sinceNs: bigint): Answer[] {
  const out: Answer[] = [];
  for (let i = client.answers.length - 1; i >= 0; i--) {
    const a = client.answers[i]!;
    if (a.atNs < sinceNs) break;
    out.push(a);
  }
  return out;
}

/**
 * True when, over the last `ms`, every probe the client sent was answered
 * by `mac` alone (no other MAC, and at most a tenth of the probes silent).
 */
export function clientSettledOn(client: ArpClient, mac: string, ms: number): boolean {
  const recent = answersSince(client, nowNs() - BigInt(Math.round(ms * 1e6)));
  if (recent.some((a) => a.mac !== mac)) return false;
  const seqs = new Set(recent.map((a) => a.seq));
  return seqs.size >= 0.9 * (ms / PROBE_PERIOD_MS) * 0.9;
}

/** Wait until one node is master, the other backup, and the client hears the master only. */
export async function waitStable(nodes: HaNode[], client: ArpClient | undefined, timeoutMs: number): Promise<HaNode | undefined> {
  return pollUntil(() => {
    const m = soleMaster(nodes);
    if (!m) return undefined;
    if (client && !clientSettledOn(client, m.host.mac, STABLE_MS)) return undefined;
    return m;
  }, timeoutMs, 20);
}

/** The probes answered after a heal: by sequence number, the MACs and the first answer's time. */
function probesAfter(answers: readonly Answer[], healNs: bigint): { before: number; bySeq: Map<number, { macs: Set<string>; firstNs: bigint; lastNs: bigint }> } {
  let before = -1;
  const bySeq = new Map<number, { macs: Set<string>; firstNs: bigint; lastNs: bigint }>();
  for (const a of answers) {
    if (a.atNs < healNs) { if (a.seq > before) before = a.seq; continue; }
    let e = bySeq.get(a.seq);
    if (!e) bySeq.set(a.seq, (e = { macs: new Set(), firstNs: a.atNs, lastNs: a.atNs }));
    e.macs.add(a.mac);
    if (a.atNs > e.lastNs) e.lastNs = a.atNs;
  }
  // A probe answered before the heal (and again after it) belongs to before the heal.
  for (const s of [...bySeq.keys()]) if (s <= before) bySeq.delete(s);
  return { before, bySeq };
}

/**
 * What the client saw after a heal at `healNs`, up to its newest answer:
 * the final stretch of probes each answered by exactly one and the same MAC,
 * and how long after the heal it began (0 when it began with the first
 * probe after the heal).
 */
export function healStats(answers: readonly Answer[], healNs: bigint): { gapMs: number; stretchMs: number; mac?: string; dual: number; silent: number } {
  const { before, bySeq } = probesAfter(answers, healNs);
  const seqs = [...bySeq.keys()];
  if (seqs.length === 0) return { gapMs: NaN, stretchMs: 0, dual: 0, silent: 0 };
  const last = Math.max(...seqs);
  const lastEntry = bySeq.get(last)!;
  const mac = lastEntry.macs.size === 1 ? [...lastEntry.macs][0] : undefined;
  let s = last;
  while (s > before) {
    const e = bySeq.get(s);
    if (!e || e.macs.size !== 1 || !mac || !e.macs.has(mac)) break;
    s--;
  }
  const start = s + 1;
  let dual = 0;
  let silent = 0;
  for (let q = before + 1; q < start; q++) {
    const e = bySeq.get(q);
    if (!e) silent++;
    else if (e.macs.size > 1) dual++;
  }
  const startEntry = bySeq.get(start);
  const gapMs = start === before + 1 || !startEntry ? 0 : nsToMs(startEntry.firstNs - healNs);
  const stretchMs = startEntry ? nsToMs(lastEntry.firstNs - startEntry.firstNs) : 0;
  return { gapMs: Math.max(0, gapMs), stretchMs, ...(mac ? { mac } : {}), dual, silent };
}

/**
 * The dual-answer window after a heal: from the heal to the last answer to
 * the last probe that two (or more) MACs answered, i.e. how long after the
 * heal the client could still get two owners for the HA IP; 0 when no probe
 * after the heal had two answers. `probes` counts those probes.
 */
export function dualWindow(answers: readonly Answer[], healNs: bigint): { ms: number; probes: number } {
  const { bySeq } = probesAfter(answers, healNs);
  let probes = 0;
  let lastNs: bigint | undefined;
  for (const e of bySeq.values()) {
    if (e.macs.size < 2) continue;
    probes++;
    if (lastNs === undefined || e.lastNs > lastNs) lastNs = e.lastNs;
  }
  return { ms: lastNs === undefined ? 0 : Math.max(0, nsToMs(lastNs - healNs)), probes };
}

/** How long a pair may take to settle after a fault or a heal before the trial is an error. */
export const SETTLE_TIMEOUT_MS = 30_000;

/**
 * Wait until, at least STABLE_MS after the heal, one node is master and the
 * client's last stretch of answers (that long) came from its MAC alone.
 */
export function settledAfterHeal(nodes: HaNode[], client: ArpClient, healNs: bigint): Promise<{ m: HaNode; h: ReturnType<typeof healStats> } | undefined> {
  return pollUntil(() => {
    if (nsToMs(nowNs() - healNs) < STABLE_MS) return undefined;
    const m = soleMaster(nodes);
    if (!m) return undefined;
    const h = healStats(client.answers, healNs);
    return h.mac === m.host.mac && h.stretchMs >= STABLE_MS ? { m, h } : undefined;
  }, SETTLE_TIMEOUT_MS, 20);
}
