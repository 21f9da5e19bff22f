/**
 * Layer: executor. Runs the operator's own commands (on_master, on_slave,
 * fence actions, track checks, vzctl) — the only place vigil spawns.
 *
 * A command is either a string, run under `/bin/sh -c`, or an argv list,
 * run directly (no shell, no word splitting). Every run has a timeout; a
 * command that outlives it is killed with its whole process group (it is
 * started as a group leader), TERM first and KILL after a grace period.
 * A command ends when its leader exits, not when every holder of its output
 * pipes does: background children it starts are left running.
 * Output is captured up to a bound and returned for the log.
 */
import { spawn } from 'node:child_process';
import { countCommand } from '../metrics';

/**
 * After the command's leader exits, how long its output may still take to
 * arrive before the run ends anyway (the pipes may be held by a background
 * child for as long as that child lives).
 */
const EXIT_DRAIN_MS = 200;

/** A command as written in the config: shell string or argv. */
export type Command = string | readonly string[];

/** What happened to one run. */
export interface CommandResult {
  argv: readonly string[];
  /** Exit code, or null when killed by a signal or never started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** True when {@link RunOptions.signal} stopped the run (the group was killed as on a timeout). */
  aborted?: boolean;
  /** Set when the process could not be started at all (ENOENT, EACCES…). */
  spawnError?: string;
  stdout: string;
  stderr: string;
  durationMs: number;
  ok: boolean;
}

/** Options for {@link runCommand}. */
export interface RunOptions {
  timeoutMs: number;
  /** Time between TERM and KILL of the process group after a timeout. */
  killGraceMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Bytes of stdout/stderr kept for the log. */
  maxOutputBytes?: number;
  input?: string;
  /**
   * The config key that names the command (on_master, track, fence…): counted
   * in `vigil_commands_total` under it. Unnamed runs are not counted (the
   * label set stays bounded by the config's keys).
   */
  name?: string;
  /** Aborting it kills the process group (TERM, then KILL after the grace), as a timeout does. */
  signal?: AbortSignal;
}

/** The argv a command runs as. */
export function commandArgv(cmd: Command): readonly string[] {
  return typeof cmd === 'string' ? ['/bin/sh', '-c', cmd] : cmd;
}

/** A command as an operator reads it in a log line. */
export function describeCommand(cmd: Command): string {
  return typeof cmd === 'string' ? cmd : cmd.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

/** Run one command to completion (or timeout). Never throws. */
export function runCommand(cmd: Command, opts: RunOptions): Promise<CommandResult> {
  const argv = commandArgv(cmd);
  const max = opts.maxOutputBytes ?? 16 * 1024;
  const started = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - started) / 1e6;
  return new Promise((resolve) => {
    if (argv.length === 0) {
      resolve({ argv, code: null, signal: null, timedOut: false, spawnError: 'empty command', stdout: '', stderr: '', durationMs: 0, ok: false });
      return;
    }
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let aborted = false;
    let settled = false;
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: true, // own process group, so a timeout kills grandchildren too
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    const keep = (acc: string, chunk: Buffer) => (acc.length >= max ? acc : acc + chunk.toString('utf8', 0, Math.min(chunk.length, max - acc.length)));
    child.stdout?.on('data', (c: Buffer) => { stdout = keep(stdout, c); });
    child.stderr?.on('data', (c: Buffer) => { stderr = keep(stderr, c); });
    if (opts.input !== undefined) {
      // A command that exits without reading its stdin makes the write fail with EPIPE; unhandled, that
      // 'error' event would kill the whole daemon. The command's own exit status is what counts.
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(opts.input);
    }
    const killGroup = (sig: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try { process.kill(-child.pid, sig); } catch { /* already gone */ }
    };
    let killTimer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;
    let killed = false;
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    // TERM to the group, KILL after the grace; past it the leader's exit ends
    // the run, whatever holds the pipes. A timeout and an abort both end so.
    const escalate = () => {
      killGroup('SIGTERM');
      killTimer = setTimeout(() => {
        killed = true;
        killGroup('SIGKILL');
        if (exited) finish(exited);
      }, opts.killGraceMs ?? 2000);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      escalate();
    }, opts.timeoutMs);
    const finish = (r: Omit<CommandResult, 'argv' | 'stdout' | 'stderr' | 'durationMs' | 'ok' | 'timedOut'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      if (drainTimer) clearTimeout(drainTimer);
      opts.signal?.removeEventListener('abort', abort);
      // The group may still hold children that ignored TERM; they go with the leader.
      if (timedOut || aborted) killGroup('SIGKILL');
      // A background child (or a setsid one, outside the group) may still hold
      // the pipes: stop reading them so nothing keeps the run, or the loop, alive.
      child.stdout?.destroy();
      child.stderr?.destroy();
      const ok = !timedOut && !aborted && r.code === 0 && !r.spawnError;
      if (opts.name !== undefined) countCommand(opts.name, ok ? 'ok' : timedOut ? 'timeout' : aborted ? 'aborted' : r.spawnError ? 'spawn_error' : 'failed');
      resolve({ argv, ...r, timedOut, ...(aborted ? { aborted } : {}), stdout, stderr, durationMs: elapsed(), ok });
    };
    // An abort ends the run as a timeout does (TERM, grace, KILL), reported as aborted.
    function abort(): void {
      if (settled || timedOut || aborted) return;
      aborted = true;
      clearTimeout(timer);
      escalate();
    }
    if (opts.signal?.aborted) abort();
    else opts.signal?.addEventListener('abort', abort, { once: true });
    child.on('error', (e: NodeJS.ErrnoException) => finish({ code: null, signal: null, spawnError: e.code ?? e.message }));
    // The command is done when its leader exits. 'close' waits for the pipes
    // too, and a background child inherits them: `svc & echo started` (how an
    // on_master starts a service) would keep the run pending until the service
    // dies, or be killed as timed out. So: once the leader has exited, the
    // timeout no longer applies (its background children are its business),
    // and the run ends at 'close' or EXIT_DRAIN_MS later, whichever is first.
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      if (!timedOut) clearTimeout(timer);
      if (killed) { finish(exited); return; }
      const r = exited;
      drainTimer = setTimeout(() => finish(r), EXIT_DRAIN_MS);
    });
    child.on('close', (code, signal) => finish(exited ?? { code, signal }));
  });
}
