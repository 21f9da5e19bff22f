/**
 * Layer: role state machine (pure). One monitored host's incident:
 * `monitorTransition(state, event, cfg) → {state, effects}`, no I/O, no
 * clock (time comes in events as `nowMs`), effects as data for the runner.
 *
 *   healthy ⇄ suspect ──(confirmed row without fencing)──► degraded (notify)
 *      │         │
 *      │         └──(confirmed row with fence/ipmi)──► awaiting-guards
 *      │                      │ guards fail ──► held (alarm; re-evaluated next round)
 *      │                      │ guards pass ──► claiming ──refused──► observing
 *      │                                          │ acquired
 *      │                                      latching (status/failed=True, check-session)
 *      │                                          │ written          │ refused: claim lost, no fence
 *      │                                      fencing (power off, poll until off)
 *      │                                 off │           │ not off / BMC error
 *      │                  (silence_check) checking-silence  fence-unconfirmed (alarm; terminal)
 *      │                     silent │         │ answers / unverifiable
 *      │                         fenced      aborted (alarm; terminal)
 *   any ──maintenance on──► maintenance;  terminal/latched ──operator reset──► healthy
 *
 * Rules the transitions keep:
 * - nothing downstream runs unless the BMC confirmed power off (and, with
 *   silence_check, the host is silent): {@link mayRecover} is true only in
 *   `fenced` while the claim is held (K-31 is the defect this prevents);
 * - every write after the claim goes through a txn with check-session, so a
 *   monitor that lost its claim writes nothing (N-17);
 * - a fence is never started without a held claim and a latch written;
 * - the decision (matrix row, samples, counts, guards) is logged before the
 *   first effect that acts (logDecision precedes claimIncident);
 * - a host whose `status/failed` is True from an earlier incident is
 *   `latched` until an operator resets it (N-9), unless the incident journal
 *   shows an unfinished claim whose holder is gone (its session was
 *   released): then the incident is resumed, not latched forever (N-19).
 *
 * Part 2 (recovery: spare takeover, evacuation) extends `fenced` with its
 * own steps, written to the same journal under the same claim.
 */
import type { Sample, SampleState } from './samples';
import { applySamples, confirmStates, counterWrite, storedCounts, type ConfirmState, type CounterWrite, type StoredCounts } from './counter';
import { decide, fencesHost, type Matrix, type MatrixAction } from './matrix';
import { failedGuards, type GuardReport } from './guards';
import { COMPUTE_KEYS, computeKey, encodeJson, journalTxn, latchTxn, type TxnOp } from './kvschema';
import { autoClear } from './reset';
import type { BmcProtocol, FenceMethod } from './config';

/** Where a host's incident stands. */
export type Phase =
  | 'healthy' | 'suspect' | 'degraded' | 'awaiting-guards' | 'held' | 'claiming' | 'observing' | 'latching'
  | 'fencing' | 'checking-silence' | 'fenced' | 'fence-unconfirmed' | 'aborted' | 'latched' | 'maintenance'
  // Part 2: a recovery's end (recovery/executor.ts ran from `fenced`).
  | 'recovered' | 'recovery-failed';

/** Steps written to the incident journal (the value of `<host>/incident`). Part 2 adds its own. */
export type JournalStep = 'claimed' | 'fencing' | 'fenced' | 'fence-unconfirmed' | 'aborted' | 'recovered' | 'recovery-failed';

/** Phases in which an effect is out and the next event must be its result. */
const IN_FLIGHT: readonly Phase[] = ['claiming', 'latching', 'fencing', 'checking-silence'];
/** Phases that end an incident until an operator (or part 2) moves on. */
const TERMINAL: readonly Phase[] = ['fenced', 'fence-unconfirmed', 'aborted', 'recovered', 'recovery-failed'];
const UNFINISHED_STEPS: readonly string[] = ['claimed', 'fencing'];

