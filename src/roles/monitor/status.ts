/**
 * Layer: presentation (pure). The shape of `vigil monitor status --json`
 * and its text rendering. Built from the machines' states and what the
 * runner last saw; holds no secret (hosts carry the BMC address, never a
 * user's password or the password file's content).
 */
import { recoveryLines } from './recovery/status';
import type { ConfirmState } from './counter';
import type { GuardReport } from './guards';
import { allRowKeys, describeRow, type Matrix } from './matrix';
import type { HostState, Phase } from './machine';
import { selfSeesServers, type SelfView } from './guards';
import type { SampleState } from './samples';

/** BMC reachability as the runner last probed it (RMCP presence ping; not the power state). */
export interface BmcReachability { reachable: boolean | 'unknown'; atMs?: number; detail?: string }

/** One host in the status. */
export interface HostStatus {
  host: string;
  phase: Phase;
  sinceMs: number;
  counts: Record<string, number>;
  confirmed: Record<string, ConfirmState>;
  samples: Record<string, { state: SampleState; reasons: string[] }>;
  decision?: { row: string; description: string; actions: readonly string[] };
  guards?: GuardReport;
  incident?: { id?: string; held: boolean; fence?: { method: string; network?: string; outcome?: string } };
  bmc: BmcReachability;
  lastAlarm?: string;
}

/** The whole status document (`--json`). Stable keys: scripts read it. */
export interface MonitorStatus {
  role: 'monitor';
  self: string;
  nowMs: number;
  intervalMs: number;
  confirm: number;
  networks: { name: string; url: string; agent: { ok: boolean; detail: string } }[];
  matrix: { columns: readonly string[]; rows: { row: string; description: string; actions: readonly string[] }[] };
  hosts: HostStatus[];
  incidents: { host: string; phase: Phase; id?: string }[];
  /** KV keys that did not parse at the last read (the last good state is in use). */
  kvProblems: { key: string; message: string }[];
}

/** What {@link buildStatus} reads. */
export interface StatusInput {
  self: string;
  nowMs: number;
  intervalMs: number;
  confirm: number;
  networks: readonly { name: string; url: string }[];
  selfViews: Readonly<Record<string, SelfView>>;
  matrix: Matrix;
  hosts: readonly HostState[];
  bmc: Readonly<Record<string, BmcReachability>>;
  kvProblems?: readonly { key: string; message: string }[];
}

const INCIDENT_PHASES: readonly Phase[] = ['claiming', 'latching', 'fencing', 'checking-silence', 'fenced', 'fence-unconfirmed', 'aborted'];

/** Build the status document. Pure. */
export function buildStatus(inp: StatusInput): MonitorStatus {
  const hosts: HostStatus[] = inp.hosts.map((h) => ({
    host: h.host,
    phase: h.phase,
    sinceMs: h.sinceMs,
    counts: { ...h.counts },
    confirmed: { ...h.confirmed },
    samples: Object.fromEntries(Object.entries(h.samples).map(([n, s]) => [n, { state: s.state, reasons: [...s.reasons] }])),
    ...(h.decision ? { decision: { row: h.decision.row, description: h.decision.description, actions: [...h.decision.actions] } } : {}),
    ...(h.guards ? { guards: h.guards } : {}),
    ...(h.incidentId !== undefined || h.session !== undefined ? { incident: { ...(h.incidentId !== undefined ? { id: h.incidentId } : {}), held: h.session !== undefined, ...(h.fence ? { fence: { ...h.fence } } : {}) } } : {}),
    bmc: inp.bmc[h.host] ?? { reachable: 'unknown' },
    ...(h.lastAlarm ? { lastAlarm: h.lastAlarm } : {}),
  }));
  return {
    role: 'monitor',
    self: inp.self,
    nowMs: inp.nowMs,
    intervalMs: inp.intervalMs,
    confirm: inp.confirm,
    networks: inp.networks.map((n) => ({ name: n.name, url: n.url, agent: selfSeesServers(inp.selfViews[n.name]) })),
    matrix: {
      columns: inp.matrix.columns,
      rows: allRowKeys(inp.matrix.columns.length).map((row) => ({ row, description: describeRow(inp.matrix.columns, row), actions: [...(inp.matrix.rows[row] ?? [])] })),
    },
    hosts,
    incidents: inp.hosts.filter((h) => INCIDENT_PHASES.includes(h.phase)).map((h) => ({ host: h.host, phase: h.phase, ...(h.incidentId ? { id: h.incidentId } : {}) })),
    kvProblems: [...(inp.kvProblems ?? [])],
  };
}

function age(nowMs: number, sinceMs: number): string {
  const s = Math.max(0, Math.round((nowMs - sinceMs) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));

/** Human text for `vigil monitor status`. */
export function renderStatusText(st: MonitorStatus): string {
  const out: string[] = [];
  out.push(`monitor on ${st.self}: ${st.hosts.length} hosts, interval ${st.intervalMs / 1000}s, confirm ${st.confirm}`);
  for (const n of st.networks) out.push(`  network ${n.name} (${n.url}): ${n.agent.ok ? 'ok' : 'NOT OK'}, ${n.agent.detail}`);
  if (st.incidents.length > 0) out.push(`incidents: ${st.incidents.map((i) => `${i.host} ${i.phase}`).join(', ')}`);
  else out.push('incidents: none');
  out.push('');
  const nets = st.matrix.columns;
  out.push([pad('HOST', 16), pad('PHASE', 18), ...nets.map((n) => pad(n.toUpperCase(), 12)), pad('BMC', 8), 'SINCE / NOTE'].join(' '));
  for (const h of st.hosts) {
    const cells = nets.map((n) => pad(`${h.samples[n]?.state ?? '-'}${h.counts[n] ? ` ${h.counts[n]}/${st.confirm}` : ''}`, 12));
    const bmc = h.bmc.reachable === 'unknown' ? '?' : h.bmc.reachable ? 'ok' : 'DOWN';
    const note = [age(st.nowMs, h.sinceMs), h.decision ? `row ${h.decision.row} [${h.decision.actions.join(',')}]` : '', h.lastAlarm ? `ALARM ${h.lastAlarm}` : ''].filter(Boolean).join('; ');
    out.push([pad(h.host, 16), pad(h.phase, 18), ...cells, pad(bmc, 8), note].join(' '));
  }
  if (st.kvProblems.length > 0) {
    out.push('', 'KV problems (last good state kept):');
    for (const p of st.kvProblems) out.push(`  ${p.message}`);
  }
  out.push(...recoveryLines(st));
  return `${out.join('\n')}\n`;
}

/** `vigil status`'s lines for the monitor role (the daemon's status JSON under roles.monitor). */
export function formatMonitorStatus(st: Record<string, any>): string[] {
  if (!Array.isArray(st.hosts)) return ['monitor: no round yet'];
  return renderStatusText(st as MonitorStatus).replace(/\n$/, '').split('\n');
}
