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