/** The per-host machine's configuration (from MonitorConfig and the host's entry). */
export interface HostMachineConfig {
  host: string;
  /** This monitor's name (written into the journal). */
  self: string;
  networks: readonly string[];
  confirm: number;
  matrix: Matrix;
  kvPrefix: string;
  fenceMethod: FenceMethod;
  bmcProtocol: BmcProtocol;
  fenceEvent: string;
  powerTimeoutMs: number;
  powerWaitMs: number;
  silenceCheck: boolean;
  lockDelayMs: number;
  sessionTtlMs: number;
  /** Maintenance from the config (KV maintenance arrives with each sample). */
  maintenance: boolean;
  /** Part 2: recovery is configured, so a `fenced` journal whose row evacuates is unfinished until recovered. */
  recovery?: boolean;
  /** Clear a latched host's latches after this many consecutive all-up samples; absent: never (operator reset only). */
  autoClearAfter?: number;
}

/** What the runner read from KV for this host this round. */
export interface StoredHostView {
  counts: StoredCounts;
  failed: boolean;
  maintenance: boolean;
  incident?: { session?: string; journal?: Record<string, unknown>; modifyIndex?: number };
}

/** The decision of the last confirmed row. */
export interface DecisionRecord { row: string; description: string; actions: readonly MatrixAction[] }

/** The state of one host. Plain data, printed by status. */
export interface HostState {
  host: string;
  phase: Phase;
  sinceMs: number;
  counts: Record<string, number>;
  confirmed: Record<string, ConfirmState>;
  samples: Record<string, Sample>;
  decision?: DecisionRecord;
  guards?: GuardReport;
  /** Our session while we hold the incident claim. */
  session?: string;
  incidentId?: string;
  /** A counter write is out: these counts are adopted when it succeeds. */
  pending?: { write: CounterWrite; samples: Record<string, Sample>; nowMs: number };
  /** The claim was lost while an effect was in flight: its result must not be acted on. */
  claimLost?: boolean;
  fence?: { method: FenceMethod | BmcProtocol; network?: string; outcome?: string };
  /** The last alarm raised, so a held host does not alarm every round. */
  lastAlarm?: string;
  /** Resuming an incident whose fence an earlier claimer confirmed: the fence is not repeated (part 2). */
  resumedFence?: { by?: unknown; atMs?: unknown };
  /** auto_clear_after: consecutive all-up samples seen while latched or finished. */
  healthyRun?: number;
}

/** Fence outcome as the executor saw it after polling the power state. */
export type FenceOutcome = 'off' | 'not-off' | 'error';

/** Events the runner feeds in. */
export type MonitorEvent =
  | { type: 'sampled'; nowMs: number; samples: Record<string, Sample>; stored: StoredHostView }
  | { type: 'counterWritten'; nowMs: number; ok: boolean }
  | { type: 'guards'; nowMs: number; report: GuardReport }
  | { type: 'claimResult'; nowMs: number; acquired: true; session: string }
  | { type: 'claimResult'; nowMs: number; acquired: false; holder?: string; reason: string }
  | { type: 'claimLost'; nowMs: number; reason: string }
  | { type: 'latchWritten'; nowMs: number; ok: boolean; detail?: string }
  | { type: 'fenceResult'; nowMs: number; outcome: FenceOutcome; powerState?: string; detail: string }
  | { type: 'silenceChecked'; nowMs: number; answered: { network: string; addr: string }[]; errors: string[] }
  | { type: 'operatorReset'; nowMs: number }
  | { type: 'recoveryEnded'; nowMs: number; outcome: 'recovered' | 'failed'; detail: string }
  | { type: 'maintenance'; nowMs: number; on: boolean };

/** Why an alarm is raised. */
export type AlarmReason = 'guards' | 'unconfirmed-network' | 'fence-unconfirmed' | 'still-answers' | 'silence-unverified' | 'claim-lost' | 'recovery-failed';

