// Three sites A, B, W (W runs the Consul TEST DOUBLE): a stale holder's delayed step write is
// refused by the witness. A's daemon stalls (SIGSTOP, sent by its own step p1, so the stall
// falls exactly between p1 finishing and its `done` record) for longer than the takeover:
// W invalidates A's session, B acquires and promotes. Woken up, A sends its delayed record:
// the /v1/txn checks A's session, so W answers 409 and keeps A's last record as it was; A
// runs no further promote step and demotes. A stalled process cannot demote in time — this
// is the case the lease index (VIGIL_LEASE_INDEX, a fencing token) and the txn check are for.
import t from 'tap';
import { skipUnlessRoot } from '../support/lab';
import { doubleRequest } from '../support/consul-double';
import { startScenario, TAKEOVER_BOUND_MS, TIMING, until } from '../support/promote-sites';

t.test("a stale holder's delayed step write is refused (409) and the holder demotes", async (t) => {
  if (skipUnlessRoot(t, ['ip'])) return;
  const sc = await startScenario(t, 'stale');
  const steps = [
    // $PPID is A's daemon (steps are its direct children): it stops itself right after p1's mark.
    { name: 'p1', command: ['/bin/sh', '-c', `${sc.markCmd('a', 'p1')}; kill -STOP $PPID`], timeout: '5s' },
    { name: 'p2', command: ['/bin/sh', '-c', sc.markCmd('a', 'p2')], timeout: '5s' },
  ];
  t.teardown(() => sc.signal('a', 'SIGCONT'));
  const stepKey = async (site: string) => {
    const r = await doubleRequest({ url: 'http://double', socketPath: sc.doubleSocket }, 'GET', `/v1/kv/vigil/promote/mail/steps/${site}`);
    if (r.status !== 200) return undefined;
    return JSON.parse(Buffer.from((JSON.parse(r.body) as { Value: string }[])[0]!.Value, 'base64').toString()) as { step: string; status: string; session: string };
  };

  sc.start('a', { promote_steps: steps });
  await until(sc, () => sc.whats('a').includes('p1'), 10 * TIMING.checkMs + 5000, "A's p1 (A starts alone: the lease is free)");
  const stalledAt = Date.now();
  const before = await stepKey('a');
  t.match(before, { step: 'p1', status: 'started' }, "W holds A's record of p1 started (written before p1 ran)");
  sc.start('b');
  await until(sc, () => sc.whats('b').includes('p1'), TAKEOVER_BOUND_MS,
    "B's promote step while A is stalled (A's session invalidated within 2 × ttl, then lock_delay)");
  t.notOk(sc.whats('a').includes('d1'), 'A, stalled, has not demoted (it cannot: the stall is the point)');
  const bFirst = sc.timeline().find((m) => m.site === 'b' && m.what === 'p1')!.atMs;
  // A renewed at most renew_interval before it stalled; W invalidates no sooner than ttl after that renewal.
  t.ok(bFirst - stalledAt > TIMING.ttlMs + TIMING.lockDelayMs - TIMING.renewMs, 'B promoted no sooner than ttl + lock_delay after A last renewed');

  sc.signal('a', 'SIGCONT');
  await until(sc, () => /promote step record \(done\) not written/.test(sc.logs('a')), 10_000, "A's delayed record of p1 done, refused");
  t.match(sc.logs('a'), /ECONSULTXNCONFLICT|rolled back/, 'refused by the witness: the txn rolled back (409)');
  await until(sc, () => sc.whats('a').includes('d1'), TIMING.demoteTimeoutMs + 5000, "A's demote after waking past its deadline");
  const after = await stepKey('a');
  t.same(after, before, "W's record of A is unchanged: the late write did not land");
  t.notOk(sc.whats('a').includes('p2'), 'A ran no further promote step');
  t.same(sc.whats('b'), ['p1', 'p2'], 'B promoted once and stays promoted');
});
