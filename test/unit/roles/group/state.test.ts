// The group's journal and turn queue on a temp state dir.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readJournal, recordMember, takeTurn } from '../../../../src/roles/group/state';

const tmp = (t: { teardown(f: () => void): void }) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-gstate-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
};

t.test('journal: absent is empty; records survive a re-read', async (t) => {
  const d = tmp(t);
  t.same(readJournal(d, 'g').members, {});
  recordMember(d, 'g', 'vip', 'starting');
  recordMember(d, 'g', 'vip', 'running');
  recordMember(d, 'g', 'db', 'stopped');
  t.same(readJournal(d, 'g').members, { vip: 'running', db: 'stopped' });
  fs.writeFileSync(path.join(d, 'g.json'), '{broken');
  t.same(readJournal(d, 'g').members, {}, 'a broken journal reads as empty: the world is asked instead');
});

t.test('turns: in ticket order; a ticket of a dead process is stale', async (t) => {
  const d = tmp(t);
  const first = await takeTurn(d, 'g', 1000);
  let secondAt = 0;
  const second = takeTurn(d, 'g', 2000, 5).then((x) => { secondAt = Date.now(); return x; });
  await new Promise((r) => setTimeout(r, 100));
  t.equal(secondAt, 0, 'the second waits while the first holds its turn');
  const releasedAt = Date.now();
  first.release();
  const s = await second;
  t.ok(secondAt >= releasedAt, 'and goes once it is released');
  t.ok(s.ticket > first.ticket);
  s.release();
  // A ticket left by a kill -9 (its PID no longer exists) does not block.
  fs.writeFileSync(path.join(d, 'g.queue', String(s.ticket + 1).padStart(12, '0')), '999999999\n');
  const third = await takeTurn(d, 'g', 200);
  t.ok(third.waitedMs < 200);
  third.release();
  t.same(fs.readdirSync(path.join(d, 'g.queue')), [], 'no ticket left behind');
});

t.test('turns: a live holder past lock_timeout is ELOCKED naming its pid', async (t) => {
  const d = tmp(t);
  fs.mkdirSync(path.join(d, 'g.queue'), { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(d, 'g.queue', '000000000001'), `${process.ppid}\n`);
  await t.rejects(takeTurn(d, 'g', 100), { code: 'ELOCKED', message: new RegExp(`pid ${process.ppid} holds its lock`) });
  t.same(fs.readdirSync(path.join(d, 'g.queue')), ['000000000001'], 'the refused invocation removed its own ticket');
});
