/**
 * Layer: role `group`, engine. Activate, deactivate, status and plan of one
 * group, over injected members, hooks, preflight checks and journal: no I/O
 * of its own, so every path is unit-tested with fakes.
 *
 * - activate: read every member's state; nothing to do if all run. Else
 *   preflight (validate every member, then every check: carrier, ARP
 *   duplicate-address probe, later the owner lock) before any change;
 *   before_start; start in order, each verified by its monitor before the
 *   next (Pacemaker groups); on a failure stop the members before it in
 *   reverse (with the failing one first if its start returned success but
 *   its monitor disagreed); after_start.
 * - deactivate: before_stop; stop in reverse, each verified by read-back;
 *   with `on_stop_failure: block` a failed stop leaves every earlier member
 *   (the address first of all) in place, so a standby's preflight refuses to
 *   take over while a service may still write; after_stop.
 * - plan: the effects activate (or deactivate) would carry out, from the
 *   same reads and the same preflight, changing nothing; members whose
 *   monitor would spawn a command are read from the journal instead.
 */
import type { Command } from '../../actions/commands';
import type { Recorded } from './state';
import { EXIT, type Effect, type GroupConfig, type HookName, type Member, type MemberStatus, type StepOutcome } from './types';

/** One preflight result. */
export interface PreflightResult { check: string; ok: boolean; detail: string; elapsedMs?: number }

/**
 * A check run before any change; refusing makes activate exit 3 with
 * nothing changed. The extension point for the Consul owner lock.
 */
export interface PreflightCheck { name: string; run(): Promise<PreflightResult[]> }

/** What the engine acts through. */
export interface EngineDeps {
  config: GroupConfig;
  members: Member[];
  preflight: PreflightCheck[];
  runHook(name: HookName, cmd: Command): Promise<StepOutcome>;
  /** Last recorded state per member name. */
  recorded(member: string): Recorded | undefined;
  record(member: string, state: Recorded): void;
  /** Called for each step as it happens (the CLI logs it). */
  onStep?(s: Step): void;
  now?: () => number;
}

/** One thing the engine did, in order. */
export interface Step { member: string; op: 'start' | 'stop' | 'rollback' | 'hook' | 'skip'; ok: boolean; detail: string; output?: string; ms: number }

/** A member's state as a report shows it. */
export interface MemberReport { name: string; type: string; status: MemberStatus; source: 'world' | 'journal' }

/** What every verb returns: the exit code and everything behind it. */
export interface Report {
  group: string;
  action: 'activate' | 'deactivate' | 'status' | 'plan-activate' | 'plan-deactivate';
  exit: number;
  /** One line for people. */
  summary: string;
  /** `active n/n`, `inactive 0/n`, `partial k/n`. */
  state?: string;
  members?: MemberReport[];
  preflight?: PreflightResult[];
  steps?: Step[];
  effects?: Effect[];
  warnings?: string[];
  /** What became of the owner lock (CLI). */
  ownerLock?: string;
}

const stateOf = (running: number, n: number) => (running === n ? `active ${n}/${n}` : running === 0 ? `inactive 0/${n}` : `partial ${running}/${n}`);

/** The engine of one group. */
export class GroupEngine {
  private readonly now: () => number;
  constructor(private readonly d: EngineDeps) {
    this.now = d.now ?? (() => performance.now());
  }

  /** Every member's state; `dry` reads the journal instead of spawning monitors. */
  async readStates(dry = false): Promise<MemberReport[]> {
    const out: MemberReport[] = [];
    for (const m of this.d.members) {
      const c = m.config;
      if (dry && m.monitorSpawns) {
        const r = this.d.recorded(c.name);
        out.push({ name: c.name, type: c.type, status: { state: r === 'running' ? 'running' : 'stopped', detail: `journal: ${r ?? 'nothing recorded'}` }, source: 'journal' });
        continue;
      }
      out.push({ name: c.name, type: c.type, status: await this.safeMonitor(m), source: 'world' });
    }
    return out;
  }

