/**
 * Layer: config. Who may write the files vigil trusts.
 *
 * vzhaipd sourced a config that container root could write and checked only
 * its mode, never its owner (seed inventory V-10, V-12, V-40). vigil reads
 * its config, IP file and key files only when they are regular files (a
 * symlink is refused), owned by root, and not writable by anyone else; key
 * files must not be readable by anyone else either. The owner may also be
 * the effective uid of the process itself, so an unprivileged development
 * run can read its own files: such a process can only be fooled by files its
 * own user could have written anyway. Under root (the daemon) this is just
 * "owned by root".
 *
 * Files are opened with O_NOFOLLOW and checked with fstat on the open
 * descriptor, so what is checked is what is read.
 */
import * as fs from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError } from '../errors';
import type { VigilConfig } from './types';
import { roles } from '../roles';
import { sectionOf, type RoleDefinition } from '../roles/role';

/** What a file is for; it sets the rule and the wording of messages. */
export type SecureFileKind = 'config' | 'key' | 'ip-file';

const LABEL: Record<SecureFileKind, string> = { config: 'config file', key: 'key file', 'ip-file': 'IP file' };

/** Options for {@link checkSecureFile} and {@link readSecureFile}. */
export interface SecureFileOptions {
  /** Word used in messages instead of the kind's default (`token file`). */
  label?: string;
  /** Refuse files larger than this (read only). Default 1 MiB. */
  maxBytes?: number;
}

/** Mode bits as operators write them: `0644`. */
export function formatMode(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;
}

function ownerOk(uid: number): boolean {
  return uid === 0 || uid === process.geteuid?.();
}

function ownerText(): string {
  const euid = process.geteuid?.();
  return euid === undefined || euid === 0 ? 'owner root' : `owner root (or uid ${euid}, the user running vigil)`;
}

function expectation(kind: SecureFileKind): string {
  return `expected ${ownerText()} and mode ${kind === 'key' ? '0600' : '0644'} or stricter`;
}

/** The first rule a file's stat breaks, as a message; undefined when it is fine. */
function fileProblem(path: string, st: fs.Stats, kind: SecureFileKind, label: string): string | undefined {
  if (st.isSymbolicLink()) return `${label} ${path} is a symbolic link; expected a regular file (give the path of the file itself)`;
  if (!st.isFile()) return `${label} ${path} is not a regular file; expected a regular file`;
  if (!ownerOk(st.uid)) return `${label} ${path} is owned by uid ${st.uid}; ${expectation(kind)}`;
  if (kind === 'key' && (st.mode & 0o077) !== 0) {
    return `${label} ${path} has mode ${formatMode(st.mode)} (group/world-accessible); ${expectation(kind)}`;
  }
  if ((st.mode & 0o022) !== 0) return `${label} ${path} has mode ${formatMode(st.mode)} (group/world-writable); ${expectation(kind)}`;
  return undefined;
}

/**
 * The directory holding a trusted file must not let others replace it.
 * A sticky directory (/tmp) is accepted: there only the file's owner (root)
 * may rename or remove it.
 */
function parentProblem(path: string, label: string): string | undefined {
  const dir = dirname(path);
  let st: fs.Stats;
  try { st = fs.statSync(dir); } catch (e) { return `${label} ${path}: cannot stat its directory ${dir} (${(e as NodeJS.ErrnoException).code ?? String(e)})`; }
  if (!ownerOk(st.uid) && (st.mode & 0o1000) === 0) {
    return `${label} ${path} is in directory ${dir} owned by uid ${st.uid}; expected a directory owned by root that only root can write`;
  }
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) {
    return `${label} ${path} is in directory ${dir} with mode ${formatMode(st.mode)} (group/world-writable); expected a directory owned by root that only root can write`;
  }
  return undefined;
}

function openError(path: string, label: string, e: unknown): ConfigError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new ConfigError(`${label} ${path} does not exist`, { path, code });
  if (code === 'ELOOP') return new ConfigError(`${label} ${path} is a symbolic link; expected a regular file (give the path of the file itself)`, { path, code });
  if (code === 'EACCES' || code === 'EPERM') return new ConfigError(`${label} ${path} cannot be read: permission denied`, { path, code });
  if (code === 'ENOTDIR') return new ConfigError(`${label} ${path} does not exist (a parent is not a directory)`, { path, code });
  return new ConfigError(`${label} ${path} cannot be opened: ${code ?? String(e)}`, { path, code });
}

