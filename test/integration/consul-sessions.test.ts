// Sessions in the Consul TEST DOUBLE through ConsulClient (shared/spec/consul-api.md §3f, §3i):
// create validation, TTL expiry between TTL and 2×TTL, lock-delay after an invalidation but not after a
// release, invalidation when a bound check goes critical, Behavior delete, restart with and without state.
import t from 'tap';
import { ConsulClient, ConsulHttpError } from '../../src/consul/client';
import { startDoubleForTest, type AgentConfigFile } from '../support/consul-double';
import { waitFor } from '../support/vigil';

// session_ttl_min is a real server option; lowered so TTL expiry is seen in seconds.
const CFG: AgentConfigFile = { node_name: 'cmp-01', retry_join: ['10.0.0.5'], session_ttl_min: '1s', double: { clients: [{ name: 'cmp-02', addr: '10.0.0.12' }] } };

async function caught(p: Promise<unknown>): Promise<ConsulHttpError> {
  try { await p; } catch (e) { return e as ConsulHttpError; }
  throw new Error('expected a rejection');
}

t.test('create: defaults, 1.7 shape, and the documented validation errors', async (t) => {
  const d = await startDoubleForTest(t, { ...CFG, double: { ...CFG.double, version: '1.10.0', autoRegisterNodes: false } });
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  const id = await c.sessionCreate();
  t.match(await c.sessionInfo(id), { node: 'cmp-01', behavior: 'release', lockDelayNs: 15e9, ttl: '', checks: ['serfHealth'], serviceChecks: [] });
  const none = await c.sessionCreate({ checks: [], lockDelay: 0 });
  t.match(await c.sessionInfo(none), { checks: [], lockDelayNs: 0 }, 'checks: [] means no checks, lockDelay 0 disables it');
  t.equal((await c.sessionInfo(await c.sessionCreate({ lockDelay: 2500 })))?.lockDelayNs, 2.5e9, 'ms become a duration string');
  const ttlLow = await caught(c.sessionCreate({ ttl: '500ms' }));
  t.match(ttlLow, { status: 500, body: "Invalid Session TTL '500000000', must be between [1s=24h0m0s]" });
  t.match(await caught(c.sessionCreate({ ttl: 'abc' })), { status: 500, body: `Session TTL 'abc' invalid: time: invalid duration "abc"` });
  t.match(await caught(c.sessionCreate({ behavior: 'x' as 'release' })), { status: 500, body: "Invalid Behavior setting 'x'" });
  t.match(await caught(c.sessionCreate({ node: 'nowhere' })), { status: 500, body: 'Missing node registration' });
  t.match(await caught(c.sessionCreate({ checks: ['web'] })), { status: 500, body: "Missing check 'web' registration" });
  await d.setChecks({ Node: 'cmp-02', CheckID: 'serfHealth', Status: 'critical' });
  t.match(await caught(c.sessionCreate({ node: 'cmp-02' })), { status: 500, body: "Check 'serfHealth' is in critical state" },
    'a node whose serfHealth is critical cannot create sessions');
  const r = await fetch(`${d.url}/v1/session/create`, { method: 'PUT', body: '{nope' });
  t.equal(r.status, 400);
  t.match(await r.text(), /^Request decode failed: /);
  t.equal(await c.sessionDestroy('00000000-0000-0000-0000-000000000000'), true, 'destroy is idempotent');
  t.equal((await fetch(`${d.url}/v1/session/destroy/`, { method: 'PUT' })).status, 400, 'Missing session');
});

t.test('renew: the session back (TTL re-read), 404 text once gone; list and node', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  const a = await c.sessionCreate({ ttl: '30s', name: 'a' });
  const b = await c.sessionCreate({ node: 'cmp-02', name: 'b' });
  t.match(await c.sessionRenewInfo(a), { id: a, ttl: '30s' });
  t.equal(await c.sessionRenew(b), true, 'renewing a session without TTL is a no-op 200');
  const list = await c.sessionList();
  t.same(list.value.map((s) => s.name).sort(), ['a', 'b']);
  t.ok(list.meta.index! > 0, 'list carries X-Consul-Index');
  t.same((await c.sessionList({ node: 'cmp-02' })).value.map((s) => s.id), [b]);
  await c.sessionDestroy(a);
  t.equal(await c.sessionRenewInfo(a), undefined);
  const raw = await fetch(`${d.url}/v1/session/renew/${a}`, { method: 'PUT' });
  t.same([raw.status, await raw.text()], [404, `Session id '${a}' not found`]);
});