  /**
   * One member's state, read from the world now (never throws): the hook
   * for monitoring while active in the daemon.
   */
  async monitor(name: string): Promise<MemberStatus> {
    const m = this.d.members.find((x) => x.config.name === name);
    if (!m) return { state: 'failed', reason: `no member '${name}' in group ${this.d.config.name}` };
    return this.safeMonitor(m);
  }

  /** `status`: the state rebuilt from the world. */
  async status(): Promise<Report> {
    const members = await this.readStates();
    const running = members.filter((m) => m.status.state === 'running').length;
    const failed = members.filter((m) => m.status.state === 'failed');
    const state = stateOf(running, members.length);
    return { group: this.d.config.name, action: 'status', exit: EXIT.OK, state, members,
      summary: `group ${this.d.config.name}: ${state}${failed.length ? `, failed: ${failed.map((m) => m.name).join(', ')}` : ''}` };
  }

  /** Validation of every member plus every preflight check. */
  async preflight(): Promise<PreflightResult[]> {
    const out: PreflightResult[] = [];
    for (const m of this.d.members) {
      const problems = await m.validate().catch((e: unknown) => [String(e)]);
      out.push({ check: `validate ${m.config.name}`, ok: problems.length === 0, detail: problems.join('; ') || 'ok' });
    }
    for (const c of this.d.preflight) out.push(...(await c.run().catch((e: unknown) => [{ check: c.name, ok: false, detail: `could not check: ${String(e)}` }])));
    return out;
  }

  /** `plan` / `--dry-run`: the ordered effects, with the preflight results. Changes nothing. */
  async plan(action: 'activate' | 'deactivate'): Promise<Report> {
    const g = this.d.config;
    const members = await this.readStates(true);
    const effects: Effect[] = [];
    const hook = (h: HookName) => { if (g.hooks[h]) effects.push({ member: '(hook)', op: h, detail: String(g.hooks[h]) }); };
    if (action === 'activate') {
      if (members.every((m) => m.status.state === 'running')) return { group: g.name, action: 'plan-activate', exit: EXIT.OK, members, effects, summary: `group ${g.name} is active: activate would do nothing` };
      const preflight = await this.preflight();
      const refused = preflight.filter((p) => !p.ok);
      hook('before_start');
      this.d.members.forEach((m, i) => {
        if (members[i]!.status.state === 'running') effects.push({ member: m.config.name, op: 'none', detail: 'already running' });
        else effects.push(...m.plan('start'), { member: m.config.name, op: 'verify', detail: 'monitor must report running' });
      });
      hook('after_start');
      return { group: g.name, action: 'plan-activate', exit: refused.length ? EXIT.REFUSED : EXIT.OK, members, preflight, effects,
        summary: refused.length ? `activate would be refused: ${refused.map((p) => p.detail).join('; ')}` : `activate would carry out ${effects.filter((e) => e.op !== 'none').length} effects` };
    }
    if (members.every((m) => m.status.state === 'stopped')) return { group: g.name, action: 'plan-deactivate', exit: EXIT.OK, members, effects, summary: `group ${g.name} is inactive: deactivate would do nothing` };
    hook('before_stop');
    [...this.d.members].reverse().forEach((m) => {
      const st = members.find((x) => x.name === m.config.name)!;
      if (st.status.state === 'stopped') effects.push({ member: m.config.name, op: 'none', detail: 'already stopped' });
      else effects.push(...m.plan('stop'), { member: m.config.name, op: 'verify', detail: 'read back: must be stopped' });
    });
    hook('after_stop');
    return { group: g.name, action: 'plan-deactivate', exit: EXIT.OK, members, effects, summary: `deactivate would carry out ${effects.filter((e) => e.op !== 'none').length} effects` };
  }

