/**
 * Layer: config, pure. The `vip:` section: its schema with the documented
 * defaults (src/roles/vip/sample.yml), its type, and its normalisation.
 *
 * Cross-key rules (each reported on the first key named):
 * - `vip.failure_check_interval` must not exceed `vip.check_interval` (the
 *   retry after a failed probe is the fast path);
 * - `vip.probe_timeout` must not exceed `vip.master_check_interval` (a
 *   master's probe must end before its next check is due); a slave's probes
 *   are sequential (the next is scheduled when the last has ended), so a
 *   `failure_check_interval` of 0 is a confirmation burst, not an overlap;
 * - `vip.probe_timeout_min` must not exceed `vip.probe_timeout` (the learnt
 *   timeout lies between them);
 * - `vip.track.timeout` (default: the track interval) must not exceed
 *   `vip.track.interval`;
 * - `vip.container` is required with `backend: vzctl` and refused with
 *   `backend: netlink`.
 */
import { resolve } from 'node:path';
import type { Command } from '../../actions/commands';
import type { Cidr } from '../../util/ip';
import { canonicalIPv6, parseAnyCidr } from '../../util/ip6';
import { command, duration, int, leaf, list, path, section, type Schema } from '../../config/kinds';
import { formatValue, ms, notLonger, toCommand, type AddProblem } from '../../config/normalize';

/** `vip.track`: a keepalived-style health check of the service. */
export interface TrackConfig {
  command: Command;
  intervalMs: number;
  /** Consecutive failures that make a master step down. */
  fall: number;
  /** Consecutive passes before a failing node may take over again. */
  rise: number;
  timeoutMs: number;
}

/** The HA IP role (`vip:`). */
export interface VipConfig {
  interface: string;
  /** The HA cluster IP: probed, added first, removed last. */
  address: Cidr;
  ipFile?: string;
  checkIntervalMs: number;
  failureCheckIntervalMs: number;
  takeOverAfter: number;
  /** The ceiling of the learnt probe timeout, and the timeout before any answer was heard. */
  probeTimeoutMs: number;
  /** The floor of the learnt probe timeout (equal to probeTimeoutMs: a fixed timeout). */
  probeTimeoutMinMs: number;
  masterCheckIntervalMs: number;
  ipFileCheckIntervalMs: number;
  /** `routers`: IPv6 neighbours each IPv6 announcement round also goes to by unicast (canonical text). */
  announce: { count: number; intervalMs: number; routers?: string[] };
  onMaster?: Command;
  onSlave?: Command;
  /** A group of the `group:` section that the takeover activates and the step-down deactivates. */
  group?: string;
  commandTimeoutMs: number;
  track?: TrackConfig;
  /** How addresses are applied: netlink on `interface`, or vzctl into a container. */
  backend: 'netlink' | 'vzctl';
  container?: string;
  vzctl: string;
  vzlist: string;
  containerSettleMs: number;
  /**
   * Neighbours that must answer before silence counts (a slave) or while
   * holding the IP (a master). Undefined: the default gateway when it is on
   * the interface's subnet, resolved at start; [] turns the gate off.
   */
  neighbours?: string[];
}

/** The floor of the learnt probe timeout when `probe_timeout_min` is not set. */
export const DEFAULT_PROBE_TIMEOUT_MIN_MS = 20;

/** The schema of `vip:`; `track.timeout` defaults to the track interval (filled in below). */
export const VIP_SCHEMA: Schema = section('a mapping with the HA IP settings (interface and address are required)', {
  interface: leaf({ kind: 'ifname' }),
  address: leaf({ kind: 'cidr', defaultPrefix: 32, ipv6: true }),
  ip_file: path(),
  check_interval: duration('1s'),
  failure_check_interval: duration('200ms', 0),
  take_over_after: int(1, 1000, 3),
  probe_timeout: duration('200ms', 10, 60_000),
  probe_timeout_min: duration(undefined, 5, 60_000),
  master_check_interval: duration('2s'),
  ip_file_check_interval: duration('5s'),
  announce: section('a mapping with the keys count, interval and routers', {
    count: int(0, 100, 3),
    interval: duration('1s', 0, 60_000),
    routers: list('a list of IPv6 routers on the HA interface (link-local allowed) to send each unsolicited NA to by unicast too', leaf({ kind: 'ipv6Neighbour' }), { uniqueItems: true, maxItems: 8 }),
  }, { default: {} }),
  on_master: command(),
  on_slave: command(),
  group: leaf({ kind: 'name' }),
  command_timeout: duration('30s', 100),
  track: section('a mapping with the keys command (required), interval, fall, rise and timeout', {
    command: command(),
    interval: duration('2s', 100),
    fall: int(1, 1000, 3),
    rise: int(1, 1000, 2),
    timeout: duration(undefined, 100),
  }, { required: ['command'] }),
  backend: leaf({ kind: 'enum', values: ['netlink', 'vzctl'] }, 'netlink'),
  container: leaf({ kind: 'ctid' }),
  vzctl: leaf({ kind: 'program' }, 'vzctl'),
  vzlist: leaf({ kind: 'program' }, 'vzlist'),
  container_settle: duration('30s', 0),
  neighbours: list('a list of IPv4 addresses of neighbours on the HA interface (for example the gateway)', leaf({ kind: 'ipv4' }), { uniqueItems: true, maxItems: 16 }),
}, { required: ['interface', 'address'] });

