/**
 * Layer: metrics. The process's Prometheus registry and the few metric
 * families every role shares, so the names and labels are the same whichever
 * role reports (`vigil_role_state{role="vip",state="master"}` and
 * `{role="fence",state="armed"}` are one family, one alert rule).
 *
 * Roles report through the functions below; they are cheap (a map lookup and
 * an add) and always on, whether or not a listener is configured, so a role
 * never needs to know whether it is scraped.
 *
 * Label values are bounded by construction: role names, state names, results
 * and command kinds come from the code, never from the IP file, a peer or an
 * event. Consul paths are reduced to their route template (`endpointOf`).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { readCounts } from '../roles/fence-event/counts';

/** The one registry the listener serves. */
export const registry = new Registry();
registry.setDefaultLabels({});
// The library's process metrics: CPU seconds, RSS, heap, open fds, event-loop delay.
collectDefaultMetrics({ register: registry, prefix: 'vigil_' });

const roleState = new Gauge({
  name: 'vigil_role_state',
  help: 'The role\'s current state: 1 for the state it is in, 0 for the states it has been in before.',
  labelNames: ['role', 'state'] as const,
  registers: [registry],
});
const transitions = new Counter({
  name: 'vigil_role_transitions_total',
  help: 'State changes of a role, by the state left and the state entered.',
  labelNames: ['role', 'from', 'to'] as const,
  registers: [registry],
});
const probes = new Counter({
  name: 'vigil_probes_total',
  help: 'Probes sent, by purpose and outcome (answered, silent, unknown when no probe could be made).',
  labelNames: ['role', 'kind', 'result'] as const,
  registers: [registry],
});
const probeRtt = new Histogram({
  name: 'vigil_probe_rtt_seconds',
  help: 'Round trip of answered probes.',
  labelNames: ['role', 'kind'] as const,
  buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  registers: [registry],
});
const takeovers = new Counter({
  name: 'vigil_takeovers_total',
  help: 'Times this node took over what the role guards (the HA IP, a promotion).',
  labelNames: ['role'] as const,
  registers: [registry],
});
const stepDowns = new Counter({
  name: 'vigil_step_downs_total',
  help: 'Times this node gave up what the role guards.',
  labelNames: ['role'] as const,
  registers: [registry],
});
const conflicts = new Counter({
  name: 'vigil_conflicts_total',
  help: 'Split-brain conflicts seen, by how this node settled them (kept or yielded).',
  labelNames: ['role', 'settled'] as const,
  registers: [registry],
});
const commands = new Counter({
  name: 'vigil_commands_total',
  help: 'Operator commands run (on_master, on_slave, track, fence…), by result: ok, failed, timeout, spawn_error.',
  labelNames: ['command', 'result'] as const,
  registers: [registry],
});
const consulRequests = new Counter({
  name: 'vigil_consul_requests_total',
  help: 'Requests to Consul agents, by route template, method and result (2xx, 4xx, 5xx, timeout, unreachable, error).',
  labelNames: ['endpoint', 'method', 'result'] as const,
  registers: [registry],
});

const deliveredSources = new Map<string, () => number | undefined>();
new Counter({
  name: 'vigil_arp_frames_delivered_total',
  help: 'ARP frames the kernel filter let through to JavaScript (each one costs a wake-up), per role.',
  labelNames: ['role'] as const,
  registers: [registry],
  // Read from the socket's own counter at scrape time: nothing on the frame path.
  collect() {
    this.reset();
    for (const [role, read] of deliveredSources) {
      const v = read();
      if (v !== undefined && Number.isFinite(v) && v >= 0) this.inc({ role }, v);
    }
  },
});

/** Where the role's ARP socket counts delivered frames (read at scrape time). */
export function watchArpDelivered(role: string, read: () => number | undefined): void {
  deliveredSources.set(role, read);
}

let fenceCountsFile: string | undefined;
new Counter({
  name: 'vigil_fence_event_deliveries_total',
  help: 'Fence events judged by the fence-event handler: accepted, rejected by reason, or whole deliveries refused by reason.',
  labelNames: ['result', 'reason'] as const,
  registers: [registry],
  // The handler is a process per delivery: it keeps running totals in state_dir, read here at scrape time.
  collect() {
    this.reset();
    if (fenceCountsFile === undefined) return;
    const c = readCounts(fenceCountsFile);
    this.inc({ result: 'accepted', reason: 'ok' }, c.accepted);
    for (const [reason, n] of Object.entries(c.rejected)) this.inc({ result: 'rejected', reason }, n);
    for (const [reason, n] of Object.entries(c.deliveriesRefused)) this.inc({ result: 'refused', reason }, n);
  },
});

