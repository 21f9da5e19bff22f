// Blocking queries, health and faults in the Consul TEST DOUBLE through ConsulClient
// (shared/spec/consul-api.md §3h, §3j): return on change and on wait expiry, the index rules across a
// restart, the headers, 400s, no-leader reads, and injected 500s, hangs and delays against the hard deadline.
import t from 'tap';
import { ConsulClient } from '../../src/consul/client';
import { BlockingQuery } from '../../src/consul/blocking';
import { VigilError } from '../../src/errors';
import { startDoubleForTest, type AgentConfigFile } from '../support/consul-double';

const CFG: AgentConfigFile = { node_name: 'cmp-01', retry_join: ['10.0.0.5'], double: { clients: [{ name: 'cmp-02', addr: '10.0.0.12' }] } };

async function caught(p: Promise<unknown>): Promise<VigilError> {
  try { await p; } catch (e) { return e as VigilError; }
  throw new Error('expected a rejection');
}

t.test('KV blocking read returns on a change, not before', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  await c.kvPut('ha/x', '1');
  const first = await c.kvRead('ha/x');
  t.equal(first.meta.knownLeader, true);
  t.equal(first.meta.lastContactMs, 0);
  t.equal(first.meta.index, first.value!.modifyIndex, 'an existing key reads with its ModifyIndex');
  const started = Date.now();
  const pending = c.kvRead('ha/x', { index: first.meta.index, waitMs: 10_000 });
  setTimeout(() => { void c.kvPut('ha/x', '2'); }, 300);
  const r = await pending;
  const took = Date.now() - started;
  t.equal(r.value?.value?.toString(), '2');
  t.ok(r.meta.index! > first.meta.index!);
  t.ok(took >= 250 && took < 5000, `expected the read to return right after the write at ~300 ms, took ${took} ms`);
  // A write to another key does not wake a single-key read whose index did not move.
  const other = c.kvRead('ha/x', { index: r.meta.index, waitMs: 600 });
  await c.kvPut('ha/y', 'z');
  const o = await other;
  t.equal(o.meta.index, r.meta.index, 'returned on wait expiry with the same index: not proof of a change');
});

t.test('blocking read returns on wait expiry (wait + up to wait/16 jitter); a missing key blocks until it appears', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  const miss = await c.kvRead('later');
  t.equal(miss.value, undefined);
  t.ok(miss.meta.index! >= 1, '404 carries X-Consul-Index');
  const waitMs = 400;
  let started = Date.now();
  const expired = await c.kvRead('later', { index: miss.meta.index, waitMs });
  const took = Date.now() - started;
  t.equal(expired.value, undefined);
  t.ok(took >= waitMs - 20 && took < waitMs * 17 / 16 + 1000, `expected ~${waitMs}–${waitMs * 17 / 16} ms, took ${took} ms`);
  started = Date.now();
  const appears = c.kvRead('later', { index: miss.meta.index, waitMs: 10_000 });
  setTimeout(() => { void c.kvPut('later', 'now'); }, 200);
  t.equal((await appears).value?.value?.toString(), 'now');
  t.ok(Date.now() - started < 5000);
});

t.test('recurse and keys block on the prefix; a delete under it wakes them (tombstone index)', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  await c.kvPut('ha_cluster/compute_nodes/cmp-01/internal/number_fails', '0');
  await c.kvPut('ha_cluster/compute_nodes/cmp-02/internal/number_fails', '0');
  await c.kvPut('elsewhere', '0');
  const keys = await c.kvKeys('ha_cluster/compute_nodes/', { separator: '/' });
  t.same(keys.value, ['ha_cluster/compute_nodes/cmp-01/', 'ha_cluster/compute_nodes/cmp-02/']);
  const tree = await c.kvReadTree('ha_cluster/');
  t.equal(tree.value.length, 2);
  const waiting = c.kvReadTree('ha_cluster/', { index: tree.meta.index, waitMs: 10_000 });
  await c.kvPut('elsewhere', '1');
  setTimeout(() => { void c.kvDelete('ha_cluster/compute_nodes/cmp-02/internal/number_fails'); }, 200);
  const after = await waiting;
  t.equal(after.value.length, 1);
  t.ok(after.meta.index! > tree.meta.index!, 'the prefix index includes the tombstone');
  t.same((await c.kvKeys('nothing/')).value, []);
});