/** The validated `vip:` mapping → {@link VipConfig}, with the cross-key rules. */
export function normalizeVip(v: Record<string, any>, add: AddProblem, file?: Readonly<Record<string, unknown>>): VipConfig {
  const out: VipConfig = {
    interface: v.interface,
    address: parseAnyCidr(v.address, 32, 128)!,
    ...(v.ip_file !== undefined ? { ipFile: resolve(v.ip_file) } : {}),
    checkIntervalMs: ms(v.check_interval),
    failureCheckIntervalMs: ms(v.failure_check_interval),
    takeOverAfter: v.take_over_after,
    probeTimeoutMs: ms(v.probe_timeout),
    // Default 20 ms (or probe_timeout when shorter): twenty times a LAN's round trip.
    probeTimeoutMinMs: v.probe_timeout_min === undefined ? Math.min(DEFAULT_PROBE_TIMEOUT_MIN_MS, ms(v.probe_timeout)) : ms(v.probe_timeout_min),
    masterCheckIntervalMs: ms(v.master_check_interval),
    ipFileCheckIntervalMs: ms(v.ip_file_check_interval),
    announce: {
      count: v.announce.count, intervalMs: ms(v.announce.interval),
      ...(v.announce.routers !== undefined ? { routers: (v.announce.routers as string[]).map((r) => canonicalIPv6(r)!) } : {}),
    },
    ...(v.on_master !== undefined ? { onMaster: toCommand(v.on_master) } : {}),
    ...(v.on_slave !== undefined ? { onSlave: toCommand(v.on_slave) } : {}),
    ...(v.group !== undefined ? { group: v.group as string } : {}),
    commandTimeoutMs: ms(v.command_timeout),
    backend: v.backend,
    ...(v.container !== undefined ? { container: String(v.container) } : {}),
    vzctl: v.vzctl,
    vzlist: v.vzlist,
    containerSettleMs: ms(v.container_settle),
    ...(v.neighbours !== undefined ? { neighbours: [...(v.neighbours as string[])] } : {}),
  };
  if (v.track) {
    const interval = ms(v.track.interval);
    const track: TrackConfig = {
      command: toCommand(v.track.command),
      intervalMs: interval,
      fall: v.track.fall,
      rise: v.track.rise,
      timeoutMs: v.track.timeout === undefined ? interval : ms(v.track.timeout),
    };
    notLonger(add, ['vip', 'track', 'timeout'], track.timeoutMs, 'vip.track.interval', interval, 'a check must end before the next is due');
    out.track = track;
  }
  notLonger(add, ['vip', 'failure_check_interval'], out.failureCheckIntervalMs, 'vip.check_interval', out.checkIntervalMs,
    'the retry after a failed probe is the fast path');
  notLonger(add, ['vip', 'probe_timeout_min'], out.probeTimeoutMinMs, 'vip.probe_timeout', out.probeTimeoutMs,
    'the learnt timeout lies between probe_timeout_min and probe_timeout');
  notLonger(add, ['vip', 'probe_timeout'], out.probeTimeoutMs, 'vip.master_check_interval', out.masterCheckIntervalMs,
    'a probe must end before the next one is due');
  if (out.group !== undefined && file) {
    const groups = (file.group ?? {}) as Record<string, Record<string, unknown>>;
    const g = groups[out.group];
    if (!g) add(['vip', 'group'], `${formatValue(out.group)} is not a group of the group section (expected one of: ${Object.keys(groups).join(', ') || 'none: add a group section'})`);
    // One driver per group: the vip role's takeover, or the group role's autostart, never both.
    else if (g.autostart === true) add(['vip', 'group'], `${formatValue(out.group)} has autostart: true (expected a group the vip role alone drives: autostart false)`);
  }
  if (out.backend === 'vzctl' && out.container === undefined) {
    add(['vip', 'container'], 'is required but missing with backend vzctl (expected the CTID of the container that gets the addresses)');
  }
  if (out.backend === 'netlink' && out.container !== undefined) {
    add(['vip', 'container'], `${formatValue(v.container)} is set but backend is netlink (expected no container, or backend: vzctl)`);
  }
  return out;
}
