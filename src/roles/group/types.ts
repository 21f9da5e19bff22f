/**
 * Layer: role `group`, types. The normalised config, the member contract
 * (validate / start / stop / monitor, after the OCF agent API) and the
 * effects a plan lists.
 */
import type { Command } from '../../actions/commands';
import type { Cidr } from '../../util/ip';

/** The four hooks, run one at a time in event order. */
export type HookName = 'before_start' | 'after_start' | 'before_stop' | 'after_stop';

/** An `address` member: an IPv4/prefix on an interface, announced by ARP. */
export interface AddressMember { type: 'address'; name: string; cidr: Cidr; interface: string; arp: { count: number; intervalMs: number; unicast: string[] } }
/** A `unit` member: a systemd unit through systemd's D-Bus API, or the `systemctl` argv. */
export interface UnitMember { type: 'unit'; name: string; unit: string; backend: 'auto' | 'dbus' | 'systemctl'; systemctl: string; timeoutMs: number }
/** A `symlink` member: resource-agents `symlink` semantics. */
export interface SymlinkMember { type: 'symlink'; name: string; link: string; target: string; backupSuffix: string }
/** A `hostname` member: transient hostname plus managed blocks in hosts (and resolv.conf). */
export interface HostnameMember {
  type: 'hostname'; name: string; hostname: string; address?: string; aliases: string[];
  hostsFile: string; resolvConf?: string; nameservers: string[]; hostnameFile: string; setCommand: string[];
}
/** A `command` member: argv (or shell string) for start, stop and monitor. */
export interface CommandMember {
  type: 'command'; name: string; start: Command; stop?: Command; monitor?: Command;
  timeoutMs: number; stopTimeoutMs: number; killGraceMs: number;
}
/** Any member, as configured; `monitorIntervalMs` overrides the group's `monitor_interval` (daemon). */
export type MemberConfig = (AddressMember | UnitMember | SymlinkMember | HostnameMember | CommandMember) & { monitorIntervalMs?: number };

/** One group, normalised (durations in ms). */
export interface GroupConfig {
  name: string;
  members: MemberConfig[];
  hooks: Partial<Record<HookName, Command>>;
  hookTimeoutMs: number;
  onStopFailure: 'block' | 'continue';
  stateDir: string;
  lockTimeoutMs: number;
  /** The daemon activates it at start and monitors it (runner.ts). */
  autostart: boolean;
  monitorIntervalMs: number;
  /** Restarts of a failed member within `failureTimeoutMs` before the whole group is deactivated. */
  migrationThreshold: number;
  failureTimeoutMs: number;
  probe: { count: number; intervalMs: number; timeoutMs: number };
  /** The Consul owner lock (owner-lock.ts), when configured. */
  ownerLock?: OwnerLockConfig;
}

/** `owner_lock:` normalised. `node` unset: the config's top-level `node`, else the hostname. */
export interface OwnerLockConfig {
  url: string; tokenFile?: string; key: string; node?: string; lockDelayMs: number;
  /** Session TTL; unset: none. Set, the daemon renews the session of an active group every ttl/2. */
  ttlMs?: number;
}

/** What a member's monitor reports (OCF: SUCCESS / NOT_RUNNING / error). */
export type MemberStatus = { state: 'running'; detail?: string } | { state: 'stopped'; detail?: string } | { state: 'failed'; reason: string };

/** Outcome of a start or stop: ok, or failed with a reason and the tail of its output. */
export type StepOutcome = { ok: true; detail?: string; /** left in place on purpose: skip the read-back */ kept?: boolean } | { ok: false; reason: string; output?: string };

/** One effect as data: what a plan lists and what the journal records. */
export interface Effect { member: string; op: string; detail: string }

/**
 * A member driver. `monitor` and `validate` only read; `start` and `stop`
 * are idempotent (a second start does nothing, stop of an absent resource
 * succeeds). `plan` lists the effects `start`/`stop` would carry out from
 * the given status, without doing anything.
 */
export interface Member {
  readonly config: MemberConfig;
  /** Problems that make the member unusable, in words; empty when fine. */
  validate(): Promise<string[]>;
  monitor(): Promise<MemberStatus>;
  start(): Promise<StepOutcome>;
  stop(): Promise<StepOutcome>;
  plan(op: 'start' | 'stop'): Effect[];
  /**
   * Finish a start that a crash interrupted after the resource came up
   * (journal: `starting`, monitor: running), e.g. the address's
   * announcements. Optional; a plain second start stays effect-free.
   */
  complete?(): Promise<StepOutcome>;
  /**
   * True when {@link monitor} has side effects (spawns a user command): a
   * dry run must not call it and reads the journal instead.
   */
  readonly monitorSpawns: boolean;
}

/** Exit codes of `vigil group` (documented in the README). */
export const EXIT = { OK: 0, INTERNAL: 1, CONFIG: 2, REFUSED: 3, ROLLED_BACK: 4, NOT_ROLLED_BACK: 5 } as const;