t.test('health node/state, blocking on a check change; members from the control channel', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  const node = await c.healthNode('cmp-02');
  t.match(node.value, [{ node: 'cmp-02', checkId: 'serfHealth', name: 'Serf Health Status', status: 'passing', output: 'Agent alive and reachable' }]);
  t.same((await c.healthState('critical')).value, []);
  const crit = c.healthState('critical', { index: node.meta.index, waitMs: 10_000 });
  setTimeout(() => { void d.setMembers({ Name: 'cmp-02', Status: 4 }); }, 200);
  t.match((await crit).value, [{ node: 'cmp-02', checkId: 'serfHealth', status: 'critical' }]);
  t.equal((await c.members()).find((m) => m.name === 'cmp-02')?.status, 4);
  await d.setChecks({ Node: 'cmp-01', CheckID: 'disk', Status: 'warning', Output: '91% full' });
  t.same((await c.healthState('any')).value.map((x) => `${x.node}/${x.checkId}/${x.status}`).sort(),
    ['cmp-01/disk/warning', 'cmp-01/serfHealth/passing', 'cmp-02/serfHealth/critical', 'server-1/serfHealth/passing']);
  t.same((await c.healthNode('ghost')).value, [], 'unknown node: []');
  const empty = await fetch(`${d.url}/v1/health/state/`);
  t.same([empty.status, await empty.text()], [400, 'Missing check state']);
  await d.setMembers({ Name: 'cmp-02', Status: 1 });
  t.equal((await c.healthNode('cmp-02')).value[0]!.status, 'passing', 'alive again: serfHealth passing');
});

t.test('query errors: 400 Invalid wait time / Invalid index / stale with consistent', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  const get = async (q: string) => { const r = await fetch(`${d.url}/v1/kv/x${q}`); return [r.status, await r.text()]; };
  t.same(await get('?index=5&wait=soon'), [400, 'Invalid wait time']);
  t.same(await get('?index=-1'), [400, 'Invalid index']);
  t.same(await get('?stale&consistent'), [400, 'Cannot specify ?stale with ?consistent, conflicting semantics.']);
});

t.test('no leader: writes and default reads 500 No cluster leader; ?stale reads answer with KnownLeader false', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  await c.kvPut('k', 'v');
  await d.configure({ leader: false });
  t.match(await caught(c.kvGet('k')), { status: 500, body: 'No cluster leader' });
  t.match(await caught(c.kvPut('k', 'w')), { status: 500, body: 'No cluster leader' });
  t.match(await caught(c.kvGet('k', { consistency: 'consistent' })), { status: 500 });
  await new Promise((r) => setTimeout(r, 30));
  const stale = await c.kvRead('k', { consistency: 'stale' });
  t.equal(stale.value?.value?.toString(), 'v');
  t.equal(stale.meta.knownLeader, false);
  t.ok(stale.meta.lastContactMs! > 0, 'LastContact grows');
  await d.configure({ leader: true });
  t.equal(await c.kvPut('k', 'w'), true);
});

t.test('BlockingQuery across a restart that drops state: the index went backwards, so it resets to 0', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  for (let i = 0; i < 5; i++) await c.kvPut(`w/${i}`, 'x');
  const q = new BlockingQuery((o) => c.kvReadTree('w/', o), { waitMs: 300, burst: 10, refillMs: 10 });
  await q.next();
  const high = q.index;
  t.ok(high > 10);
  await d.restart({ keepState: false });
  await c.kvPut('w/0', 'after');
  const r = await q.next();
  t.equal(q.index, 0, `the answer's index ${r.meta.index} is below ${high}: reset to 0 (rule 1)`);
  const again = await q.next();
  t.equal(again.value.length, 1, 'the next read does not block and sees the new data');
  t.equal(q.index, again.meta.index);
});

t.test('faults: injected 500, a hang caught by the hard deadline (blocking deadline = timeout + wait×17/16), delays', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  const c = new ConsulClient({ url: d.url, timeoutMs: 300 });
  await d.setFaults({ path: '^/v1/kv/', method: 'GET', status: 500, body: 'rpc error making call: EOF', times: 1 });
  t.match(await caught(c.kvGet('a')), { code: 'ECONSULHTTP', status: 500, body: 'rpc error making call: EOF', retryable: true });
  t.equal(await c.kvGet('a'), undefined, 'times: 1 — the next request is served');
  await d.setFaults({ path: '^/v1/kv/', hang: true });
  let started = Date.now();
  t.match(await caught(c.kvGet('a')), { code: 'ECONSULTIMEOUT' });
  t.ok(Date.now() - started < 1500, 'a hung agent is an error within the timeout, never a stall');
  started = Date.now();
  t.match(await caught(c.kvRead('a', { index: 5, waitMs: 400 })), { code: 'ECONSULTIMEOUT' });
  const took = Date.now() - started;
  t.ok(took >= 300 + 400 && took < 2500, `expected the blocking deadline of 300 + 400×17/16 ms, took ${took} ms`);
  await d.setFaults({ delayMs: 150, jitterMs: 50 });
  started = Date.now();
  t.equal(await new ConsulClient({ url: d.url, timeoutMs: 2000 }).kvGet('a'), undefined);
  t.ok(Date.now() - started >= 140, 'delayed');
  await d.clearFaults();
  await d.setState('hung');
  t.match(await caught(c.sessionCreate()), { code: 'ECONSULTIMEOUT' });
});
