/**
 * Layer: role state machine (pure), its vocabulary: the state, the events
 * the runner feeds in and the effects it carries out (machine.ts has the
 * transitions, timing.ts the durations derived from the config).
 */
import type { Cidr } from '../../util/ip';
import type { RttEstimate } from './rtt';

/** Roles as operators say them. */
export type Role = 'inactive' | 'slave' | 'master' | 'stopping' | 'stopped';

/** What the role is waiting for, if anything (one transition at a time). */
export type Phase =
  | 'steady'
  | 'initial-on-slave'   // start as slave: on_slave once, as vzhaipd does
  | 'initial-remove'     // ...then drop leftovers of a previous run
  | 'takeover-add'       // becomeMaster: addresses being added
  | 'rollback-remove'    // add failed: removing what was added
  | 'stepdown-cmd'       // stepDown: on_slave running
  | 'stepdown-remove'    // stepDown: addresses being removed
  | 'stop-cmd'
  | 'stop-remove'
  | 'takeover-group'     // vip.group: the group activating after the HA IP came up
  | 'stepdown-group'     // vip.group: the group deactivating before on_slave and the removal
  | 'stop-group';

/** Timers the machine arms through `schedule` effects. */
export type TimerName = 'probe' | 'master-check' | 'link-release';

/** The outcome of one ARP probe: tri-state, never "error = down". */
export type ProbeOutcome =
  | { result: 'answered'; mac: string; rttMs: number }
  | { result: 'silent' }
  | { result: 'error'; error: string; linkDown?: boolean };

/** The part of the config the machine reads (durations in ms). */
export interface VipMachineConfig {
  haIp: Cidr;
  checkIntervalMs: number;
  failureCheckIntervalMs: number;
  takeOverAfter: number;
  /** The ceiling of the learnt probe timeout (and the timeout before any answer). */
  probeTimeoutMs: number;
  /** The floor of the learnt probe timeout; absent or ≥ probeTimeoutMs: a fixed timeout. */
  probeTimeoutMinMs?: number;
  masterCheckIntervalMs: number;
  announce: { count: number; intervalMs: number };
  hasOnMaster: boolean;
  hasOnSlave: boolean;
  /** vip.group: a resource group activated after a takeover, deactivated before a step-down. */
  hasGroup?: boolean;
  track?: { fall: number; rise: number };
}

/** Health-check bookkeeping (vip.track), like keepalived's track_script. */
export interface TrackState {
  ok: boolean;
  passes: number;
  fails: number;
}

/** The whole role state. Plain data, cheap to copy and to print (USR1, status). */
export interface VipState {
  role: Role;
  phase: Phase;
  sinceMs: number;
  /** Our MAC as of the last probe (it changes if the interface is re-created). */
  ownMac: string;
  /** Consecutive silent probes while slave. */
  failures: number;
  probeInFlight: boolean;
  /** What should be held as master: the HA IP first, then the IP file's. */
  desired: Cidr[];
  /** What we put on the interface (and believe is there), HA IP first. */
  held: Cidr[];
  lastProbe?: { atMs: number } & ProbeOutcome;
  /** The HA IP's round trip, learnt from answers (src/roles/vip/rtt.ts). */
  rtt?: RttEstimate;
  lastConflict?: { atMs: number; mac: string; kept: boolean };
  /** Master only: since when our own link has been down (carrier lost). */
  linkDownSinceMs?: number;
  /**
   * A check is wanted at once (carrier back, an address lost, events lost)
   * but a probe was in flight: its outcome schedules the next one at 0 ms.
   */
  checkSoon?: boolean;
  track?: TrackState;
  /** A TERM arrived mid-transition: stop as soon as it completes. */
  stopRequested: boolean;
  /**
   * Delay of a new slave's first probe: the runner draws it at random within
   * check_interval, so nodes started together do not take over together.
   */
  initialProbeDelayMs: number;
  /** Count of takeovers and step-downs since start, for status. */
  takeovers: number;
  stepDowns: number;
}