/** Effects the runner carries out; results come back as events. */
export type MonitorEffect =
  | { type: 'writeCounter'; host: string; ops: TxnOp[]; counts: Record<string, number>; numberFails: number }
  | { type: 'evaluateGuards'; host: string; states: Record<string, ConfirmState> }
  | { type: 'logDecision'; host: string; verdict: string; row?: string; description?: string; actions: readonly MatrixAction[]; samples: Record<string, { state: SampleState; reasons: string[] }>; counts: Record<string, number>; guards?: GuardReport }
  | { type: 'notify'; host: string; row: string; states: Record<string, ConfirmState> }
  | { type: 'claimIncident'; host: string; key: string; lockDelayMs: number; ttlMs: number; checks: readonly string[]; value: string }
  | { type: 'writeLatch'; host: string; step: JournalStep; ops: TxnOp[] }
  | { type: 'fence'; host: string; method: FenceMethod; protocol: BmcProtocol; network?: string; event?: string; powerTimeoutMs: number; powerWaitMs: number }
  | { type: 'checkSilence'; host: string; targets: { network: string; node: string; addr?: string }[] }
  | { type: 'alarm'; host: string; reason: AlarmReason; detail: string }
  | { type: 'releaseClaim'; host: string; key: string; session: string }
  | { type: 'autoClear'; host: string; ops: TxnOp[]; healthy: number }
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string; data?: Record<string, unknown> };

/** One step's result. */
export interface MonitorStep { state: HostState; effects: MonitorEffect[] }

/** A host nobody has sampled yet. */
export function initialHostState(host: string, nowMs = 0): HostState {
  return { host, phase: 'healthy', sinceMs: nowMs, counts: {}, confirmed: {}, samples: {} };
}

/** True only when recovery (part 2) may act: power off confirmed, silence checked if asked, claim held. */
export function mayRecover(s: HostState): boolean {
  return s.phase === 'fenced' && s.session !== undefined && !s.claimLost;
}

const incidentKey = (cfg: HostMachineConfig) => computeKey(cfg.kvPrefix, cfg.host, COMPUTE_KEYS.incident);

function to(s: HostState, phase: Phase, nowMs: number, extra: Partial<HostState> = {}): HostState {
  return { ...s, ...extra, phase, sinceMs: phase === s.phase ? s.sinceMs : nowMs };
}

function alarm(s: HostState, reason: AlarmReason, detail: string): { lastAlarm: string; effects: MonitorEffect[] } {
  const key = `${reason}:${detail}`;
  return { lastAlarm: key, effects: s.lastAlarm === key ? [] : [{ type: 'alarm', host: s.host, reason, detail }] };
}

function journal(s: HostState, cfg: HostMachineConfig, step: JournalStep, nowMs: number): Record<string, unknown> {
  return { id: s.incidentId, step, by: cfg.self, atMs: nowMs, row: s.decision?.row, actions: s.decision?.actions, fence: s.fence };
}

function sampleView(samples: Record<string, Sample>): Record<string, { state: SampleState; reasons: string[] }> {
  return Object.fromEntries(Object.entries(samples).map(([n, x]) => [n, { state: x.state, reasons: x.reasons }]));
}

/** One step. Pure. */
export function monitorTransition(s: HostState, ev: MonitorEvent, cfg: HostMachineConfig): MonitorStep {
  switch (ev.type) {
    case 'sampled': return onSampled(s, ev, cfg);
    case 'counterWritten': return onCounterWritten(s, ev, cfg);
    case 'guards': return onGuards(s, ev, cfg);
    case 'claimResult': return onClaim(s, ev, cfg);
    case 'claimLost': return onClaimLost(s, ev);
    case 'latchWritten': return onLatchWritten(s, ev, cfg);
    case 'fenceResult': return onFenceResult(s, ev, cfg);
    case 'silenceChecked': return onSilence(s, ev, cfg);
    case 'recoveryEnded': return onRecoveryEnded(s, ev, cfg);
    case 'operatorReset': return onReset(s, ev, cfg);
    case 'maintenance': return onMaintenance(s, ev, ev.on);
  }
}

