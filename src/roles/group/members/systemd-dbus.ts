/**
 * Layer: role `group`, member I/O. systemd's D-Bus API (org.freedesktop.
 * systemd1.Manager) for `unit` members: StartUnit / StopUnit with mode
 * `replace`, awaited through the `JobRemoved` signal of the job they
 * return, and the unit's `ActiveState` property as the monitor. No process
 * is spawned. The bus is the system bus (`DBUS_SYSTEM_BUS_ADDRESS`, else
 * /run/dbus/system_bus_socket), so tests point it at a private bus with
 * python3-dbusmock's systemd template.
 */
import { existsSync } from 'node:fs';
import * as dbus from '@particle/dbus-next';
import { errorMessage } from '../../../errors';
import type { StepOutcome } from '../types';

const SYSTEMD = 'org.freedesktop.systemd1';
const PATH = '/org/freedesktop/systemd1';
const MANAGER = 'org.freedesktop.systemd1.Manager';
const UNIT = 'org.freedesktop.systemd1.Unit';
const PROPS = 'org.freedesktop.DBus.Properties';

/** True when a system bus socket is there to try (the `auto` backend's first question). */
export function systemBusPresent(): boolean {
  const env = process.env.DBUS_SYSTEM_BUS_ADDRESS;
  if (env) {
    const m = /unix:path=([^,;]+)/.exec(env);
    return m ? existsSync(m[1]!) : true;
  }
  return existsSync('/run/dbus/system_bus_socket');
}

/** One connection to systemd on the system bus, opened on first use. */
export class SystemdBus {
  private bus: dbus.MessageBus | undefined;
  private manager: dbus.ClientInterface | undefined;

  /** Job results heard on the bus (JobRemoved), by job path. */
  private readonly ended = new Map<string, string>();
  private wake: (() => void) | undefined;

  private async mgr(): Promise<dbus.ClientInterface> {
    if (this.manager) return this.manager;
    const bus = dbus.systemBus();
    // A connection error is reported by the next call; without a listener it would crash the process.
    bus.on('error', () => { this.close(); });
    this.bus = bus;
    const obj = await bus.getProxyObject(SYSTEMD, PATH);
    this.manager = obj.getInterface(MANAGER);
    // JobRemoved at the message level: a stand-in may not declare the signal in its introspection.
    bus.on('message', (msg: dbus.Message) => {
      if (msg.type === dbus.MessageType.SIGNAL && msg.interface === MANAGER && msg.member === 'JobRemoved') {
        const [, job, , result] = msg.body as [number, string, string, string];
        this.ended.set(job, result);
        this.wake?.();
      }
    });
    const busIface = (await bus.getProxyObject('org.freedesktop.DBus', '/org/freedesktop/DBus')).getInterface('org.freedesktop.DBus');
    await busIface.AddMatch(`type='signal',sender='${SYSTEMD}',interface='${MANAGER}',member='JobRemoved'`);
    // systemd sends job signals only to subscribed clients; a stand-in without Subscribe still sends them.
    const mgr = this.manager;
    if (typeof mgr.Subscribe === 'function') await (mgr.Subscribe() as Promise<void>).catch(() => undefined);
    return mgr;
  }

  /**
   * StartUnit/StopUnit and wait for its job to end: ok when its result is
   * `done`, or when the unit reached the goal state (the job signal may
   * have been missed).
   */
  async job(op: 'StartUnit' | 'StopUnit', unit: string, timeoutMs: number): Promise<StepOutcome> {
    const deadline = Date.now() + timeoutMs;
    try {
      const m = await withTimeout(this.mgr(), timeoutMs, 'connecting to systemd on the system bus');
      const job = await withTimeout(m[op](unit, 'replace') as Promise<string>, timeoutMs, `${op} ${unit}`);
      const goal = op === 'StartUnit' ? ['active'] : ['inactive', 'failed'];
      for (;;) {
        const result = this.ended.get(job);
        if (result !== undefined) {
          this.ended.delete(job);
          return result === 'done' ? { ok: true, detail: `D-Bus ${op} ${unit}: job done` } : { ok: false, reason: `D-Bus ${op} ${unit}: job ${result}` };
        }
        const st = await this.activeState(unit, Math.max(1, deadline - Date.now())).catch(() => undefined);
        if (st !== undefined && goal.includes(st)) return { ok: true, detail: `D-Bus ${op} ${unit}: ActiveState ${st}` };
        if (Date.now() >= deadline) return { ok: false, reason: `D-Bus ${op} ${unit}: job ${job} did not end within ${timeoutMs} ms (ActiveState ${st ?? 'unknown'})` };
        await new Promise<void>((r) => { this.wake = r; setTimeout(r, Math.min(100, Math.max(1, deadline - Date.now()))); });
      }
    } catch (e) {
      if (!this.manager) this.close();
      return { ok: false, reason: `D-Bus ${op} ${unit}: ${errorMessage(e)}` };
    }
  }

  /** The unit's ActiveState (`active`, `inactive`, `failed`, `activating`…); `inactive` for a unit systemd has not loaded. */
  async activeState(unit: string, timeoutMs: number): Promise<string> {
    const m = await withTimeout(this.mgr(), timeoutMs, 'connecting to systemd on the system bus');
    let path: string;
    try {
      path = await withTimeout(m.GetUnit(unit) as Promise<string>, timeoutMs, `GetUnit ${unit}`);
    } catch (e) {
      // systemd answers NoSuchUnit for a unit it has not loaded: it is not running.
      if (e instanceof dbus.DBusError && /NoSuchUnit/.test(e.type)) return 'inactive';
      throw e;
    }
    const obj = await withTimeout(this.bus!.getProxyObject(SYSTEMD, path), timeoutMs, `unit ${unit}`);
    const v = await withTimeout(obj.getInterface(PROPS).Get(UNIT, 'ActiveState') as Promise<dbus.Variant<string>>, timeoutMs, `ActiveState of ${unit}`);
    return String(v.value);
  }

  close(): void {
    try { this.bus?.disconnect(); } catch { /* already gone */ }
    this.bus = undefined;
    this.manager = undefined;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: no answer within ${ms} ms`)), ms); })]).finally(() => clearTimeout(t));
}
