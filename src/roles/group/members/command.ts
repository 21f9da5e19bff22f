/**
 * Layer: role `group`, member driver. The operator's own commands: start,
 * stop and monitor, each under a timeout (the manager enforces timeouts,
 * not the agent: OCF). A stop that outlives `stop_timeout` gets TERM on its
 * process group and KILL `kill_grace` later; it then counts as failed,
 * because nothing proves the service is down. Without a `monitor` command
 * the member's state is what the journal recorded.
 */
import { runCommand, describeCommand, type Command, type CommandResult } from '../../../actions/commands';
import type { CommandMember, Effect, Member, MemberStatus, StepOutcome } from '../types';

/** Exit status of a monitor meaning "not running" (OCF_NOT_RUNNING); any other non-zero is a failure. */
export const OCF_NOT_RUNNING = 7;

const tail = (r: CommandResult) => `${r.stdout}${r.stderr}`.trim().slice(-400);
const why = (r: CommandResult, timeoutMs: number) =>
  r.spawnError ? `could not start: ${r.spawnError}` : r.timedOut ? `timed out after ${timeoutMs} ms (process group killed)` : r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;

/** Environment every member command sees, so one script can serve several members. */
export function commandEnv(group: string, member: string, op: string): NodeJS.ProcessEnv {
  return { ...process.env, VIGIL_GROUP: group, VIGIL_MEMBER: member, VIGIL_OP: op };
}

/** The `command` member. `recorded` is the journal's state, used when there is no monitor. */
export function commandMember(c: CommandMember, group: string, recorded: () => 'running' | 'stopped'): Member {
  const run = async (cmd: Command, op: string, timeoutMs: number, killGraceMs = 2000) =>
    runCommand(cmd, { timeoutMs, killGraceMs, env: commandEnv(group, c.name, op) });
  return {
    config: c,
    monitorSpawns: c.monitor !== undefined,
    async validate() {
      return [];
    },
    async monitor(): Promise<MemberStatus> {
      if (c.monitor === undefined) return { state: recorded(), detail: 'from the journal (no monitor command)' };
      const r = await run(c.monitor, 'monitor', c.timeoutMs);
      if (r.ok) return { state: 'running' };
      // OCF_NOT_RUNNING is the conventional answer; any other exit status is read the same way.
      if (!r.timedOut && !r.spawnError && r.code !== null) return { state: 'stopped', detail: `monitor exit ${r.code}${r.code === OCF_NOT_RUNNING ? ' (not running)' : ''}` };
      return { state: 'failed', reason: `monitor ${describeCommand(c.monitor)}: ${why(r, c.timeoutMs)}` };
    },
    async start(): Promise<StepOutcome> {
      const r = await run(c.start, 'start', c.timeoutMs);
      return r.ok ? { ok: true } : { ok: false, reason: `start ${describeCommand(c.start)}: ${why(r, c.timeoutMs)}`, output: tail(r) };
    },
    async stop(): Promise<StepOutcome> {
      if (c.stop === undefined) return { ok: true, detail: 'no stop command' };
      const r = await run(c.stop, 'stop', c.stopTimeoutMs, c.killGraceMs);
      return r.ok ? { ok: true } : { ok: false, reason: `stop ${describeCommand(c.stop)}: ${why(r, c.stopTimeoutMs)}`, output: tail(r) };
    },
    plan(op): Effect[] {
      if (op === 'start') return [{ member: c.name, op: 'runCommand', detail: `${describeCommand(c.start)} (timeout ${c.timeoutMs} ms)` }];
      if (c.stop === undefined) return [];
      return [{ member: c.name, op: 'runCommand', detail: `${describeCommand(c.stop)} (TERM after ${c.stopTimeoutMs} ms, KILL ${c.killGraceMs} ms later)` }];
    },
  };
}
