// Test helper: a promote config with short, safe timings, and a driver for the pure machine.
import type { PromoteConfig } from '../../../../src/roles/promote/config';
import { initialState, transition, type CheckInputs, type PromoteEffect, type PromoteEvent, type PromoteState } from '../../../../src/roles/promote/machine';

export function cfgOf(over: Partial<PromoteConfig> = {}): PromoteConfig {
  return {
    name: 'mail', site: 'b', peer: 'a', mode: 'auto', witnessSites: 3, acceptSplitBrainRisk: false, autoPromote: true,
    consul: { url: 'http://127.0.0.1:8500', timeoutMs: 2000 },
    ttlMs: 15_000, lockDelayMs: 15_000, acquireAfterMs: 0, renewIntervalMs: 3000, retries: 2, demoteTimeoutMs: 5000, checkIntervalMs: 5000,
    journalDir: '/tmp/x', peerProbes: [], ready: [], fence: { kind: 'none' },
    promoteSteps: [{ name: 'p1', command: ['/bin/true'], timeoutMs: 1000, json: false }, { name: 'p2', command: ['/bin/true'], timeoutMs: 1000, json: false }],
    demoteSteps: [{ name: 'd1', command: ['/bin/true'], timeoutMs: 1000, json: false }],
    failback: { mode: 'none', healthyChecks: 3, healthyForMs: 10_000 },
    ...over,
  };
}

/** Inputs under which a standby site may attempt. */
export const GO: CheckInputs = { witness: 'ok', peer: 'down', ready: 'up' };

/** Drive the machine through events; keeps every effect in order. */
export class Drive {
  s: PromoteState;
  fx: PromoteEffect[] = [];
  constructor(readonly cfg: PromoteConfig, s: PromoteState = initialState()) { this.s = s; }
  on(e: PromoteEvent): PromoteEffect[] {
    const [n, fx] = transition(this.s, this.cfg, e);
    this.s = n;
    this.fx.push(...fx);
    return fx;
  }
  check(nowMs: number, inputs: Partial<CheckInputs> = {}): PromoteEffect[] { return this.on({ type: 'check', nowMs, inputs: { ...GO, ...inputs } }); }
  /** Non-log effects. */
  static acts(fx: PromoteEffect[]): string[] {
    return fx.filter((f) => f.type !== 'log').map((f) => (f.type === 'runStep' ? `${f.list}:${f.index}` : f.type));
  }
  static logs(fx: PromoteEffect[]): string[] { return fx.flatMap((f) => (f.type === 'log' ? [f.event] : [])); }
}