function ignore(s: HostState, why: string, data?: Record<string, unknown>): MonitorStep {
  return { state: s, effects: [{ type: 'log', level: 'debug', msg: `event ignored: ${why}`, data: { host: s.host, phase: s.phase, ...data } }] };
}

function onSampled(s: HostState, ev: Extract<MonitorEvent, { type: 'sampled' }>, cfg: HostMachineConfig): MonitorStep {
  const base: HostState = { ...s, samples: ev.samples };
  // An incident in progress or finished is not re-decided from samples.
  if (IN_FLIGHT.includes(s.phase)) return { state: base, effects: [] };
  if (TERMINAL.includes(s.phase)) return autoClear(base, ev, cfg);
  if (cfg.maintenance || ev.stored.maintenance) {
    if (s.phase === 'maintenance') return { state: base, effects: [] };
    return { state: to(base, 'maintenance', ev.nowMs), effects: [{ type: 'log', level: 'info', msg: 'host in maintenance: not counted, never acted on', data: { host: s.host } }] };
  }
  const inc = ev.stored.incident;
  if (inc?.session !== undefined && inc.session !== s.session) {
    return { state: to(base, 'observing', ev.nowMs), effects: s.phase === 'observing' ? [] : [{ type: 'log', level: 'info', msg: 'another monitor holds this host\'s incident', data: { host: s.host, holder: inc.session, journal: inc.journal } }] };
  }
  let resume: Partial<HostState> = {};
  if (ev.stored.failed) {
    const step = inc?.journal?.step;
    const j = inc?.journal;
    // Part 2: fenced, recovery configured, the row recovers, not ended: resume the recovery, not the fence.
    const recoveryOpen = step === 'fenced' && cfg.recovery === true && Array.isArray(j?.actions) && (j.actions as unknown[]).includes('evacuate');
    if (recoveryOpen) {
      resume = { resumedFence: { by: j!.by, atMs: j!.atMs }, ...(typeof j!.id === 'string' ? { incidentId: j!.id } : {}), ...(typeof j!.fence === 'object' && j!.fence !== null ? { fence: j!.fence as HostState['fence'] } : {}) };
    } else if (!(typeof step === 'string' && UNFINISHED_STEPS.includes(step))) {
      if (s.phase === 'latched') return autoClear(base, ev, cfg);
      return { state: to({ ...base, healthyRun: 0 }, 'latched', ev.nowMs), effects: [{ type: 'log', level: 'warn', msg: `status/failed is latched: no action until an operator resets it (vigil monitor reset)${cfg.autoClearAfter ? ` or ${cfg.autoClearAfter} consecutive healthy samples (auto_clear_after)` : ''}`, data: { host: s.host, journal: inc?.journal } }] };
    }
    // An unfinished incident whose claimer is gone: resume it (after the guards, like a new one).
  }
  const counts = applySamples(storedCounts(ev.stored.counts, cfg.networks), Object.fromEntries(Object.entries(ev.samples).map(([n, x]) => [n, x.state])), cfg.networks);
  const write = counterWrite(cfg.kvPrefix, cfg.host, ev.stored.counts, counts);
  const from0 = s.phase === 'maintenance' || s.phase === 'observing' || s.phase === 'latched' ? to(base, 'healthy', ev.nowMs) : base;
  const from = { ...from0, ...resume };
  if (write) {
    return {
      state: { ...from, pending: { write, samples: ev.samples, nowMs: ev.nowMs } },
      effects: [{ type: 'writeCounter', host: s.host, ops: write.ops, counts: write.counts, numberFails: write.numberFails }],
    };
  }
  return evaluate(from, counts, ev.samples, ev.nowMs, cfg);
}

function onCounterWritten(s: HostState, ev: Extract<MonitorEvent, { type: 'counterWritten' }>, cfg: HostMachineConfig): MonitorStep {
  if (!s.pending) return ignore(s, 'no counter write pending');
  const { pending, ...rest } = s;
  if (!ev.ok) {
    // CAS lost to another monitor: the runner re-reads and feeds `sampled` again.
    return { state: rest, effects: [{ type: 'log', level: 'debug', msg: 'counter CAS failed: re-read and retry', data: { host: s.host } }] };
  }
  return evaluate(rest, pending.write.counts, pending.samples, pending.nowMs, cfg);
}