/** Where the fence-event handler of this config keeps its running totals. */
export function watchFenceEventCounts(file: string): void {
  fenceCountsFile = file;
}

const lastState = new Map<string, string>();

/** The role is now in `state`: its gauge moves, and a change counts as a transition. */
export function setRoleState(role: string, state: string): void {
  const prev = lastState.get(role);
  if (prev === state) return;
  if (prev !== undefined) {
    roleState.set({ role, state: prev }, 0);
    transitions.inc({ role, from: prev, to: state });
  }
  lastState.set(role, state);
  roleState.set({ role, state }, 1);
}

/** A transition of something other than the role's own state (a monitored host's phase), counted only. */
export function countTransition(role: string, from: string, to: string): void {
  transitions.inc({ role, from, to });
}

/** One probe's outcome; `rttMs` for an answered one. */
export function countProbe(role: string, kind: string, result: string, rttMs?: number): void {
  probes.inc({ role, kind, result });
  if (rttMs !== undefined && Number.isFinite(rttMs) && rttMs >= 0) probeRtt.observe({ role, kind }, rttMs / 1000);
}

/** This node took over (`up`) or gave up (`down`) what the role guards. */
export function countTakeover(role: string, dir: 'up' | 'down'): void {
  (dir === 'up' ? takeovers : stepDowns).inc({ role });
}

/** A split-brain conflict, settled by keeping or yielding. */
export function countConflict(role: string, kept: boolean): void {
  conflicts.inc({ role, settled: kept ? 'kept' : 'yielded' });
}

/** An operator command's result. `command` is the config key that names it (on_master, track…). */
export function countCommand(command: string, result: 'ok' | 'failed' | 'timeout' | 'aborted' | 'spawn_error'): void {
  commands.inc({ command, result });
}

/** One Consul request's outcome. */
export function countConsulRequest(method: string, path: string, result: string): void {
  consulRequests.inc({ endpoint: endpointOf(path), method, result });
}

// Routes whose last segments are a name (a key, a node, a session ID…): kept
// up to the fixed part, the rest becomes one placeholder.
const ROUTES: readonly [prefix: string, template: string][] = [
  ['/v1/kv/', '/v1/kv/:key'],
  ['/v1/health/node/', '/v1/health/node/:node'],
  ['/v1/health/checks/', '/v1/health/checks/:service'],
  ['/v1/health/service/', '/v1/health/service/:service'],
  ['/v1/health/state/', '/v1/health/state/:state'],
  ['/v1/session/info/', '/v1/session/info/:id'],
  ['/v1/session/renew/', '/v1/session/renew/:id'],
  ['/v1/session/destroy/', '/v1/session/destroy/:id'],
  ['/v1/session/node/', '/v1/session/node/:node'],
  ['/v1/event/fire/', '/v1/event/fire/:name'],
  ['/v1/agent/join/', '/v1/agent/join/:address'],
  ['/v1/agent/force-leave/', '/v1/agent/force-leave/:node'],
  ['/v1/agent/check/pass/', '/v1/agent/check/pass/:id'],
  ['/v1/agent/check/fail/', '/v1/agent/check/fail/:id'],
  ['/v1/agent/check/warn/', '/v1/agent/check/warn/:id'],
  ['/v1/catalog/node/', '/v1/catalog/node/:node'],
  ['/v1/catalog/service/', '/v1/catalog/service/:service'],
];
// Routes without a name part, kept as they are.
const FIXED = new Set([
  '/v1/agent/self', '/v1/agent/members', '/v1/agent/leave', '/v1/agent/checks', '/v1/agent/services',
  '/v1/status/leader', '/v1/status/peers', '/v1/txn', '/v1/session/create', '/v1/session/list',
  '/v1/event/list', '/v1/catalog/nodes', '/v1/catalog/services', '/v1/agent/check/register',
]);

/** A Consul request path as a bounded label: its route template, or `other`. */
export function endpointOf(path: string): string {
  const p = path.split('?')[0]!;
  if (FIXED.has(p)) return p;
  for (const [prefix, template] of ROUTES) if (p.startsWith(prefix) && p.length > prefix.length) return template;
  return 'other';
}

/** The exposition text and its content type. */
export async function render(): Promise<{ text: string; contentType: string }> {
  return { text: await registry.metrics(), contentType: registry.contentType };
}

/** Forget every value (tests of one process that start several daemons). */
export function resetMetrics(): void {
  registry.resetMetrics();
  lastState.clear();
}