  /** `activate`. */
  async activate(): Promise<Report> {
    const g = this.d.config;
    const steps: Step[] = [];
    const warnings: string[] = [];
    const members = await this.readStates();
    const report = (exit: number, summary: string, extra: Partial<Report> = {}): Report => ({ group: g.name, action: 'activate', exit, summary, members, steps, ...(warnings.length ? { warnings } : {}), ...extra });
    if (members.every((m) => m.status.state === 'running')) return report(EXIT.OK, `group ${g.name} is already active`, { state: stateOf(members.length, members.length) });
    const preflight = await this.preflight();
    const refused = preflight.filter((p) => !p.ok);
    if (refused.length) return report(EXIT.REFUSED, `refused: ${refused.map((p) => `${p.check}: ${p.detail}`).join('; ')}`, { preflight });
    const hookFailed = await this.hook('before_start', steps);
    if (hookFailed) return report(EXIT.ROLLED_BACK, `before_start failed (nothing started): ${hookFailed}`, { preflight });
    const up: Member[] = [];
    for (const [i, m] of this.d.members.entries()) {
      if (members[i]!.status.state === 'running') {
        up.push(m);
        // Up, but the journal says its start never returned (kill -9): let it finish what follows the change.
        if (this.d.recorded(m.config.name) === 'starting' && m.complete) {
          const r = await m.complete().catch((e: unknown): StepOutcome => ({ ok: false, reason: String(e) }));
          if (!r.ok) warnings.push(`${m.config.name}: completing an interrupted start failed: ${r.reason}`);
          this.d.record(m.config.name, 'running');
          this.step(steps, { member: m.config.name, op: 'skip', ok: r.ok, detail: `already running; ${r.ok ? r.detail ?? 'completed' : r.reason}`, ms: 0 });
          continue;
        }
        this.step(steps, { member: m.config.name, op: 'skip', ok: true, detail: 'already running', ms: 0 });
        continue;
      }
      const failure = await this.startOne(m, steps);
      if (failure === undefined) { up.push(m); continue; }
      // Its start ran to success but the monitor disagrees: it may be half up, so it is stopped too.
      if (failure.started) up.push(m);
      const stuck = await this.rollback(up, steps);
      const tail = failure.output ? `; output: ${failure.output}` : '';
      const where = `step ${i + 1}/${this.d.members.length} (${m.config.name})`;
      if (stuck.length) return report(EXIT.NOT_ROLLED_BACK, `${where} failed: ${failure.reason}${tail}; roll-back failed for ${stuck.join(', ')}`, { preflight });
      return report(EXIT.ROLLED_BACK, `${where} failed: ${failure.reason}${tail}; rolled back`, { preflight });
    }
    const after = await this.hook('after_start', steps);
    if (after) warnings.push(`after_start failed: ${after}`);
    return report(EXIT.OK, `group ${g.name} activated`, { preflight, state: stateOf(up.length, up.length) });
  }

  /** `deactivate`. */
  async deactivate(): Promise<Report> {
    const g = this.d.config;
    const steps: Step[] = [];
    const warnings: string[] = [];
    const members = await this.readStates();
    const report = (exit: number, summary: string, extra: Partial<Report> = {}): Report => ({ group: g.name, action: 'deactivate', exit, summary, members, steps, ...(warnings.length ? { warnings } : {}), ...extra });
    if (members.every((m) => m.status.state === 'stopped')) return report(EXIT.OK, `group ${g.name} is already inactive`);
    const hookFailed = await this.hook('before_stop', steps);
    if (hookFailed) return report(EXIT.NOT_ROLLED_BACK, `before_stop failed (nothing stopped): ${hookFailed}`);
    const failed: string[] = [];
    const order = [...this.d.members.entries()].reverse();
    for (const [i, m] of order) {
      if (members[i]!.status.state === 'stopped') {
        this.step(steps, { member: m.config.name, op: 'skip', ok: true, detail: 'already stopped', ms: 0 });
        continue;
      }
      const f = await this.stopOne(m, steps, 'stop');
      if (f === undefined) continue;
      failed.push(`${m.config.name}: ${f.reason}${f.output ? `; output: ${f.output}` : ''}`);
      if (g.onStopFailure === 'block') {
        const kept = this.d.members.slice(0, i).map((x) => x.config.name);
        return report(EXIT.NOT_ROLLED_BACK, `stop of ${failed[0]}; blocked: ${kept.length ? `${kept.join(', ')} kept` : 'nothing else to keep'}`);
      }
    }
    if (failed.length) return report(EXIT.NOT_ROLLED_BACK, `stop failed: ${failed.join('; ')} (on_stop_failure: continue)`);
    const after = await this.hook('after_stop', steps);
    if (after) warnings.push(`after_stop failed: ${after}`);
    return report(EXIT.OK, `group ${g.name} deactivated`);
  }

