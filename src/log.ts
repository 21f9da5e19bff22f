/**
 * Layer: shared. The one root pino logger and its per-module children.
 *
 * Every line carries `node` and `role`: a child bound to a role (the fence
 * module's `role: fence`) keeps its own; every other line gets the node's
 * current role from {@link setLogRole} through pino's mixin (the HA IP role
 * reports master/slave as it changes, so a daemon or netlink line says which
 * side wrote it). One key, never two: pino's setBindings would append a
 * duplicate rather than replace it. The
 * destination is stdout or a file that {@link reopenLog} reopens after
 * logrotate (SIGHUP). Fatal paths call {@link flushLog} before exiting so the
 * evidence for a decision is on disk first.
 */
import pino from 'pino';
import type { Logger as PinoLogger, DestinationStream } from 'pino';

export type Logger = PinoLogger;
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

interface LogState { root: Logger; file?: string; dest: DestinationStream & { reopen?: (file?: string) => void; flushSync?: () => void } }
let state: LogState | undefined;
/** The node's current role for lines not bound to one; undefined: no field. */
let currentRole: string | undefined;

/** Set the role that lines not bound to a role carry (see the file comment). */
export function setLogRole(role: string | undefined): void {
  currentRole = role;
}

const CHINDINGS = pino.symbols.chindingsSym;
/** pino mixin: the current role, unless the logger is bound to one. */
function roleMixin(_obj: object, _level: number, logger: Logger): object {
  if (currentRole === undefined) return {};
  const chindings = (logger as unknown as Record<symbol, string | undefined>)[CHINDINGS] ?? '';
  return chindings.includes('"role":') ? {} : { role: currentRole };
}

/** Options for the root logger. */
export interface LogOptions { level?: LogLevel; file?: string; node?: string; sync?: boolean }

/** Create (or replace) the root logger. */
export function initLog(opts: LogOptions = {}): Logger {
  const dest = pino.destination({ dest: opts.file ?? 1, sync: opts.sync ?? true, mkdir: opts.file !== undefined, mode: 0o600 } as never);
  const root = pino({
    level: opts.level ?? 'info',
    base: { pid: process.pid, ...(opts.node ? { node: opts.node } : {}) },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin: roleMixin,
  }, dest);
  state = { root, dest: dest as LogState['dest'], ...(opts.file ? { file: opts.file } : {}) };
  return root;
}

/** The root logger, created with defaults on first use. */
export function rootLog(): Logger {
  return (state ?? { root: initLog() }).root;
}

/** A child logger for one module (`{module: name}` on every line). */
export function moduleLog(module: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLog().child({ module, ...bindings });
}

/** Change the level of the root logger (children follow on next creation). */
export function setLogLevel(level: LogLevel): void {
  rootLog().level = level;
}

/** Reopen the log file (after logrotate moved it). No-op for stdout. */
export function reopenLog(): void {
  if (!state?.file) return;
  try {
    state.dest.reopen?.();
  } catch (e) {
    state.root.error({ err: String(e), file: state.file }, 'cannot reopen the log file');
  }
}

/** Write everything buffered; call before a fatal exit or a fence. */
export function flushLog(): void {
  try { state?.dest.flushSync?.(); } catch { /* sync destinations have nothing buffered */ }
}

/**
 * Map a vzhaipd numeric level (0–900, lower = more severe; V-43) onto
 * pino's levels: 10 critical → error, 20–30 state/transitions → warn/info,
 * 40–99 info/detail → info/debug, 100+ chatter → trace.
 */
export function levelFromVzhaipd(n: number): LogLevel {
  if (n < 10) return 'fatal';
  if (n < 20) return 'error';
  if (n < 30) return 'warn';
  if (n < 70) return 'info';
  if (n < 100) return 'debug';
  return 'trace';
}
