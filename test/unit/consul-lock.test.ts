// ConsulLock (src/consul/lock.ts) with a fake client and a fake monotonic clock: the holder's deadline is
// the send time of its last successful renewal + TTL; 404 on renew, another holder, or the deadline lose it.
import t from 'tap';
import { ConsulLock, type LockClient } from '../../src/consul/lock';
import type { KvEntry } from '../../src/consul/kv';

/** A fake agent: one key, sessions by id, a call log; `renewAnswer` decides renew. */
function fake() {
  const calls: string[] = [];
  let n = 0;
  const st = { entry: undefined as KvEntry | undefined, sessions: new Set<string>(), renewAnswer: true as boolean | Error, acquireAnswer: true, now: 0 };
  const client: LockClient = {
    async sessionCreate(spec) { const id = `s${++n}`; st.sessions.add(id); calls.push(`create ${spec.ttl} ${JSON.stringify(spec.checks)}`); return id; },
    async sessionRenew(id) {
      calls.push(`renew ${id}`);
      if (st.renewAnswer instanceof Error) throw st.renewAnswer;
      return st.renewAnswer && st.sessions.has(id);
    },
    async sessionDestroy(id) { calls.push(`destroy ${id}`); st.sessions.delete(id); return true; },
    async kvPut(key, value, opts) {
      calls.push(`put ${key} ${JSON.stringify(opts)}`);
      if (opts.acquire) {
        if (!st.acquireAnswer || (st.entry?.session && st.entry.session !== opts.acquire)) return false;
        const li = st.entry?.session === opts.acquire ? st.entry.lockIndex : (st.entry?.lockIndex ?? 0) + 1;
        st.entry = { key, value: Buffer.from(value), flags: 0, session: opts.acquire, createIndex: 1, modifyIndex: 2, lockIndex: li };
        return true;
      }
      if (opts.release && st.entry?.session === opts.release) { delete st.entry.session; return true; }
      return false;
    },
    async kvGet() { return st.entry ? { ...st.entry } : undefined; },
  };
  return { client, calls, st };
}

t.test('acquire returns the fencing token; held until TTL after the last successful renew was sent', async (t) => {
  const f = fake();
  const lock = new ConsulLock(f.client, { key: 'vigil/promote/p/leader', value: 'site-a', session: { ttl: '15s', checks: [], lockDelay: '15s' }, now: () => f.st.now });
  t.equal(lock.renewEveryMs, 7500);
  const hold = await lock.acquire();
  t.same(hold, { key: 'vigil/promote/p/leader', session: 's1', lockIndex: 1 });
  t.same(f.calls.slice(0, 2), ['create 15s []', 'put vigil/promote/p/leader {"acquire":"s1"}']);
  f.st.now = 7_000;
  t.equal(await lock.renew(), true);
  f.st.now = 21_999;
  t.ok(lock.held(), 'deadline is 7 000 + 15 000');
  t.equal(lock.remainingMs(), 1);
  f.st.now = 22_000;
  t.notOk(lock.held());
  t.equal(lock.lost(), 'renew-deadline');
  t.equal(lock.current(), undefined);
  t.equal(await lock.renew(), false, 'lost stays lost');
});

t.test('renew: 404 → session-invalidated; another holder → lock-taken; a transport error leaves the deadline to decide', async (t) => {
  const f = fake();
  const lock = new ConsulLock(f.client, { key: 'k', session: { ttl: '10s' }, now: () => f.st.now });
  await lock.acquire();
  f.st.renewAnswer = new Error('ECONSULTIMEOUT');
  f.st.now = 3_000;
  await t.rejects(lock.renew(), /ECONSULTIMEOUT/);
  t.ok(lock.held(), 'an error is not a loss yet');
  f.st.now = 10_000;
  t.notOk(lock.held(), 'but the deadline (create sent at 0 + TTL) is');
  t.equal(lock.lost(), 'renew-deadline');

  const g = fake();
  const l2 = new ConsulLock(g.client, { key: 'k', session: { ttl: '10s' }, now: () => g.st.now });
  await l2.acquire();
  g.st.renewAnswer = false;
  t.equal(await l2.renew(), false);
  t.equal(l2.lost(), 'session-invalidated');
  const h2 = await l2.acquire();
  t.equal(h2, undefined, 'the old session still holds the key in the fake; a new session cannot acquire it');
  t.match(g.calls.filter((c) => c.startsWith('create')), ['create 10s undefined', 'create 10s undefined'], 'a lost lock acquires with a new session');

  const h = fake();
  const l3 = new ConsulLock(h.client, { key: 'k', session: { ttl: '10s' }, now: () => h.st.now });
  await l3.acquire();
  h.st.entry!.session = 'intruder';
  t.equal(await l3.renew(), false);
  t.equal(l3.lost(), 'lock-taken');
});

