/**
 * Layer: pure. Resets of a latched host: the guard both the operator's
 * `vigil monitor reset` (cli.ts) and `auto_clear_after` (machine.ts) put in
 * front of the reset txn (kvschema.ts resetTxn), and the automatic one's
 * counting. Split from machine.ts and kvschema.ts along this seam.
 */
import { COMPUTE_KEYS, computeKey, resetTxn, type TxnOp } from './kvschema';
import type { HostMachineConfig, HostState, MonitorEvent, MonitorStep } from './machine';

/** Journal steps after which an incident is over (machine.ts JournalStep). */
export const FINISHED_STEPS: readonly string[] = ['fenced', 'fence-unconfirmed', 'aborted', 'recovered', 'recovery-failed'];

/**
 * The guard of a reset (the operator's `vigil monitor reset` and
 * `auto_clear_after`), from the incident key as read: a finished incident
 * (fenced, fence-unconfirmed, aborted, recovered, recovery-failed) may be
 * reset while its claimer still holds the key (the claimer then releases
 * it); one still claiming or fencing may not, nor — with recovery
 * configured — a `fenced` incident whose row evacuates (its recovery is
 * running; a reset would stop it half-way: machine.ts recoveryOpen). The
 * returned op makes the txn fail if the incident key changed since it was
 * read (check-index), or appeared (check-not-exists).
 */
export function resetGuard(prefix: string, host: string, read: { session?: string; journal?: Record<string, unknown>; modifyIndex: number } | undefined, recovery: boolean): { ops: TxnOp[] } | { refused: string } {
  const key = computeKey(prefix, host, COMPUTE_KEYS.incident);
  const step = read?.journal?.step;
  const actions = read?.journal?.actions;
  const recovering = step === 'fenced' && recovery && Array.isArray(actions) && actions.includes('evacuate');
  if (read?.session && (recovering || !(typeof step === 'string' && FINISHED_STEPS.includes(step)))) {
    return { refused: `a monitor holds ${key} (an incident is in flight: ${recovering ? 'fenced, recovery running' : typeof step === 'string' ? step : 'claimed'}; wait for it or for its session to end)` };
  }
  return { ops: [{ KV: read ? { Verb: 'check-index', Key: key, Index: read.modifyIndex } : { Verb: 'check-not-exists', Key: key } }] };
}

/**
 * `auto_clear_after` (off by default): a latched host, or one whose incident
 * this monitor finished, that is up on every network for N consecutive
 * samples gets its latches cleared as `vigil monitor reset` would — the same
 * txn and the same guard on the incident key (resetGuard above: never
 * while a fence or a recovery is in flight; check-index so a claim taken
 * meanwhile wins). The reset then reaches the machines through KV like an
 * operator's. Any sample not all-up starts the count again.
 */
export function autoClear(s: HostState, ev: Extract<MonitorEvent, { type: 'sampled' }>, cfg: HostMachineConfig): MonitorStep {
  const n = cfg.autoClearAfter;
  if (n === undefined) return { state: s, effects: [] };
  const allUp = cfg.networks.every((net) => ev.samples[net]?.state === 'up');
  const run = allUp ? (s.healthyRun ?? 0) + 1 : 0;
  if (run < n) return { state: { ...s, healthyRun: run }, effects: [] };
  const inc = ev.stored.incident;
  const g = resetGuard(cfg.kvPrefix, cfg.host, inc ? { ...(inc.session ? { session: inc.session } : {}), ...(inc.journal ? { journal: inc.journal } : {}), modifyIndex: inc.modifyIndex ?? 0 } : undefined, cfg.recovery === true);
  if ('refused' in g) {
    return { state: { ...s, healthyRun: 0 }, effects: [{ type: 'log', level: 'info', msg: `auto_clear_after: ${run} healthy samples, but not cleared: ${g.refused}`, data: { host: s.host, phase: s.phase } }] };
  }
  return {
    state: { ...s, healthyRun: 0 },
    effects: [
      { type: 'log', level: 'warn', msg: `auto_clear_after: ${run} consecutive healthy samples on every network: clearing the latches and counters (as vigil monitor reset)`, data: { host: s.host, phase: s.phase, incident: inc?.journal?.id } },
      { type: 'autoClear', host: s.host, ops: [...g.ops, ...resetTxn(cfg.kvPrefix, cfg.host)], healthy: run },
    ],
  };
}

