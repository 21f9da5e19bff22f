/**
 * Layer: daemon. Single instance through an exclusively locked PID file.
 *
 * vzhaipd guessed liveness from PIDs and signalled whatever process held a
 * stale PID (V-14, V-38, V-39). Here the lock is flock(2) on the open file:
 * it dies with the process, so a stale file is never mistaken for a live
 * daemon, and no PID read from a file is ever signalled without checking
 * that the process is a vigil for the same file ({@link isVigilProcess}).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VigilError } from '../errors';
import { native } from '../native';

/** A held PID file: the open, locked fd and where it lives. */
export interface PidLock {
  path: string;
  fd: number;
  ino: number;
  dev: number;
}

function refuse(message: string, code = 'EPIDFILE'): never {
  throw new VigilError(code, message);
}

/** Check the directory that holds the PID file: real directory, not group/world-writable. */
export function checkPidDir(dir: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (st.isSymbolicLink()) refuse(`PID file directory ${dir} is a symlink; refusing to use it`);
  if (!st.isDirectory()) refuse(`PID file directory ${dir} is not a directory`);
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) {
    refuse(`PID file directory ${dir} has mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')} (group/world-writable); expected 0755 or stricter`);
  }
}

/**
 * Take the PID file: create it 0600 (or open the existing one), refuse
 * symlinks and group/world-writable files, lock it exclusively, write our
 * PID. Throws EALREADYRUNNING when another live process holds the lock.
 */
export function acquirePidFile(file: string): PidLock {
  const dir = path.dirname(file);
  checkPidDir(dir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  checkPidDir(dir);
  try {
    const st = fs.lstatSync(file);
    if (st.isSymbolicLink()) refuse(`PID file ${file} is a symlink; refusing to use it`);
    if (!st.isFile()) refuse(`PID file ${file} is not a regular file`);
    if ((st.mode & 0o022) !== 0) refuse(`PID file ${file} has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')} (group/world-writable); expected 0600`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  // O_NOFOLLOW: a symlink swapped in after the lstat above still fails here.
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
  let locked = false;
  try {
    locked = native().flockExclusive(fd);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  if (!locked) {
    const other = readPid(file);
    fs.closeSync(fd);
    throw new VigilError('EALREADYRUNNING', `another vigil (pid ${other ?? 'unknown'}) holds ${file}; refusing to start a second instance`);
  }
  fs.fchmodSync(fd, 0o600);
  fs.ftruncateSync(fd, 0);
  fs.writeSync(fd, `${process.pid}\n`, 0);
  fs.fsyncSync(fd);
  const st = fs.fstatSync(fd);
  return { path: file, fd, ino: st.ino, dev: st.dev };
}

/** The PID written in a PID file, or undefined. */
export function readPid(file: string): number | undefined {
  try {
    const text = fs.readFileSync(file, 'utf8').trim();
    return /^\d{1,10}$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

/** True while `pid` runs; a zombie (exited, not yet reaped) counts as gone. */
export function isRunning(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the parenthesised command name, which may itself contain ')'.
    const i = stat.lastIndexOf(')');
    return stat.slice(i + 2, i + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** True if `pid` is alive and its command line is a vigil using `configFile` (when given). */
export function isVigilProcess(pid: number, configFile?: string): boolean {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const isVigil = argv.some((a) => /(^|\/)vigil(\.js)?$|cli\/main\.(js|ts)$/.test(a));
    if (!isVigil) return false;
    if (configFile === undefined) return true;
    const i = argv.findIndex((a) => a === '-c' || a === '--config');
    const cfg = i >= 0 ? argv[i + 1] : undefined;
    if (cfg === undefined) return true;
    // A relative -c is relative to the daemon's working directory, not ours.
    const cwd = path.isAbsolute(cfg) ? '/' : fs.readlinkSync(`/proc/${pid}/cwd`);
    return path.resolve(cwd, cfg) === path.resolve(configFile);
  } catch {
    return false;
  }
}

/**
 * A running `vigil run` daemon of `configFile` found in /proc, whatever PID
 * file it holds (its config's `pidfile` may have been edited since it
 * started). Used by the CLI so that start never runs a second daemon and
 * stop finds the first. With `verb` 'start': a `vigil start` of that config
 * still under way (its daemon may not have written its PID file yet).
 */
export function findVigilFor(configFile: string, verb: 'run' | 'start' = 'run'): number | undefined {
  let entries: string[];
  try { entries = fs.readdirSync('/proc'); } catch { return undefined; }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    let argv: string[];
    try { argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'); } catch { continue; }
    if (!argv.includes(verb)) continue;
    if (isRunning(pid) && isVigilProcess(pid, configFile)) return pid;
  }
  return undefined;
}

/**
 * The PID consistency check (vzhaipd's, V-38, without its hazards): does
 * the file at `lock.path` still say we own it? Returns 'ok', 'rewritten'
 * (file missing or stale: we put it back), or 'taken' (another live vigil
 * owns the path: the caller must exit without touching the system).
 */
export function recheckPidFile(lock: PidLock): 'ok' | 'rewritten' | 'taken' {
  let st: fs.Stats | undefined;
  try { st = fs.lstatSync(lock.path); } catch { st = undefined; }
  if (st && st.ino === lock.ino && st.dev === lock.dev && readPid(lock.path) === process.pid) return 'ok';
  const other = st ? readPid(lock.path) : undefined;
  if (other !== undefined && other !== process.pid && isVigilProcess(other)) return 'taken';
  // Missing or stale: write ours again through a fresh, locked file.
  try {
    if (st) fs.unlinkSync(lock.path);
    const fresh = acquirePidFile(lock.path);
    fs.closeSync(lock.fd);
    Object.assign(lock, fresh);
    return 'rewritten';
  } catch {
    return 'taken';
  }
}

/** Remove the PID file if it is still ours, and release the lock. */
export function releasePidFile(lock: PidLock): void {
  try {
    const st = fs.lstatSync(lock.path);
    if (st.ino === lock.ino && st.dev === lock.dev) fs.unlinkSync(lock.path);
  } catch { /* already gone */ }
  try { fs.closeSync(lock.fd); } catch { /* closed */ }
}
