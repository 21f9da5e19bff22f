/**
 * Layer: role `group`, runner (the daemon side). At start it activates each
 * group marked `autostart` (preflight, owner lock, ordered start, exactly
 * as `vigil group activate`), then monitors each member of an active group
 * at its `monitor_interval`; {@link onMonitorResult} decides between a
 * restart of the member and deactivating the whole group (releasing its
 * owner lock). A group activated by someone else (`vigil group activate`
 * by hand, or the vip role through `vip.group`) is found through its
 * journal, read every `monitor_interval` (a file read, no spawn), and
 * monitored the same way once the world agrees it runs; a group
 * deactivated by someone else is no longer monitored (the journal says
 * so, read in the group's turn before each monitor). Operations on one
 * group run one at a time in order ({@link OpQueue} inside the daemon, the
 * turn queue against `vigil group` processes). Stopping the daemon leaves the groups as they are: a
 * watchdog's restart must not stop the services it watches.
 */
import type { Logger } from '../../log';
import { errorMessage } from '../../errors';
import { setRoleState } from '../../metrics';
import { lockAfter } from './owner-lock';
import type { Report } from './engine';
import type { RealAddressIo } from './io';
import { onMonitorResult, type FailureLog } from './monitor';
import { keepsOnConflict } from '../vip/machine';
import { OpQueue } from './queue';
import { takeTurn, type Turn } from './state';
import { EXIT, type GroupConfig, type Member } from './types';
import type { WiredGroup } from './wire';

/** A group's phase as the daemon sees it. */
export type GroupPhase = 'idle' | 'activating' | 'active' | 'refused' | 'failed' | 'deactivated';

interface GroupRun {
  cfg: GroupConfig;
  wired: WiredGroup;
  queue: OpQueue;
  phase: GroupPhase;
  failures: FailureLog;
  restarts: number;
  last?: string;
  timers: NodeJS.Timeout[];
  /** The journal's updatedAt of a full-active journal the world did not confirm (not tried again until it changes). */
  unconfirmed?: string;
  /** Bumped each time monitoring (re)starts: a timer of an earlier round does not schedule itself again. */
  gen: number;
}

/** Every member recorded running: someone activated the group and has not deactivated it. */
const journalActive = (r: GroupRun): boolean => r.cfg.members.length > 0 && r.cfg.members.every((m) => r.wired.journal.members[m.name] === 'running');

/** What the runner acts through (tests pass the real wiring, in a temp root). */
export interface GroupRunnerDeps {
  groups: GroupConfig[];
  wire(g: GroupConfig): WiredGroup;
  io: RealAddressIo;
  log: Logger;
  /**
   * One ARP probe of an address this node holds: the other MAC that
   * answers for it, with the MAC the probe went out with; undefined when
   * nobody else answers (or the probe could not tell).
   */
  probeOther(ifname: string, ip: string, timeoutMs: number): Promise<{ ownMac: string; otherMac: string } | undefined>;
  /** Close what probeOther opened. */
  closeProbes?(): void;
  now?: () => number;
}

/** The runner of every configured group. */
export class GroupRunner {
  private readonly runs: GroupRun[];
  private readonly watchTimers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private readonly now: () => number;
  /** Monotonic ms of the last completed monitor round or step (health). */
  lastProgressMs: number;
  private resolveDone!: (code: number) => void;
  readonly done = new Promise<number>((r) => { this.resolveDone = r; });

  constructor(private readonly d: GroupRunnerDeps) {
    this.now = d.now ?? (() => performance.now());
    this.lastProgressMs = this.now();
    this.runs = d.groups.map((cfg) => ({ cfg, wired: d.wire(cfg), queue: new OpQueue(), phase: 'idle', failures: {}, restarts: 0, timers: [], gen: 0 }));
  }

  /** Activate the autostart groups (in the background) and start monitoring them. */
  async start(): Promise<void> {
    for (const r of this.runs) {
      if (r.cfg.autostart) void this.activate(r);
      this.scheduleWatch(r);
    }
  }

  /** Stop monitoring; the groups stay as they are. */
  stop(): void {
    this.stopped = true;
    for (const r of this.runs) { r.timers.forEach(clearTimeout); r.timers = []; }
    this.watchTimers.forEach(clearTimeout);
    this.watchTimers.clear();
    this.d.io.close();
    this.d.closeProbes?.();
    this.resolveDone(0);
  }

