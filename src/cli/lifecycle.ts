/**
 * Layer: CLI. The verbs that manage a running daemon from outside:
 * start (detached), stop, restart, reload, status, leave.
 *
 * They find the daemon through the PID file named in the config and talk
 * to it through its control socket. A PID is signalled only after checking
 * that the process is a vigil for the same config (never a stale PID that
 * now belongs to something else: vzhaipd V-39).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../config/load';
import { checkSecureDir } from '../config/permissions';
import { DEFAULT_PIDFILE } from '../config/schema';
import type { VigilConfig } from '../config/types';
import { ConfigError, errorMessage } from '../errors';
import { readPid, isVigilProcess, isRunning, findVigilFor } from '../daemon/pidfile';
import { askControl, controlPath } from '../daemon/control';
import { parseDurationMs, DURATION_FORMS } from '../util/duration';
import { CONFIG_OPTS, EXIT, parseFlags, usageError } from './common';
import { roles } from '../roles';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function load(verb: string, file: string): VigilConfig | undefined {
  try {
    return loadConfig(path.resolve(file));
  } catch (e) {
    usageError(verb, errorMessage(e));
    return undefined;
  }
}

/** Where a running daemon for a config is found: the config file and its PID file. */
interface Target { file: string; pidfile: string }

/**
 * Find the daemon of a config for stop, status, reload and leave. These must
 * work even after an edit broke the config (the operator stops, fixes,
 * starts): an invalid file is still read leniently for its `pidfile` (the
 * default when it names none), with a warning. A missing file is an error.
 */
function locate(verb: string, file: string): Target | undefined {
  const abs = path.resolve(file);
  try {
    const cfg = loadConfig(abs, { checkPermissions: false });
    return { file: cfg.file, pidfile: cfg.pidfile };
  } catch (e) {
    if (!(e instanceof ConfigError) || !fs.existsSync(abs)) { usageError(verb, errorMessage(e)); return undefined; }
    let pidfile = DEFAULT_PIDFILE;
    try {
      const doc = parseYaml(fs.readFileSync(abs, 'utf8')) as { pidfile?: unknown } | null;
      if (typeof doc?.pidfile === 'string' && path.isAbsolute(doc.pidfile)) pidfile = doc.pidfile;
    } catch { /* not even YAML: the default it is */ }
    process.stderr.write(`vigil ${verb}: warning: ${errorMessage(e)}; looking for the running daemon through ${pidfile}\n`);
    return { file: abs, pidfile };
  }
}

