// The monitor's watched reads (src/roles/monitor/watch.ts): a round reads the blocking query's
// latest view without a request, and falls back to a direct read whenever the view cannot be
// trusted (none yet, the background read failed, stale, the caller wrote). A fake read: each
// request is held until the test answers it.
import t from 'tap';
import { performance } from 'node:perf_hooks';
import { Watch } from '../../../../src/roles/monitor/watch';
import type { Read, ReadOptions } from '../../../../src/consul/wire';

interface Pending { o: ReadOptions; signal: AbortSignal; answer(v: string, index: number): void; fail(e: Error): void }

function fakeRead() {
  const pending: Pending[] = [];
  const sent: ReadOptions[] = [];
  const read = (o: ReadOptions, signal: AbortSignal) => new Promise<Read<string>>((resolve, reject) => {
    sent.push(o);
    const p: Pending = { o, signal, answer: (v, index) => resolve({ value: v, meta: { index, knownLeader: true, lastContactMs: 0 } }), fail: reject };
    signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
    pending.push(p);
  });
  return { read, pending, sent };
}

const tick = () => new Promise((r) => setImmediate(r));
/** Longer than the token bucket's 1 ms refill: the background loop has sent its next read. */
const settle = () => new Promise((r) => setTimeout(r, 20));
const opts = (now: () => number) => ({ waitMs: 60_000, refillMs: 1, staleMs: 70_000, now });

t.test('an idle round costs no read: the view is the blocking query\'s latest answer', async (t) => {
  let off = 0;
  const f = fakeRead();
  const w = new Watch(f.read, opts(() => performance.now() + off));
  t.teardown(() => w.stop());
  const first = w.current();
  await tick();
  // Two reads in flight: the round's direct one and the background's first (non-blocking) one.
  t.equal(f.pending.length, 2);
  f.pending[0]!.answer('a', 5);
  f.pending[1]!.answer('a', 5);
  t.equal(await first, 'a');
  await settle();
  t.equal(f.pending.length, 3, 'the background read blocks next');
  t.match(f.pending[2]!.o, { index: 5, waitMs: 60_000 }, 'from the index it learnt');
  const before = f.sent.length;
  for (let i = 0; i < 5; i++) { off += 1000; t.equal(await w.current(), 'a'); }
  t.equal(f.sent.length, before, 'five rounds, no request');
  // A change: the blocking read answers and the next round sees it.
  f.pending[2]!.answer('b', 9);
  await settle();
  t.equal(await w.current(), 'b');
  t.equal(f.sent.length, before + 1, 'only the background read that follows');
  t.match(f.pending[3]!.o, { index: 9 });
});

t.test('a failed background read: the round reads directly, throws if that fails too, and recovers', async (t) => {
  let off = 0;
  const f = fakeRead();
  const w = new Watch(f.read, opts(() => performance.now() + off));
  t.teardown(() => w.stop());
  const first = w.current();
  await tick();
  f.pending[0]!.answer('a', 5);
  f.pending[1]!.answer('a', 5);
  await first;
  await settle();
  f.pending[2]!.fail(new Error('agent gone'));
  await settle();
  t.notOk(f.pending[3]!.o.index, 'after an error the background read does not block (index dropped)');
  const r = w.current();
  await tick();
  t.equal(f.pending.length, 5, 'the round reads directly');
  t.notOk(f.pending[4]!.o.index, 'non-blocking');
  f.pending[4]!.fail(new Error('still gone'));
  await t.rejects(r, /still gone/, 'the round gets the error (the sampler makes every host unknown)');
  // The background read answers: the view is good again.
  f.pending[3]!.answer('c', 11);
  await settle();
  const n = f.sent.length;
  t.equal(await w.current(), 'c');
  t.equal(f.sent.length, n, 'no direct read once the view is good');
});

t.test('invalidate (our own write) and a stale view make the next round read directly', async (t) => {
  let off = 0;
  const f = fakeRead();
  const w = new Watch(f.read, opts(() => performance.now() + off));
  t.teardown(() => w.stop());
  const first = w.current();
  await tick();
  f.pending[0]!.answer('a', 5);
  f.pending[1]!.answer('a', 5);
  await first;
  await tick();
  w.invalidate();
  const r = w.current();
  await tick();
  const direct = f.pending[f.pending.length - 1]!;
  t.notOk(direct.o.index, 'a direct read after a write');
  direct.answer('mine', 7);
  t.equal(await r, 'mine', 'the round sees its own write');
  t.equal(await w.current(), 'mine');
  // Older than a blocking read can take: read again.
  off += 70_001;
  const s = w.current();
  await tick();
  const again = f.pending[f.pending.length - 1]!;
  t.notOk(again.o.index, 'a stale view is read again');
  again.answer('fresh', 8);
  t.equal(await s, 'fresh');
  // The older background read (blocked from 5) answering with index 6 does not replace the newer view.
  f.pending[2]!.answer('old', 6);
  await tick();
  t.equal(await w.current(), 'fresh', 'an answer with a lower index from an earlier read is dropped');
});

t.test('stop aborts the background read', async (t) => {
  const f = fakeRead();
  const w = new Watch(f.read, opts(() => performance.now()));
  const first = w.current();
  await tick();
  f.pending[0]!.answer('a', 5);
  f.pending[1]!.answer('a', 5);
  await first;
  await settle();
  const blocked = f.pending[2]!;
  t.notOk(blocked.signal.aborted);
  w.stop();
  t.ok(blocked.signal.aborted, 'the held request is aborted');
  await tick();
  t.equal(f.pending.length, 3, 'and no read follows');
});
