/**
 * Layer: policy (pure). The guards checked before any action against
 * another host, each with its evidence for the decision log:
 *
 * 1. self-isolation: on every network where the target is accused (down),
 *    this monitor's own agent must see Consul servers (`known_servers > 0`,
 *    or on a server agent a known leader). An agent that does not answer is
 *    not proof of health either: hold. (Masakari had no such check and
 *    evacuated the other side of a partition, next-roles.md §3c-1.)
 * 2. mass failure: when more than `max_down_fraction` of the hosts, or more
 *    than `max_down` hosts, are down on any network, act on none (hostha's
 *    `max_evacuation`, K-22; §6.4 G2). Counted per network, so a dead
 *    storage switch that makes every host `storage=down` trips it.
 * 3. concurrency: at most `max_concurrent_recoveries` open incidents
 *    (§6.4 G4); a host that already has one is not blocked by it.
 * 4. maintenance: a host in maintenance (config or KV) is never acted on.
 *
 * Every guard is evaluated (not only up to the first failure) so the log
 * shows the whole picture.
 */
import type { ConfirmState } from './counter';

/** What this monitor's own agent on a network says about its servers (from `/v1/agent/self`). */
export type SelfView =
  | { server: false; knownServers: number }
  | { server: true; leaderKnown: boolean }
  | { error: string };

/** The guard settings (config `guards`). */
export interface GuardConfig {
  /** Act on none when more than this fraction of hosts is down on a network (default 1/3). */
  maxDownFraction: number;
  /** Act on none when more than this many hosts are down on a network (optional). */
  maxDown?: number;
  /** Open incidents allowed at once (default 1). */
  maxConcurrentRecoveries: number;
}

/** One guard's verdict and why. */
export interface GuardResult {
  guard: 'self-isolation' | 'mass-failure' | 'concurrency' | 'maintenance';
  ok: boolean;
  detail: string;
  evidence: Record<string, unknown>;
}

/** All guards for one target. `ok` only if every guard passed. */
export interface GuardReport { ok: boolean; results: GuardResult[] }

/** The fleet as the guards need it. */
export interface GuardInput {
  /** The host we would act on. */
  target: string;
  /** Its confirmed per-network states. */
  targetStates: Readonly<Record<string, ConfirmState>>;
  /** This monitor's own agents, by network. A missing network counts as an error. */
  self: Readonly<Record<string, SelfView>>;
  /** Every monitored host's confirmed states (maintenance hosts excluded by the caller or flagged below). */
  fleet: Readonly<Record<string, Readonly<Record<string, ConfirmState>>>>;
  /** Hosts in maintenance (config or KV). */
  maintenance: ReadonlySet<string>;
  /** Hosts with an open incident (held incident locks, by anyone). */
  openIncidents: ReadonlySet<string>;
}

/**
 * The SelfView of an agent from what `parseAgentSelf` (src/consul/client.ts)
 * returns, or from the error it threw. Typed structurally so this module
 * does not depend on the client. A server's leader is known when
 * `leader_addr` is non-empty (spec/consul-api.md §3a parser advice).
 */
export function selfViewFrom(info: { server: boolean; knownServers?: number | undefined; leaderAddr?: string | undefined } | { error: string }): SelfView {
  if ('error' in info) return { error: info.error };
  if (info.server) return { server: true, leaderKnown: (info.leaderAddr ?? '') !== '' };
  return { server: false, knownServers: info.knownServers ?? 0 };
}

/** Does this agent see servers? */
export function selfSeesServers(v: SelfView | undefined): { ok: boolean; detail: string } {
  if (!v) return { ok: false, detail: 'no answer from the agent' };
  if ('error' in v) return { ok: false, detail: `agent error: ${v.error}` };
  if (v.server) return v.leaderKnown ? { ok: true, detail: 'server agent, leader known' } : { ok: false, detail: 'server agent without a leader' };
  return v.knownServers > 0 ? { ok: true, detail: `known_servers ${v.knownServers}` } : { ok: false, detail: 'known_servers 0' };
}

