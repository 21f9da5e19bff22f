/**
 * Layer: role state machine (pure). The recovery of a fenced host, as a
 * record kept in KV (`<prefix>/compute_nodes/<host>/recovery`, JSON) and
 * pure functions over it: {@link planNext} says what the next step is (and
 * the record to write *before* doing it), {@link applyResult} folds a
 * step's result into the record. No I/O, no clock (time in arguments).
 *
 * Why a record and not in-memory state: a monitor may die between any two
 * steps. Every step is written to KV (in a `/v1/txn` with `check-session`
 * on the incident key, so a monitor that lost its claim writes nothing)
 * *before* it acts and again when it is done. Whoever holds the claim next
 * reads the record and resumes at the first step not done: a finished
 * step is never run again; a step that was started and not finished is
 * re-checked (an evacuation: the server is looked at before another
 * evacuate is sent) or re-run (a takeover command, told so in its
 * environment: VIGIL_RESUMED=1).
 *
 * Stages (Masakari's four methods, spec/next-roles.md §3):
 *   reserved            takeover on a spare HA node (os_nova, N-1, N-14)
 *   auto                Nova evacuation, scheduler picks (hostha K-33)
 *   reserved_then_auto  takeover; if no spare succeeds, evacuate
 *   auto_then_reserved  evacuate; if it fails, takeover
 *   command             one operator command
 * A stage that fails hands over to the next; when none is left the
 * recovery fails (alarm; status/recovered stays False; the host stays
 * latched failed and forced down).
 */

/** A configured recovery method (spec/next-roles.md §3). */
export type RecoveryMethod = 'reserved' | 'auto' | 'reserved_then_auto' | 'auto_then_reserved' | 'command';
/** One stage of a method. */
export type Stage = 'takeover' | 'evacuate' | 'command';

/** The stages of a method, in order. */
export function stagesOf(m: RecoveryMethod): Stage[] {
  switch (m) {
    case 'reserved': return ['takeover'];
    case 'auto': return ['evacuate'];
    case 'reserved_then_auto': return ['takeover', 'evacuate'];
    case 'auto_then_reserved': return ['evacuate', 'takeover'];
    case 'command': return ['command'];
  }
}

/** A spare's progress in this incident. */
export type SpareStep = 'claimed' | 'takeover-started' | 'taken-over' | 'failed';
/** A server's progress. `started`: an evacuate was (maybe) sent for attempt `attempts`. */
export type ServerStep = 'pending' | 'started' | 'done' | 'failed';

export interface ServerRecord { step: ServerStep; attempts: number; dest?: string; error?: string }

/** The recovery record. Plain JSON. */
export interface RecoveryRecord {
  v: 1;
  incident: string;
  host: string;
  stages: Stage[];
  /** Index into stages of the running stage; stages.length when none is left. */
  stage: number;
  /** Spares tried, in order, with their progress. */
  spares: Record<string, SpareStep>;
  /** The spare being worked on. */
  spare?: string;
  nova: { forcedDown?: boolean; listed?: boolean; servers: Record<string, ServerRecord> };
  command?: 'started' | 'done' | 'failed';
  /** Set when the recovery ended. */
  outcome?: 'recovered' | 'failed';
  /** Every step written, with who wrote it: the evidence trail. */
  log: { atMs: number; by: string; step: string; detail?: string }[];
}

/** The configuration the planner needs. */
export interface RecoveryPlanConfig {
  self: string;
  /** Spare names in priority order (the runner fills it from config or KV). */
  sparePriority: readonly string[];
  evacuateConcurrency: number;
  evacuateRetries: number;
}

/** A spare as the runner sees it this moment. */
export interface SpareView {
  name: string;
  /** in_use is True. */
  inUse: boolean;
  /** The session holding in_use, if any. */
  session?: string;
  /** vigil's holder record beside in_use (`ha_nodes/<ha>/holder`). */
  holder?: { host?: string; incident?: string; step?: string };
  /** Healthy on every network (no critical check). */
  healthy: boolean;
  /** ModifyIndex of in_use (0 absent), for the check-index of the claim. */
  modifyIndex: number;
}

