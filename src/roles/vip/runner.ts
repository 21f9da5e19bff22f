/**
 * Layer: role runner. Drives the pure HA IP machine (machine.ts) on the
 * monotonic clock and carries out its effects through an injected
 * {@link VipIo}: ARP probes and announcements, address changes, the
 * operator's commands. Each effect's outcome goes back in as an event.
 *
 * Events are processed one at a time through a queue, so a timer that fires
 * while an effect completes cannot interleave two transitions.
 */
import { performance } from 'node:perf_hooks';
import { setLogRole, type Logger } from '../../log';
import type { Cidr } from '../../util/ip';
import { formatCidr } from '../../util/ip';
import type { VipConfig } from './config';
import { errorMessage } from '../../errors';
import {
  initialState, probeTimeoutFor, transition, type ProbeOutcome, type TimerName, type VipEffect, type VipEvent,
  type VipMachineConfig, type VipState,
} from './machine';
import { readIpFile, watchIpFile, type IpFileRead } from './ipfile';
import { recordVipStep } from './metrics';
import { watchArpDelivered } from '../../metrics';
import type { ListedCidr } from '../../actions/addresses';

/** Outcome of a batch address change. */
export interface BatchOutcome { done: Cidr[]; failed: { cidr: Cidr; error: string }[] }

/** Everything the runner does to the world, injectable for tests. */
export interface VipIo {
  /** The MAC our probes and announcements go out with, at start. */
  readonly ownMac: string;
  /**
   * One probe. `ownMac`, when known, is the MAC this probe went out with: it
   * changes if the interface is re-created, and conflicts are decided on it.
   */
  probe(ip: string, timeoutMs: number, purpose?: 'check' | 'conflict'): Promise<ProbeOutcome & { ownMac?: string }>;
  /** The neighbour gate for status: what is probed (or why nothing), and the last answer. */
  neighbourStatus?(): Record<string, unknown>;
  /** ARP socket counters: `delivered` = frames the kernel filter let through to JavaScript. */
  arpStatus?(): Record<string, unknown> | undefined;
  /**
   * Run a `watch` effect natively (see the effect's doc), or undefined when
   * it cannot be (an IPv6 HA IP, a binding without the native loop, a master
   * without netlink events or with backend vzctl): the runner then schedules
   * the timer instead. `done` never settles after `stop()`.
   */
  watch?(w: WatchEffect): { done: Promise<WatchOutcome>; stop(): void } | undefined;
  /** The native loop's counters for status: how long ago its last round passed (ms). */
  watchStatus?(): { active: boolean; ageMs: number; lastRttMs: number; rounds: number; totalRounds: number; taken: number } | undefined;
  /** Re-apply the kernel filter's standing interests (after the neighbour list changed). */
  refreshInterests?(): void;
  announce(addresses: Cidr[], count: number, intervalMs: number): Promise<void>;
  /** Addresses currently on the interface (or in the container); `ours` if they carry vigil's label. */
  listAddresses(): Promise<ListedCidr[]>;
  addAddresses(addresses: Cidr[]): Promise<BatchOutcome>;
  removeAddresses(addresses: Cidr[]): Promise<BatchOutcome>;
  runCommand(which: 'on_master' | 'on_slave' | 'track'): Promise<{ ok: boolean; detail: string }>;
  /** Send a release notice for `ip` (synchronous: it may be the last thing before exit). */
  release?(ip: string): void;
  /** Listen for release notices about `ip` from other hosts; returns a function that stops. */
  onRelease?(ip: string, cb: (mac: string) => void): () => void;
  /** vip.group: activate or deactivate the group; ok is its exit 0. */
  group?(op: 'activate' | 'deactivate'): Promise<{ ok: boolean; detail: string }>;
  /** vip.group: why the group is not active now (read from its journal, no spawn), or undefined while it is. */
  groupInactive?(): string | undefined;
  close(): void;
}

/** A machine's `watch` effect. */
export type WatchEffect = Extract<VipEffect, { type: 'watch' }>;