  /** A group's phase changes: also the metrics' `group/<name>` state (names come from the config: bounded). */
  private setPhase(r: GroupRun, phase: GroupPhase): void {
    r.phase = phase;
    setRoleState(`group/${r.cfg.name}`, phase);
  }

  /** Status JSON: each group's phase, restarts and last event. */
  status(): { groups: Record<string, { phase: GroupPhase; autostart: boolean; restarts: number; last?: string }> } {
    return { groups: Object.fromEntries(this.runs.map((r) => [r.cfg.name, { phase: r.phase, autostart: r.cfg.autostart, restarts: r.restarts, ...(r.last ? { last: r.last } : {}) }])) };
  }

  /** The longest a monitor round of any monitored group may take without progress being overdue. */
  progressBoundMs(): number {
    return Math.max(0, ...this.runs.filter((r) => r.cfg.autostart || r.phase === 'active').map((r) => 3 * Math.max(...r.cfg.members.map((m) => m.monitorIntervalMs ?? r.cfg.monitorIntervalMs)) + stepBoundMs(r.cfg)));
  }

  private async activate(r: GroupRun): Promise<void> {
    this.setPhase(r, 'activating');
    const report = await this.op(r, 'activate', async () => {
      const rep = await r.wired.engine.activate();
      if (r.wired.lock) rep.ownerLock = await lockAfter(r.wired.lock, 'activate', rep.exit);
      return rep;
    });
    if (this.stopped || !report) return;
    if (report.exit === EXIT.OK) this.monitorActive(r);
    else this.setPhase(r, report.exit === EXIT.REFUSED ? 'refused' : 'failed');
  }

  /** Start monitoring an active group: each member at its interval, and the multiple-active check. */
  private monitorActive(r: GroupRun): void {
    this.setPhase(r, 'active');
    r.failures = {};
    r.timers.forEach(clearTimeout);
    r.timers = [];
    r.gen++;
    for (const m of r.wired.members) this.schedule(r, m, r.gen);
    if (r.cfg.members.some((m) => m.type === 'address')) this.scheduleConflictCheck(r, r.gen);
    if (r.wired.lock && r.cfg.ownerLock?.ttlMs !== undefined) this.scheduleRenew(r, r.gen, r.cfg.ownerLock.ttlMs);
  }

  /**
   * owner_lock.ttl: renew the session every ttl/2 while the group is
   * active. A session found gone (or the key held by another node) means
   * another node may acquire after lock-delay: deactivate now. A Consul
   * that does not answer is no evidence: try again at the next renewal
   * (the servers invalidate the session at up to 2 × ttl after the last).
   */
  private scheduleRenew(r: GroupRun, gen: number, ttlMs: number): void {
    if (this.stopped || r.phase !== 'active' || gen !== r.gen) return;
    const t = setTimeout(() => {
      r.timers = r.timers.filter((x) => x !== t);
      void r.queue.run(async () => {
        if (this.stopped || r.phase !== 'active' || gen !== r.gen || !r.wired.lock) return;
        const got = await r.wired.lock.renew().catch((e: unknown) => ({ result: 'unknown' as const, detail: errorMessage(e) }));
        if (got.result === 'lost') await this.deactivateAfter(r, `owner lock lost: ${got.detail}`);
        else if (got.result === 'unknown') this.d.log.warn({ group: r.cfg.name, err: got.detail }, `group ${r.cfg.name}: owner lock not renewed (Consul did not answer); trying again`);
        else this.lastProgressMs = this.now();
      }).finally(() => this.scheduleRenew(r, gen, ttlMs));
    }, ttlMs / 2);
    r.timers.push(t);
  }

