/**
 * Layer: executor (file I/O). The store of fence events already handled,
 * kept in `state_dir` so a watch that replays its buffer (Consul replays up
 * to 256 events whenever a watch starts, hashicorp/consul#571) cannot make
 * an old event act twice.
 *
 * - One JSON file, `fence-events-seen.json`, mode 0600: `{version: 1,
 *   entries: [{key, at}]}`, newest last, bounded to the last 1024 keys.
 *   A key is `id:<event ID>` or `payload:<verb@sender@ts>` (see event.ts).
 * - Written atomically: a temp file in the same directory, fsync, rename,
 *   fsync of the directory; a crash leaves the old file or the new one.
 * - Handlers can run concurrently (one watch per agent/datacenter), so the
 *   read-decide-write section runs under a lock file (`O_EXCL`, holder PID
 *   inside; a lock whose holder is gone, or older than `staleMs`, is broken).
 *
 * A corrupt or unreadable file is moved aside (`*.corrupt-<ms>`), logged by
 * the caller, and treated as empty. Decision: the handler still acts on an
 * event that passes every other check. Replay exposure is then bounded by
 * the freshness window (`max_age`) and the boot check (a fence that powered
 * the host off is spent after the reboot); refusing instead would turn a
 * damaged state file into a node that can no longer be fenced. A store
 * that cannot be *written* is different: the handler then does not act,
 * since every later delivery could repeat the action (see fence-handler).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VigilError } from '../errors';

/** File name of the store inside `state_dir`. */
export const SEEN_FILE = 'fence-events-seen.json';
/** Keys kept: far more than Consul's 256-event buffer holds (each event has two keys). */
export const SEEN_MAX = 1024;

/** One handled key and when (ms since the epoch) it was recorded. */
export interface SeenEntry { key: string; at: number }

/** Result of {@link loadSeen}. */
export interface SeenLoad {
  entries: SeenEntry[];
  /** True when the file existed but could not be used. */
  corrupt: boolean;
  /** Why it was unusable. */
  problem?: string;
  /** Where the unusable file was moved. */
  movedTo?: string;
}

/** Path of the store in a state directory. */
export function seenPath(stateDir: string): string {
  return path.join(stateDir, SEEN_FILE);
}

function validEntries(v: unknown): SeenEntry[] | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (o.version !== 1 || !Array.isArray(o.entries)) return undefined;
  const out: SeenEntry[] = [];
  for (const e of o.entries) {
    if (typeof e !== 'object' || e === null) return undefined;
    const { key, at } = e as Record<string, unknown>;
    if (typeof key !== 'string' || key.length === 0 || key.length > 512 || typeof at !== 'number' || !Number.isFinite(at)) return undefined;
    out.push({ key, at });
  }
  return out;
}

/**
 * Read the store. Missing file: empty. Unusable file (not a regular file,
 * not JSON, wrong shape, too large): moved aside and reported as corrupt.
 */
export function loadSeen(file: string, nowMs: number = Date.now()): SeenLoad {
  let text: string;
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EFTYPE' });
      if (st.size > 1024 * 1024) throw Object.assign(new Error(`${st.size} bytes`), { code: 'EFBIG' });
      text = fs.readFileSync(fd, 'utf8');
    } finally { fs.closeSync(fd); }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { entries: [], corrupt: false };
    return quarantine(file, nowMs, `cannot read: ${code ?? (e as Error).message}`);
  }
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch { return quarantine(file, nowMs, 'not JSON'); }
  const entries = validEntries(parsed);
  if (!entries) return quarantine(file, nowMs, 'not {version: 1, entries: [{key, at}]}');
  return { entries: entries.slice(-SEEN_MAX), corrupt: false };
}

function quarantine(file: string, nowMs: number, problem: string): SeenLoad {
  const movedTo = `${file}.corrupt-${nowMs}`;
  try {
    fs.renameSync(file, movedTo);
    return { entries: [], corrupt: true, problem, movedTo };
  } catch {
    return { entries: [], corrupt: true, problem };
  }
}

/**
 * Write the store atomically (temp file, fsync, rename, fsync of the
 * directory), keeping the newest `max` entries. Creates `state_dir` (0700)
 * when missing.
 * @throws VigilError `ESEENWRITE`
 */
