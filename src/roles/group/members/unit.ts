/**
 * Layer: role `group`, member driver. A systemd unit through systemd's
 * D-Bus API (systemd-dbus.ts: StartUnit / StopUnit awaited by JobRemoved,
 * ActiveState as the monitor; no spawn), or through the `systemctl` argv
 * (`start`, `stop`, `is-active`). `backend: auto` uses D-Bus when a system
 * bus socket is there and falls back to systemctl when it is not or does
 * not answer (a container without systemd as PID 1).
 */
import { runCommand, describeCommand } from '../../../actions/commands';
import { errorMessage } from '../../../errors';
import type { Effect, Member, MemberStatus, StepOutcome, UnitMember } from '../types';
import { SystemdBus, systemBusPresent } from './systemd-dbus';

const UNIT_RE = /^[A-Za-z0-9:_.\\@-]+\.(service|socket|target|mount|timer|path|scope|slice)$/;

/** The `unit` member. */
export function unitMember(c: UnitMember): Member {
  const ctl = async (verb: string): Promise<StepOutcome & { stdout?: string; code?: number | null }> => {
    const argv = [c.systemctl, verb, c.unit];
    const r = await runCommand(argv, { timeoutMs: c.timeoutMs });
    if (r.ok) return { ok: true, stdout: r.stdout.trim(), code: 0 };
    return { ok: false, reason: `${describeCommand(argv)}: ${r.spawnError ?? (r.timedOut ? `timed out after ${c.timeoutMs} ms` : `exit ${r.code}`)}`, output: `${r.stdout}${r.stderr}`.trim().slice(-400), stdout: r.stdout.trim(), code: r.code };
  };
  const bus = new SystemdBus();
  // auto: decided once, at the first use; a bus that does not answer then means systemctl for good.
  let useBus: boolean | undefined = c.backend === 'dbus' ? true : c.backend === 'systemctl' ? false : undefined;
  const viaBus = async (): Promise<boolean> => {
    if (useBus !== undefined) return useBus;
    if (!systemBusPresent()) return (useBus = false);
    // Bounded, but not tight: a loaded host answers slowly (connect, Hello, introspection); a bus without systemd answers at once (ServiceUnknown).
    try { await bus.activeState(c.unit, Math.min(c.timeoutMs, 10_000)); useBus = true; } catch { bus.close(); useBus = false; }
    return useBus;
  };
  const systemctlMonitor = async (): Promise<MemberStatus> => {
    const r = await ctl('is-active');
    if (r.ok) return { state: 'running' };
    // is-active prints the state: inactive → stopped; failed → failed; anything else (activating…) is not running yet.
    if (r.stdout === 'failed') return { state: 'failed', reason: `${c.unit} is failed` };
    if (r.code === null) return { state: 'failed', reason: r.reason };
    return { state: 'stopped', detail: r.stdout };
  };
  return {
    config: c,
    // Only the systemctl backend spawns to read; a dry run then reads the journal instead.
    monitorSpawns: c.backend !== 'dbus',
    async validate() {
      return UNIT_RE.test(c.unit) ? [] : [`'${c.unit}' is not a unit name with a type suffix like .service`];
    },
    async monitor(): Promise<MemberStatus> {
      if (!(await viaBus())) return systemctlMonitor();
      try {
        const st = await bus.activeState(c.unit, c.timeoutMs);
        if (st === 'active' || st === 'reloading') return { state: 'running', detail: `D-Bus ActiveState ${st}` };
        if (st === 'failed') return { state: 'failed', reason: `${c.unit} is failed (D-Bus ActiveState)` };
        return { state: 'stopped', detail: `D-Bus ActiveState ${st}` };
      } catch (e) {
        return { state: 'failed', reason: `D-Bus: ${errorMessage(e)}` };
      }
    },
    start: async () => ((await viaBus()) ? bus.job('StartUnit', c.unit, c.timeoutMs) : ctl('start')),
    stop: async () => ((await viaBus()) ? bus.job('StopUnit', c.unit, c.timeoutMs) : ctl('stop')),
    plan(op): Effect[] {
      if (c.backend === 'dbus') return [{ member: c.name, op: 'dbus', detail: `${op === 'start' ? 'StartUnit' : 'StopUnit'}(${c.unit}, replace)` }];
      return [{ member: c.name, op: c.backend === 'auto' ? 'dbus-or-runCommand' : 'runCommand', detail: `${c.backend === 'auto' ? `D-Bus ${op === 'start' ? 'StartUnit' : 'StopUnit'}(${c.unit}) if systemd is on the system bus, else ` : ''}${describeCommand([c.systemctl, op, c.unit])}` }];
    },
  };
}
