// Test support for the group engine: fake members that record every call
// in one shared log, and engine deps over an in-memory journal.
import type { EngineDeps, PreflightCheck } from '../../../../src/roles/group/engine';
import type { GroupConfig, Member, MemberConfig, MemberStatus, StepOutcome } from '../../../../src/roles/group/types';
import type { Recorded } from '../../../../src/roles/group/state';

export interface FakeOpts { running?: boolean; failStart?: boolean; failStop?: boolean; startButNotRunning?: boolean; invalid?: string; spawns?: boolean }

export function fakeMember(name: string, log: string[], o: FakeOpts = {}): Member & { running: boolean } {
  const config = { type: 'command', name, start: ['true'], timeoutMs: 1000, stopTimeoutMs: 1000, killGraceMs: 100 } as MemberConfig;
  const m = {
    config,
    running: !!o.running,
    monitorSpawns: !!o.spawns,
    async validate() { log.push(`validate ${name}`); return o.invalid ? [o.invalid] : []; },
    async monitor(): Promise<MemberStatus> { return m.running ? { state: 'running' } : { state: 'stopped' }; },
    async start(): Promise<StepOutcome> {
      log.push(`start ${name}`);
      if (o.failStart) return { ok: false, reason: `${name} broke`, output: 'last words' };
      if (!o.startButNotRunning) m.running = true;
      return { ok: true };
    },
    async stop(): Promise<StepOutcome> {
      log.push(`stop ${name}`);
      if (o.failStop) return { ok: false, reason: `${name} stuck` };
      m.running = false;
      return { ok: true };
    },
    plan(op: 'start' | 'stop') { return [{ member: name, op, detail: `${op} ${name}` }]; },
  };
  return m;
}

export function group(members: Member[], extra: Partial<GroupConfig> = {}): GroupConfig {
  return { name: 'g', members: members.map((m) => m.config), hooks: {}, hookTimeoutMs: 1000, onStopFailure: 'block', stateDir: '/nonexistent', lockTimeoutMs: 1000, probe: { count: 1, intervalMs: 100, timeoutMs: 100 }, ...extra };
}

export function deps(members: Member[], log: string[], extra: Partial<EngineDeps> & { cfg?: Partial<GroupConfig>; checks?: PreflightCheck[] } = {}): EngineDeps {
  const journal = new Map<string, Recorded>();
  return {
    config: group(members, extra.cfg),
    members,
    preflight: extra.checks ?? [],
    async runHook(h) { log.push(`hook ${h}`); return { ok: true }; },
    recorded: (m) => journal.get(m),
    record: (m, s) => { journal.set(m, s); },
    ...extra,
  };
}
