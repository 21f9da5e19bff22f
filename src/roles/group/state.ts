/**
 * Layer: role `group`, executor. The group's files under `state_dir`:
 *
 * - the journal `<group>.json`: what vigil last did to each member. It is
 *   evidence only for members the world cannot be asked about (a command
 *   without a monitor); everything else is read back from the world.
 * - the turn queue `<group>.queue/`: one ticket file per CLI invocation,
 *   numbered in arrival order and holding the invoker's PID. An invocation
 *   acts only when no lower ticket of a live process remains, so hooks of
 *   activate/deactivate/activate in quick succession run in event order and
 *   never concurrently (keepalived #996/#584). A ticket of a dead process
 *   (kill -9) is stale and ignored.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VigilError } from '../../errors';
import { checkSecureDir } from '../../config/permissions';

/** A member's last recorded state. */
export type Recorded = 'running' | 'stopped' | 'starting' | 'stopping';

/** The journal file's contents. */
export interface Journal { group: string; members: Record<string, Recorded>; updatedAt: string }

const journalPath = (dir: string, group: string) => path.join(dir, `${group}.json`);

/** Read the journal; an absent or unreadable one is empty. */
export function readJournal(dir: string, group: string): Journal {
  try {
    const j = JSON.parse(fs.readFileSync(journalPath(dir, group), 'utf8')) as Journal;
    if (j && typeof j.members === 'object') return j;
  } catch { /* absent: nothing recorded */ }
  return { group, members: {}, updatedAt: '' };
}

/** Record one member's state (atomic rename, fsync'd: it must survive a kill -9 right after). */
export function recordMember(dir: string, group: string, member: string, state: Recorded): void {
  const j = readJournal(dir, group);
  j.members[member] = state;
  j.updatedAt = new Date().toISOString();
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${journalPath(dir, group)}.${process.pid}`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try { fs.writeSync(fd, `${JSON.stringify(j, null, 2)}\n`); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
  fs.renameSync(tmp, journalPath(dir, group));
}

const alive = (pid: number): boolean => {
  if (pid === process.pid) return true;
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
};

/** A held turn; release() is idempotent. */
export interface Turn { ticket: number; waitedMs: number; release(): void }

/**
 * Take a ticket and wait for this invocation's turn, at most `timeoutMs`.
 * Throws `ELOCKED` (exit 3) naming the holder when the wait times out.
 */
export async function takeTurn(dir: string, group: string, timeoutMs: number, pollMs = 20): Promise<Turn> {
  const q = path.join(dir, `${group}.queue`);
  fs.mkdirSync(q, { recursive: true, mode: 0o700 });
  // Anyone who can write here can fake a ticket (hold the group) or the journal (skip a member).
  checkSecureDir(dir, 'group state_dir');
  checkSecureDir(q, 'group queue directory');
  const tickets = () => fs.readdirSync(q).filter((f) => /^\d{12}$/.test(f)).map(Number);
  let ticket = 0;
  for (let tries = 0; ; tries++) {
    ticket = Math.max(0, ...tickets()) + 1;
    // Written aside and linked in: a ticket is never seen without its PID (link fails with EEXIST atomically).
    const tmp = path.join(q, `.t${process.pid}`);
    fs.writeFileSync(tmp, `${process.pid}\n`, { mode: 0o600 });
    try {
      fs.linkSync(tmp, path.join(q, String(ticket).padStart(12, '0')));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || tries > 100) throw e;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
  const name = (n: number) => path.join(q, String(n).padStart(12, '0'));
  let released = false;
  const release = () => { if (!released) { released = true; fs.rmSync(name(ticket), { force: true }); } };
  const started = Date.now();
  for (;;) {
    const ahead = tickets().filter((n) => n < ticket).map((n) => {
      const pid = Number((() => { try { return fs.readFileSync(name(n), 'utf8'); } catch { return '0'; } })());
      return { n, pid };
    }).filter((x) => {
      if (x.pid > 0 && alive(x.pid)) return true;
      fs.rmSync(name(x.n), { force: true }); // stale: its process is gone
      return false;
    });
    if (ahead.length === 0) return { ticket, waitedMs: Date.now() - started, release };
    if (Date.now() - started >= timeoutMs) {
      release();
      throw new VigilError('ELOCKED', `group '${group}' is busy: pid ${ahead[0]!.pid} holds its lock (waited ${timeoutMs} ms)`, { detail: { pid: ahead[0]!.pid } });
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
