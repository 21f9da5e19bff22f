/**
 * Layer: roles. The promote role's step journal (spec/next-roles.md §2d-6;
 * habeat H-34: its marker files were written after the promotion, so a
 * crash in between promoted twice).
 *
 * One JSON file, `<journal_dir>/<name>.json`, in a root-owned 0700
 * directory, written temp + fsync + rename + fsync(dir). Each step is
 * marked `started` before it runs and `done`/`failed` after, so after a
 * crash the journal says exactly which step may have half-run.
 * {@link recoverJournal} (pure) turns it back into a machine state:
 * - a promote step left `started`: its `verify` decides (the runner runs
 *   it), or, without one, the role stops and asks the operator;
 * - a demote step left `started` is run again: demoting is the safe
 *   direction, and demote steps must be idempotent (README);
 * - a finished promote step is never run again.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { VigilError } from '../../errors';
import { checkSecureDir } from '../../config/permissions';
import type { PromoteConfig } from './config';
import { initialState, type Hold, type Phase, type PromoteState, type StepList } from './machine';

/** A step's entry. */
export interface StepEntry { list: StepList; index: number; name: string; status: 'started' | 'done' | 'failed'; at: string; error?: string }

/** What the file holds. */
export interface Journal {
  version: 1;
  name: string;
  site: string;
  phase: Phase;
  hold?: Hold;
  fenced: boolean;
  granted: boolean;
  grantForce?: boolean;
  yielded: boolean;
  afterDemote: 'standby' | 'stopped';
  reason?: string;
  /** The steps of the current promotion or demotion, oldest first. */
  steps: StepEntry[];
  updatedAt: string;
}

/** What a restart does, from the journal. */
export type Recovery =
  | { kind: 'fresh'; state: PromoteState }
  | { kind: 'resume'; state: PromoteState; adopt?: Hold }
  | { kind: 'verify'; state: PromoteState; step: number; adopt?: Hold }
  | { kind: 'operator'; state: PromoteState; reason: string };

/** The journal of a state (steps carried over from `prev` while in the same promotion or demotion). */
export function journalOf(cfg: PromoteConfig, s: PromoteState, steps: StepEntry[], at: Date): Journal {
  return {
    version: 1, name: cfg.name, site: cfg.site, phase: s.phase,
    ...(s.hold ? { hold: s.hold } : {}),
    fenced: s.fenced, granted: s.granted, grantForce: s.grantForce, yielded: s.yielded, afterDemote: s.afterDemote,
    ...(s.reason !== undefined ? { reason: s.reason } : {}),
    steps, updatedAt: at.toISOString(),
  };
}

/** The steps list with one step's mark added (a new promotion or demotion starts a fresh list at index 0). */
export function markStep(steps: StepEntry[], e: Omit<StepEntry, 'at'>, at: Date): StepEntry[] {
  const base = e.index === 0 && e.status === 'started' ? steps.filter((x) => x.list !== e.list) : steps;
  const rest = base.filter((x) => !(x.list === e.list && x.index === e.index));
  return [...rest, { ...e, at: at.toISOString() }];
}

/** The last mark of a list's steps, if any. */
export function lastMark(steps: StepEntry[], list: StepList): StepEntry | undefined {
  return steps.filter((s) => s.list === list).sort((a, b) => a.index - b.index).at(-1);
}

/** A restart's starting point from the journal (pure). */
export function recoverJournal(j: Journal | undefined, cfg: PromoteConfig): Recovery {
  const base = initialState();
  if (!j) return { kind: 'fresh', state: base };
  const kept: PromoteState = { ...base, fenced: j.fenced, granted: j.granted, grantForce: j.grantForce === true, yielded: j.yielded, afterDemote: j.afterDemote, ...(j.reason !== undefined ? { reason: j.reason } : {}) };
  const adopt = j.hold ? { adopt: j.hold } : {};
  switch (j.phase) {
    case 'standby':
      return { kind: 'resume', state: kept };
    case 'stopped':
      return { kind: 'operator', state: { ...kept, phase: 'stopped' }, reason: j.reason ?? 'stopped before the restart' };
    case 'candidate':
      // No step ran; if the old session still holds the key the runner takes it back, else it starts over.
      return { kind: 'resume', state: { ...kept, phase: 'candidate' }, ...adopt };
    case 'promoted':
      return { kind: 'resume', state: { ...kept, phase: 'promoted', step: cfg.promoteSteps.length }, ...adopt };
    case 'demoting': {
      const m = lastMark(j.steps, 'demote');
      const step = m === undefined ? 0 : m.status === 'started' ? m.index : m.index + 1;
      return { kind: 'resume', state: { ...kept, phase: 'demoting', step }, ...adopt };
    }
    case 'promoting': {
      const m = lastMark(j.steps, 'promote');
      if (m === undefined) return { kind: 'resume', state: { ...kept, phase: 'promoting', step: 0 }, ...adopt };
      if (m.status === 'failed') return { kind: 'resume', state: { ...kept, phase: 'demoting', step: 0, afterDemote: 'stopped', reason: `promote step ${m.name} failed before the restart` }, ...adopt };
      if (m.status === 'done') return { kind: 'resume', state: { ...kept, phase: 'promoting', step: m.index + 1 }, ...adopt };
      const st = cfg.promoteSteps[m.index];
      if (st?.verify) return { kind: 'verify', state: { ...kept, phase: 'promoting', step: m.index }, step: m.index, ...adopt };
      const reason = `promote step ${m.name} was started and never finished (crash); it has no verify command: check it by hand, demote by hand if needed, then remove ${journalPath(cfg.journalDir, cfg.name)} and restart vigil`;
      return { kind: 'operator', state: { ...kept, phase: 'stopped', reason }, reason };
    }
  }
}

/** The journal file of a promotion name. */
export const journalPath = (dir: string, name: string): string => join(dir, `${name}.json`);

/** Make the journal directory (root-owned, 0700) or check the one there. */
export function ensureJournalDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  checkSecureDir(dir, 'promote journal_dir');
  const st = fs.statSync(dir);
  if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}

/** Read the journal; undefined when there is none. A corrupt file is an error (never guessed). */
export function readJournal(dir: string, name: string): Journal | undefined {
  let text: string;
  try { text = fs.readFileSync(journalPath(dir, name), 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let j: Journal;
  try { j = JSON.parse(text) as Journal; } catch {
    throw new VigilError('EPROMOTEJOURNAL', `promote journal ${journalPath(dir, name)} is not JSON: check it by hand (it is never guessed)`);
  }
  if (j.version !== 1 || !Array.isArray(j.steps) || typeof j.phase !== 'string') {
    throw new VigilError('EPROMOTEJOURNAL', `promote journal ${journalPath(dir, name)} is not a version 1 journal`);
  }
  return j;
}

/** Write the journal: temp file, fsync, rename, fsync of the directory. */
export function writeJournal(dir: string, j: Journal): void {
  const final = journalPath(dir, j.name);
  const tmp = `${final}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, `${JSON.stringify(j, null, 2)}\n`);
    fs.fsyncSync(fd);
  } finally { fs.closeSync(fd); }
  fs.renameSync(tmp, final);
  const dfd = fs.openSync(dir, 'r');
  try { fs.fsyncSync(dfd); } finally { fs.closeSync(dfd); }
}