/**
 * How a watch ended: every round passed, or the first round that did not,
 * as a probe's outcome (after the same carrier and neighbour checks as an
 * ordinary probe's silence). `rttsMs`: the answers' round trips before it.
 */
export type WatchOutcome =
  | { kind: 'complete'; rounds: number; rttsMs: number[] }
  | { kind: 'probed'; outcome: ProbeOutcome & { ownMac?: string }; rttsMs: number[] };

/** What `vigil status` shows for the role. */
export interface VipStatus {
  role: string;
  phase: string;
  since: string;
  sinceMs: number;
  interface: string;
  haIp: string;
  failures: number;
  lastProbe?: { at: string; result: string; mac?: string; rttMs?: number; error?: string };
  lastConflict?: { at: string; mac: string; kept: boolean };
  /** The timeout of the next probe (learnt within probe_timeout_min..probe_timeout). */
  probeTimeoutMs: number;
  rtt?: { srttMs: number; rttvarMs: number; samples: number };
  /** Carrier of the HA interface as last reported by the event socket. */
  carrier?: boolean;
  linkDownSince?: string;
  held: string[];
  desired: string[];
  track?: { ok: boolean; passes: number; fails: number };
  takeovers: number;
  stepDowns: number;
  /** The neighbour gate (vip.neighbours): what is probed, or why nothing is. */
  neighbours?: Record<string, unknown>;
  /** ARP socket counters; `delivered`: frames that reached JavaScript. */
  arp?: Record<string, unknown>;
  /** The native probe loop: rounds passed without waking JavaScript ({@link VipIo.watch}). */
  watch?: { active: boolean; rounds: number; totalRounds: number; taken: number };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** The machine's view of the config. */
export function machineConfig(c: VipConfig): VipMachineConfig {
  return {
    haIp: c.address,
    checkIntervalMs: c.checkIntervalMs,
    failureCheckIntervalMs: c.failureCheckIntervalMs,
    takeOverAfter: c.takeOverAfter,
    probeTimeoutMs: c.probeTimeoutMs,
    probeTimeoutMinMs: c.probeTimeoutMinMs,
    masterCheckIntervalMs: c.masterCheckIntervalMs,
    announce: c.announce,
    hasOnMaster: c.onMaster !== undefined,
    hasOnSlave: c.onSlave !== undefined,
    hasGroup: c.group !== undefined,
    ...(c.track ? { track: { fall: c.track.fall, rise: c.track.rise } } : {}),
  };
}

/** The HA IP first, then the IP file's addresses (without the HA IP again). */
export function desiredSet(haIp: Cidr, extra: readonly Cidr[]): Cidr[] {
  return [haIp, ...extra.filter((c) => c.address !== haIp.address)];
}

/** A batch that never rejects: a thrown error fails every address it was given. */
function settled(batch: Promise<BatchOutcome>, addresses: Cidr[]): Promise<BatchOutcome> {
  return batch.catch((e) => ({ done: [], failed: addresses.map((cidr) => ({ cidr, error: errorMessage(e) })) }));
}

/** Runs one HA IP role until stopped. */
export class VipRunner {
  private state: VipState;
  private cfg: VipConfig;
  private mcfg: VipMachineConfig;
  private readonly timers = new Map<TimerName, NodeJS.Timeout>();
  /** Watches running natively, by the timer each stands for. */
  private readonly watches = new Map<TimerName, { stop(): void }>();
  private readonly queue: VipEvent[] = [];
  private draining = false;
  private ipWatch?: { close(): void; check(): void };
  private stopReleaseWatch?: () => void;
  private trackTimer?: NodeJS.Timeout;
  private trackRunning = false;
  private readonly epochWallMs = Date.now() - performance.now();
  /** Last carrier reported by {@link linkChanged}, for status. */
  private carrier: boolean | undefined;
  private exitResolve?: (code: number) => void;
  /** Resolves with the exit code once the role has stopped. */
  readonly done: Promise<number>;
  /** Last time the loop made progress (monotonic ms), for the systemd watchdog. */
  lastProgressMs = performance.now();