function evaluate(s: HostState, counts: Record<string, number>, samples: Record<string, Sample>, nowMs: number, cfg: HostMachineConfig): MonitorStep {
  const states = Object.fromEntries(Object.entries(samples).map(([n, x]) => [n, x.state]));
  const confirmed = confirmStates(counts, states, cfg.networks, cfg.confirm);
  const st: HostState = { ...s, counts, confirmed, samples };
  const d = decide(cfg.matrix, confirmed);
  if (cfg.networks.every((n) => confirmed[n] === 'up')) {
    const effects: MonitorEffect[] = s.phase === 'healthy' ? [] : [{ type: 'log', level: 'info', msg: 'host healthy on every network', data: { host: s.host, was: s.phase } }];
    const { decision: _d, guards: _g, lastAlarm: _a, ...clean } = st;
    return { state: to(clean, 'healthy', nowMs), effects };
  }
  if (d.kind === 'hold') {
    const downNets = cfg.networks.filter((n) => confirmed[n] === 'down');
    if (downNets.length > 0) {
      const a = alarm(st, 'unconfirmed-network', `confirmed down on ${downNets.join(', ')}, but ${d.reason}: holding`);
      return { state: to({ ...st, lastAlarm: a.lastAlarm }, 'suspect', nowMs), effects: a.effects };
    }
    return { state: to(st, 'suspect', nowMs), effects: [] };
  }
  const decision: DecisionRecord = { row: d.row, description: d.description, actions: d.actions };
  const changed = s.decision?.row !== d.row;
  const notify: MonitorEffect[] = changed && d.actions.includes('email') ? [{ type: 'notify', host: s.host, row: d.row, states: confirmed }] : [];
  if (!fencesHost(d.actions)) {
    const effects: MonitorEffect[] = changed ? [
      { type: 'logDecision', host: s.host, verdict: `row ${d.row}: no fencing (${d.actions.filter((a) => a !== 'email').join(', ') || 'nothing'} left to recovery)`, row: d.row, description: d.description, actions: d.actions, samples: sampleView(samples), counts },
      ...notify,
    ] : [];
    return { state: to({ ...st, decision }, 'degraded', nowMs), effects };
  }
  // Logged (without guards yet) before the notification goes out; the guards' verdict is logged when it comes.
  const logged: MonitorEffect[] = changed ? [{ type: 'logDecision', host: s.host, verdict: `row ${d.row}: confirmed, evaluating guards`, row: d.row, description: d.description, actions: d.actions, samples: sampleView(samples), counts }] : [];
  return {
    state: to({ ...st, decision }, 'awaiting-guards', nowMs),
    effects: [...logged, ...notify, { type: 'evaluateGuards', host: s.host, states: confirmed }],
  };
}

function onGuards(s: HostState, ev: Extract<MonitorEvent, { type: 'guards' }>, cfg: HostMachineConfig): MonitorStep {
  if (s.phase !== 'awaiting-guards' && s.phase !== 'held') return ignore(s, 'no decision awaits guards');
  const d = s.decision!;
  const log: MonitorEffect = {
    type: 'logDecision', host: s.host, verdict: ev.report.ok ? `row ${d.row}: guards pass, claiming the incident` : `row ${d.row}: held by guards`,
    row: d.row, description: d.description, actions: d.actions, samples: sampleView(s.samples), counts: s.counts, guards: ev.report,
  };
  if (!ev.report.ok) {
    const a = alarm(s, 'guards', failedGuards(ev.report));
    return { state: to({ ...s, guards: ev.report, lastAlarm: a.lastAlarm }, 'held', ev.nowMs), effects: [log, ...a.effects] };
  }
  const incidentId = s.incidentId ?? `${cfg.host}-${ev.nowMs}`;
  const st = to({ ...s, guards: ev.report, incidentId }, 'claiming', ev.nowMs);
  return {
    state: st,
    effects: [log, {
      type: 'claimIncident', host: s.host, key: incidentKey(cfg), lockDelayMs: cfg.lockDelayMs, ttlMs: cfg.sessionTtlMs,
      // Bound to the claimer's own serfHealth: a dead claimer's claim is released (N-19).
      checks: ['serfHealth'], value: encodeJson(journal(st, cfg, st.resumedFence ? 'fenced' : 'claimed', ev.nowMs)),
    }],
  };
}

