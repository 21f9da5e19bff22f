/**
 * Layer: roles, pure. The promote role's state machine (issue 17;
 * spec/next-roles.md §2d): `(state, event) → (state, effects)`, no I/O, no
 * clock of its own (every event carries the monotonic `nowMs`).
 *
 *   standby → candidate → promoting(step k) → promoted → demoting → standby
 *
 * Safety rules it enforces, as the operator reads them:
 * - no decision before the first successful witness contact, and none while
 *   the witness is unreachable (`witness-unknown`);
 * - peer probes only gate attempts: any `up` or `unknown` holds;
 * - the lease deadline is the send time of the last successful renewal +
 *   TTL; the holder starts demoting at `renew_interval × (retries + 1)`
 *   after that send time (config guarantees demote_timeout fits before the
 *   TTL) and in any case when the deadline passes;
 * - a step that crashed in `started` is never run again blindly: its
 *   `verify` decides, or the role stops and asks the operator (journal.ts);
 * - auto failback needs `healthy_checks` consecutive healthy checks over at
 *   least `healthy_for`, never after a fence, and demotes here first.
 */
import type { PromoteConfig } from './config';

/** Where the role is. `stopped`: waiting for the operator. */
export type Phase = 'standby' | 'candidate' | 'promoting' | 'promoted' | 'demoting' | 'stopped';

/** A tri-state probe outcome. */
export type Tri = 'up' | 'down' | 'unknown';

/** The fencing token of a held lease. */
export interface Hold { session: string; lockIndex: number }

/** The machine's state (persisted in the journal, except the counters). */
export interface PromoteState {
  phase: Phase;
  /** First successful witness contact seen (G1: no decision before it). */
  witnessSeen: boolean;
  hold?: Hold;
  /** Send time (monotonic ms) of the last successful acquire or renewal. */
  lastRenewSentMs?: number;
  /** When the lease was acquired (for acquire_after). */
  acquiredAtMs?: number;
  /** Next promote step to run while promoting; next demote step while demoting. */
  step: number;
  /** The old primary was fenced in this promotion: no auto failback. */
  fenced: boolean;
  /** Manual mode: the operator's grant. */
  granted: boolean;
  /** The grant was forced (`--force`, the peer's name typed): the peer probes do not gate. */
  grantForce: boolean;
  /** After a failback demote: no attempt until the peer is seen holding the lease. */
  yielded: boolean;
  /** Auto failback: consecutive healthy checks of the peer and since when. */
  peerHealthy: { count: number; sinceMs?: number };
  /** Where demoting goes when done. */
  afterDemote: 'standby' | 'stopped';
  /** Why the role stopped or last demoted. */
  reason?: string;
}

/** The inputs of one check, gathered by the runner. */
export interface CheckInputs {
  /** The witness answered this check. */
  witness: 'ok' | 'unreachable';
  /** The peer probes folded: `down` only when every probe says down (none configured: `down`). */
  peer: Tri;
  /** The ready probes folded: `up` only when all are up (none configured: `up`). */
  ready: Tri;
  /** The KV prerequisite holds (undefined: none configured). */
  prereq?: boolean;
  /** Another session holds the leader key (undefined: not read). */
  leaseHeldByOther?: boolean;
}

/** What the machine reacts to. */
export type PromoteEvent =
  | { type: 'check'; nowMs: number; inputs: CheckInputs }
  /** The give-up timer: only the holder's deadline is checked. */
  | { type: 'deadline'; nowMs: number }
  | { type: 'acquired'; nowMs: number; sentMs: number; hold: Hold }
  | { type: 'acquireFailed'; nowMs: number; why: string }
  | { type: 'renewed'; nowMs: number; sentMs: number }
  | { type: 'leaseLost'; nowMs: number; why: string }
  | { type: 'fenced'; nowMs: number; confirmed: boolean; evidence: string }
  | { type: 'stepDone'; nowMs: number; list: StepList; index: number }
  | { type: 'stepFailed'; nowMs: number; list: StepList; index: number; error: string }
  | { type: 'released'; nowMs: number }
  | { type: 'grant'; nowMs: number; force?: boolean }
  | { type: 'revoke'; nowMs: number };

/** Which step list. */
export type StepList = 'promote' | 'demote';

/** Effects as data; the runner carries them out and feeds back events. */
export type PromoteEffect =
  | { type: 'acquire' }
  | { type: 'fence' }
  | { type: 'runStep'; list: StepList; index: number }
  | { type: 'release' }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; event: string; detail?: Record<string, unknown> };

/** The state a fresh role starts in. */
export function initialState(): PromoteState {
  return { phase: 'standby', witnessSeen: false, step: 0, fenced: false, granted: false, grantForce: false, yielded: false, peerHealthy: { count: 0 }, afterDemote: 'standby' };
}

/** True while this site holds (and may act on) the lease at `nowMs`. */
export function leaseValid(s: PromoteState, cfg: PromoteConfig, nowMs: number): boolean {
  return s.hold !== undefined && s.lastRenewSentMs !== undefined && nowMs < s.lastRenewSentMs + cfg.ttlMs;
}