  /** `log` carries no `role` binding: every line gets the current one from {@link setLogRole}. */
  constructor(cfg: VipConfig, private readonly io: VipIo, private readonly log: Logger, private readonly now: () => number = () => performance.now()) {
    this.cfg = cfg;
    this.mcfg = machineConfig(cfg);
    this.state = initialState(io.ownMac, cfg.address, this.mcfg);
    setLogRole(this.state.role);
    this.done = new Promise((r) => { this.exitResolve = r; });
  }

  /** Read the interface and the IP file, then start as master or slave. */
  async start(): Promise<void> {
    watchArpDelivered('vip', () => {
      const d = this.io.arpStatus?.()?.delivered;
      return typeof d === 'number' ? d : undefined;
    });
    const extra = this.loadIpFile(this.cfg.ipFile ? readIpFile(this.cfg.ipFile) : undefined);
    this.state = { ...this.state, desired: desiredSet(this.cfg.address, extra ?? []) };
    let present: ListedCidr[] = [];
    try {
      present = await this.io.listAddresses();
    } catch (e) {
      this.log.error({ err: errorMessage(e) }, 'cannot read the interface addresses; starting as slave');
    }
    const desiredKeys = new Set(this.state.desired.map(formatCidr));
    const holdsHaIp = present.some((c) => c.address === this.cfg.address.address);
    // Ours: what the config names, and whatever carries vigil's label, so an
    // address dropped from the IP file while the daemon was down is removed
    // (by the master's first reconcile, or the slave's initial cleanup)
    // instead of staying on the interface for good.
    const ours = present
      .filter((c) => c.ours === true || desiredKeys.has(formatCidr(c)) || c.address === this.cfg.address.address)
      .map((c) => ({ address: c.address, prefix: c.prefix }));
    if (this.cfg.ipFile) {
      this.ipWatch = watchIpFile(this.cfg.ipFile, this.cfg.ipFileCheckIntervalMs, (r) => {
        const next = this.loadIpFile(r);
        if (next) this.push({ type: 'desired', nowMs: this.now(), addresses: desiredSet(this.cfg.address, next) });
      });
    }
    this.startTrack();
    // Release notices from the holder (see machine.onReleased); the spread is up
    // to half a probe timeout, small next to the takeover it shortens.
    this.stopReleaseWatch = this.io.onRelease?.(this.cfg.address.address, (mac) => {
      this.push({ type: 'released', nowMs: this.now(), mac, probeDelayMs: Math.floor(Math.random() * (this.cfg.probeTimeoutMs / 2)) });
    });
    // Nodes started together (a cold cluster start) would otherwise all take over at
    // once and settle it as a conflict: spread their first probes over a check interval.
    const initialProbeDelayMs = Math.floor(Math.random() * this.cfg.checkIntervalMs);
    this.push({ type: 'start', nowMs: this.now(), holdsHaIp, present: ours, initialProbeDelayMs });
  }

  /** Graceful stop: on_slave, remove the addresses, then `done` resolves. */
  stop(): void {
    this.push({ type: 'stop', nowMs: this.now() });
  }

  /** Why `next` cannot be applied to the running role, or undefined if it can. */
  canReload(next: VipConfig): string | undefined {
    const fixed: (keyof VipConfig)[] = ['interface', 'backend', 'container'];
    for (const k of fixed) {
      if (JSON.stringify(next[k]) !== JSON.stringify(this.cfg[k])) return `changing vip.${k} needs a restart (vigil restart)`;
    }
    if (formatCidr(next.address) !== formatCidr(this.cfg.address)) return 'changing vip.address needs a restart (vigil restart)';
    if (JSON.stringify(next.track) !== JSON.stringify(this.cfg.track) && (next.track === undefined) !== (this.cfg.track === undefined)) {
      return 'adding or removing vip.track needs a restart (vigil restart)';
    }
    return undefined;
  }