function onClaim(s: HostState, ev: Extract<MonitorEvent, { type: 'claimResult' }>, cfg: HostMachineConfig): MonitorStep {
  if (s.phase !== 'claiming') return ignore(s, 'no claim requested');
  if (!ev.acquired) {
    return { state: to(s, 'observing', ev.nowMs), effects: [{ type: 'log', level: 'info', msg: 'incident claimed by another monitor: observing', data: { host: s.host, holder: ev.holder, reason: ev.reason } }] };
  }
  const st = to({ ...s, session: ev.session, claimLost: false }, 'latching', ev.nowMs);
  // A resumed recovery keeps the journal at `fenced`: were we to die now, the next claimer must not fence again.
  const step: JournalStep = st.resumedFence ? 'fenced' : 'claimed';
  return { state: st, effects: [{ type: 'writeLatch', host: s.host, step, ops: latchTxn(cfg.kvPrefix, cfg.host, 'failed', ev.session, journal(st, cfg, step, ev.nowMs)) }] };
}

function onClaimLost(s: HostState, ev: Extract<MonitorEvent, { type: 'claimLost' }>): MonitorStep {
  if (s.session === undefined) return ignore(s, 'no claim held');
  const { session: _s, ...rest } = s;
  const a = alarm(s, 'claim-lost', `incident claim lost in phase ${s.phase}: ${ev.reason}`);
  if (s.phase === 'fencing' || s.phase === 'checking-silence') {
    // The executor cannot be stopped mid-power-off; its result is logged, not acted on.
    return { state: { ...rest, claimLost: true, lastAlarm: a.lastAlarm }, effects: a.effects };
  }
  if (TERMINAL.includes(s.phase)) return { state: { ...rest, lastAlarm: a.lastAlarm }, effects: a.effects };
  return { state: to({ ...rest, lastAlarm: a.lastAlarm }, 'observing', ev.nowMs), effects: a.effects };
}

function fenceEffect(s: HostState, cfg: HostMachineConfig): { effect: Extract<MonitorEffect, { type: 'fence' }>; log?: MonitorEffect } {
  const actions = s.decision?.actions ?? [];
  const common = { type: 'fence' as const, host: s.host, protocol: cfg.bmcProtocol, powerTimeoutMs: cfg.powerTimeoutMs, powerWaitMs: cfg.powerWaitMs };
  // `ipmi` in the row is a hard power-off through the BMC (K-30); `fence` is the host's method (K-29).
  if (!actions.includes('fence')) return { effect: { ...common, method: cfg.bmcProtocol } };
  if (cfg.fenceMethod === 'event') {
    const up = cfg.networks.find((n) => s.confirmed[n] === 'up');
    if (up) return { effect: { ...common, method: 'event', network: up, event: cfg.fenceEvent } };
    // hostha falls back to IPMI when the host is up on no network (K-29).
    return { effect: { ...common, method: cfg.bmcProtocol }, log: { type: 'log', level: 'info', msg: 'fence by event impossible (host up on no network): BMC power-off', data: { host: s.host } } };
  }
  return { effect: { ...common, method: cfg.fenceMethod } };
}

