/**
 * Layer: daemon. systemd notification (sd_notify(3)) through the native
 * layer, since Node cannot send AF_UNIX datagrams.
 *
 * READY after the sockets are open, RELOADING/READY around a reload,
 * STOPPING on stop, WATCHDOG at half WATCHDOG_USEC while the loop is healthy
 * (systemd.service(5) WatchdogSec=). Outside systemd (no NOTIFY_SOCKET) every
 * call is a no-op.
 */
import { native } from '../native';
import { moduleLog } from '../log';

/** The notifier the daemon uses; injectable for tests. */
export interface Notifier {
  ready(status?: string): void;
  reloading(): void;
  stopping(): void;
  watchdog(): void;
  status(text: string): void;
  /** Half the watchdog interval in ms, or undefined when systemd set none for us. */
  readonly watchdogIntervalMs: number | undefined;
}

/**
 * A notifier for NOTIFY_SOCKET (from the environment unless given). With the
 * process environment, the variables are taken out once read (sd_notify's
 * unset_environment), so the operator's commands vigil runs do not inherit
 * them and talk to systemd in vigil's name.
 */
export function systemdNotifier(env: NodeJS.ProcessEnv = process.env): Notifier {
  const sock = env.NOTIFY_SOCKET;
  const usecText = env.WATCHDOG_USEC;
  const pidText = env.WATCHDOG_PID;
  if (env === process.env) {
    delete process.env.NOTIFY_SOCKET;
    delete process.env.WATCHDOG_USEC;
    delete process.env.WATCHDOG_PID;
  }
  const log = moduleLog('notify');
  const usec = Number(usecText);
  const forUs = pidText === undefined || Number(pidText) === process.pid;
  const watchdogIntervalMs = Number.isFinite(usec) && usec > 0 && forUs ? Math.max(1, Math.floor(usec / 2000)) : undefined;
  const send = (state: string) => {
    if (!sock) return;
    try {
      native().sdNotify(sock, state);
    } catch (e) {
      log.warn({ err: e, sock }, 'sd_notify failed');
    }
  };
  return {
    watchdogIntervalMs,
    ready: (status) => send(`READY=1\nMAINPID=${process.pid}${status ? `\nSTATUS=${status}` : ''}`),
    // MONOTONIC_USEC lets systemd ≥253 match RELOADING to its READY (sd_notify(3)).
    reloading: () => send(`RELOADING=1\nMONOTONIC_USEC=${native().monotonicNs() / 1000n}`),
    stopping: () => send('STOPPING=1'),
    watchdog: () => send('WATCHDOG=1'),
    status: (text) => send(`STATUS=${text}`),
  };
}