/** Events the runner feeds in. */
export type VipEvent =
  | { type: 'start'; nowMs: number; holdsHaIp: boolean; present: Cidr[]; initialProbeDelayMs?: number }
  | { type: 'timer'; nowMs: number; timer: TimerName }
  /**
   * `ownMac`: the MAC the probe went out with. An interface re-created
   * (or re-addressed) has a new MAC, and the conflict decision must compare
   * the one the other side sees now, not the one we started with.
   */
  | ({ type: 'probed'; nowMs: number; purpose: 'check' | 'conflict'; ownMac?: string; rttsMs?: number[] } & ProbeOutcome)
  /**
   * A `watch` passed all its rounds (see the effect): `rttsMs` are the round
   * trips of the answers it took, `mac` the holder that gave them (a slave's
   * watch). The timer it stood for fires now.
   * (A watch that met anything else comes back as `probed`, with the round
   * trips of the rounds before it in `rttsMs`.)
   */
  | { type: 'watched'; nowMs: number; timer: 'probe' | 'master-check'; purpose: 'check' | 'conflict'; rounds: number; rttsMs: number[]; mac?: string }
  | { type: 'added'; nowMs: number; added: Cidr[]; failed: { cidr: Cidr; error: string }[] }
  | { type: 'removed'; nowMs: number; removed: Cidr[]; failed: { cidr: Cidr; error: string }[] }
  /** `added`: addresses found missing and put back (they need announcing). */
  | { type: 'reconciled'; nowMs: number; held: Cidr[]; added?: Cidr[]; errors: string[] }
  | { type: 'commandDone'; nowMs: number; which: 'on_master' | 'on_slave'; ok: boolean; detail: string }
  | { type: 'desired'; nowMs: number; addresses: Cidr[] }
  | { type: 'track'; nowMs: number; ok: boolean; detail: string }
  /**
   * A release notice heard on the wire: `mac` says it no longer holds the HA
   * IP. `probeDelayMs` is the runner's random spread before the confirming
   * probe, so that several slaves do not all take over in the same instant.
   */
  | { type: 'released'; nowMs: number; mac: string; probeDelayMs: number }
  /**
   * Carrier of the HA interface changed (a netlink event; only changes are
   * fed). `probeDelayMs` (carrier back): the runner's random spread before a
   * slave's first probe, so slaves healed together do not probe, count and
   * take over in lockstep (and all run on_master until the next master check).
   */
  | { type: 'link'; nowMs: number; up: boolean; probeDelayMs?: number }
  /** An address we hold disappeared from the interface, and not by our hand. */
  | { type: 'addressLost'; nowMs: number; address: Cidr }
  /** Link/address events were lost (the event socket overran): check everything now. */
  | { type: 'resync'; nowMs: number }
  | { type: 'stop'; nowMs: number }
  /** vip.group: the group's activate / deactivate ended; `ok` is its exit 0. */
  | { type: 'groupDone'; nowMs: number; op: 'activate' | 'deactivate'; ok: boolean; detail: string }
  /**
   * vip.group: at a master check the group was found no longer active (the
   * daemon's group monitor deactivated it after too many member failures, or
   * an operator did): the service is gone from this node, so the HA IP goes.
   */
  | { type: 'groupLost'; nowMs: number; detail: string };

/** Effects the runner carries out. */
export type VipEffect =
  | { type: 'schedule'; timer: TimerName; afterMs: number }
  | { type: 'cancel'; timer: TimerName }
  | { type: 'probe'; purpose: 'check' | 'conflict'; ip: string; timeoutMs: number }
  /**
   * The steady state's probing without waking the runner per probe: up to
   * `rounds` times, wait `everyMs` then probe `ip` (timeout `timeoutMs`);
   * each round passes if `expectMac` answers (a slave) or, without it,
   * nobody does (a master's conflict probe). All passed: a `watched` event,
   * then the timer `timer` is due. The first round that does not pass comes
   * back as a `probed` event at once. It stands for `timer`: scheduling or
   * cancelling that timer, or a probe of its purpose, ends it. A runner that
   * cannot run it natively schedules `timer` after `everyMs` instead, which
   * is the same thing one round at a time.
   */
  | { type: 'watch'; timer: 'probe' | 'master-check'; purpose: 'check' | 'conflict'; ip: string; expectMac?: string; everyMs: number; timeoutMs: number; rounds: number }
  | { type: 'addAddresses'; addresses: Cidr[] }
  | { type: 'removeAddresses'; addresses: Cidr[] }
  | { type: 'reconcile'; desired: Cidr[]; remove: Cidr[] }
  | { type: 'announce'; addresses: Cidr[]; count: number; intervalMs: number }
  /** Tell the peers we no longer hold `ip` (a release notice), right after removing it. */
  | { type: 'release'; ip: string }
  | { type: 'runCommand'; which: 'on_master' | 'on_slave' }
  | { type: 'roleChanged'; from: Role; to: Role; reason: string }
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string; data?: Record<string, unknown> }
  | { type: 'exit'; code: number }
  /** vip.group: activate or deactivate the group (one at a time; `groupDone` follows). */
  | { type: 'group'; op: 'activate' | 'deactivate' };

/** A transition's result. */
export interface Step { state: VipState; effects: VipEffect[] }
