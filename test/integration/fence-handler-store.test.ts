// The handled-events store (src/consul/seen.ts) on real files: atomic writes,
// bounds, corruption, the lock between concurrent handlers.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { loadSeen, saveSeen, seenPath, withSeenLock, SeenStore, SEEN_MAX, SEEN_FILE } from '../../src/consul/seen';

function tmp(t: tap.Test): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-seen-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

t.test('missing file: empty, not corrupt; state_dir is created 0700 on save', async (t) => {
  const dir = path.join(tmp(t), 'state');
  const file = seenPath(dir);
  t.equal(path.basename(file), SEEN_FILE);
  t.same(loadSeen(file), { entries: [], corrupt: false });
  saveSeen(file, [{ key: 'id:a', at: 1 }]);
  t.equal(fs.statSync(dir).mode & 0o777, 0o700);
  t.equal(fs.statSync(file).mode & 0o777, 0o600, 'store is 0600');
  t.same(loadSeen(file).entries, [{ key: 'id:a', at: 1 }]);
  t.same(fs.readdirSync(dir), [SEEN_FILE], 'no temp file left behind');
});

t.test('0600 regardless of the umask, and replaced by rename (new inode)', async (t) => {
  const file = seenPath(tmp(t));
  const old = process.umask(0);
  try { saveSeen(file, [{ key: 'id:a', at: 1 }]); } finally { process.umask(old); }
  t.equal(fs.statSync(file).mode & 0o777, 0o600);
  const ino = fs.statSync(file).ino;
  saveSeen(file, [{ key: 'id:b', at: 2 }]);
  t.not(fs.statSync(file).ino, ino, 'a new file was renamed over the old one');
});

t.test('bounded to the newest SEEN_MAX keys', async (t) => {
  const file = seenPath(tmp(t));
  const s = SeenStore.open(file);
  for (let i = 0; i < SEEN_MAX + 500; i++) s.add([`id:${i}`], i);
  s.save();
  const back = loadSeen(file).entries;
  t.equal(back.length, SEEN_MAX);
  t.equal(back[0]!.key, 'id:500', 'the oldest were dropped');
  t.equal(back[back.length - 1]!.key, `id:${SEEN_MAX + 499}`);
  const again = SeenStore.open(file);
  t.ok(again.has(`id:${SEEN_MAX + 499}`));
  t.notOk(again.has('id:0'));
  again.add([`id:${SEEN_MAX + 499}`], 0);
  t.equal(again.size, SEEN_MAX, 'adding a known key changes nothing');
});

t.test('corrupt files are moved aside and read as empty', async (t) => {
  const dir = tmp(t);
  const file = seenPath(dir);
  const cases: [string, string | (() => void)][] = [
    ['not JSON', '{"version":1,"entries":[{"key":"id:a"'],
    ['wrong version', JSON.stringify({ version: 2, entries: [] })],
    ['entry without at', JSON.stringify({ version: 1, entries: [{ key: 'id:a' }] })],
    ['an array', '[]'],
    ['a directory', () => fs.mkdirSync(file)],
    ['a symlink', () => { fs.writeFileSync(path.join(dir, 'elsewhere'), JSON.stringify({ version: 1, entries: [] })); fs.symlinkSync(path.join(dir, 'elsewhere'), file); }],
  ];
  let n = 0;
  for (const [what, make] of cases) {
    if (typeof make === 'string') fs.writeFileSync(file, make); else make();
    const r = loadSeen(file, 1000 + n);
    t.equal(r.corrupt, true, `${what}: corrupt`);
    t.same(r.entries, [], `${what}: empty`);
    t.equal(r.movedTo, `${file}.corrupt-${1000 + n}`, `${what}: moved aside`);
    t.ok(fs.existsSync(r.movedTo!), `${what}: kept for inspection`);
    t.same(loadSeen(file), { entries: [], corrupt: false }, `${what}: gone from the path`);
    n++;
  }
});

t.test('a store that cannot be written throws ESEENWRITE and leaves no temp file', async (t) => {
  const dir = tmp(t);
  const blocker = path.join(dir, 'state');
  fs.writeFileSync(blocker, 'a file where state_dir should be');
  t.throws(() => saveSeen(seenPath(blocker), [{ key: 'id:a', at: 1 }]), { code: 'ESEENWRITE' });
  const ro = path.join(dir, 'ro');
  fs.mkdirSync(ro);
  fs.writeFileSync(path.join(ro, SEEN_FILE), JSON.stringify({ version: 1, entries: [] }));
  fs.mkdirSync(path.join(ro, `${SEEN_FILE}.tmp-${process.pid}`)); // the temp name is taken by a directory
  t.throws(() => saveSeen(seenPath(ro), [{ key: 'id:a', at: 1 }]), { code: 'ESEENWRITE' });
  t.same(loadSeen(seenPath(ro)).entries, [], 'the old store is intact');
});

t.test('the lock serialises concurrent handlers', async (t) => {
  const file = seenPath(tmp(t));
  const order: string[] = [];
  const a = withSeenLock(file, async () => { order.push('a-in'); await new Promise((r) => setTimeout(r, 150)); order.push('a-out'); });
  await new Promise((r) => setTimeout(r, 20));
  const b = withSeenLock(file, () => { order.push('b-in'); });
  await Promise.all([a, b]);
  t.same(order, ['a-in', 'a-out', 'b-in']);
  t.notOk(fs.existsSync(`${file}.lock`), 'lock removed');
  await t.rejects(withSeenLock(file, () => { throw new Error('boom'); }), /boom/);
  t.notOk(fs.existsSync(`${file}.lock`), 'lock removed after a failure too');
});

t.test('a lock left by a dead process is broken; a live holder makes us time out', async (t) => {
  const file = seenPath(tmp(t));
  const child = spawn(process.execPath, ['-e', '0']);
  const deadPid = await new Promise<number>((r) => child.on('exit', () => r(child.pid!)));
  fs.writeFileSync(`${file}.lock`, String(deadPid));
  t.equal(await withSeenLock(file, () => 'got it', { timeoutMs: 2000 }), 'got it');
  fs.writeFileSync(`${file}.lock`, String(process.pid)); // alive: this very process
  const started = Date.now();
  await t.rejects(withSeenLock(file, () => 'never', { timeoutMs: 300 }), { code: 'ESEENLOCK' });
  t.ok(Date.now() - started < 2000);
  fs.utimesSync(`${file}.lock`, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
  t.equal(await withSeenLock(file, () => 'stale broken', { timeoutMs: 2000 }), 'stale broken', 'older than staleMs');
});