t.test('contention: undefined while another session holds it; release hands over (release then destroy)', async (t) => {
  const f = fake();
  const a = new ConsulLock(f.client, { key: 'k', session: { ttl: '10s' }, now: () => f.st.now });
  const b = new ConsulLock(f.client, { key: 'k', session: { ttl: '10s' }, now: () => f.st.now });
  t.ok(await a.acquire());
  t.equal(await b.acquire(), undefined);
  await a.release();
  t.equal(a.lost(), 'released');
  t.same(f.calls.slice(-2), ['put k {"release":"s1"}', 'destroy s1'], 'release before destroy: no lock-delay for the next holder');
  t.match(await b.acquire(), { session: 's2', lockIndex: 2 });
  t.ok(f.calls.includes('renew s2'), 'a waiting session is renewed by each attempt, not replaced');
  t.throws(() => new ConsulLock(f.client, { key: 'k', session: { ttl: 'soon' } }), { code: 'EVIGILCONFIG' });
});

/** Fake timers on the fake clock: advance() runs what is due, letting promises settle between. */
function fakeTimers(clock: { now: number }) {
  let seq = 0;
  const due = new Map<number, { at: number; fn: () => void }>();
  return {
    timers: {
      setTimeout: (fn: () => void, ms: number) => { const id = ++seq; due.set(id, { at: clock.now + ms, fn }); return id; },
      clearTimeout: (h: unknown) => { due.delete(h as number); },
    },
    async advance(ms: number) {
      const end = clock.now + ms;
      for (;;) {
        await new Promise((r) => setImmediate(r));
        const next = [...due.entries()].sort((a, b) => a[1].at - b[1].at)[0];
        if (!next || next[1].at > end) break;
        due.delete(next[0]);
        clock.now = next[1].at;
        next[1].fn();
      }
      clock.now = end;
      await new Promise((r) => setImmediate(r));
    },
  };
}

t.test('keep: renews every TTL/2, retries errors sooner, reports a loss once (404, or the deadline while renew hangs)', async (t) => {
  const f = fake();
  const lock = new ConsulLock(f.client, { key: 'k', session: { ttl: '10s' }, now: () => f.st.now });
  const clock = { get now() { return f.st.now; }, set now(v: number) { f.st.now = v; } };
  const ft = fakeTimers(clock);
  await lock.acquire();
  const lost: string[] = [];
  lock.keep((r) => lost.push(r), { timers: ft.timers, retryMs: 1000 });
  await ft.advance(20_000);
  t.equal(f.calls.filter((c) => c === 'renew s1').length, 4, 'renewed at 5, 10, 15, 20 s');
  t.same(lost, []);
  f.st.renewAnswer = new Error('ECONSULTIMEOUT');
  await ft.advance(7_000);
  t.equal(f.calls.filter((c) => c === 'renew s1').length, 7, 'the failing renewal at 25 s is retried every retryMs (26, 27 s)');
  t.same(lost, [], 'not lost while the deadline holds');
  await ft.advance(10_000);
  t.same(lost, ['renew-deadline'], 'lost at the deadline (last good renew at 20 s + TTL)');
  await ft.advance(20_000);
  t.same(lost, ['renew-deadline'], 'reported once');

  const g = fake();
  const l2 = new ConsulLock(g.client, { key: 'k', session: { ttl: '10s' }, now: () => g.st.now });
  const ft2 = fakeTimers({ get now() { return g.st.now; }, set now(v: number) { g.st.now = v; } });
  await l2.acquire();
  const lost2: string[] = [];
  const stop = l2.keep((r) => lost2.push(r), { timers: ft2.timers });
  g.st.renewAnswer = false;
  await ft2.advance(5_000);
  t.same(lost2, ['session-invalidated']);
  stop();

  // A renewal that never answers: the watchdog still reports at the deadline.
  const h = fake();
  const l3 = new ConsulLock({ ...h.client, sessionRenew: () => new Promise<boolean>(() => {}) }, { key: 'k', session: { ttl: '10s' }, now: () => h.st.now });
  const ft3 = fakeTimers({ get now() { return h.st.now; }, set now(v: number) { h.st.now = v; } });
  await l3.acquire();
  const lost3: string[] = [];
  l3.keep((r) => lost3.push(r), { timers: ft3.timers });
  await ft3.advance(9_999);
  t.same(lost3, []);
  await ft3.advance(2);
  t.same(lost3, ['renew-deadline'], 'a hung renewal does not postpone the loss');
});