/** The next thing to do. `why` is logged before it is done. */
export type Plan =
  | { kind: 'claimSpare'; spare: string; resumed: boolean; why: string }
  | { kind: 'takeover'; spare: string; resumed: boolean; why: string }
  | { kind: 'releaseSpare'; spare: string; why: string }
  | { kind: 'forceDown'; why: string }
  | { kind: 'listServers'; why: string }
  | { kind: 'evacuate'; servers: string[]; why: string }
  | { kind: 'command'; resumed: boolean; why: string }
  | { kind: 'nextStage'; why: string }
  | { kind: 'finish'; outcome: 'recovered' | 'failed'; why: string }
  | { kind: 'done'; why: string };

/** A fresh record for an incident. */
export function newRecord(incident: string, host: string, method: RecoveryMethod): RecoveryRecord {
  return { v: 1, incident, host, stages: stagesOf(method), stage: 0, spares: {}, nova: { servers: {} }, log: [] };
}

/** Decode a stored record; undefined when absent or not this incident's (or not a record at all). */
export function decodeRecord(v: unknown, incident: string | undefined): RecoveryRecord | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const r = v as Partial<RecoveryRecord>;
  if (r.v !== 1 || typeof r.incident !== 'string' || !Array.isArray(r.stages) || typeof r.stage !== 'number') return undefined;
  if (incident !== undefined && r.incident !== incident) return undefined;
  return { ...r, spares: r.spares ?? {}, nova: { ...r.nova, servers: r.nova?.servers ?? {} }, log: r.log ?? [] } as RecoveryRecord;
}

/** True when a spare is free for `incident`: not in use, or an orphan claim whose holder's session is gone before its takeover finished (N-19). */
export function spareFree(s: SpareView, incident: string): boolean {
  if (!s.healthy) return false;
  if (s.session !== undefined) return false;
  if (!s.inUse) return true;
  // in_use True without a session: a finished takeover (a latch, N-9) unless our own holder record says the claim never got that far.
  return s.holder?.step === 'claimed' || (s.holder?.incident === incident && s.holder.step !== 'taken-over');
}

function stage(r: RecoveryRecord): Stage | undefined { return r.stages[r.stage]; }

/** A stage failed: the next stage, or the end when none is left. */
function failStage(r: RecoveryRecord, why: string): Plan {
  return r.stage + 1 < r.stages.length ? { kind: 'nextStage', why } : { kind: 'finish', outcome: 'failed', why };
}

function serversLeft(r: RecoveryRecord, cfg: RecoveryPlanConfig): string[] {
  return Object.entries(r.nova.servers)
    .filter(([, s]) => s.step === 'pending' || s.step === 'started' || (s.step === 'failed' && s.attempts <= cfg.evacuateRetries))
    .map(([id]) => id).sort();
}

/**
 * The next step. Pure: the same record and view give the same plan, so a
 * resumed monitor takes up exactly where the record says.
 */
export function planNext(r: RecoveryRecord, spares: readonly SpareView[], cfg: RecoveryPlanConfig): Plan {
  if (r.outcome) return { kind: 'done', why: `recovery already ${r.outcome}` };
  const st = stage(r);
  if (st === undefined) return { kind: 'finish', outcome: 'failed', why: `every stage failed (${r.stages.join(', ')})` };
  if (st === 'takeover') {
    const cur = r.spare;
    if (cur !== undefined) {
      const step = r.spares[cur];
      if (step === 'taken-over') return { kind: 'finish', outcome: 'recovered', why: `spare ${cur} took over` };
      if (step === 'failed') return { kind: 'releaseSpare', spare: cur, why: `takeover on ${cur} failed: releasing it` };
      const view = spares.find((s) => s.name === cur);
      // After a claimer's death its session is gone: the claim is ours to take again before the takeover runs.
      if (view && view.session === undefined) return { kind: 'claimSpare', spare: cur, resumed: true, why: `resuming: spare ${cur} was claimed by an earlier claimer (${step}); taking it again` };
      return { kind: 'takeover', spare: cur, resumed: step === 'takeover-started', why: step === 'takeover-started' ? `resuming the takeover on ${cur} (started, not confirmed done)` : `spare ${cur} claimed: running its takeover` };
    }
    const order = [...cfg.sparePriority];
    const free = order.filter((n) => !(n in r.spares)).map((n) => spares.find((s) => s.name === n)).filter((s): s is SpareView => s !== undefined && spareFree(s, r.incident));
    if (free.length === 0) {
      const tried = Object.keys(r.spares);
      return failStage(r, `no free healthy spare (tried: ${tried.join(', ') || 'none'}; known: ${order.join(', ') || 'none'})`);
    }
    return { kind: 'claimSpare', spare: free[0]!.name, resumed: false, why: `spare ${free[0]!.name} is free and healthy (priority ${order.indexOf(free[0]!.name) + 1})` };
  }
  if (st === 'command') {
    if (r.command === 'done') return { kind: 'finish', outcome: 'recovered', why: 'recovery command succeeded' };
    if (r.command === 'failed') return failStage(r, 'recovery command failed');
    return { kind: 'command', resumed: r.command === 'started', why: r.command === 'started' ? 'resuming the recovery command (started, not confirmed done)' : 'running the recovery command' };
  }
  // evacuate
  if (!r.nova.forcedDown) return { kind: 'forceDown', why: 'the host\'s nova-compute must be forced down and disabled before any evacuate' };
  if (!r.nova.listed) return { kind: 'listServers', why: 'listing the servers on the host' };
  const left = serversLeft(r, cfg);
  if (left.length > 0) return { kind: 'evacuate', servers: left, why: `${left.length} server(s) to evacuate or confirm, at most ${cfg.evacuateConcurrency} at once` };
  const failed = Object.entries(r.nova.servers).filter(([, s]) => s.step === 'failed').map(([id]) => id);
  if (failed.length === 0) return { kind: 'finish', outcome: 'recovered', why: `every server evacuated and confirmed (${Object.keys(r.nova.servers).length})` };
  return failStage(r, `evacuation failed for ${failed.join(', ')} after ${cfg.evacuateRetries + 1} attempt(s); the host stays forced down`);
}