/** Thrown (as exit 2) when the PID file cannot be read for want of privilege. */
function pidFromFile(t: Target): number | undefined {
  try {
    fs.accessSync(t.pidfile, fs.constants.R_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') throw new ConfigError(`cannot read ${t.pidfile} (${code}): run as root`, { code });
    return undefined;
  }
  return readPid(t.pidfile);
}

/**
 * The pid of the running daemon for this config, if any: the PID file's,
 * when that process is a vigil for the same config; else a `vigil run` of
 * the same config found in /proc (its PID file was changed in the config
 * since it started, or removed), so a restart never starts a second one.
 */
function runningPid(t: Target): number | undefined {
  const pid = pidFromFile(t);
  if (pid !== undefined && isRunning(pid) && isVigilProcess(pid, t.file)) return pid;
  return findVigilFor(t.file);
}

/**
 * Report why the control socket gave no answer: not running (3, and the
 * JSON form for status), no privilege (2), running but silent (1), or
 * running under another PID file (1, with what to do).
 */
function noAnswer(verb: string, t: Target, e: unknown, json = false): number {
  const code = (e as { code?: string }).code;
  const sock = controlPath(t.pidfile);
  if (code === 'EACCES' || code === 'EPERM') {
    process.stderr.write(`vigil ${verb}: permission denied on ${sock}: run as root\n`);
    return EXIT.USAGE;
  }
  let pid: number | undefined;
  try { pid = runningPid(t); } catch (pe) { process.stderr.write(`vigil ${verb}: ${errorMessage(pe)}\n`); return EXIT.USAGE; }
  if (pid !== undefined && code === 'ETIMEDOUT') {
    process.stderr.write(`vigil ${verb}: vigil (pid ${pid}) is running but did not answer on ${sock}: ${errorMessage(e)}\n`);
    return EXIT.FAIL;
  }
  if (pid !== undefined && readPid(t.pidfile) !== pid) {
    process.stderr.write(`vigil ${verb}: vigil (pid ${pid}) runs ${t.file} but not with PID file ${t.pidfile} (changed since it started?); stop it with: kill -TERM ${pid}\n`);
    return EXIT.FAIL;
  }
  if (json) process.stdout.write(JSON.stringify({ running: false, config: t.file }) + '\n');
  else process.stdout.write(`vigil is not running for ${t.file}\n`);
  return EXIT.NOT_RUNNING;
}

/** True if the control socket next to `pidfile` answers a status request from `pid`. */
async function answersAs(pidfile: string, pid: number): Promise<boolean> {
  try {
    const st = (await askControl(controlPath(pidfile), { cmd: 'status' }, 2000)) as { pid?: number };
    return st.pid === pid;
  } catch {
    return false;
  }
}

export const START_HELP = `usage: vigil start [-c FILE] [--timeout 30s]

Start the daemon detached. Returns once every role has started and the
daemon answers on its control socket (exit 0), or non-zero with its error
if it fails to start or does not finish starting within --timeout. Without
log.file in the config, the detached daemon logs to <state_dir>/vigil.log.
`;

/** `vigil start`. */
export async function start(args: string[]): Promise<number> {
  const f = parseFlags('start', args, { ...CONFIG_OPTS, timeout: { type: 'string', default: '30s' } });
  if (!f) return EXIT.USAGE;
  if (f.values.help) { process.stdout.write(START_HELP); return EXIT.OK; }
  const timeoutMs = parseDurationMs(f.values.timeout);
  if (timeoutMs === undefined) return usageError('start', `--timeout '${f.values.timeout}' is not ${DURATION_FORMS}`);
  const cfg = load('start', String(f.values.config));
  if (!cfg) return EXIT.USAGE;
  let running: number | undefined;
  let errFd = -1;
  const env = { ...process.env };
  const stderrFile = path.join(cfg.stateDir, 'vigil.start.err');
  try {
    running = runningPid(cfg);
    if (running === undefined) {
      // The start error file (and the default log) live in state_dir: it must
      // be ours alone, and a symlink planted there must not be followed.
      fs.mkdirSync(cfg.stateDir, { recursive: true, mode: 0o700 });
      checkSecureDir(cfg.stateDir, 'state_dir');
      errFd = fs.openSync(stderrFile, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o600);
    }
  } catch (e) {
    return usageError('start', errorMessage(e));
  }
  if (running !== undefined) {
    if (readPid(cfg.pidfile) !== running) {
      process.stderr.write(`vigil start: vigil (pid ${running}) already runs ${cfg.file} with another PID file (changed since it started?); refusing to start a second; stop it with: kill -TERM ${running}\n`);
      return EXIT.FAIL;
    }
    process.stdout.write(`vigil is already running for ${cfg.file} (pid ${running})\n`);
    return EXIT.OK;
  }
  if (!cfg.log.file) env.VIGIL_LOG_FILE = path.join(cfg.stateDir, 'vigil.log');
  delete env.NOTIFY_SOCKET; // a detached daemon is not the unit's main process
  const child = spawn(process.execPath, [...process.execArgv, require.main?.filename ?? path.join(__dirname, '..', '..', '..', 'bin', 'vigil'), 'run', '-c', cfg.file], {
    detached: true, stdio: ['ignore', 'ignore', errFd], env,
  });
  fs.closeSync(errFd);
  let exited: number | null | undefined;
  child.on('exit', (code) => { exited = code ?? 1; });
  child.unref();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited !== undefined) {
      const err = fs.readFileSync(stderrFile, 'utf8').trim().split('\n').filter(Boolean).pop();
      process.stderr.write(`vigil start: the daemon exited with code ${exited}${err ? `: ${err.replace(/^vigil: /, '')}` : ''}\n`);
      return exited === 0 || exited === null ? EXIT.FAIL : exited;
    }
    // Started means every role started: the daemon opens its control socket
    // only after that (the PID file comes first, so it is no proof).
    if (readPid(cfg.pidfile) === child.pid && (await answersAs(cfg.pidfile, child.pid!))) {
      process.stdout.write(`vigil started for ${cfg.file} (pid ${child.pid})\n`);
      return EXIT.OK;
    }
    await sleep(25);
  }
  process.stderr.write(`vigil start: the daemon (pid ${child.pid}) did not finish starting within ${timeoutMs} ms; see ${env.VIGIL_LOG_FILE ?? cfg.log.file ?? 'its log'}\n`);
  return EXIT.FAIL;
}