function onLatchWritten(s: HostState, ev: Extract<MonitorEvent, { type: 'latchWritten' }>, cfg: HostMachineConfig): MonitorStep {
  if (s.phase === 'latching') {
    if (!ev.ok || s.claimLost || s.session === undefined) {
      const { session: _s, ...rest } = s;
      const a = alarm(s, 'claim-lost', `latch not written (check-session failed: ${ev.detail ?? 'claim lost'}): not fencing`);
      return { state: to({ ...rest, lastAlarm: a.lastAlarm }, 'observing', ev.nowMs), effects: a.effects };
    }
    if (s.resumedFence) {
      return { state: to(s, 'fenced', ev.nowMs), effects: [{ type: 'log', level: 'warn', msg: 'incident resumed after its claimer was gone: power-off already confirmed, the fence is not repeated; recovery resumes', data: { host: s.host, incident: s.incidentId, fencedBy: s.resumedFence.by, fencedAtMs: s.resumedFence.atMs } }] };
    }
    const f = fenceEffect(s, cfg);
    return {
      state: to({ ...s, fence: { method: f.effect.method, ...(f.effect.network ? { network: f.effect.network } : {}) } }, 'fencing', ev.nowMs),
      effects: [...(f.log ? [f.log] : []), f.effect],
    };
  }
  if (!ev.ok) return { state: s, effects: [{ type: 'log', level: 'warn', msg: 'incident journal not written (check-session failed)', data: { host: s.host, phase: s.phase, detail: ev.detail } }] };
  return { state: s, effects: [] };
}

function journalWrite(s: HostState, cfg: HostMachineConfig, step: JournalStep, nowMs: number): MonitorEffect[] {
  return s.session === undefined ? [] : [{ type: 'writeLatch', host: s.host, step, ops: journalTxn(cfg.kvPrefix, cfg.host, s.session, journal(s, cfg, step, nowMs)) }];
}

function onFenceResult(s: HostState, ev: Extract<MonitorEvent, { type: 'fenceResult' }>, cfg: HostMachineConfig): MonitorStep {
  if (s.phase !== 'fencing') return ignore(s, 'no fence in flight');
  const fence = { ...s.fence!, outcome: ev.outcome === 'off' ? 'off' : `${ev.outcome}: ${ev.detail}` };
  if (s.claimLost) {
    return { state: to({ ...s, fence, claimLost: false }, 'observing', ev.nowMs), effects: [{ type: 'log', level: 'warn', msg: 'fence finished after the claim was lost: result not recorded; the next claimer re-confirms', data: { host: s.host, outcome: ev.outcome, detail: ev.detail } }] };
  }
  if (ev.outcome !== 'off') {
    // "BMC unreachable" is never "fenced" (K-31): nothing downstream may run.
    const st = to({ ...s, fence }, 'fence-unconfirmed', ev.nowMs);
    const a = alarm(s, 'fence-unconfirmed', `power off not confirmed (${ev.outcome}: ${ev.detail}${ev.powerState ? `, power state ${ev.powerState}` : ''}): no recovery`);
    return { state: { ...st, lastAlarm: a.lastAlarm }, effects: [...a.effects, ...journalWrite(st, cfg, 'fence-unconfirmed', ev.nowMs)] };
  }
  if (cfg.silenceCheck) {
    const targets = cfg.networks.map((n) => ({ network: n, node: s.samples[n]?.node ?? cfg.host, ...(s.samples[n]?.addr ? { addr: s.samples[n]!.addr! } : {}) }));
    return { state: to({ ...s, fence }, 'checking-silence', ev.nowMs), effects: [{ type: 'checkSilence', host: s.host, targets }] };
  }
  const st = to({ ...s, fence }, 'fenced', ev.nowMs);
  return { state: st, effects: [{ type: 'log', level: 'warn', msg: 'host fenced: power off confirmed by the BMC', data: { host: s.host, fence } }, ...journalWrite(st, cfg, 'fenced', ev.nowMs)] };
}

