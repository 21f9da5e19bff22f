/**
 * Layer: roles, I/O. The promote role's files under `journal_dir`: the
 * journal (journal.ts), the operator's grant file (`<name>.grant`, written
 * by `vigil promote grant`, removed by `revoke`) and the run lock
 * (`<name>.lock`: one scheduler at a time, the daemon's or a `run-once`'s;
 * habeat H-5 let a manual run overlap the timer's).
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { VigilError } from '../../errors';
import { ensureJournalDir, readJournal, writeJournal } from './journal';
import type { JournalStore } from './runner';

/** The grant file of a promotion name. */
export const grantPath = (dir: string, name: string): string => join(dir, `${name}.grant`);

/** The real store of one promotion name (the directory is made or checked first). */
export function realJournalStore(dir: string, name: string): JournalStore {
  ensureJournalDir(dir);
  return {
    read: () => readJournal(dir, name),
    write: (j) => writeJournal(dir, j),
    grant() {
      let text: string;
      try { text = fs.readFileSync(grantPath(dir, name), 'utf8'); } catch { return undefined; }
      try { return { force: (JSON.parse(text) as { force?: boolean }).force === true }; } catch { return { force: false }; }
    },
  };
}

/** Another scheduler holds the run lock: `run-once` exits 3 "busy". */
export class PromoteBusy extends VigilError {
  constructor(path: string, pid: number) {
    super('EPROMOTEBUSY', `busy: another vigil promote scheduler (pid ${pid}) holds ${path}`, { detail: { path, pid } });
  }
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/**
 * Take the run lock (O_EXCL file holding our pid); a lock left by a dead
 * process is taken over. Returns the release function; throws
 * {@link PromoteBusy} while a live process holds it.
 */
export function takeRunLock(dir: string, name: string): () => void {
  const path = join(dir, `${name}.lock`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(path, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW, 0o600);
      fs.writeSync(fd, `${process.pid}\n`);
      fs.closeSync(fd);
      return () => { try { if (Number(fs.readFileSync(path, 'utf8')) === process.pid) fs.unlinkSync(path); } catch { /* already gone */ } };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(fs.readFileSync(path, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) throw new PromoteBusy(path, pid);
      fs.unlinkSync(path); // stale: its process is gone
    }
  }
  throw new PromoteBusy(path, 0);
}