/** A step's result, as the executor saw it. */
export type StepResult =
  | { kind: 'claimSpare'; spare: string; ok: boolean; detail?: string }
  | { kind: 'takeover'; spare: string; ok: boolean; detail: string }
  | { kind: 'releaseSpare'; spare: string }
  | { kind: 'forceDown'; ok: boolean; detail: string }
  | { kind: 'listServers'; ok: boolean; servers?: string[]; detail: string }
  | { kind: 'command'; ok: boolean; detail: string }
  | { kind: 'nextStage'; why: string }
  | { kind: 'finish'; outcome: 'recovered' | 'failed' };

/** Append to the log (bounded: the record is one KV value, 512 KiB at most). */
function logged(r: RecoveryRecord, atMs: number, by: string, step: string, detail?: string): RecoveryRecord {
  const log = [...r.log, { atMs, by, step, ...(detail !== undefined ? { detail: detail.slice(0, 300) } : {}) }];
  return { ...r, log: log.length > 200 ? log.slice(log.length - 200) : log };
}

function nextStage(r: RecoveryRecord, atMs: number, by: string, why: string): RecoveryRecord {
  const { spare: _s, ...rest } = r;
  return logged({ ...rest, stage: r.stage + 1 }, atMs, by, 'stage-failed', `${r.stages[r.stage]}: ${why}`);
}

/** The record to write before a plan is carried out (the intent, so a resumer knows it may have begun). */
export function markStarted(r: RecoveryRecord, p: Plan, atMs: number, by: string): RecoveryRecord {
  switch (p.kind) {
    case 'takeover': return logged({ ...r, spares: { ...r.spares, [p.spare]: 'takeover-started' } }, atMs, by, 'takeover-started', p.spare);
    case 'command': return logged({ ...r, command: 'started' }, atMs, by, 'command-started');
    default: return r;
  }
}