  private async startOne(m: Member, steps: Step[]): Promise<{ reason: string; output?: string; started?: boolean } | undefined> {
    const t0 = this.now();
    const name = m.config.name;
    this.d.record(name, 'starting');
    const r = await m.start().catch((e: unknown): StepOutcome => ({ ok: false, reason: String(e) }));
    // Verification: the member's own monitor must say running before the next one starts.
    let fail: { reason: string; output?: string; started?: boolean } | undefined;
    if (!r.ok) fail = { reason: r.reason, ...(r.output ? { output: r.output } : {}) };
    else {
      this.d.record(name, 'running');
      const st = await this.safeMonitor(m);
      if (st.state !== 'running') fail = { reason: `started, but monitor reports ${st.state === 'failed' ? `failed: ${st.reason}` : 'stopped'}`, started: true };
    }
    if (fail && !fail.started) this.d.record(name, 'stopped');
    this.step(steps, { member: name, op: 'start', ok: !fail, detail: fail?.reason ?? (r.ok ? r.detail ?? 'started' : ''), ...(fail?.output ? { output: fail.output } : {}), ms: Math.round(this.now() - t0) });
    return fail;
  }

  private async stopOne(m: Member, steps: Step[], op: 'stop' | 'rollback'): Promise<{ reason: string; output?: string } | undefined> {
    const t0 = this.now();
    const name = m.config.name;
    this.d.record(name, 'stopping');
    const r = await m.stop().catch((e: unknown): StepOutcome => ({ ok: false, reason: String(e) }));
    let fail: { reason: string; output?: string } | undefined;
    if (!r.ok) fail = { reason: r.reason, ...(r.output ? { output: r.output } : {}) };
    else if (!r.kept) {
      this.d.record(name, 'stopped');
      // Read back (xcatha's check was a no-op, X-21).
      const st = await this.safeMonitor(m);
      if (st.state === 'running') fail = { reason: 'stopped, but monitor still reports running' };
    }
    if (fail) this.d.record(name, 'running');
    else this.d.record(name, 'stopped');
    this.step(steps, { member: name, op, ok: !fail, detail: fail?.reason ?? (r.ok ? r.detail ?? 'stopped' : ''), ...(fail?.output ? { output: fail.output } : {}), ms: Math.round(this.now() - t0) });
    return fail;
  }

  /** Stop `up` in reverse; returns the members that could not be stopped. */
  private async rollback(up: Member[], steps: Step[]): Promise<string[]> {
    const stuck: string[] = [];
    for (const m of [...up].reverse()) if (await this.stopOne(m, steps, 'rollback')) stuck.push(m.config.name);
    return stuck;
  }

  /** Run a hook if configured; returns the failure reason, if any. */
  private async hook(h: HookName, steps: Step[]): Promise<string | undefined> {
    const cmd = this.d.config.hooks[h];
    if (cmd === undefined) return undefined;
    const t0 = this.now();
    const r = await this.d.runHook(h, cmd);
    this.step(steps, { member: h, op: 'hook', ok: r.ok, detail: r.ok ? 'done' : r.reason, ...(!r.ok && r.output ? { output: r.output } : {}), ms: Math.round(this.now() - t0) });
    return r.ok ? undefined : `${r.reason}${r.output ? `; output: ${r.output}` : ''}`;
  }

  private async safeMonitor(m: Member): Promise<MemberStatus> {
    return m.monitor().catch((e: unknown): MemberStatus => ({ state: 'failed', reason: `monitor: ${String(e instanceof Error ? e.message : e)}` }));
  }

  private step(steps: Step[], s: Step): void {
    steps.push(s);
    this.d.onStep?.(s);
  }
}
