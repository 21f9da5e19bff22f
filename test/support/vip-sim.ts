/**
 * A fake world for the pure HA IP machine (src/roles/vip/machine.ts):
 * virtual time, timers, and scripted probe outcomes. Effects complete after
 * fixed virtual latencies so orderings are deterministic. Used by the
 * machine's table tests.
 */
import {
  initialState, transition, type VipEffect, type VipEvent, type VipMachineConfig,
  type VipState, type ProbeOutcome, type TimerName,
} from '../../src/roles/vip/machine';
import type { Cidr } from '../../src/util/ip';

export const HA: Cidr = { address: '10.9.0.100', prefix: 24 };
export const EXTRA: Cidr = { address: '10.9.0.101', prefix: 32 };
export const OWN = '02:00:00:00:00:05';

export const cfg = (over: Partial<VipMachineConfig> = {}): VipMachineConfig => ({
  haIp: HA, checkIntervalMs: 1000, failureCheckIntervalMs: 200, takeOverAfter: 3, probeTimeoutMs: 200,
  masterCheckIntervalMs: 2000, announce: { count: 3, intervalMs: 1000 }, hasOnMaster: true, hasOnSlave: true, ...over,
});

/**
 * A fake world: virtual time, timers, and scripted outcomes. Effects are
 * completed after a fixed virtual latency so orderings are deterministic.
 */
export class Sim {
  now = 0;
  state: VipState;
  timers = new Map<string, number>();
  pending: { at: number; ev: () => VipEvent }[] = [];
  trace: { at: number; eff: VipEffect }[] = [];
  probe: (now: number, purpose: string) => ProbeOutcome & { ownMac?: string } = () => ({ result: 'answered', mac: '02:00:00:00:00:09', rttMs: 0.3 });
  addFails = false;
  exitCode?: number;
  /**
   * How `watch` effects run: `'timer'` as a runner without the native loop
   * (the timer it stands for, after everyMs), `'native'` round by round with
   * the scripted outcomes, reporting only the end, as the native loop does.
   */
  watchMode: 'timer' | 'native' = 'timer';
  /** Pending ends of native watches, by the timer they stand for. */
  private watchEnds = new Map<string, { at: number; ev: () => VipEvent }>();
  constructor(public c: VipMachineConfig, held = false) {
    this.state = initialState(OWN, HA, c);
    this.feed({ type: 'start', nowMs: 0, holdsHaIp: held, present: held ? [HA] : [] });
  }
  feed(ev: VipEvent) {
    const step = transition(this.state, ev, this.c);
    this.state = step.state;
    for (const eff of step.effects) this.apply(eff);
  }
  apply(eff: VipEffect) {
    this.trace.push({ at: this.now, eff });
    const later = (ms: number, ev: () => VipEvent) => this.pending.push({ at: this.now + ms, ev });
    const endWatch = (timer: string) => {
      const w = this.watchEnds.get(timer);
      if (w) { this.pending.splice(this.pending.indexOf(w), 1); this.watchEnds.delete(timer); }
    };
    switch (eff.type) {
      case 'watch':
        if (this.watchMode === 'timer') { this.apply({ type: 'schedule', timer: eff.timer, afterMs: eff.everyMs }); break; }
        this.timers.delete(eff.timer);
        endWatch(eff.timer);
        this.simulateWatch(eff);
        break;
      case 'schedule': endWatch(eff.timer); this.timers.set(eff.timer, this.now + eff.afterMs); break;
      case 'cancel': endWatch(eff.timer); this.timers.delete(eff.timer); break;
      case 'probe': {
        endWatch(eff.purpose === 'check' ? 'probe' : 'master-check');
        const o = this.probe(this.now, eff.purpose);
        later(o.result === 'silent' ? eff.timeoutMs : 1, () => ({ type: 'probed', nowMs: this.now, purpose: eff.purpose, ...o }));
        break;
      }
      case 'addAddresses':
        later(5, () => this.addFails
          ? { type: 'added', nowMs: this.now, added: eff.addresses.slice(0, 1), failed: eff.addresses.slice(1).map((cidr) => ({ cidr, error: 'EPERM' })) }
          : { type: 'added', nowMs: this.now, added: eff.addresses, failed: [] });
        break;
      case 'removeAddresses': later(5, () => ({ type: 'removed', nowMs: this.now, removed: eff.addresses, failed: [] })); break;
      case 'reconcile': later(5, () => ({ type: 'reconciled', nowMs: this.now, held: eff.desired, errors: [] })); break;
      case 'runCommand': later(50, () => ({ type: 'commandDone', nowMs: this.now, which: eff.which, ok: true, detail: 'exit 0' })); break;
      case 'exit': this.exitCode = eff.code; break;
      default: break;
    }
  }
  /** A native watch: its rounds from the scripted outcomes now, its end as one pending event. */
  private simulateWatch(eff: Extract<VipEffect, { type: 'watch' }>) {
    let t = this.now;
    const rtts: number[] = [];
    let end: { at: number; ev: () => VipEvent } | undefined;
    for (let round = 0; round < eff.rounds && !end; round++) {
      t += eff.everyMs;
      const o = this.probe(t, eff.purpose);
      const passes = eff.expectMac !== undefined ? o.result === 'answered' && o.mac.toLowerCase() === eff.expectMac : o.result === 'silent';
      if (passes) {
        if (o.result === 'answered') { rtts.push(o.rttMs); t += 1; } else t += eff.timeoutMs;
        continue;
      }
      const at = o.result === 'silent' ? t + eff.timeoutMs : t + 1;
      const before = [...rtts];
      end = { at, ev: () => ({ type: 'probed', nowMs: at, purpose: eff.purpose, rttsMs: before, ...o }) };
    }
    if (!end) {
      const at = t;
      end = { at, ev: () => ({ type: 'watched', nowMs: at, timer: eff.timer, purpose: eff.purpose, rounds: eff.rounds, rttsMs: rtts, ...(eff.expectMac !== undefined ? { mac: eff.expectMac } : {}) }) };
    }
    const mine = end;
    const wrapped = { at: mine.at, ev: () => { this.watchEnds.delete(eff.timer); return mine.ev(); } };
    this.watchEnds.set(eff.timer, wrapped);
    this.pending.push(wrapped);
  }

  /** Advance virtual time to `until`, firing timers and completions in order. */
  run(until: number) {
    for (;;) {
      const nextTimer = [...this.timers.entries()].sort((a, b) => a[1] - b[1])[0];
      const nextPending = [...this.pending].sort((a, b) => a.at - b.at)[0];
      const tAt = nextTimer ? nextTimer[1] : Infinity;
      const pAt = nextPending ? nextPending.at : Infinity;
      const at = Math.min(tAt, pAt);
      if (at > until) break;
      this.now = at;
      if (pAt <= tAt && nextPending) {
        this.pending.splice(this.pending.indexOf(nextPending), 1);
        this.feed(nextPending.ev());
      } else if (nextTimer) {
        this.timers.delete(nextTimer[0]);
        this.feed({ type: 'timer', nowMs: at, timer: nextTimer[0] as TimerName });
      }
    }
    this.now = until;
  }
  effects(type: VipEffect['type']) { return this.trace.filter((x) => x.eff.type === type); }
  roles() { return this.effects('roleChanged').map((x) => (x.eff as Extract<VipEffect, { type: 'roleChanged' }>).to); }
}