/** Fold a result in. Pure. */
export function applyResult(r: RecoveryRecord, res: StepResult, atMs: number, by: string): RecoveryRecord {
  switch (res.kind) {
    case 'claimSpare':
      if (res.ok) return logged({ ...r, spare: res.spare, spares: { ...r.spares, [res.spare]: r.spares[res.spare] === 'takeover-started' ? 'takeover-started' : 'claimed' } }, atMs, by, 'spare-claimed', res.spare);
      // Someone else got it first: it counts as tried, the next free one is claimed.
      return logged({ ...r, ...(r.spare === res.spare ? { spare: undefined } : {}), spares: { ...r.spares, [res.spare]: 'failed' } }, atMs, by, 'spare-claim-refused', `${res.spare}: ${res.detail ?? ''}`);
    case 'takeover':
      if (res.ok) return logged({ ...r, spares: { ...r.spares, [res.spare]: 'taken-over' } }, atMs, by, 'takeover-done', `${res.spare}: ${res.detail}`);
      return logged({ ...r, spares: { ...r.spares, [res.spare]: 'failed' } }, atMs, by, 'takeover-failed', `${res.spare}: ${res.detail}`);
    case 'releaseSpare': {
      const { spare: _s, ...rest } = r;
      return logged(rest, atMs, by, 'spare-released', res.spare);
    }
    case 'forceDown':
      if (res.ok) return logged({ ...r, nova: { ...r.nova, forcedDown: true } }, atMs, by, 'forced-down', res.detail);
      return nextStage(r, atMs, by, `force-down failed: ${res.detail}`);
    case 'listServers':
      if (!res.ok) return nextStage(r, atMs, by, `server list failed: ${res.detail}`);
      return logged({ ...r, nova: { ...r.nova, listed: true, servers: Object.fromEntries((res.servers ?? []).map((id) => [id, r.nova.servers[id] ?? { step: 'pending' as const, attempts: 0 }])) } }, atMs, by, 'servers-listed', `${(res.servers ?? []).length} server(s)`);
    case 'command':
      return logged({ ...r, command: res.ok ? 'done' : 'failed' }, atMs, by, res.ok ? 'command-done' : 'command-failed', res.detail);
    case 'nextStage':
      return nextStage(r, atMs, by, res.why);
    case 'finish':
      return logged({ ...r, outcome: res.outcome }, atMs, by, res.outcome);
  }
}

// ---- one server's evacuation ----

/** What Nova shows of a server (spec/bmc-and-nova.md §3d, §3e). */
export interface ServerView {
  id: string;
  status: string;
  host: string | null;
  taskState: string | null;
  /** The newest evacuation migration's status, if looked up. */
  migration?: string;
}

/** The verdict on one server for a given source host. */
export type ServerVerdict = 'done' | 'in-progress' | 'failed' | 'idle-on-source';

/**
 * Confirmation (§3e): done when the host changed and the task state is
 * idle and the server is not ERROR, or the migration record is `done`;
 * failed on ERROR or a migration `error`/`failed`; in progress while a
 * task runs; idle on the source: not evacuated (yet).
 */
export function serverVerdict(v: ServerView, source: string): ServerVerdict {
  if (v.migration === 'error' || v.migration === 'failed' || v.status === 'ERROR') return 'failed';
  if (v.migration === 'done' || v.migration === 'completed') return 'done';
  if (v.taskState !== null) return 'in-progress';
  if (v.host !== null && v.host !== source) return 'done';
  return 'idle-on-source';
}

/** Mark a server's evacuate as about to be sent (attempt n). */
export function serverStarted(r: RecoveryRecord, id: string, atMs: number, by: string): RecoveryRecord {
  const cur = r.nova.servers[id] ?? { step: 'pending', attempts: 0 };
  const next: ServerRecord = { step: 'started', attempts: cur.attempts + 1 };
  return logged({ ...r, nova: { ...r.nova, servers: { ...r.nova.servers, [id]: next } } }, atMs, by, 'evacuate-started', `${id} attempt ${next.attempts}`);
}

/** A server's final result for this attempt. */
export function serverFinished(r: RecoveryRecord, id: string, ok: boolean, detail: string, atMs: number, by: string, dest?: string): RecoveryRecord {
  const cur = r.nova.servers[id] ?? { step: 'started', attempts: 1 };
  const next: ServerRecord = ok ? { step: 'done', attempts: cur.attempts, ...(dest ? { dest } : {}) } : { step: 'failed', attempts: cur.attempts, error: detail.slice(0, 200) };
  return logged({ ...r, nova: { ...r.nova, servers: { ...r.nova.servers, [id]: next } } }, atMs, by, ok ? 'evacuate-done' : 'evacuate-failed', `${id}: ${detail}`);
}

/** A one-line summary for status and logs. */
export function summary(r: RecoveryRecord): Record<string, unknown> {
  const servers = Object.values(r.nova.servers);
  return {
    incident: r.incident, stage: r.stages[r.stage] ?? 'none', outcome: r.outcome ?? 'running', spare: r.spare, spares: r.spares,
    forcedDown: r.nova.forcedDown ?? false,
    servers: { total: servers.length, done: servers.filter((s) => s.step === 'done').length, failed: servers.filter((s) => s.step === 'failed').length },
    lastStep: r.log[r.log.length - 1]?.step,
  };
}
