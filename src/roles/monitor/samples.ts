/**
 * Layer: probe interpretation (pure). One network's Consul answers → one
 * tri-state sample per monitored host, with the reasons.
 *
 * Inputs are the raw JSON of `GET /v1/agent/members` and, per node,
 * `GET /v1/health/node/:node` on that network's agent (formats in
 * spec/consul-api.md §3h). Rules, each chosen so that an error is never
 * evidence that a host is dead:
 *
 * - the agent did not answer (or answered nonsense) → every host `unknown`;
 * - the host's node is not in the member list → `unknown` (Masakari made the
 *   host invisible; hostha never recovered it, K-15);
 * - member Status 4 (failed) → `down`; 3 (left) → `down` (the agent left the
 *   network: it no longer serves it; an operator who stops a host on
 *   purpose sets maintenance first); 2 (leaving) and 0 (none) → `unknown`,
 *   both transitional; 1 (alive) → `up` unless a check says otherwise;
 * - `serfHealth` critical (written by the leader, §3h) → `down`, whatever
 *   the local gossip view says; a configured check critical → `down`;
 * - Consul node maintenance (`_node_maintenance` critical) → `unknown`:
 *   somebody is working on the host;
 * - a configured check that is not registered, or a health answer that is
 *   missing or malformed while checks are configured → `unknown`.
 */

/** A sample: up, down, or unknown (which neither counts nor resets, counter.ts). */
export type SampleState = 'up' | 'down' | 'unknown';

/** One host's sample on one network, with why. */
export interface Sample {
  host: string;
  network: string;
  /** The Consul node name the host has on that network. */
  node: string;
  state: SampleState;
  reasons: string[];
  /** The member's address when listed (the silence check probes it). */
  addr?: string;
}

/** serf MemberStatus (spec/consul-api.md §3a, §3h). */
export const MEMBER_STATUS = { none: 0, alive: 1, leaving: 2, left: 3, failed: 4 } as const;

/** The answer of one agent's `/v1/health/node/:node`, or why there is none. */
export type HealthAnswer = unknown | { error: string };

/** What the runner gathered from one network's agent this round. */
export type NetworkAnswer =
  | { error: string }
  | {
    /** Raw `/v1/agent/members` JSON. */
    members: unknown;
    /** Raw `/v1/health/node/:node` JSON (or `{error}`), by node name; a node not fetched is absent. */
    health?: Readonly<Record<string, HealthAnswer>>;
  };

/** A monitored host as this module needs it: its name and its node name on the network. */
export interface SampledHost { name: string; node: string }

/** What to look at on a network. */
export interface SampleOptions {
  network: string;
  /** Check names (CheckID or Name) that make a host down when critical. */
  checks?: readonly string[];
}

interface Member { name: string; status: number; addr?: string }
interface Check { id: string; name: string; status: string }

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isError = (v: unknown): v is { error: string } => isObj(v) && typeof v.error === 'string';

/** Parse a members answer; undefined when it is not a list of `{Name, Status}`. */
export function parseMembers(json: unknown): Member[] | undefined {
  if (!Array.isArray(json)) return undefined;
  const out: Member[] = [];
  for (const m of json) {
    if (!isObj(m) || typeof m.Name !== 'string' || typeof m.Status !== 'number') return undefined;
    out.push({ name: m.Name, status: m.Status, ...(typeof m.Addr === 'string' ? { addr: m.Addr } : {}) });
  }
  return out;
}

/** Parse a health-checks answer; undefined when it is not a list of checks. Unknown fields are ignored. */
export function parseChecks(json: unknown): Check[] | undefined {
  if (!Array.isArray(json)) return undefined;
  const out: Check[] = [];
  for (const c of json) {
    if (!isObj(c) || typeof c.CheckID !== 'string' || typeof c.Status !== 'string') return undefined;
    out.push({ id: c.CheckID, name: typeof c.Name === 'string' ? c.Name : '', status: c.Status });
  }
  return out;
}