export function saveSeen(file: string, entries: readonly SeenEntry[], max: number = SEEN_MAX): void {
  const dir = path.dirname(file);
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const body = `${JSON.stringify({ version: 1, entries: entries.slice(-max) })}\n`;
    try { fs.unlinkSync(tmp); } catch { /* usually absent */ }
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    try {
      fs.fchmodSync(fd, 0o600); // the umask must not widen or narrow it
      fs.writeFileSync(fd, body);
      fs.fsyncSync(fd);
    } finally { fs.closeSync(fd); }
    fs.renameSync(tmp, file);
    const dfd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try { fs.fsyncSync(dfd); } finally { fs.closeSync(dfd); }
  } catch (e) {
    try { fs.unlinkSync(tmp); } catch { /* already gone */ }
    const code = (e as NodeJS.ErrnoException).code;
    throw new VigilError('ESEENWRITE', `cannot write the handled-events store ${file}: ${code ?? (e as Error).message}`, { detail: { file, code }, cause: e });
  }
}

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/** Options for {@link withSeenLock}. */
export interface LockOptions { timeoutMs?: number; staleMs?: number; pollMs?: number }

/**
 * Run `fn` holding `<file>.lock`. A lock whose PID is dead, or older than
 * `staleMs` (30 s; a handler's critical section takes milliseconds), is
 * broken.
 * @throws VigilError `ESEENLOCK` when the lock cannot be had within `timeoutMs`
 */
export async function withSeenLock<T>(file: string, fn: () => T | Promise<T>, opts: LockOptions = {}): Promise<T> {
  const lock = `${file}.lock`;
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  for (;;) {
    let fd: number | undefined;
    try {
      fd = fs.openSync(lock, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
      fs.writeSync(fd, String(process.pid));
    } catch (e) {
      if (fd !== undefined) fs.closeSync(fd);
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new VigilError('ESEENLOCK', `cannot create ${lock}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
      }
      fd = undefined;
      breakIfStale(lock, opts.staleMs ?? 30_000);
      if (Date.now() > deadline) throw new VigilError('ESEENLOCK', `${lock} is held by another handler`, { retryable: true });
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 20));
      continue;
    }
    fs.closeSync(fd);
    try {
      return await fn();
    } finally {
      try { fs.unlinkSync(lock); } catch { /* broken by someone who thought we were stale */ }
    }
  }
}

function breakIfStale(lock: string, staleMs: number): void {
  try {
    const st = fs.lstatSync(lock);
    const pid = Number(fs.readFileSync(lock, 'utf8').trim());
    const dead = Number.isInteger(pid) && pid > 0 ? !pidAlive(pid) : Date.now() - st.mtimeMs > 1000;
    if (dead || Date.now() - st.mtimeMs > staleMs) fs.unlinkSync(lock);
  } catch { /* gone meanwhile: the next try takes it */ }
}

/** The loaded store with the keys added in this run. */
export class SeenStore {
  readonly file: string;
  readonly load: SeenLoad;
  private readonly entries: SeenEntry[];
  private readonly keys: Set<string>;

  constructor(file: string, load: SeenLoad) {
    this.file = file;
    this.load = load;
    this.entries = load.entries.slice();
    this.keys = new Set(this.entries.map((e) => e.key));
  }

  /** Load the store at `file` (see {@link loadSeen}). */
  static open(file: string, nowMs: number = Date.now()): SeenStore {
    return new SeenStore(file, loadSeen(file, nowMs));
  }

  /** True when `key` was handled before. */
  has(key: string): boolean {
    return this.keys.has(key);
  }

  /** Record keys as handled (in memory until {@link save}). */
  add(keys: readonly string[], at: number): void {
    for (const key of keys) {
      if (this.keys.has(key)) continue;
      this.keys.add(key);
      this.entries.push({ key, at });
    }
  }

  /** Number of keys held. */
  get size(): number {
    return this.keys.size;
  }

  /** Persist atomically, bounded to `max` keys. */
  save(max: number = SEEN_MAX): void {
    saveSeen(this.file, this.entries, max);
  }
}
