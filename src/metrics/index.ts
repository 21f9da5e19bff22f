/**
 * Layer: metrics. What roles and clients call to report: a thin façade that
 * does nothing until the daemon enables metrics (a `metrics:` section), so a
 * process that is never scraped, above all the fence-event handler that
 * Consul starts per event, never loads prom-client or pays for its
 * collectors. See `registry.ts` for the families and their labels.
 */
import type * as Registry from './registry';
import { countsPath } from '../roles/fence-event/counts';

type Sink = Pick<typeof Registry, 'setRoleState' | 'countTransition' | 'countProbe' | 'countTakeover' | 'countConflict' | 'countCommand' | 'countConsulRequest' | 'watchArpDelivered'>;

let sink: Sink | undefined;

/**
 * Load the registry and start recording. Call before the roles start, so
 * their first state counts. `stateDir`: where this config's fence-event
 * handler keeps its running totals (read at scrape time).
 */
export async function enableMetrics(stateDir?: string): Promise<void> {
  const reg = await import('./registry');
  if (stateDir !== undefined) reg.watchFenceEventCounts(countsPath(stateDir));
  sink ??= reg;
}

/** True once {@link enableMetrics} ran. */
export function metricsEnabled(): boolean {
  return sink !== undefined;
}

/** The role is now in `state` (a change counts as a transition). */
export function setRoleState(role: string, state: string): void {
  sink?.setRoleState(role, state);
}

/** A transition of something other than the role's own state (a monitored host's phase), counted only. */
export function countTransition(role: string, from: string, to: string): void {
  sink?.countTransition(role, from, to);
}

/** One probe's outcome; `rttMs` for an answered one. */
export function countProbe(role: string, kind: string, result: string, rttMs?: number): void {
  sink?.countProbe(role, kind, result, rttMs);
}

/** This node took over (`up`) or gave up (`down`) what the role guards. */
export function countTakeover(role: string, dir: 'up' | 'down'): void {
  sink?.countTakeover(role, dir);
}

/** A split-brain conflict, settled by keeping or yielding. */
export function countConflict(role: string, kept: boolean): void {
  sink?.countConflict(role, kept);
}

/** An operator command's result, by the config key that names it. */
export function countCommand(command: string, result: 'ok' | 'failed' | 'timeout' | 'aborted' | 'spawn_error'): void {
  sink?.countCommand(command, result);
}

/** One Consul request's outcome. */
export function countConsulRequest(method: string, path: string, result: string): void {
  sink?.countConsulRequest(method, path, result);
}

/** Where the role's ARP socket counts delivered frames (read at scrape time). */
export function watchArpDelivered(role: string, read: () => number | undefined): void {
  sink?.watchArpDelivered(role, read);
}
