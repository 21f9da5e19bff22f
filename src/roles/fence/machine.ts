/**
 * Layer: role state machine (pure). Self-fencing: hostha's consuldaemon,
 * without its false fences (spec/seed-inventory.md §5.8, guards §6.4).
 *
 * Each cycle the runner polls every local Consul agent and feeds one
 * `observed` event. The machine decides:
 *
 *   any agent unknown (no answer, error, hang) ──► unknown: the cycle never
 *        counts toward fencing (hostha's −10 guard, K-44) and resets the
 *        count (isolated cycles on either side of it are not consecutive)
 *   any agent is a server ──────────────────────► never fence this host
 *   any client knows servers ───────────────────► healthy: count reset,
 *        "servers seen" latched (sbd: never fence before quorum was seen)
 *   every client knows 0 servers:
 *        never seen servers since start ────────► no fence (G1)
 *        else check the host's own network ─────► `networkChecked`
 *            an interface works (carrier + a neighbour answering ARP)
 *                 ──► not isolated: reset, try to rejoin
 *            none works, but some check could not be carried out (a probe
 *                 or carrier read failed) ──► unknown: reset, never counts
 *                 (an error is not silence)
 *            none works ──► count; at confirm_cycles: fence (or, dry run,
 *                 "would fence") with the full evidence
 *
 * No clock of its own: the runner schedules cycles; events carry `nowMs`.
 */

/** What one agent said this cycle. */
export type AgentObservation =
  | { name: string; kind: 'unknown'; reason: string }
  | { name: string; kind: 'server' }
  | { name: string; kind: 'client'; knownServers: number; serfMembers?: number; serfFailed?: number };

/** What the network check found on one interface. */
export interface InterfaceObservation {
  iface: string;
  /** Netlink reported the link up with carrier (false also when the read failed: see `error`). */
  carrier: boolean;
  /** Candidates probed (neighbours and last-known server addresses). */
  probed: string[];
  /** The first candidate that answered, if any. */
  answeredBy?: { ip: string; mac: string; rttMs: number };
  /** Why the interface does not count as working, if it does not. */
  reason?: string;
  /**
   * Part of the check could not be carried out (carrier or neighbour read
   * failed, a probe returned an error such as EPERM or ENETDOWN): the
   * silence of this interface proves nothing.
   */
  error?: string;
}

/** The part of the config the machine reads. */
export interface FenceMachineConfig {
  confirmCycles: number;
  dryRun: boolean;
}

/** Plain-data state, printed by status and USR1. */
export interface FenceState {
  phase: 'running' | 'checking-network' | 'fencing' | 'fenced' | 'stopped';
  /** Some client agent has reported known servers since start. */
  seenServers: boolean;
  /** Consecutive isolated cycles. */
  count: number;
  cycles: number;
  lastVerdict?: string;
  agents: AgentObservation[];
  lastNetwork?: InterfaceObservation[];
  /** Dry-run fences logged so far. */
  wouldFence: number;
  /** Evidence of the fence, once fenced. */
  fencedWith?: Evidence;
}

/** Everything a fence decision rests on, logged before acting. */
export interface Evidence {
  atMs: number;
  agents: AgentObservation[];
  interfaces: InterfaceObservation[];
  count: number;
  confirmCycles: number;
}

export type FenceEvent =
  | { type: 'observed'; nowMs: number; agents: AgentObservation[] }
  | { type: 'networkChecked'; nowMs: number; interfaces: InterfaceObservation[] }
  | { type: 'fenceDone'; nowMs: number; results: { action: string; ok: boolean; detail: string }[] }
  | { type: 'stop'; nowMs: number };

export type FenceEffect =
  | { type: 'checkNetwork' }
  | { type: 'rejoin'; reason: string }
  | { type: 'fence'; evidence: Evidence }
  | { type: 'petWatchdog' }
  | { type: 'scheduleCycle' }
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error' | 'fatal'; msg: string; data?: Record<string, unknown> }
  | { type: 'exit'; code: number };

export interface FenceStep { state: FenceState; effects: FenceEffect[] }

/** The state at start: nothing seen yet. */
export function initialFenceState(): FenceState {
  return { phase: 'running', seenServers: false, count: 0, cycles: 0, agents: [], wouldFence: 0 };
}

/** One step. Pure. */
export function fenceTransition(s: FenceState, ev: FenceEvent, cfg: FenceMachineConfig): FenceStep {
  switch (ev.type) {
    case 'observed': return onObserved(s, ev, cfg);
    case 'networkChecked': return onNetwork(s, ev, cfg);
    case 'fenceDone': return onFenceDone(s, ev);
    case 'stop':
      if (s.phase === 'fencing') return { state: s, effects: [{ type: 'log', level: 'warn', msg: 'stop requested while fencing: the fence actions run to the end' }] };
      return { state: { ...s, phase: 'stopped' }, effects: [{ type: 'exit', code: 0 }] };
  }
}

function verdict(s: FenceState, v: string, effects: FenceEffect[], extra: Partial<FenceState> = {}): FenceStep {
  return { state: { ...s, ...extra, lastVerdict: v }, effects };
}