  /**
   * Every monitor_interval, whatever the group's phase: read its journal.
   * A group this daemon does not monitor yet whose members are all
   * recorded running was activated by someone else (vigil group activate,
   * vip.group); it is monitored from then on if every member's monitor
   * agrees (a journal that survived a reboot is not the world).
   */
  private scheduleWatch(r: GroupRun): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.watchTimers.delete(t);
      void this.watch(r).finally(() => this.scheduleWatch(r));
    }, r.cfg.monitorIntervalMs);
    this.watchTimers.add(t);
  }

  private async watch(r: GroupRun): Promise<void> {
    await r.queue.run(async () => {
      if (this.stopped || r.phase === 'active' || r.phase === 'activating') return;
      r.wired.reload();
      if (!journalActive(r) || r.wired.journal.updatedAt === r.unconfirmed) return;
      const states = await Promise.all(r.wired.members.map(async (m) => ({ name: m.config.name, st: await r.wired.engine.monitor(m.config.name) })));
      const down = states.filter((x) => x.st.state !== 'running');
      if (down.length) {
        r.unconfirmed = r.wired.journal.updatedAt;
        this.d.log.warn({ group: r.cfg.name, down: down.map((x) => x.name) }, `group ${r.cfg.name}: its journal says active but ${down.map((x) => x.name).join(', ')} ${down.length > 1 ? 'are' : 'is'} not running; not monitored`);
        return;
      }
      r.last = 'activated outside the daemon (vigil group activate or vip.group): monitored';
      this.d.log.info({ group: r.cfg.name }, `group ${r.cfg.name}: ${r.last}`);
      this.lastProgressMs = this.now();
      this.monitorActive(r);
    }).catch((e: unknown) => { this.d.log.error({ group: r.cfg.name, err: errorMessage(e) }, `group ${r.cfg.name}: reading its journal failed`); });
  }

  /** Run `fn` in the group's turn (this process's queue, then the cross-process turn). */
  private op(r: GroupRun, what: string, fn: () => Promise<Report>): Promise<Report | undefined> {
    return r.queue.run(async () => {
      if (this.stopped) return undefined;
      try {
        const turn = await takeTurn(r.cfg.stateDir, r.cfg.name, r.cfg.lockTimeoutMs);
        try {
          r.wired.reload();
          const rep = await fn();
          this.lastProgressMs = this.now();
          r.last = `${what}: ${rep.summary}${rep.ownerLock ? `; ${rep.ownerLock}` : ''}`;
          this.d.log[rep.exit === EXIT.OK ? 'info' : 'error']({ group: r.cfg.name, exit: rep.exit, steps: rep.steps?.map((s) => `${s.op} ${s.member}: ${s.ok ? 'ok' : 'FAILED'} ${s.detail}`) }, `group ${r.cfg.name} ${what}: ${rep.summary}`);
          return rep;
        } finally { turn.release(); }
      } catch (e) {
        r.last = `${what}: ${errorMessage(e)}`;
        this.d.log.error({ group: r.cfg.name, err: errorMessage(e) }, `group ${r.cfg.name} ${what} failed`);
        return undefined;
      }
    });
  }

  private schedule(r: GroupRun, m: Member, gen: number): void {
    if (this.stopped || r.phase !== 'active' || gen !== r.gen) return;
    const t = setTimeout(() => {
      r.timers = r.timers.filter((x) => x !== t);
      void this.tick(r, m).finally(() => this.schedule(r, m, gen));
    }, m.config.monitorIntervalMs ?? r.cfg.monitorIntervalMs);
    r.timers.push(t);
  }

  /**
   * Multiple-active detection: every monitor_interval, probe each address
   * of the active group; another MAC answering means another node holds it
   * too (a healed partition). Both sides decide alike with the vip role's
   * rule: the lower MAC keeps it (and re-announces), the other deactivates.
   */
  private scheduleConflictCheck(r: GroupRun, gen: number): void {
    if (this.stopped || r.phase !== 'active' || gen !== r.gen) return;
    const t = setTimeout(() => {
      r.timers = r.timers.filter((x) => x !== t);
      void this.conflictCheck(r).finally(() => this.scheduleConflictCheck(r, gen));
    }, r.cfg.monitorIntervalMs);
    r.timers.push(t);
  }

  private async conflictCheck(r: GroupRun): Promise<void> {
    for (const m of r.wired.members) {
      const c = m.config;
      if (c.type !== 'address' || this.stopped || r.phase !== 'active') continue;
      const seen = await this.d.probeOther(c.interface, c.cidr.address, r.cfg.probe.timeoutMs).catch(() => undefined);
      if (!seen) continue;
      await r.queue.run(async () => {
        if (this.stopped || r.phase !== 'active') return;
        if (keepsOnConflict(seen.ownMac, seen.otherMac)) {
          this.d.log.warn({ group: r.cfg.name, ip: c.cidr.address, ownMac: seen.ownMac, otherMac: seen.otherMac }, `group ${r.cfg.name}: ${c.cidr.address} is also held by ${seen.otherMac}; ours is the lower MAC, keeping it and announcing again`);
          r.last = `multiple-active: ${c.cidr.address} also held by ${seen.otherMac}; kept (lower MAC)`;
          await m.complete?.().catch(() => undefined);
          return;
        }
        await this.deactivateAfter(r, `multiple-active: ${c.cidr.address} is also held by ${seen.otherMac}, a lower MAC than ours (${seen.ownMac}), which keeps it`);
      });
    }
  }

  /** Deactivate the whole group and release its lock; runs inside the group's queue (and in its turn when `held` is given). */
  private async deactivateAfter(r: GroupRun, reason: string, held?: Turn): Promise<void> {
    this.d.log.error({ group: r.cfg.name }, `group ${r.cfg.name}: ${reason}; deactivating the group`);
    this.setPhase(r, 'deactivated');
    r.last = `deactivating after ${reason}`;
    r.timers.forEach(clearTimeout);
    r.timers = [];
    const turn = held ?? await takeTurn(r.cfg.stateDir, r.cfg.name, r.cfg.lockTimeoutMs);
    try {
      r.wired.reload();
      const rep = await r.wired.engine.deactivate();
      const lock = r.wired.lock ? await lockAfter(r.wired.lock, 'deactivate', rep.exit) : undefined;
      r.last = `deactivated after ${reason}: ${rep.summary}${lock ? `; ${lock}` : ''}`;
      if (rep.exit !== EXIT.OK) this.setPhase(r, 'failed');
      this.lastProgressMs = this.now();
      this.d.log[rep.exit === EXIT.OK ? 'warn' : 'error']({ group: r.cfg.name, exit: rep.exit }, `group ${r.cfg.name} deactivate: ${rep.summary}${lock ? `; ${lock}` : ''}`);
    } finally { if (!held) turn.release(); }
  }

  private async tick(r: GroupRun, m: Member): Promise<void> {
    // In the queue: a monitor never races a restart or a deactivation of the same group.
    await r.queue.run(async () => {
      if (this.stopped || r.phase !== 'active') return;
      // In the group's turn too: a monitor never sees a member that a vigil group deactivate (or vip.group) is stopping.
      const turn = await takeTurn(r.cfg.stateDir, r.cfg.name, r.cfg.lockTimeoutMs);
      try { await this.tickInTurn(r, m, turn); } finally { turn.release(); }
    }).catch((e: unknown) => { this.d.log.error({ group: r.cfg.name, err: errorMessage(e) }, `group ${r.cfg.name}: monitor of ${m.config.name} failed`); });
  }

  private async tickInTurn(r: GroupRun, m: Member, turn: Turn): Promise<void> {
    r.wired.reload();
    if (!journalActive(r)) {
      // Someone else deactivated it (or is part-way): theirs to finish; monitoring ends until it is active again.
      this.setPhase(r, 'idle');
      r.timers.forEach(clearTimeout);
      r.timers = [];
      r.last = 'deactivated outside the daemon: no longer monitored';
      this.d.log.info({ group: r.cfg.name }, `group ${r.cfg.name}: ${r.last}`);
      return;
    }
    const st = await r.wired.engine.monitor(m.config.name);
    this.lastProgressMs = this.now();
    const { log, effect } = onMonitorResult(r.failures, m.config.name, st, this.now(), r.cfg);
    r.failures = log;
    if (effect.kind === 'restart') {
      r.restarts++;
      r.last = `restarting ${m.config.name} (${effect.attempt}/${r.cfg.migrationThreshold}): ${effect.reason}`;
      this.d.log.warn({ group: r.cfg.name, member: m.config.name, attempt: effect.attempt }, `group ${r.cfg.name}: ${m.config.name} ${effect.reason}; restart ${effect.attempt} of ${r.cfg.migrationThreshold}`);
      const stop = await m.stop().catch((e: unknown) => ({ ok: false as const, reason: errorMessage(e) }));
      const start = stop.ok ? await m.start().catch((e: unknown) => ({ ok: false as const, reason: errorMessage(e) })) : stop;
      r.last = `restart ${m.config.name} (${effect.attempt}/${r.cfg.migrationThreshold}): ${start.ok ? 'ok' : `FAILED ${start.reason}`}`;
    } else if (effect.kind === 'deactivate') {
      await this.deactivateAfter(r, effect.reason, turn);
    }
  }
}

/** The longest one member step may take: its own timeouts (commands: start + stop escalation). */
function stepBoundMs(g: GroupConfig): number {
  return g.members.reduce((sum, m) => sum + (m.type === 'command' ? m.timeoutMs + m.stopTimeoutMs + m.killGraceMs : m.type === 'unit' ? 2 * m.timeoutMs : 5000), 2 * g.hookTimeoutMs + 5000);
}
