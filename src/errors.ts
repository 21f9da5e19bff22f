/**
 * Layer: shared. Error values with stable codes.
 *
 * Every error vigil raises on purpose is a {@link VigilError} with a `code`
 * callers can switch on, and a `retryable` flag that sorts transient failures
 * (a busy socket, a timeout) from fatal ones (bad input, missing privilege).
 * Native errors arrive as `{errno, code, syscall}` and are wrapped by
 * {@link fromNative}.
 */

/** Base class: a message for people, a code for programs. */
export class VigilError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly detail?: Record<string, unknown>;
  constructor(code: string, message: string, opts: { retryable?: boolean; detail?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'VigilError';
    this.code = code;
    this.retryable = opts.retryable ?? false;
    if (opts.detail) this.detail = opts.detail;
  }
}

/** Bad input from the operator: config, CLI arguments, files. Exit code 2. */
export class ConfigError extends VigilError {
  constructor(message: string, detail?: Record<string, unknown>) {
    super('EVIGILCONFIG', message, detail ? { detail } : {});
    this.name = 'ConfigError';
  }
}

/** A system call failed. Carries errno, code (EPERM…) and the syscall. */
export class SystemError extends VigilError {
  readonly errno: number;
  readonly syscall: string;
  constructor(errno: number, code: string, syscall: string, message: string) {
    super(code, message, { retryable: RETRYABLE.has(code) });
    this.name = 'SystemError';
    this.errno = errno;
    this.syscall = syscall;
  }
}

const RETRYABLE = new Set(['EAGAIN', 'EWOULDBLOCK', 'EINTR', 'ENOBUFS', 'ENOMEM', 'EBUSY', 'ETIMEDOUT']);

/** Shape of an error thrown by the native addon. */
export interface NativeErrorShape { errno: number; code: string; syscall: string; message?: string }

/** True when `e` looks like an error from the native layer. */
export function isNativeError(e: unknown): e is NativeErrorShape {
  return typeof e === 'object' && e !== null && typeof (e as NativeErrorShape).errno === 'number'
    && typeof (e as NativeErrorShape).syscall === 'string';
}

/**
 * Wrap a native `{errno, code, syscall}` error, turning the privilege errors
 * into a sentence an operator can act on.
 */
export function fromNative(e: unknown, what: string): VigilError {
  if (!isNativeError(e)) return e instanceof VigilError ? e : new VigilError('EUNKNOWN', `${what}: ${String(e)}`);
  if (e.code === 'EPERM' || e.code === 'EACCES') {
    return new SystemError(e.errno, e.code, e.syscall, `${what}: needs CAP_NET_RAW (run as root or grant the capability)`);
  }
  if (e.code === 'ENODEV' || e.code === 'ENXIO') {
    return new SystemError(e.errno, e.code, e.syscall, `${what}: no such interface`);
  }
  return new SystemError(e.errno, e.code, e.syscall, `${what}: ${e.syscall} failed: ${e.code}${e.message ? ` (${e.message})` : ''}`);
}

/** Message of any thrown value, for logs and one-line CLI errors. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
