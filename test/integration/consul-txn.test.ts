// /v1/txn in the Consul TEST DOUBLE through ConsulClient (shared/spec/consul-api.md §3g): 200 with Results,
// 409 with every failing op and nothing applied, check-session refusing a stale holder, pre-checks, limits.
import t from 'tap';
import { ConsulClient, ConsulTxnConflict, type TxnKvOp } from '../../src/consul/client';
import { VigilError } from '../../src/errors';
import { startDoubleForTest, type AgentConfigFile } from '../support/consul-double';

const CFG: AgentConfigFile = { node_name: 'cmp-01', retry_join: ['10.0.0.5'] };

async function caught<T extends Error = VigilError>(p: Promise<unknown>): Promise<T> {
  try { await p; } catch (e) { return e as T; }
  throw new Error('expected a rejection');
}

async function put(url: string, body: string): Promise<{ status: number; text: string; index: string | null }> {
  const r = await fetch(`${url}/v1/txn`, { method: 'PUT', body });
  return { status: r.status, text: await r.text(), index: r.headers.get('x-consul-index') };
}

t.test('applied: results in order, values only for get, one index for every write, later ops see earlier ones', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  await c.kvPut('ha/fence/cmp-01', 'old');
  const idx = (await c.kvGet('ha/fence/cmp-01'))!.modifyIndex;
  const r = await c.txn([
    { verb: 'cas', key: 'ha/fence/cmp-01', value: 'fence@ctrl-01', index: idx },
    { verb: 'set', key: 'ha/fence/cmp-01/at', value: '1700000000', flags: 7 },
    { verb: 'get', key: 'ha/fence/cmp-01/at' },
    { verb: 'check-not-exists', key: 'ha/none' },
    { verb: 'delete', key: 'ha/none' },
    { verb: 'get-tree', key: 'ha/fence/' },
  ]);
  t.same(r.results.map((e) => e.key), ['ha/fence/cmp-01', 'ha/fence/cmp-01/at', 'ha/fence/cmp-01/at', 'ha/fence/cmp-01', 'ha/fence/cmp-01/at'],
    'no result for check-not-exists and delete; get-tree adds one per entry');
  t.equal(r.results[0]!.value, null, 'Value null except for get');
  t.equal(r.results[2]!.value?.toString(), '1700000000');
  t.equal(r.results[2]!.flags, 7);
  t.equal(r.results[0]!.modifyIndex, r.results[1]!.modifyIndex, 'one Raft entry: one index');
  t.equal(r.meta.index, r.results[0]!.modifyIndex);
  t.equal((await c.kvGet('ha/fence/cmp-01'))?.value?.toString(), 'fence@ctrl-01');
});

t.test('409: every failing op listed, nothing applied (rollback)', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  await c.kvPut('a', '1');
  const a = (await c.kvGet('a'))!;
  const e = await caught<ConsulTxnConflict>(c.txn([
    { verb: 'set', key: 'b', value: 'new' },
    { verb: 'cas', key: 'a', value: '2', index: a.modifyIndex + 5 },
    { verb: 'delete', key: 'a' },
    { verb: 'check-index', key: 'a', index: 1 },
    { verb: 'get', key: 'missing' },
    { verb: 'cas', key: 'c', value: 'x', index: 3 },
  ]));
  t.ok(e instanceof ConsulTxnConflict);
  t.equal(e.code, 'ECONSULTXNCONFLICT');
  t.same(e.errors, [
    { opIndex: 1, what: 'failed to set key "a", index is stale' },
    { opIndex: 3, what: 'failed to check index, key "a" doesn\'t exist' },
    { opIndex: 4, what: 'key "missing" doesn\'t exist' },
    { opIndex: 5, what: 'failed to set key "c", index is stale' },
  ], 'op 3 saw op 2\'s delete; every failure is listed');
  t.equal(await c.kvGet('b'), undefined, 'the set before the failure was rolled back');
  t.match(await c.kvGet('a'), { value: Buffer.from('1'), modifyIndex: a.modifyIndex }, 'the delete was rolled back');
  const raw = await put(d.url, JSON.stringify([{ KV: { Verb: 'check-index', Key: 'a', Index: a.modifyIndex + 1 } }]));
  t.equal(raw.status, 409);
  t.same(JSON.parse(raw.text), { Results: null, Errors: [{ OpIndex: 0, What: `failed index check for key "a", current modify index ${a.modifyIndex} != ${a.modifyIndex + 1}` }] });
});