  /** Apply a reloaded config (after {@link canReload} said yes). */
  reload(next: VipConfig): void {
    const ipFileChanged = next.ipFile !== this.cfg.ipFile || next.ipFileCheckIntervalMs !== this.cfg.ipFileCheckIntervalMs;
    this.cfg = next;
    this.mcfg = machineConfig(next);
    if (ipFileChanged) {
      this.ipWatch?.close();
      this.ipWatch = undefined;
      const extra = next.ipFile ? this.loadIpFile(readIpFile(next.ipFile)) : [];
      if (extra) this.push({ type: 'desired', nowMs: this.now(), addresses: desiredSet(next.address, extra) });
      if (next.ipFile) {
        this.ipWatch = watchIpFile(next.ipFile, next.ipFileCheckIntervalMs, (r) => {
          const n = this.loadIpFile(r);
          if (n) this.push({ type: 'desired', nowMs: this.now(), addresses: desiredSet(this.cfg.address, n) });
        });
      }
    } else {
      this.ipWatch?.check();
    }
    if (this.trackTimer) { clearInterval(this.trackTimer); this.trackTimer = undefined; }
    this.startTrack();
  }

  /** A snapshot for `vigil status` and the USR1 dump. */
  status(): VipStatus {
    const w = this.io.watchStatus?.();
    const s = this.liveState(w);
    const wall = (ms: number) => new Date(this.epochWallMs + ms).toISOString();
    return {
      role: s.role,
      phase: s.phase,
      since: wall(s.sinceMs),
      sinceMs: s.sinceMs,
      interface: this.cfg.interface,
      haIp: formatCidr(this.cfg.address),
      failures: s.failures,
      ...(this.carrier !== undefined ? { carrier: this.carrier } : {}),
      ...(s.linkDownSinceMs !== undefined ? { linkDownSince: wall(s.linkDownSinceMs) } : {}),
      ...(s.lastProbe ? { lastProbe: { at: wall(s.lastProbe.atMs), result: s.lastProbe.result, ...(s.lastProbe.result === 'answered' ? { mac: s.lastProbe.mac, rttMs: round3(s.lastProbe.rttMs) } : {}), ...(s.lastProbe.result === 'error' ? { error: s.lastProbe.error } : {}) } } : {}),
      // The learnt probe timeout and what it was learnt from (src/roles/vip/rtt.ts).
      probeTimeoutMs: probeTimeoutFor(s, this.mcfg),
      ...(s.rtt ? { rtt: { srttMs: round3(s.rtt.srttMs), rttvarMs: round3(s.rtt.rttvarMs), samples: s.rtt.samples } } : {}),
      ...(s.lastConflict ? { lastConflict: { at: wall(s.lastConflict.atMs), mac: s.lastConflict.mac, kept: s.lastConflict.kept } } : {}),
      held: s.held.map(formatCidr),
      desired: s.desired.map(formatCidr),
      ...(s.track ? { track: { ...s.track } } : {}),
      takeovers: s.takeovers,
      stepDowns: s.stepDowns,
      ...(this.io.neighbourStatus ? { neighbours: this.io.neighbourStatus() } : {}),
      ...(this.io.arpStatus?.() ? { arp: this.io.arpStatus()! } : {}),
      ...(w ? { watch: { active: w.active, rounds: w.rounds, totalRounds: w.totalRounds, taken: w.taken } } : {}),
    };
  }

  /**
   * The state with the last probe as the native loop last saw it: a watch's
   * rounds reach the machine only at its end, and status must not show a
   * probe up to a watch span old while the loop runs.
   */
  private liveState(w: ReturnType<NonNullable<VipIo['watchStatus']>>): VipState {
    const s = this.state;
    const live = [...this.watches.keys()][0];
    if (!w || !w.active || w.rounds === 0 || live === undefined) return s;
    const atMs = this.now() - w.ageMs;
    if (s.lastProbe && s.lastProbe.atMs >= atMs) return s;
    const lastProbe: VipState['lastProbe'] = live === 'probe' && s.lastProbe?.result === 'answered'
      ? { atMs, result: 'answered', mac: s.lastProbe.mac, rttMs: w.lastRttMs }
      : { atMs, result: 'silent' };
    return { ...s, lastProbe };
  }