/** One network's samples for every host, in host order. Pure. */
export function sampleNetwork(hosts: readonly SampledHost[], answer: NetworkAnswer, opts: SampleOptions): Sample[] {
  const mk = (h: SampledHost, state: SampleState, reasons: string[], addr?: string): Sample =>
    ({ host: h.name, network: opts.network, node: h.node, state, reasons, ...(addr !== undefined ? { addr } : {}) });
  if (isError(answer)) return hosts.map((h) => mk(h, 'unknown', [`agent error: ${answer.error}`]));
  const members = parseMembers(answer.members);
  if (!members) return hosts.map((h) => mk(h, 'unknown', ['agent answered members with something that is not a member list']));
  const byName = new Map(members.map((m) => [m.name, m]));
  return hosts.map((h) => {
    const m = byName.get(h.node);
    if (!m) return mk(h, 'unknown', [`node ${h.node} is not in the member list`]);
    const r = judge(m, answer.health?.[h.node], opts.checks ?? [], answer.health !== undefined && h.node in answer.health);
    return mk(h, r.state, r.reasons, m.addr);
  });
}

function memberWord(status: number): string {
  const w = Object.entries(MEMBER_STATUS).find(([, v]) => v === status)?.[0];
  return `member Status ${status}${w ? ` (${w})` : ' (not a serf status)'}`;
}

function judge(m: Member, health: HealthAnswer, wanted: readonly string[], fetched: boolean): { state: SampleState; reasons: string[] } {
  const reasons = [memberWord(m.status)];
  let memberState: SampleState;
  if (m.status === MEMBER_STATUS.alive) memberState = 'up';
  else if (m.status === MEMBER_STATUS.failed || m.status === MEMBER_STATUS.left) memberState = 'down';
  else memberState = 'unknown';

  let checks: Check[] | undefined;
  if (fetched) {
    if (isError(health)) reasons.push(`health error: ${health.error}`);
    else {
      checks = parseChecks(health);
      if (!checks) reasons.push('health answer is not a list of checks');
    }
  }
  if (checks) {
    if (checks.some((c) => c.id === '_node_maintenance' && c.status === 'critical')) {
      return { state: 'unknown', reasons: [...reasons, 'Consul node maintenance is on'] };
    }
    const serf = checks.find((c) => c.id === 'serfHealth');
    if (serf?.status === 'critical') return { state: 'down', reasons: [...reasons, 'serfHealth critical'] };
    const critical = wanted.filter((w) => checks!.some((c) => (c.id === w || c.name === w) && c.status === 'critical'));
    if (critical.length > 0) return { state: 'down', reasons: [...reasons, `critical: ${critical.join(', ')}`] };
    if (memberState !== 'up') return { state: memberState, reasons };
    const missing = wanted.filter((w) => !checks!.some((c) => c.id === w || c.name === w));
    if (missing.length > 0) return { state: 'unknown', reasons: [...reasons, `check not registered: ${missing.join(', ')}`] };
    if (serf) reasons.push(`serfHealth ${serf.status}`);
    return { state: 'up', reasons };
  }
  // No usable health answer: the member view decides, except that configured
  // checks cannot be known to pass, so an alive member is unknown then.
  if (memberState === 'up' && wanted.length > 0) return { state: 'unknown', reasons: [...reasons, `no health answer for the configured checks ${wanted.join(', ')}`] };
  return { state: memberState, reasons };
}

/** A host with its node name on every network. */
export interface RoundHost { name: string; nodes: Readonly<Record<string, string>> }

/**
 * One round: every network's answer → each host's samples by network
 * (`result[host][network]`). A network with no answer at all is an agent
 * error for every host (unknown). Pure.
 */
export function sampleRound(
  hosts: readonly RoundHost[],
  networks: readonly { name: string; checks?: readonly string[] }[],
  answers: Readonly<Record<string, NetworkAnswer>>,
): Record<string, Record<string, Sample>> {
  const out: Record<string, Record<string, Sample>> = Object.fromEntries(hosts.map((h) => [h.name, {}]));
  for (const n of networks) {
    const answer = answers[n.name] ?? { error: 'no answer this round' };
    const samples = sampleNetwork(hosts.map((h) => ({ name: h.name, node: h.nodes[n.name] ?? h.name })), answer, { network: n.name, ...(n.checks ? { checks: n.checks } : {}) });
    for (const s of samples) out[s.host]![n.name] = s;
  }
  return out;
}