/** When the holder gives up: last renewal send + renew_interval × (retries + 1). */
export function giveUpAtMs(s: PromoteState, cfg: PromoteConfig): number | undefined {
  return s.lastRenewSentMs === undefined ? undefined : s.lastRenewSentMs + cfg.renewIntervalMs * (cfg.retries + 1);
}

const log = (level: 'info' | 'warn' | 'error', event: string, detail?: Record<string, unknown>): PromoteEffect => ({ type: 'log', level, event, ...(detail ? { detail } : {}) });

type Out = [PromoteState, PromoteEffect[]];

/** Start demoting (the lease is lost or given up): run demote steps, then release. */
export function stepDown(s: PromoteState, cfg: PromoteConfig, why: string, after: 'standby' | 'stopped' = 'standby'): Out {
  const next: PromoteState = { ...s, phase: 'demoting', step: 0, afterDemote: after, reason: why, peerHealthy: { count: 0 } };
  const fx: PromoteEffect[] = [log('warn', 'demote', { why })];
  if (cfg.demoteSteps.length > 0) return [next, [...fx, { type: 'runStep', list: 'demote', index: 0 }]];
  return [next, [...fx, { type: 'release' }]];
}

function dropHold(s: PromoteState): PromoteState {
  const { hold: _h, lastRenewSentMs: _l, acquiredAtMs: _a, ...rest } = s;
  return rest;
}

/** Start the promote steps (after acquire_after and the fence). */
function beginPromotion(s: PromoteState, cfg: PromoteConfig): Out {
  return [{ ...s, phase: 'promoting', step: 0 }, [log('info', 'promote-start', { step: cfg.promoteSteps[0]!.name, lockIndex: s.hold?.lockIndex }), { type: 'runStep', list: 'promote', index: 0 }]];
}

function mayAttempt(s: PromoteState, cfg: PromoteConfig, i: CheckInputs): string | undefined {
  if (!cfg.autoPromote) return 'auto_promote is false on this site';
  if (cfg.mode === 'manual' && !s.granted) return 'manual mode without a grant';
  if (s.yielded && i.leaseHeldByOther !== true) return 'yielded to the peer (failback)';
  if (i.leaseHeldByOther === true) return 'the peer holds the lease';
  if (i.ready !== 'up') return `ready probes ${i.ready}`;
  if (i.prereq === false) return 'prerequisite not met';
  if (i.peer !== 'down' && !s.grantForce) return `peer ${i.peer}`;
  return undefined;
}

function onCheck(s: PromoteState, cfg: PromoteConfig, nowMs: number, i: CheckInputs): Out {
  const holding = s.phase === 'candidate' || s.phase === 'promoting' || s.phase === 'promoted';
  if (holding && s.hold) {
    const giveUp = giveUpAtMs(s, cfg)!;
    if (nowMs >= giveUp || !leaseValid(s, cfg, nowMs)) return stepDown(s, cfg, 'lease not renewed in time');
    if (i.ready === 'down') return stepDown(s, cfg, 'ready probes failed while holding');
    if (cfg.mode === 'manual' && !s.granted) return stepDown(s, cfg, 'grant revoked');
  }
  if (i.witness !== 'ok') {
    return [s, [log('warn', 'witness-unknown', { phase: s.phase })]];
  }
  const seen: PromoteState = s.witnessSeen ? s : { ...s, witnessSeen: true };
  if (seen.phase === 'standby') {
    if (seen.yielded && i.leaseHeldByOther === true) return [{ ...seen, yielded: false }, [log('info', 'peer-took-over')]];
    const why = mayAttempt(seen, cfg, i);
    if (why !== undefined) return [seen, []];
    return [{ ...seen, phase: 'candidate' }, [log('info', 'attempt', { peer: i.peer, ready: i.ready }), { type: 'acquire' }]];
  }
  if (seen.phase === 'candidate' && seen.hold && seen.acquiredAtMs !== undefined && nowMs >= seen.acquiredAtMs + cfg.acquireAfterMs) {
    return afterAcquireWait(seen, cfg);
  }
  if (seen.phase === 'promoted') return failbackCheck(seen, cfg, nowMs, i);
  return [seen, []];
}

function afterAcquireWait(s: PromoteState, cfg: PromoteConfig): Out {
  if (cfg.fence.kind !== 'none') return [{ ...s, phase: 'candidate', acquiredAtMs: undefined }, [log('info', 'fence-start', { kind: cfg.fence.kind }), { type: 'fence' }]];
  return beginPromotion({ ...s, acquiredAtMs: undefined }, cfg);
}