  /**
   * Carrier of the HA interface changed (from the netlink event socket; the
   * caller feeds changes only). Master: carrier lost starts the release
   * timer at once; carrier back probes for a competing owner at once.
   */
  linkChanged(up: boolean): void {
    const first = this.carrier === undefined;
    this.carrier = up;
    if (first && up) return; // the first reading, as assumed: nothing to react to
    // A slave's first probe after the heal is spread over one check interval (see the event's doc).
    this.push({ type: 'link', nowMs: this.now(), up, ...(up ? { probeDelayMs: Math.floor(Math.random() * this.cfg.checkIntervalMs) } : {}) });
  }

  /** An address left the HA interface (netlink event): if it is one we hold as master, it goes back at once. */
  addressRemoved(address: Cidr): void {
    // Cheap filter: an address storm on other addresses (or on a slave) costs no transition.
    if (this.state.role !== 'master' || !this.state.held.some((c) => c.address === address.address && c.prefix === address.prefix)) return;
    this.push({ type: 'addressLost', nowMs: this.now(), address });
  }

  /** Link/address events were lost: re-check carrier and addresses now (the caller re-reads the carrier). */
  resync(): void {
    this.push({ type: 'resync', nowMs: this.now() });
  }

  /** Re-pin the kernel filter's interests (the neighbour list changed on reload). */
  refreshInterests(): void {
    this.io.refreshInterests?.();
  }

  /** A watch runs natively: the runner hears of its rounds only at its end (at most WATCH_SPAN_MS). */
  get watching(): boolean { return this.watches.size > 0; }

  /** The current role (for log bindings and tests). */
  get role(): string { return this.state.role; }

  private loadIpFile(r: IpFileRead | undefined): Cidr[] | undefined {
    if (!r) return [];
    if (!r.ok) {
      this.log.error({ file: this.cfg.ipFile, error: r.error }, 'IP file not applied; keeping the current address set');
      return undefined;
    }
    for (const bad of r.content.invalid) this.log.warn({ file: this.cfg.ipFile, line: bad.line, text: bad.text, reason: bad.reason }, 'IP file: invalid line skipped');
    if (r.missing) this.log.info({ file: this.cfg.ipFile }, 'IP file missing: only the HA IP is held');
    return r.content.addresses;
  }

  private startTrack(): void {
    const t = this.cfg.track;
    if (!t) return;
    const tick = () => {
      if (this.trackRunning) return; // a slow check never piles up
      this.trackRunning = true;
      this.io.runCommand('track').then((r) => {
        this.trackRunning = false;
        this.push({ type: 'track', nowMs: this.now(), ok: r.ok, detail: r.detail });
      }, (e) => {
        this.trackRunning = false;
        this.push({ type: 'track', nowMs: this.now(), ok: false, detail: errorMessage(e) });
      });
    };
    this.trackTimer = setInterval(tick, t.intervalMs);
    tick();
  }

  private push(ev: VipEvent): void {
    this.queue.push(ev);
    if (!this.draining) this.drain();
  }

  private drain(): void {
    this.draining = true;
    try {
      for (let ev = this.queue.shift(); ev; ev = this.queue.shift()) {
        const before = this.state.role;
        const step = transition(this.state, ev, this.mcfg);
        recordVipStep(this.state, ev, step.state);
        this.state = step.state;
        this.lastProgressMs = this.now();
        if (before !== this.state.role) setLogRole(this.state.role);
        for (const eff of step.effects) this.execute(eff);
      }
    } finally {
      this.draining = false;
    }
  }

  /** End the watch standing for `timer`, if one runs (its outcome is dropped). */
  private stopWatch(timer: TimerName): void {
    const w = this.watches.get(timer);
    if (!w) return;
    this.watches.delete(timer);
    w.stop();
  }

