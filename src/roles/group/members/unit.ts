/**
 * Layer: role `group`, member driver. A systemd unit through the
 * `systemctl` argv (the D-Bus backend is still to come): `start`, `stop`,
 * and `is-active` as the monitor. The program path is configurable so tests
 * use a stand-in.
 */
import { runCommand, describeCommand } from '../../../actions/commands';
import type { Effect, Member, MemberStatus, StepOutcome, UnitMember } from '../types';

const UNIT_RE = /^[A-Za-z0-9:_.\\@-]+\.(service|socket|target|mount|timer|path|scope|slice)$/;

/** The `unit` member. */
export function unitMember(c: UnitMember): Member {
  const ctl = async (verb: string): Promise<StepOutcome & { stdout?: string; code?: number | null }> => {
    const argv = [c.systemctl, verb, c.unit];
    const r = await runCommand(argv, { timeoutMs: c.timeoutMs });
    if (r.ok) return { ok: true, stdout: r.stdout.trim(), code: 0 };
    return { ok: false, reason: `${describeCommand(argv)}: ${r.spawnError ?? (r.timedOut ? `timed out after ${c.timeoutMs} ms` : `exit ${r.code}`)}`, output: `${r.stdout}${r.stderr}`.trim().slice(-400), stdout: r.stdout.trim(), code: r.code };
  };
  return {
    config: c,
    monitorSpawns: true,
    async validate() {
      return UNIT_RE.test(c.unit) ? [] : [`'${c.unit}' is not a unit name with a type suffix like .service`];
    },
    async monitor(): Promise<MemberStatus> {
      const r = await ctl('is-active');
      if (r.ok) return { state: 'running' };
      // is-active prints the state: inactive → stopped; failed → failed; anything else (activating…) is not running yet.
      if (r.stdout === 'failed') return { state: 'failed', reason: `${c.unit} is failed` };
      if (r.code === null) return { state: 'failed', reason: r.reason };
      return { state: 'stopped', detail: r.stdout };
    },
    start: () => ctl('start'),
    stop: () => ctl('stop'),
    plan(op): Effect[] {
      return [{ member: c.name, op: 'runCommand', detail: describeCommand([c.systemctl, op, c.unit]) }];
    },
  };
}
