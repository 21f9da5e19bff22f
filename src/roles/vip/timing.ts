/**
 * Layer: role state machine (pure), its timing: the durations the HA IP
 * machine derives from its config and state (how long a peer needs to take
 * over, when a master without carrier releases, a probe's learnt timeout,
 * the length of a native watch). Exported for the runner, the daemon's
 * health bound and the tests, which derive their waits from the same rules.
 */
import { learntTimeoutMs } from './rtt';
import type { VipMachineConfig, VipState } from './types';

/**
 * The longest a healthy peer needs to take over after the HA IP goes silent:
 * one check interval, then take_over_after probes with their timeouts.
 */
export function takeoverWindowMs(cfg: VipMachineConfig): number {
  return cfg.checkIntervalMs + cfg.takeOverAfter * (cfg.failureCheckIntervalMs + cfg.probeTimeoutMs);
}

/**
 * How long a master whose carrier is lost keeps the HA IP: until just before
 * the earliest moment a peer can have taken over. A peer's first silent probe
 * may have gone out just before the cut, so it can take over
 * (take_over_after - 1) × (failure_check_interval + probe_timeout) after it
 * (probe_timeout here: the floor of a learnt timeout, probe_timeout_min);
 * we release one probe timeout earlier, which leaves our own address removal
 * that margin. After any heal at most one node answers (no doubled takeover),
 * and a carrier flap shorter than this never moves the IP.
 */
export function carrierReleaseMs(cfg: VipMachineConfig): number {
  // A peer's learnt timeout may be as short as the floor: count with that.
  const t = probeTimeoutFloorMs(cfg);
  return Math.max(0, (cfg.takeOverAfter - 1) * (cfg.failureCheckIntervalMs + t) - t);
}

/** The timeout of the next probe: learnt from the round trip within [probe_timeout_min, probe_timeout]. */
export function probeTimeoutFor(s: Pick<VipState, 'rtt'>, cfg: Pick<VipMachineConfig, 'probeTimeoutMs' | 'probeTimeoutMinMs'>): number {
  return learntTimeoutMs(s.rtt, probeTimeoutFloorMs(cfg), cfg.probeTimeoutMs);
}

/** The shortest a probe may wait: probe_timeout_min, or probe_timeout when no floor is set or it is higher. */
function probeTimeoutFloorMs(cfg: Pick<VipMachineConfig, 'probeTimeoutMs' | 'probeTimeoutMinMs'>): number {
  return Math.min(cfg.probeTimeoutMs, cfg.probeTimeoutMinMs ?? cfg.probeTimeoutMs);
}

/**
 * How long a watch runs at most before the runner sees the role again: its
 * books (status, metrics, the learnt timeout) and a master's address upkeep
 * and group check are at most this old at rest. Carrier and address changes
 * do not wait for it (they come as events and end the watch).
 */
export const WATCH_SPAN_MS = 10_000;

/** Rounds of a watch `everyMs` apart: as many as fit in {@link WATCH_SPAN_MS}, 1..1000. */
export function watchRounds(everyMs: number): number {
  return Math.max(1, Math.min(1000, Math.floor(WATCH_SPAN_MS / Math.max(1, everyMs))));
}