  private startWatch(eff: WatchEffect): void {
    const old = this.timers.get(eff.timer);
    if (old) clearTimeout(old);
    this.timers.delete(eff.timer);
    // One native loop per socket: a new watch replaces any other (a role runs one at a time anyway).
    for (const t of [...this.watches.keys()]) this.stopWatch(t);
    let w: ReturnType<NonNullable<VipIo['watch']>>;
    try {
      w = this.io.watch?.(eff);
    } catch (e) {
      this.log.warn({ err: errorMessage(e) }, 'native probe loop not started; probing one check at a time');
    }
    if (!w) {
      // The same thing one round at a time.
      this.execute({ type: 'schedule', timer: eff.timer, afterMs: eff.everyMs });
      return;
    }
    const mine = { stop: w.stop };
    this.watches.set(eff.timer, mine);
    w.done.then((o) => {
      if (this.watches.get(eff.timer) !== mine) return; // stopped: the machine has moved on
      this.watches.delete(eff.timer);
      if (o.kind === 'complete') {
        this.push({ type: 'watched', nowMs: this.now(), timer: eff.timer, purpose: eff.purpose, rounds: o.rounds, rttsMs: o.rttsMs, ...(eff.expectMac !== undefined ? { mac: eff.expectMac } : {}) });
      } else {
        this.push({ type: 'probed', nowMs: this.now(), purpose: eff.purpose, rttsMs: o.rttsMs, ...o.outcome });
      }
    }, (e) => {
      if (this.watches.get(eff.timer) !== mine) return;
      this.watches.delete(eff.timer);
      this.push({ type: 'probed', nowMs: this.now(), purpose: eff.purpose, result: 'error', error: errorMessage(e) });
    });
  }

  private execute(eff: VipEffect): void {
    switch (eff.type) {
      case 'watch':
        this.startWatch(eff);
        return;
      case 'schedule': {
        this.stopWatch(eff.timer);
        const old = this.timers.get(eff.timer);
        if (old) clearTimeout(old);
        this.timers.set(eff.timer, setTimeout(() => {
          this.timers.delete(eff.timer);
          this.push({ type: 'timer', nowMs: this.now(), timer: eff.timer });
        }, eff.afterMs));
        return;
      }
      case 'cancel': {
        this.stopWatch(eff.timer);
        const old = this.timers.get(eff.timer);
        if (old) clearTimeout(old);
        this.timers.delete(eff.timer);
        return;
      }
      case 'probe':
        this.stopWatch(eff.purpose === 'check' ? 'probe' : 'master-check');
        this.io.probe(eff.ip, eff.timeoutMs, eff.purpose).then(
          (o) => this.push({ type: 'probed', nowMs: this.now(), purpose: eff.purpose, ...o }),
          (e) => this.push({ type: 'probed', nowMs: this.now(), purpose: eff.purpose, result: 'error', error: errorMessage(e) }),
        );
        return;
      case 'addAddresses':
        this.log.warn({ addresses: eff.addresses.map(formatCidr) }, 'adding addresses');
        void settled(this.io.addAddresses(eff.addresses), eff.addresses).then((r) => this.push({ type: 'added', nowMs: this.now(), added: r.done, failed: r.failed }));
        return;
      case 'removeAddresses':
        this.log.warn({ addresses: eff.addresses.map(formatCidr) }, 'removing addresses');
        void settled(this.io.removeAddresses(eff.addresses), eff.addresses).then((r) => this.push({ type: 'removed', nowMs: this.now(), removed: r.done, failed: r.failed }));
        return;
      case 'reconcile': {
        // A master's upkeep also checks that its group still runs here (the
        // group monitor may have given it up); if not, the machine steps down.
        const lost = this.state.role === 'master' && this.state.phase === 'steady' ? this.io.groupInactive?.() : undefined;
        if (lost !== undefined) { this.push({ type: 'groupLost', nowMs: this.now(), detail: lost }); return; }
        void this.reconcile(eff.desired, eff.remove);
        return;
      }
      case 'announce':
        this.io.announce(eff.addresses, eff.count, eff.intervalMs).catch((e) => this.log.warn({ err: errorMessage(e) }, 'announce failed'));
        return;
      case 'release':
        try {
          this.io.release?.(eff.ip);
          this.log.info({ ip: eff.ip }, 'release notice sent');
        } catch (e) {
          // A dead link (the usual reason to release) cannot carry it: the peers' probes decide.
          this.log.info({ ip: eff.ip, err: errorMessage(e) }, 'release notice not sent');
        }
        return;
      case 'runCommand':
        this.io.runCommand(eff.which).then(
          (r) => this.push({ type: 'commandDone', nowMs: this.now(), which: eff.which, ok: r.ok, detail: r.detail }),
          (e) => this.push({ type: 'commandDone', nowMs: this.now(), which: eff.which, ok: false, detail: errorMessage(e) }),
        );
        return;
      case 'group': {
        this.log.warn({ op: eff.op, group: this.cfg.group }, `group ${this.cfg.group ?? '?'}: ${eff.op}`);
        const run = this.io.group ? this.io.group(eff.op) : Promise.resolve({ ok: false, detail: 'no group driver' });
        run.then(
          (r) => this.push({ type: 'groupDone', nowMs: this.now(), op: eff.op, ok: r.ok, detail: r.detail }),
          (e) => this.push({ type: 'groupDone', nowMs: this.now(), op: eff.op, ok: false, detail: errorMessage(e) }),
        );
        return;
      }
      case 'roleChanged':
        this.log.warn({ from: eff.from, to: eff.to, reason: eff.reason }, `role ${eff.from} -> ${eff.to}`);
        return;
      case 'log':
        this.log[eff.level](eff.data ?? {}, eff.msg);
        return;
      case 'exit':
        this.shutdown();
        this.exitResolve?.(eff.code);
        return;
    }
  }