/** Open `path` without following a final symlink and check it; returns the fd (caller closes). */
function openChecked(path: string, kind: SecureFileKind, label: string): number {
  let lst: fs.Stats;
  try { lst = fs.lstatSync(path); } catch (e) { throw openError(path, label, e); }
  // Refuse a symlink by lstat for a clear message; O_NOFOLLOW covers a swap in between.
  const early = lst.isSymbolicLink() || !lst.isFile() ? fileProblem(path, lst, kind, label) : undefined;
  if (early) throw new ConfigError(early, { path, mode: lst.mode & 0o7777, uid: lst.uid });
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) { throw openError(path, label, e); }
  try {
    const st = fs.fstatSync(fd);
    const problem = fileProblem(path, st, kind, label) ?? parentProblem(path, label);
    if (problem) throw new ConfigError(problem, { path, mode: st.mode & 0o7777, uid: st.uid });
    return fd;
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/**
 * Check that a file vigil trusts is safe to read: it exists, is a regular
 * file (not a symlink), is owned by root (or the process's euid), is not
 * group/world-writable (config, IP file), or has no group/other bits at all
 * (key files: 0600 or stricter), and sits in a directory others cannot
 * write. Throws a {@link ConfigError} naming the file and its mode in octal.
 */
export function checkSecureFile(path: string, kind: SecureFileKind, opts: SecureFileOptions = {}): void {
  fs.closeSync(openChecked(path, kind, opts.label ?? LABEL[kind]));
}

/**
 * {@link checkSecureFile}, then read the file as UTF-8 from the same open
 * descriptor, refusing files larger than `maxBytes` (1 MiB by default).
 */
export function readSecureFile(path: string, kind: SecureFileKind, opts: SecureFileOptions = {}): string {
  const label = opts.label ?? LABEL[kind];
  const max = opts.maxBytes ?? 1024 * 1024;
  const fd = openChecked(path, kind, label);
  try {
    const size = fs.fstatSync(fd).size;
    if (size > max) throw new ConfigError(`${label} ${path} is ${size} bytes; expected at most ${max}`, { path, size });
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Check a directory vigil writes into (the PID file's directory, state_dir):
 * it exists, is a real directory (not a symlink), is owned by root (or the
 * process's euid) and is not group/world-writable, sticky bit or not: a PID
 * file in /tmp could be pre-created or replaced by another user.
 */
export function checkSecureDir(path: string, label = 'directory'): void {
  let st: fs.Stats;
  try { st = fs.lstatSync(path); } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(code === 'ENOENT' ? `${label} ${path} does not exist` : `${label} ${path} cannot be examined: ${code ?? String(e)}`, { path, code });
  }
  const expected = `expected a directory with ${ownerText()} and mode 0755 or stricter`;
  if (st.isSymbolicLink()) throw new ConfigError(`${label} ${path} is a symbolic link; ${expected} (give the real path)`, { path });
  if (!st.isDirectory()) throw new ConfigError(`${label} ${path} is not a directory; ${expected}`, { path });
  if (!ownerOk(st.uid)) throw new ConfigError(`${label} ${path} is owned by uid ${st.uid}; ${expected}`, { path, uid: st.uid });
  if ((st.mode & 0o022) !== 0) {
    throw new ConfigError(`${label} ${path} has mode ${formatMode(st.mode)} (group/world-writable); ${expected}`, { path, mode: st.mode & 0o7777 });
  }
}

function exists(path: string): boolean {
  try { fs.lstatSync(path); return true; } catch { return false; }
}

/**
 * Check the files a loaded config points at: each role names the files it
 * trusts (key and token files must exist and be 0600 root files; an IP
 * file, when it exists, must pass the IP-file rule), checked in registry
 * order. With `dirs`, the PID file's directory and `state_dir` are checked
 * too when they exist (the daemon creates them when they do not).
 * Throws the first problem as a {@link ConfigError}.
 */
export function checkReferencedFiles(cfg: VigilConfig, opts: { dirs?: boolean; roles?: readonly RoleDefinition[] } = {}): void {
  for (const def of opts.roles ?? roles()) {
    const section = sectionOf(cfg, def);
    if (section === undefined || !def.secretFiles) continue;
    for (const f of def.secretFiles(section)) {
      if (f.ifExists && !exists(f.path)) continue;
      checkSecureFile(f.path, f.kind, f.label !== undefined ? { label: f.label } : {});
    }
  }
  if (opts.dirs) {
    const piddir = dirname(cfg.pidfile);
    if (exists(piddir)) checkSecureDir(piddir, 'PID file directory');
    if (exists(cfg.stateDir)) checkSecureDir(cfg.stateDir, 'state_dir');
  }
}