function selfIsolation(inp: GuardInput): GuardResult {
  const accused = Object.entries(inp.targetStates).filter(([, s]) => s === 'down').map(([n]) => n);
  const views: Record<string, string> = {};
  const failed: string[] = [];
  for (const n of accused) {
    const r = selfSeesServers(inp.self[n]);
    views[n] = r.detail;
    if (!r.ok) failed.push(n);
  }
  return {
    guard: 'self-isolation',
    ok: failed.length === 0,
    detail: failed.length === 0 ? `own agents see servers on ${accused.join(', ') || 'no accusing network'}`
      : `own agent does not see servers on ${failed.join(', ')}: this monitor may be the isolated one`,
    evidence: { accused, self: views },
  };
}

function massFailure(inp: GuardInput, cfg: GuardConfig): GuardResult {
  const hosts = Object.keys(inp.fleet).filter((h) => !inp.maintenance.has(h));
  const total = hosts.length;
  const networks = [...new Set(hosts.flatMap((h) => Object.keys(inp.fleet[h]!)))];
  const downBy: Record<string, string[]> = {};
  const tripped: string[] = [];
  for (const n of networks) {
    // Down but not yet confirmed counts too: hosts cut at the same moment are confirmed a round
    // apart at worst, and the first must not be fenced before the second shows it is a mass failure.
    const down = hosts.filter((h) => inp.fleet[h]![n] === 'down' || inp.fleet[h]![n] === 'pending');
    downBy[n] = down;
    const overFraction = total > 0 && down.length / total > cfg.maxDownFraction;
    const overAbs = cfg.maxDown !== undefined && down.length > cfg.maxDown;
    if (overFraction || overAbs) tripped.push(`${n}: ${down.length} of ${total} down`);
  }
  const limits = `more than ${fmtFraction(cfg.maxDownFraction)} of hosts${cfg.maxDown !== undefined ? ` or more than ${cfg.maxDown}` : ''}`;
  return {
    guard: 'mass-failure',
    ok: tripped.length === 0,
    detail: tripped.length === 0 ? `not ${limits} down on any network` : `mass failure (${tripped.join('; ')}; limit: ${limits}): acting on none`,
    evidence: { total, down: downBy, maxDownFraction: cfg.maxDownFraction, ...(cfg.maxDown !== undefined ? { maxDown: cfg.maxDown } : {}) },
  };
}

function fmtFraction(f: number): string {
  return Math.abs(f - 1 / 3) < 1e-9 ? '1/3' : String(f);
}

function concurrency(inp: GuardInput, cfg: GuardConfig): GuardResult {
  const open = [...inp.openIncidents];
  const mine = inp.openIncidents.has(inp.target);
  const ok = mine || open.length < cfg.maxConcurrentRecoveries;
  return {
    guard: 'concurrency',
    ok,
    detail: mine ? 'this host already has the open incident' : ok ? `${open.length} of ${cfg.maxConcurrentRecoveries} incidents open`
      : `${open.length} incidents open (${open.join(', ')}), at most ${cfg.maxConcurrentRecoveries}`,
    evidence: { open, max: cfg.maxConcurrentRecoveries },
  };
}

function maintenance(inp: GuardInput): GuardResult {
  const on = inp.maintenance.has(inp.target);
  return { guard: 'maintenance', ok: !on, detail: on ? `${inp.target} is in maintenance` : 'not in maintenance', evidence: { maintenance: on } };
}

/** Evaluate every guard for one target. Pure. */
export function evaluateGuards(inp: GuardInput, cfg: GuardConfig): GuardReport {
  const results = [selfIsolation(inp), massFailure(inp, cfg), concurrency(inp, cfg), maintenance(inp)];
  return { ok: results.every((r) => r.ok), results };
}

/** The failed guards, as one line for an alarm. */
export function failedGuards(r: GuardReport): string {
  return r.results.filter((g) => !g.ok).map((g) => `${g.guard}: ${g.detail}`).join('; ');
}