t.test('TTL expiry: not before TTL, by 2×TTL; its lock is released and lock-delay starts', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  const ttlMs = 1000;
  const lockDelayMs = 800;
  const holder = await c.sessionCreate({ ttl: '1s', lockDelay: lockDelayMs, checks: [] });
  const other = await c.sessionCreate({ checks: [] });
  t.equal(await c.kvPut('vigil/promote/site/leader', 'A', { acquire: holder }), true);
  const created = Date.now();
  const gone = await waitFor(async () => ((await c.sessionInfo(holder)) === undefined ? Date.now() : 0), 2 * ttlMs + 1500, 'TTL expiry');
  const after = gone - created;
  t.ok(after >= ttlMs, `expected the session to live at least TTL ${ttlMs} ms, it went after ${after} ms`);
  t.ok(after <= 2 * ttlMs + 1000, `expected expiry by 2×TTL (${2 * ttlMs} ms) plus polling slack, it took ${after} ms`);
  const e = await c.kvGet('vigil/promote/site/leader');
  t.match(e, { value: Buffer.from('A'), lockIndex: 1 }, 'release behaviour: value and LockIndex kept');
  t.equal(e?.session, undefined, 'Session cleared');
  t.equal(await c.kvPut('vigil/promote/site/leader', 'B', { acquire: other }), false, `within lock-delay (${lockDelayMs} ms) nobody acquires`);
  const freed = await waitFor(() => c.kvPut('vigil/promote/site/leader', 'B', { acquire: other }), lockDelayMs + 1500, 'lock-delay to pass', 50);
  t.ok(freed);
  t.ok(Date.now() - gone >= lockDelayMs - 100, `expected acquire refused for ~${lockDelayMs} ms after the invalidation`);
  t.equal((await c.kvGet('vigil/promote/site/leader'))?.lockIndex, 2);
  const ev = await d.sessions();
  t.match(ev.invalidations.find((i) => i.id === holder), { why: 'TTL 1s expired' });
});

t.test('renewing keeps a TTL session alive past 2×TTL', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  const s = await c.sessionCreate({ ttl: '1s' });
  for (let i = 0; i < 6; i++) { await new Promise((r) => setTimeout(r, 500)); t.equal(await c.sessionRenew(s), true, `renew ${i}`); }
  t.ok(await c.sessionInfo(s), 'alive after 3 s with renews every TTL/2');
});

t.test('a cooperative release imposes no lock-delay; destroy does', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  const a = await c.sessionCreate({ lockDelay: '10s' });
  const b = await c.sessionCreate({});
  t.equal(await c.kvPut('k', 'a', { acquire: a }), true);
  t.equal(await c.kvPut('k', 'a', { release: a }), true);
  t.equal(await c.kvPut('k', 'b', { acquire: b }), true, 'released: the other session acquires at once');
  t.equal(await c.kvPut('k', 'b', { release: b }), true);
  t.equal(await c.kvPut('k', 'a', { acquire: a }), true);
  await c.sessionDestroy(a);
  t.equal(await c.kvPut('k', 'b', { acquire: b }), false, 'destroy started the 10 s lock-delay');
  t.ok((await d.sessions()).lockDelay.k! > Date.now() + 9000);
  const e = await caught(c.kvPut('k', 'x', { acquire: a }));
  t.match(e, { status: 500, body: `invalid session "${a}"` });
});

t.test('a bound check going critical invalidates the session; warning does not; unbound sessions stay', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  await d.setChecks({ Node: 'cmp-02', CheckID: 'service:web', Status: 'passing', ServiceID: 'web', ServiceName: 'web' });
  const serf = await c.sessionCreate({ node: 'cmp-02', lockDelay: 0 });
  const svc = await c.sessionCreate({ node: 'cmp-02', checks: [], serviceChecks: ['service:web'], behavior: 'delete', lockDelay: 0 });
  const bare = await c.sessionCreate({ node: 'cmp-02', checks: [] });
  await c.kvPut('held/serf', 'x', { acquire: serf });
  await c.kvPut('held/svc', 'x', { acquire: svc });
  await d.setChecks({ Node: 'cmp-02', CheckID: 'service:web', Status: 'warning' });
  t.ok(await c.sessionInfo(svc), 'warning does not invalidate');
  await d.setChecks({ Node: 'cmp-02', CheckID: 'service:web', Status: 'critical' });
  t.equal(await c.sessionInfo(svc), undefined, 'service check critical → invalidated');
  t.equal(await c.kvGet('held/svc'), undefined, 'Behavior delete removed its key');
  t.ok(await c.sessionInfo(serf), 'the serfHealth session is untouched');
  await d.setMembers({ Name: 'cmp-02', Status: 4 });
  t.equal(await c.sessionInfo(serf), undefined, 'member failed → serfHealth critical → invalidated');
  t.equal((await c.kvGet('held/serf'))?.session, undefined);
  t.ok(await c.sessionInfo(bare), 'a session with checks: [] survives its node failing');
  const node = await c.healthNode('cmp-02');
  t.match(node.value.find((x) => x.checkId === 'serfHealth'), { status: 'critical', output: 'Agent not live or unreachable', name: 'Serf Health Status' });
  await d.setMembers({ Name: 'cmp-02', Status: 3 });
  t.equal(await c.sessionInfo(bare), undefined, 'leave deregisters the node, which invalidates all its sessions');
  t.same((await c.healthNode('cmp-02')).value, [], 'unknown node: 200 []');
});

t.test('restart keeping state keeps sessions and KV but drops the lock-delay table; without state all is gone', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  const a = await c.sessionCreate({ lockDelay: '30s' });
  const b = await c.sessionCreate({});
  await c.kvPut('k', 'a', { acquire: a });
  await c.sessionDestroy(a);
  t.equal(await c.kvPut('k', 'b', { acquire: b }), false, 'in lock-delay');
  const before = (await c.kvRead('k')).meta.index!;
  await d.restart({ keepState: true, downMs: 100 });
  t.ok(await c.sessionInfo(b), 'session kept');
  t.equal(await c.kvPut('k', 'b', { acquire: b }), true, 'the lock-delay table is in memory only: lost on restart');
  await d.restart({ keepState: false });
  t.equal(await c.sessionInfo(b), undefined);
  t.equal(await c.kvGet('k'), undefined);
  t.ok((await c.kvRead('k')).meta.index! < before, 'the index went backwards (clients must reset)');
});
