// The step journal: marks, atomic write to a 0700 directory, and what a restart does from each crash point.
import t from 'tap';
import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ensureJournalDir, journalOf, markStep, readJournal, recoverJournal, writeJournal, type Journal, type StepEntry } from '../../../../src/roles/promote/journal';
import { initialState } from '../../../../src/roles/promote/machine';
import { cfgOf } from './fixtures';

const AT = new Date('2026-12-06T12:00:00Z');
const HOLD = { session: 's1', lockIndex: 3 };

function journal(phase: Journal['phase'], steps: Omit<StepEntry, 'at'>[]): Journal {
  let marks: StepEntry[] = [];
  for (const s of steps) marks = markStep(marks, s, AT);
  return journalOf(cfgOf(), { ...initialState(), phase, hold: HOLD }, marks, AT);
}

t.test('markStep: started then done replaces the mark; a new run of the list starts fresh', async (t) => {
  let m = markStep([], { list: 'promote', index: 0, name: 'p1', status: 'started' }, AT);
  m = markStep(m, { list: 'promote', index: 0, name: 'p1', status: 'done' }, AT);
  m = markStep(m, { list: 'promote', index: 1, name: 'p2', status: 'started' }, AT);
  t.same(m.map((x) => `${x.name}:${x.status}`), ['p1:done', 'p2:started']);
  m = markStep(m, { list: 'promote', index: 0, name: 'p1', status: 'started' }, AT);
  t.same(m.map((x) => `${x.name}:${x.status}`), ['p1:started']);
});

t.test('recovery from each crash point', async (t) => {
  const withVerify = cfgOf({ promoteSteps: [{ name: 'p1', command: ['/bin/true'], timeoutMs: 1000, json: false }, { name: 'p2', command: ['/bin/true'], timeoutMs: 1000, json: false, verify: ['/bin/true'] }] });
  const rows: [string, Journal | undefined, ReturnType<typeof cfgOf>, string, string, number?][] = [
    ['no journal', undefined, cfgOf(), 'fresh', 'standby'],
    ['standby', journal('standby', []), cfgOf(), 'resume', 'standby'],
    ['p1 done: continue with p2, never p1 again', journal('promoting', [{ list: 'promote', index: 0, name: 'p1', status: 'started' }, { list: 'promote', index: 0, name: 'p1', status: 'done' }]), cfgOf(), 'resume', 'promoting', 1],
    ['p2 started, no verify: operator', journal('promoting', [{ list: 'promote', index: 0, name: 'p1', status: 'done' }, { list: 'promote', index: 1, name: 'p2', status: 'started' }]), cfgOf(), 'operator', 'stopped'],
    ['p2 started, with verify', journal('promoting', [{ list: 'promote', index: 0, name: 'p1', status: 'done' }, { list: 'promote', index: 1, name: 'p2', status: 'started' }]), withVerify, 'verify', 'promoting', 1],
    ['p1 failed: demote then stop', journal('promoting', [{ list: 'promote', index: 0, name: 'p1', status: 'failed' }]), cfgOf(), 'resume', 'demoting', 0],
    ['promoted', journal('promoted', []), cfgOf(), 'resume', 'promoted', 2],
    ['demote step started: run it again', journal('demoting', [{ list: 'demote', index: 0, name: 'd1', status: 'started' }]), cfgOf(), 'resume', 'demoting', 0],
    ['stopped stays stopped', { ...journal('stopped', []), reason: 'why' }, cfgOf(), 'operator', 'stopped'],
  ];
  for (const [name, j, cfg, kind, phase, step] of rows) {
    const r = recoverJournal(j, cfg);
    t.equal(r.kind, kind, `${name}: kind`);
    t.equal(r.state.phase, phase, `${name}: phase`);
    if (step !== undefined) t.equal(r.state.step, step, `${name}: step`);
    if (j?.hold && r.kind === 'resume' && phase !== 'standby') t.same(r.adopt, HOLD, `${name}: adopts the journaled session`);
  }
  const op = recoverJournal(journal('promoting', [{ list: 'promote', index: 1, name: 'p2', status: 'started' }]), cfgOf());
  t.match(op.kind === 'operator' ? op.reason : '', /p2 was started and never finished/);
});

t.test('write is atomic into a 0700 directory, read back equal; corrupt files are errors', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'vigil-journal-')), 'promote');
  ensureJournalDir(dir);
  t.equal(statSync(dir).mode & 0o777, 0o700);
  const j = journal('promoting', [{ list: 'promote', index: 0, name: 'p1', status: 'started' }]);
  writeJournal(dir, j);
  t.same(readJournal(dir, 'mail'), j);
  t.same(readdirSync(dir), ['mail.json'], 'no temp file left behind');
  t.equal(statSync(join(dir, 'mail.json')).mode & 0o777, 0o600);
  t.equal(readJournal(dir, 'other'), undefined);
  writeFileSync(join(dir, 'mail.json'), '{"version":1,');
  t.throws(() => readJournal(dir, 'mail'), { code: 'EPROMOTEJOURNAL' });
});

t.test('a group-writable journal directory is refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-journal-'));
  const { chmodSync } = await import('node:fs');
  chmodSync(dir, 0o770);
  t.throws(() => ensureJournalDir(dir), /group\/world-writable/);
});