function onSilence(s: HostState, ev: Extract<MonitorEvent, { type: 'silenceChecked' }>, cfg: HostMachineConfig): MonitorStep {
  if (s.phase !== 'checking-silence') return ignore(s, 'no silence check in flight');
  if (s.claimLost) return { state: to({ ...s, claimLost: false }, 'observing', ev.nowMs), effects: [{ type: 'log', level: 'warn', msg: 'silence check finished after the claim was lost', data: { host: s.host } }] };
  if (ev.answered.length > 0 || ev.errors.length > 0) {
    const still = ev.answered.length > 0;
    const st = to(s, 'aborted', ev.nowMs);
    const a = alarm(s, still ? 'still-answers' : 'silence-unverified', still
      ? `BMC reports off but the host still answers on ${ev.answered.map((x) => `${x.network} (${x.addr})`).join(', ')}: aborted, no recovery`
      : `silence could not be verified (${ev.errors.join('; ')}): aborted, no recovery`);
    return { state: { ...st, lastAlarm: a.lastAlarm }, effects: [...a.effects, ...journalWrite(st, cfg, 'aborted', ev.nowMs)] };
  }
  const st = to(s, 'fenced', ev.nowMs);
  return { state: st, effects: [{ type: 'log', level: 'warn', msg: 'host fenced: power off confirmed and silent on every network', data: { host: s.host } }, ...journalWrite(st, cfg, 'fenced', ev.nowMs)] };
}

function onRecoveryEnded(s: HostState, ev: Extract<MonitorEvent, { type: 'recoveryEnded' }>, cfg: HostMachineConfig): MonitorStep {
  if (s.phase !== 'fenced' || s.session === undefined) return ignore(s, 'no recovery under our claim');
  const { session, ...rest } = s;
  // The end (status/recovered, the journal's last step) is already in KV, written under the claim; the claim goes now.
  const release: MonitorEffect = { type: 'releaseClaim', host: s.host, key: incidentKey(cfg), session };
  if (ev.outcome === 'recovered') {
    return { state: to(rest, 'recovered', ev.nowMs), effects: [{ type: 'log', level: 'warn', msg: 'host recovered; it stays latched and disabled until an operator resets it', data: { host: s.host, incident: s.incidentId, detail: ev.detail } }, release] };
  }
  const a = alarm(s, 'recovery-failed', `recovery failed (${ev.detail}): the host stays fenced, forced down and latched`);
  return { state: to({ ...rest, lastAlarm: a.lastAlarm }, 'recovery-failed', ev.nowMs), effects: [...a.effects, release] };
}

function onReset(s: HostState, ev: Extract<MonitorEvent, { type: 'operatorReset' }>, cfg: HostMachineConfig): MonitorStep {
  if (IN_FLIGHT.includes(s.phase)) return { state: s, effects: [{ type: 'log', level: 'warn', msg: `reset refused while ${s.phase}: retry when the step ends`, data: { host: s.host } }] };
  const effects: MonitorEffect[] = [{ type: 'log', level: 'info', msg: 'operator reset: latches and counters cleared', data: { host: s.host, was: s.phase } }];
  if (s.session !== undefined) effects.push({ type: 'releaseClaim', host: s.host, key: incidentKey(cfg), session: s.session });
  return { state: initialHostState(s.host, ev.nowMs), effects };
}

function onMaintenance(s: HostState, ev: Extract<MonitorEvent, { type: 'maintenance' }>, on: boolean): MonitorStep {
  if (IN_FLIGHT.includes(s.phase)) return { state: s, effects: [{ type: 'log', level: 'warn', msg: `maintenance change refused while ${s.phase}: retry when the step ends`, data: { host: s.host } }] };
  if (on) return { state: to(s, 'maintenance', ev.nowMs), effects: [{ type: 'log', level: 'info', msg: 'maintenance on', data: { host: s.host } }] };
  if (s.phase !== 'maintenance') return { state: s, effects: [] };
  return { state: to({ ...s, counts: {} }, 'healthy', ev.nowMs), effects: [{ type: 'log', level: 'info', msg: 'maintenance off', data: { host: s.host } }] };
}
