/**
 * Layer: role `group`, pure. What the daemon does with one monitor result
 * of a member of an active group (Pacemaker's migration-threshold /
 * failure-timeout): a member that is not running is restarted, up to
 * `migration_threshold` times within `failure_timeout`; one failure more
 * and the whole group is deactivated (and its owner lock released), so a
 * standby may take over. Effects as data; the runner carries them out.
 */

/** Failure times per member (ms, monotonic), newest last. */
export type FailureLog = Readonly<Record<string, readonly number[]>>;

/** What to do after a monitor result. */
export type MonitorEffect =
  | { kind: 'none' }
  | { kind: 'restart'; member: string; /** 1 for the first restart within failure_timeout */ attempt: number; reason: string }
  | { kind: 'deactivate'; reason: string };

/** The policy's settings (from the group config). */
export interface MonitorPolicy { migrationThreshold: number; failureTimeoutMs: number }

/**
 * One monitor result → the new failure log and the effect. `running`
 * changes nothing (failures expire by time alone, as Pacemaker's
 * failure-timeout does).
 */
export function onMonitorResult(log: FailureLog, member: string, status: { state: 'running' | 'stopped' | 'failed'; reason?: string; detail?: string },
  nowMs: number, p: MonitorPolicy): { log: FailureLog; effect: MonitorEffect } {
  if (status.state === 'running') return { log, effect: { kind: 'none' } };
  const recent = (log[member] ?? []).filter((t) => nowMs - t < p.failureTimeoutMs);
  const failures = [...recent, nowMs];
  const next = { ...log, [member]: failures };
  const why = status.state === 'failed' ? `failed: ${status.reason ?? 'unknown'}` : 'stopped';
  if (failures.length > p.migrationThreshold) {
    return { log: next, effect: { kind: 'deactivate', reason: `${member} ${why}: failure ${failures.length} within ${p.failureTimeoutMs} ms exceeds migration_threshold ${p.migrationThreshold}` } };
  }
  return { log: next, effect: { kind: 'restart', member, attempt: failures.length, reason: why } };
}