export const STOP_HELP = `usage: vigil stop [-c FILE] [--timeout 90s]

Stop the daemon gracefully (TERM: on_slave, addresses removed, PID file
removed) and wait for it to exit. Exit 0 once stopped or if it was not
running; 1 if it is still running at the timeout.
`;

/** `vigil stop`. */
export async function stop(args: string[]): Promise<number> {
  const f = parseFlags('stop', args, { ...CONFIG_OPTS, timeout: { type: 'string', default: '90s' } });
  if (!f) return EXIT.USAGE;
  if (f.values.help) { process.stdout.write(STOP_HELP); return EXIT.OK; }
  const timeoutMs = parseDurationMs(f.values.timeout);
  if (timeoutMs === undefined) return usageError('stop', `--timeout '${f.values.timeout}' is not ${DURATION_FORMS}`);
  // Stopping must work even if the config was since broken by an edit.
  const t = locate('stop', String(f.values.config));
  if (!t) return EXIT.USAGE;
  return stopPid('stop', t, timeoutMs);
}

async function stopPid(verb: string, t: Target, timeoutMs: number): Promise<number> {
  let pid: number | undefined;
  const deadline = Date.now() + timeoutMs;
  try {
    pid = runningPid(t);
    // A `vigil start` of this config still under way (a container's umount
    // hook right after its mount hook): its daemon has no PID file yet, so
    // wait for the start to finish rather than miss the daemon it launches.
    const starter = pid === undefined ? findVigilFor(t.file, 'start') : undefined;
    if (starter !== undefined) {
      process.stdout.write(`vigil start (pid ${starter}) is under way for ${t.file}: waiting for it to finish\n`);
      while (isRunning(starter) && Date.now() < deadline) await sleep(25);
      pid = runningPid(t);
    }
    if (pid === undefined) {
      process.stdout.write(`vigil is not running for ${t.file}\n`);
      return EXIT.OK;
    }
    process.kill(pid, 'SIGTERM');
  } catch (e) {
    const code = (e as { code?: string }).code;
    return usageError(verb, code === 'EPERM' ? `cannot signal pid ${pid} (EPERM): run as root` : errorMessage(e));
  }
  return waitGone(verb, pid, deadline, timeoutMs);
}

/** Wait for a daemon that was told to stop to be gone. */
async function waitGone(verb: string, pid: number, deadline: number, timeoutMs: number): Promise<number> {
  while (Date.now() < deadline) {
    if (!isRunning(pid)) {
      process.stdout.write(`vigil stopped (pid ${pid})\n`);
      return EXIT.OK;
    }
    await sleep(25);
  }
  process.stderr.write(`vigil ${verb}: pid ${pid} still running after ${timeoutMs} ms\n`);
  return EXIT.FAIL;
}

export const RESTART_HELP = `usage: vigil restart [-c FILE] [--timeout 90s]

Stop (waiting up to --timeout), then start. The config is validated first:
a config that would not start leaves the running daemon alone. A graceful
stop releases the HA IP, so the peer may take over in between: use reload
for config changes that can apply live.
`;

/** `vigil restart`. */
export async function restart(args: string[]): Promise<number> {
  const f = parseFlags('restart', args, { ...CONFIG_OPTS, timeout: { type: 'string', default: '90s' } });
  if (!f) return EXIT.USAGE;
  if (f.values.help) { process.stdout.write(RESTART_HELP); return EXIT.OK; }
  const timeoutMs = parseDurationMs(f.values.timeout);
  if (timeoutMs === undefined) return usageError('restart', `--timeout '${f.values.timeout}' is not ${DURATION_FORMS}`);
  const cfg = load('restart', String(f.values.config));
  if (!cfg) return EXIT.USAGE;
  const code = await stopPid('restart', cfg, timeoutMs);
  if (code !== EXIT.OK) return code;
  return start(['-c', cfg.file]);
}

