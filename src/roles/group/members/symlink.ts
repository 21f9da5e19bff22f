/**
 * Layer: role `group`, member driver. The resource-agents `symlink` agent's
 * semantics: start makes `link` point at `target`, moving an existing file
 * aside to `<link><backup_suffix>`; stop removes the link and restores the
 * backup. An existing backup is never deleted or overwritten (xcatha's
 * rmtree of `.xcatbak`, X-24/X-26): start refuses instead.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Effect, Member, MemberStatus, StepOutcome, SymlinkMember } from '../types';
import { errorMessage } from '../../../errors';

async function lstat(p: string) {
  try { return await fs.lstat(p); } catch (e) { if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined; throw e; }
}

/** The `symlink` member. */
export function symlinkMember(c: SymlinkMember): Member {
  const backup = `${c.link}${c.backupSuffix}`;
  const ours = async (): Promise<boolean> => {
    const st = await lstat(c.link);
    return !!st?.isSymbolicLink() && (await fs.readlink(c.link)) === c.target;
  };
  return {
    config: c,
    monitorSpawns: false,
    async validate() {
      if (!(await lstat(path.dirname(c.link)))?.isDirectory()) return [`${path.dirname(c.link)} (the directory of ${c.link}) does not exist`];
      const st = await lstat(c.link);
      if (st && !(await ours()) && (await lstat(backup))) return [`${c.link} exists and so does its backup ${backup}: refusing to overwrite a backup`];
      return [];
    },
    async monitor(): Promise<MemberStatus> {
      if (await ours()) return { state: 'running' };
      const st = await lstat(c.link);
      return { state: 'stopped', detail: st ? `${c.link} exists and is not the link (moved aside to ${backup} on start)` : undefined };
    },
    async start(): Promise<StepOutcome> {
      if (await ours()) return { ok: true, detail: 'already linked' };
      let moved = false;
      if (await lstat(c.link)) {
        if (await lstat(backup)) return { ok: false, reason: `${c.link}: backup ${backup} already exists; refusing to overwrite it` };
        await fs.rename(c.link, backup);
        moved = true;
      }
      try {
        await fs.symlink(c.target, c.link);
      } catch (e) {
        if (moved) await fs.rename(backup, c.link);
        return { ok: false, reason: `symlink ${c.link} → ${c.target}: ${errorMessage(e)}` };
      }
      return { ok: true, detail: moved ? `linked; original kept as ${backup}` : 'linked' };
    },
    async stop(): Promise<StepOutcome> {
      if (await ours()) await fs.unlink(c.link);
      // Restore even when the link was already gone (a stop resumed after a crash).
      if ((await lstat(backup)) && !(await lstat(c.link))) {
        await fs.rename(backup, c.link);
        return { ok: true, detail: `restored ${c.link} from ${backup}` };
      }
      return { ok: true, detail: 'unlinked' };
    },
    plan(op): Effect[] {
      if (op === 'start') return [{ member: c.name, op: 'symlink', detail: `${c.link} → ${c.target} (an existing file moves to ${backup})` }];
      return [{ member: c.name, op: 'unlink', detail: `${c.link}, restoring ${backup} if present` }];
    },
  };
}