t.test('check-session rejects a stale holder: the revoked leader\'s late step write fails with 409', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  const old = await c.sessionCreate({ lockDelay: 0 });
  t.equal(await c.kvPut('vigil/promote/p/leader', 'A', { acquire: old }), true);
  const step = (session: string): TxnKvOp[] => [
    { verb: 'check-session', key: 'vigil/promote/p/leader', session },
    { verb: 'set', key: 'vigil/promote/p/journal/1', value: `by ${session}` },
  ];
  await c.txn(step(old));
  await c.sessionDestroy(old);
  const fresh = await c.sessionCreate({ lockDelay: 0 });
  t.equal(await c.kvPut('vigil/promote/p/leader', 'B', { acquire: fresh }), true);
  const e = await caught<ConsulTxnConflict>(c.txn(step(old)));
  t.same(e.errors, [{ opIndex: 0, what: `failed session check for key "vigil/promote/p/leader", current session "${fresh}" != "${old}"` }]);
  t.equal((await c.kvGet('vigil/promote/p/journal/1'))?.value?.toString(), `by ${old}`, 'the stale write did not land');
  await c.txn(step(fresh));
  const unlocked = await caught<ConsulTxnConflict>(c.txn([{ verb: 'check-session', key: 'vigil/promote/p/leader', session: '' }]));
  t.match(unlocked.errors[0]!.what, /current session ".+" != ""/, 'session "" passes only while unlocked');
});

t.test('lock and unlock verbs, lock-delay and session pre-checks (never reach the store)', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  const s1 = await c.sessionCreate({ lockDelay: '5s' });
  const s2 = await c.sessionCreate({});
  const r = await c.txn([{ verb: 'lock', key: 'L', value: 'one', session: s1 }, { verb: 'lock', key: 'L', value: 'again', session: s1 }]);
  t.same(r.results.map((e) => [e.session, e.lockIndex]), [[s1, 1], [s1, 1]], 'LockIndex unchanged when the holder locks again');
  t.same((await caught<ConsulTxnConflict>(c.txn([{ verb: 'lock', key: 'L', value: 'x', session: s2 }]))).errors,
    [{ opIndex: 0, what: 'failed to lock key "L", lock is already held' }]);
  t.same((await caught<ConsulTxnConflict>(c.txn([{ verb: 'unlock', key: 'L', value: 'x', session: s2 }]))).errors,
    [{ opIndex: 0, what: 'failed to unlock key "L", lock isn\'t held, or is held by another session' }]);
  await c.sessionDestroy(s1);
  const pre = await caught<ConsulTxnConflict>(c.txn([
    { verb: 'set', key: 'untouched', value: 'x' },
    { verb: 'lock', key: 'L', value: 'x', session: s2 },
    { verb: 'lock', key: 'M', value: 'x', session: s1 },
  ]));
  t.same(pre.errors, [
    { opIndex: 1, what: 'failed to lock key "L" due to lock delay' },
    { opIndex: 2, what: `invalid session "${s1}"` },
  ], 'pre-check errors are all collected');
  t.equal(await c.kvGet('untouched'), undefined);
  const raw = await put(d.url, JSON.stringify([{ KV: { Verb: 'frob', Key: 'k' } }, { KV: { Verb: 'get', Key: '' } }, { KV: { Verb: 'lock', Key: 'k', Value: null } }]));
  t.same(JSON.parse(raw.text).Errors, [
    { OpIndex: 0, What: 'unknown KV verb "frob"' }, { OpIndex: 1, What: 'Must provide key' }, { OpIndex: 2, What: 'missing session' }]);
});

t.test('read-only txn: no X-Consul-Index; 400 on bad base64; 413 on too many ops; client refuses > 64', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  await c.kvPut('x', 'v');
  const ro = await put(d.url, JSON.stringify([{ KV: { Verb: 'get', Key: 'x' } }]));
  t.equal(ro.status, 200);
  t.equal(ro.index, null, 'a read-only txn bypasses Raft: no X-Consul-Index');
  t.same(JSON.parse(ro.text).Results[0].KV.Value, 'dg==');
  const b64 = await put(d.url, JSON.stringify([{ KV: { Verb: 'set', Key: 'x', Value: 'not base64!' } }]));
  t.equal(b64.status, 400);
  t.match(b64.text, /^Failed to parse body: illegal base64 data at input byte/);
  const many = Array.from({ length: 65 }, (_, i) => ({ KV: { Verb: 'set', Key: `k${i}`, Value: '' } }));
  t.same(await put(d.url, JSON.stringify(many)), { status: 413, text: 'Transaction contains too many operations (65 > 64)', index: null });
  const ops: TxnKvOp[] = many.map((_, i) => ({ verb: 'set', key: `k${i}`, value: '' }));
  await t.rejects(c.txn(ops), { code: 'EVIGILCONFIG' });
  t.equal((await c.txn(ops.slice(0, 64))).results.length, 64);
  await t.rejects(c.txn([]), { code: 'EVIGILCONFIG' });
  await d.setState('servers-lost');
  t.match(await caught(c.txn([{ verb: 'get', key: 'x' }])), { code: 'ECONSULHTTP', status: 500, body: 'No known Consul servers' });
});