function onObserved(s: FenceState, ev: Extract<FenceEvent, { type: 'observed' }>, _cfg: FenceMachineConfig): FenceStep {
  if (s.phase !== 'running') return { state: s, effects: [] };
  const st: FenceState = { ...s, agents: ev.agents, cycles: s.cycles + 1 };
  const healthyCycle: FenceEffect[] = [{ type: 'petWatchdog' }, { type: 'scheduleCycle' }];
  if (ev.agents.length === 0) return verdict(st, 'no agents configured', healthyCycle);
  const unknown = ev.agents.filter((a) => a.kind === 'unknown');
  if (unknown.length > 0) {
    // Reset, not hold: fencing needs confirm_cycles *consecutive* isolated
    // cycles, and a cycle we know nothing about breaks the run.
    return verdict(st, 'unknown', [
      { type: 'log', level: 'warn', msg: 'agent state unknown: this cycle does not count toward fencing; isolation count reset', data: { unknown, count: s.count } },
      ...healthyCycle,
    ], { count: 0 });
  }
  if (ev.agents.some((a) => a.kind === 'server')) {
    return verdict(st, 'server agent: never fences', healthyCycle, { count: 0 });
  }
  const clients = ev.agents as Extract<AgentObservation, { kind: 'client' }>[];
  if (clients.some((a) => a.knownServers > 0)) {
    const effects: FenceEffect[] = [];
    if (s.count > 0) effects.push({ type: 'log', level: 'info', msg: 'servers known again: isolation count reset', data: { count: s.count } });
    if (!s.seenServers) effects.push({ type: 'log', level: 'info', msg: 'servers seen: self-fencing armed', data: { agents: clients } });
    return verdict(st, 'healthy', [...effects, ...healthyCycle], { count: 0, seenServers: true });
  }
  if (!s.seenServers) {
    return verdict(st, 'no servers, none ever seen: not fencing', [
      { type: 'log', level: 'warn', msg: 'no agent knows a server, and none has since start: never fencing before servers were seen', data: { agents: clients } },
      ...healthyCycle,
    ]);
  }
  return verdict(st, 'all servers lost: checking the network', [
    { type: 'log', level: 'warn', msg: 'every agent has lost every server: checking this host\'s own network', data: { agents: clients, count: s.count } },
    { type: 'checkNetwork' },
  ], { phase: 'checking-network' });
}

function onNetwork(s: FenceState, ev: Extract<FenceEvent, { type: 'networkChecked' }>, cfg: FenceMachineConfig): FenceStep {
  if (s.phase !== 'checking-network') return { state: s, effects: [] };
  const st: FenceState = { ...s, phase: 'running', lastNetwork: ev.interfaces };
  const working = ev.interfaces.filter((i) => i.carrier && i.answeredBy);
  if (working.length > 0) {
    return verdict(st, 'servers lost but the network works: not isolated', [
      { type: 'log', level: 'warn', msg: 'servers lost but this host\'s network works: not isolated; trying to rejoin', data: { working: working.map((w) => ({ iface: w.iface, answeredBy: w.answeredBy })), count: s.count } },
      { type: 'rejoin', reason: 'servers lost while the network works' },
      { type: 'petWatchdog' },
      { type: 'scheduleCycle' },
    ], { count: 0 });
  }
  const failed = ev.interfaces.filter((i) => i.error !== undefined);
  if (failed.length > 0) {
    // Nothing answered, but some check was never really made: an error is not
    // silence, so this cycle proves no isolation (and breaks any run of them).
    return verdict(st, 'unknown: the network check failed', [
      { type: 'log', level: 'warn', msg: 'network check inconclusive (a carrier read or probe failed): this cycle does not count toward fencing; isolation count reset', data: { failed: failed.map((f) => ({ iface: f.iface, error: f.error })), interfaces: ev.interfaces, count: s.count } },
      { type: 'petWatchdog' },
      { type: 'scheduleCycle' },
    ], { count: 0 });
  }
  const count = s.count + 1;
  const evidence: Evidence = { atMs: ev.nowMs, agents: s.agents, interfaces: ev.interfaces, count, confirmCycles: cfg.confirmCycles };
  if (count < cfg.confirmCycles) {
    return verdict(st, `isolated (${count}/${cfg.confirmCycles})`, [
      { type: 'log', level: 'error', msg: 'isolated: no interface has carrier and an answering neighbour', data: { evidence } },
      { type: 'petWatchdog' },
      { type: 'scheduleCycle' },
    ], { count });
  }
  if (cfg.dryRun) {
    return verdict(st, 'would fence (dry run)', [
      { type: 'log', level: 'error', msg: 'would fence (dry_run): isolated for confirm_cycles consecutive cycles', data: { evidence } },
      { type: 'petWatchdog' },
      { type: 'scheduleCycle' },
    ], { count: 0, wouldFence: s.wouldFence + 1 });
  }
  return verdict(st, 'fencing', [
    { type: 'log', level: 'fatal', msg: 'FENCING this host: every agent lost every server and no interface works', data: { evidence } },
    { type: 'fence', evidence },
  ], { count, phase: 'fencing', fencedWith: evidence });
}

function onFenceDone(s: FenceState, ev: Extract<FenceEvent, { type: 'fenceDone' }>): FenceStep {
  if (s.phase !== 'fencing') return { state: s, effects: [] };
  // The loop stops here: a fenced host takes no further decisions.
  return verdict({ ...s, phase: 'fenced' }, 'fenced', [
    { type: 'log', level: 'error', msg: 'fence actions done; the fencing loop has stopped', data: { results: ev.results } },
  ]);
}