  /** Master upkeep: add what is missing, remove what was dropped, report what is held. */
  private async reconcile(desired: Cidr[], remove: Cidr[]): Promise<void> {
    const errors: string[] = [];
    let present: Cidr[] = [];
    try {
      present = await this.io.listAddresses();
    } catch (e) {
      this.push({ type: 'reconciled', nowMs: this.now(), held: this.state.held, errors: [`list: ${errorMessage(e)}`] });
      return;
    }
    const has = (c: Cidr) => present.some((p) => p.address === c.address && p.prefix === c.prefix);
    const missing = desired.filter((c) => !has(c));
    const extra = remove.filter(has);
    let held = desired.filter(has);
    let added: Cidr[] = [];
    if (missing.length > 0) {
      this.log.warn({ addresses: missing.map(formatCidr) }, 'reconcile: adding missing addresses');
      const r = await settled(this.io.addAddresses(missing), missing);
      added = r.done;
      held = [...held, ...r.done];
      errors.push(...r.failed.map((f) => `add ${formatCidr(f.cidr)}: ${f.error}`));
    }
    if (extra.length > 0) {
      this.log.warn({ addresses: extra.map(formatCidr) }, 'reconcile: removing addresses dropped from the IP file');
      const r = await settled(this.io.removeAddresses(extra), extra);
      errors.push(...r.failed.map((f) => `remove ${formatCidr(f.cidr)}: ${f.error}`));
      held = [...held, ...r.failed.map((f) => f.cidr)];
    }
    // Keep the HA IP first in the books.
    const ha = this.cfg.address.address;
    held.sort((a, b) => (a.address === ha ? -1 : b.address === ha ? 1 : 0));
    this.push({ type: 'reconciled', nowMs: this.now(), held, added, errors });
  }

  private shutdown(): void {
    for (const t of [...this.watches.keys()]) this.stopWatch(t);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    if (this.trackTimer) clearInterval(this.trackTimer);
    this.ipWatch?.close();
    this.stopReleaseWatch?.();
    this.io.close();
  }
}