function failbackCheck(s: PromoteState, cfg: PromoteConfig, nowMs: number, i: CheckInputs): Out {
  if (cfg.failback.mode !== 'auto' || s.fenced) return [s, []];
  if (i.peer !== 'up') return [{ ...s, peerHealthy: { count: 0 } }, []];
  const count = s.peerHealthy.count + 1;
  const sinceMs = s.peerHealthy.sinceMs ?? nowMs;
  const next = { ...s, peerHealthy: { count, sinceMs } };
  if (count >= cfg.failback.healthyChecks && nowMs - sinceMs >= cfg.failback.healthyForMs) {
    const [d, fx] = stepDown(next, cfg, 'failback: the peer has been healthy');
    return [{ ...d, yielded: true }, [log('info', 'failback', { checks: count, forMs: nowMs - sinceMs }), ...fx]];
  }
  return [next, []];
}

/** One transition. */
export function transition(s: PromoteState, cfg: PromoteConfig, e: PromoteEvent): Out {
  switch (e.type) {
    case 'check':
      if (s.phase === 'stopped') return [s, []];
      return onCheck(s, cfg, e.nowMs, e.inputs);
    case 'deadline': {
      const holding = s.phase === 'candidate' || s.phase === 'promoting' || s.phase === 'promoted';
      if (holding && s.hold && (e.nowMs >= giveUpAtMs(s, cfg)! || !leaseValid(s, cfg, e.nowMs))) return stepDown(s, cfg, 'lease not renewed in time');
      return [s, []];
    }
    case 'acquired': {
      if (s.phase !== 'candidate') return [s, [{ type: 'release' }]];
      const held: PromoteState = { ...s, hold: e.hold, lastRenewSentMs: e.sentMs, acquiredAtMs: e.nowMs, fenced: false };
      const fx: PromoteEffect[] = [log('info', 'lease-acquired', { ...e.hold })];
      if (cfg.acquireAfterMs > 0) return [held, fx];
      const [n, more] = afterAcquireWait(held, cfg);
      return [n, [...fx, ...more]];
    }
    case 'acquireFailed':
      return s.phase === 'candidate' ? [{ ...s, phase: 'standby' }, [log('info', 'not-acquired', { why: e.why })]] : [s, []];
    case 'renewed':
      // Never move the deadline back; a renewal counts only if sent while still held.
      if (!s.hold || s.lastRenewSentMs === undefined || e.sentMs >= s.lastRenewSentMs + cfg.ttlMs) return [s, []];
      return [{ ...s, lastRenewSentMs: Math.max(s.lastRenewSentMs, e.sentMs) }, []];
    case 'leaseLost':
      if (s.phase === 'candidate' || s.phase === 'promoting' || s.phase === 'promoted') return stepDown(dropHold(s), cfg, `lease lost: ${e.why}`);
      return [dropHold(s), []];
    case 'fenced':
      if (s.phase !== 'candidate') return [s, []];
      if (!e.confirmed) {
        return stepDown({ ...s, fenced: false }, cfg, 'fence-unconfirmed');
      }
      return beginPromotion({ ...s, fenced: true }, cfg);
    case 'stepDone':
    case 'stepFailed':
      return onStepEnd(s, cfg, e);
    case 'released':
      if (s.phase === 'demoting') {
        return [{ ...dropHold(s), phase: s.afterDemote, step: 0 }, [log(s.afterDemote === 'stopped' ? 'error' : 'info', s.afterDemote === 'stopped' ? 'stopped' : 'standby', { reason: s.reason })]];
      }
      return [dropHold(s), []];
    case 'grant':
      return [{ ...s, granted: true, grantForce: e.force === true, yielded: false }, [log('info', 'granted', { force: e.force === true })]];
    case 'revoke': {
      const n = { ...s, granted: false, grantForce: false };
      if (s.phase === 'candidate' || s.phase === 'promoting' || s.phase === 'promoted') return stepDown(n, cfg, 'grant revoked');
      return [n, [log('info', 'revoked')]];
    }
  }
}

function onStepEnd(s: PromoteState, cfg: PromoteConfig, e: Extract<PromoteEvent, { type: 'stepDone' | 'stepFailed' }>): Out {
  if (e.list === 'promote') {
    if (s.phase !== 'promoting' || e.index !== s.step) return [s, []];
    if (e.type === 'stepFailed') return stepDown(s, cfg, `promote step ${cfg.promoteSteps[e.index]!.name} failed: ${e.error}`, 'stopped');
    const next = e.index + 1;
    if (next < cfg.promoteSteps.length) return [{ ...s, step: next }, [{ type: 'runStep', list: 'promote', index: next }]];
    return [{ ...s, phase: 'promoted', step: next, peerHealthy: { count: 0 } }, [log('info', 'promoted', { lockIndex: s.hold?.lockIndex })]];
  }
  if (s.phase !== 'demoting' || e.index !== s.step) return [s, []];
  // A failed demote step does not stop the demotion: the rest still runs, and the lease is released.
  const fx: PromoteEffect[] = e.type === 'stepFailed' ? [log('error', 'demote-step-failed', { step: cfg.demoteSteps[e.index]!.name, error: e.error })] : [];
  const next = e.index + 1;
  if (next < cfg.demoteSteps.length) return [{ ...s, step: next }, [...fx, { type: 'runStep', list: 'demote', index: next }]];
  return [{ ...s, step: next }, [...fx, log('info', 'demote-done'), { type: 'release' }]];
}
