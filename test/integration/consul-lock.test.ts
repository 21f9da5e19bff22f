// ConsulLock against the Consul TEST DOUBLE: a holder loses its lock when its session expires (TTL, no
// renewals) and another acquires only after lock-delay; the fencing token refuses the old holder's write.
import t from 'tap';
import { ConsulClient, ConsulTxnConflict } from '../../src/consul/client';
import { ConsulLock } from '../../src/consul/lock';
import { startDoubleForTest, type AgentConfigFile } from '../support/consul-double';
import { waitFor } from '../support/vigil';

const CFG: AgentConfigFile = { node_name: 'cmp-01', retry_join: ['10.0.0.5'], session_ttl_min: '1s' };

t.test('A holds and renews; A stops renewing → A sees the loss by its own deadline, before B can acquire', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  const ttlMs = 1000;
  const lockDelayMs = 500;
  const a = new ConsulLock(c, { key: 'vigil/promote/p/leader', value: 'A', session: { ttl: '1s', checks: [], lockDelay: lockDelayMs } });
  const b = new ConsulLock(c, { key: 'vigil/promote/p/leader', value: 'B', session: { ttl: '1s', checks: [], lockDelay: lockDelayMs } });
  const hold = await a.acquire();
  t.match(hold, { lockIndex: 1 });
  t.equal(await b.acquire(), undefined, 'held by A');
  for (let i = 0; i < 3; i++) { await new Promise((r) => setTimeout(r, a.renewEveryMs)); t.equal(await a.renew(), true); }
  // A stops renewing (partitioned). Its own deadline passes at TTL; the server frees the key at ≤ 2×TTL + lock-delay.
  const stopped = Date.now();
  await waitFor(() => !a.held(), ttlMs + 200, 'A to see its own deadline');
  const aGaveUp = Date.now();
  const bHold = await waitFor(() => b.acquire(), 2 * ttlMs + lockDelayMs + 2000, 'B to acquire', 50);
  const bGot = Date.now();
  t.ok(aGaveUp < bGot, `A gave up at +${aGaveUp - stopped} ms, before B acquired at +${bGot - stopped} ms`);
  t.ok(bGot - stopped >= ttlMs + lockDelayMs - 100, `expected B no sooner than TTL + lock-delay (${ttlMs + lockDelayMs} ms), got ${bGot - stopped} ms`);
  t.equal(bHold.lockIndex, 2, 'a new LockIndex: the sequencer moved');
  const stale = c.txn([{ verb: 'check-session', key: hold!.key, session: hold!.session }, { verb: 'set', key: 'vigil/promote/p/step', value: 'A' }]);
  await t.rejects(stale, ConsulTxnConflict, "the old holder's fenced write is refused");
  await b.release();
  t.equal((await c.kvGet('vigil/promote/p/leader'))?.session, undefined);
});
