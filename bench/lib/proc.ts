/**
 * Layer: bench support. CPU time of this process and of commands a bench
 * runs for comparison.
 *
 * A child's CPU time cannot be read once Node has reaped it, so commands
 * are measured inside `bash -c '…; times'`: bash's `times` prints its own
 * and its children's user/system time (getrusage, millisecond precision),
 * which covers every process the command line started.
 */

/** CPU time in microseconds since `since` (a previous `process.cpuUsage()`). */
export function cpuMicros(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return u.user + u.system;
}

const TIME_RE = /(\d+)m(\d+(?:\.\d+)?)s/g;

/**
 * Parse the two lines bash's `times` prints (`0m0.004s 0m0.001s` for the
 * shell, then the same for its children), taken from the end of `stderr`.
 */
export function parseShellTimes(stderr: string): { shellUs: number; childrenUs: number } | undefined {
  const lines = stderr.trim().split('\n').slice(-2);
  if (lines.length !== 2) return undefined;
  const us = (line: string): number | undefined => {
    const m = [...line.matchAll(TIME_RE)];
    if (m.length !== 2) return undefined;
    return m.reduce((sum, x) => sum + (Number(x[1]) * 60 + Number(x[2])) * 1e6, 0);
  };
  const shellUs = us(lines[0]!);
  const childrenUs = us(lines[1]!);
  if (shellUs === undefined || childrenUs === undefined) return undefined;
  return { shellUs: Math.round(shellUs), childrenUs: Math.round(childrenUs) };
}

/**
 * The argv that runs `argv` `n` times in a row inside bash, pausing
 * `pauseMs` after each run, and then prints `times` on stderr (stdout is
 * left to the command). The pause is bash's own `read -t` on a pipe that
 * never delivers, so it starts no process and stays out of the children's
 * CPU time.
 */
export function timedLoopArgv(n: number, argv: string[], pauseMs = 0): string[] {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`n must be a positive integer, got ${n}`);
  if (!Number.isFinite(pauseMs) || pauseMs < 0) throw new RangeError(`pauseMs must be ≥ 0, got ${pauseMs}`);
  const pause = pauseMs > 0 ? `read -t ${(pauseMs / 1000).toFixed(3)} -u "$fd" || true; ` : '';
  const script = `exec {fd}<> <(:); n=$1; shift; for ((i = 0; i < n; i++)); do "$@"; ${pause}done; times >&2`;
  return ['bash', '-c', script, 'bench-loop', String(n), ...argv];
}