export const RELOAD_HELP = `usage: vigil reload [-c FILE]

Ask the running daemon to reload its config. The new config is validated
first; if it is refused, the daemon keeps the old one and this prints why
(exit 1).
`;

/** `vigil reload`. */
export async function reload(args: string[]): Promise<number> {
  const f = parseFlags('reload', args, CONFIG_OPTS);
  if (!f) return EXIT.USAGE;
  if (f.values.help) { process.stdout.write(RELOAD_HELP); return EXIT.OK; }
  // The daemon validates the file itself and says why it refuses it (exit 1).
  const t = locate('reload', String(f.values.config));
  if (!t) return EXIT.USAGE;
  try {
    const r = (await askControl(controlPath(t.pidfile), { cmd: 'reload' })) as { ok: boolean; error?: string };
    if (r.ok) { process.stdout.write('config reloaded\n'); return EXIT.OK; }
    process.stderr.write(`vigil reload: ${r.error}\n`);
    return EXIT.FAIL;
  } catch (e) {
    return noAnswer('reload', t, e);
  }
}

export const STATUS_HELP = `usage: vigil status [-c FILE] [--json]

Show the running daemon's state: for the HA IP role its role, since when,
the last probe and its rtt, the failure count, the addresses held; for the
fence role each agent's state and the fence count. Exit 0 if running, 3 if
not.
`;

/** `vigil status`. */
export async function status(args: string[]): Promise<number> {
  const f = parseFlags('status', args, { ...CONFIG_OPTS, json: { type: 'boolean' } });
  if (!f) return EXIT.USAGE;
  if (f.values.help) { process.stdout.write(STATUS_HELP); return EXIT.OK; }
  const t = locate('status', String(f.values.config));
  if (!t) return EXIT.USAGE;
  let st: Record<string, unknown>;
  try {
    st = (await askControl(controlPath(t.pidfile), { cmd: 'status' })) as Record<string, unknown>;
  } catch (e) {
    return noAnswer('status', t, e, f.values.json === true);
  }
  if (f.values.json) {
    process.stdout.write(JSON.stringify({ running: true, ...st }, null, 2) + '\n');
    return EXIT.OK;
  }
  process.stdout.write(formatStatus(st));
  return EXIT.OK;
}

/** Human-readable status: the daemon's line, then each running role's lines (its own formatter, registry order). */
export function formatStatus(st: Record<string, unknown>): string {
  const lines = [`vigil running: pid ${st.pid}, node ${st.node}, config ${st.config}, since ${st.startedAt}`];
  const running = (st.roles ?? {}) as Record<string, Record<string, unknown>>;
  for (const def of roles()) {
    const status = running[def.name];
    if (status && def.daemon) lines.push(...def.daemon.formatStatus(status));
  }
  return lines.join('\n') + '\n';
}

export const LEAVE_HELP = `usage: vigil leave [-c FILE]

Make every supervised Consul agent leave its cluster gracefully
(PUT /v1/agent/leave), then stop vigil (hostha's 'consuldaemon leave').
`;

/** `vigil leave`. */
export async function leave(args: string[]): Promise<number> {
  const f = parseFlags('leave', args, CONFIG_OPTS);
  if (!f) return EXIT.USAGE;
  if (f.values.help) { process.stdout.write(LEAVE_HELP); return EXIT.OK; }
  const t = locate('leave', String(f.values.config));
  if (!t) return EXIT.USAGE;
  let pid: unknown;
  try {
    const r = (await askControl(controlPath(t.pidfile), { cmd: 'leave' }, 60_000)) as { ok: boolean; pid?: unknown; results?: unknown[] };
    process.stdout.write(`${JSON.stringify(r.results ?? [])}\n`);
    pid = r.pid;
  } catch (e) {
    return noAnswer('leave', t, e);
  }
  // The daemon stops by itself once its agents have left: wait, do not signal
  // (a second stop request only races the first). A daemon from before this
  // reply carried its pid (a package upgrade under a running vigil) is stopped.
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 1) return stopPid('leave', t, 90_000);
  return waitGone('leave', pid, Date.now() + 90_000, 90_000);
}
