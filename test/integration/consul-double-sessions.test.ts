// The Consul TEST DOUBLE's session, txn and control details at the HTTP level (what the client does not
// show): wire shapes per version, the double's options, blocking session reads, check deregistration.
import t from 'tap';
import { startDoubleForTest, type AgentConfigFile } from '../support/consul-double';

const CFG: AgentConfigFile = { node_name: 'cmp-01', retry_join: ['10.0.0.5'], session_ttl_min: '1s' };

async function call(base: string, method: string, p: string, body?: string): Promise<{ status: number; text: string; headers: Headers; json: () => any }> {
  const r = await fetch(`${base}${p}`, { method, body, signal: AbortSignal.timeout(10_000) });
  const text = await r.text();
  return { status: r.status, text, headers: r.headers, json: () => JSON.parse(text) };
}

t.test('session wire shapes: 1.7+ NodeChecks/ServiceChecks, LockDelay numbers, Checks merged into NodeChecks', async (t) => {
  const d = await startDoubleForTest(t, { ...CFG, double: { version: '1.10.0' } });
  await d.setChecks({ Node: 'cmp-01', CheckID: 'service:web', Status: 'passing' });
  const id = (await call(d.url, 'PUT', '/v1/session/create', JSON.stringify({ LockDelay: 15, NodeChecks: ['serfHealth'], ServiceChecks: [{ ID: 'service:web' }], TTL: '0s' }))).json().ID;
  const info = (await call(d.url, 'GET', `/v1/session/info/${id}`)).json()[0];
  t.match(info, { LockDelay: 15e9, NodeChecks: ['serfHealth'], ServiceChecks: [{ ID: 'service:web', Namespace: '' }], TTL: '' },
    'a LockDelay number below 1000 is seconds; TTL "0s" means none');
  t.notOk('Checks' in info);
  const ns = (await call(d.url, 'PUT', '/v1/session/create', JSON.stringify({ LockDelay: 2e9, Checks: [] }))).json().ID;
  t.match((await call(d.url, 'GET', `/v1/session/info/${ns}`)).json()[0], { LockDelay: 2e9, NodeChecks: [] });
  t.equal((await call(d.url, 'PUT', '/v1/session/create', JSON.stringify({ LockDelay: 'soon' }))).status, 400);
});

t.test('options: sessionTtlMultiplier 1 expires at TTL; rpcErrorPrefix; autoRegisterNodes', async (t) => {
  const d = await startDoubleForTest(t, { ...CFG, double: { sessionTtlMultiplier: 1, rpcErrorPrefix: true } });
  const id = (await call(d.url, 'PUT', '/v1/session/create', JSON.stringify({ TTL: '1s', Node: 'new-node' }))).json().ID;
  const started = Date.now();
  const held = await call(d.url, 'GET', `/v1/session/info/${id}`);
  // Block on the session list until the session goes.
  const gone = await call(d.url, 'GET', `/v1/session/info/${id}?index=${held.headers.get('x-consul-index')}&wait=5s`);
  const took = Date.now() - started;
  t.same(gone.json(), [], 'a blocking info returned when the session was invalidated');
  t.ok(took >= 900 && took < 2000, `with multiplier 1 the session goes at TTL (1000 ms), took ${took} ms`);
  t.match((await call(d.url, 'GET', '/v1/health/node/new-node')).json(), [{ CheckID: 'serfHealth', Status: 'passing' }], 'auto-registered node');
  const bad = await call(d.url, 'PUT', '/v1/session/create', JSON.stringify({ TTL: '100ms' }));
  t.same([bad.status, bad.text], [500, "rpc error making call: Invalid Session TTL '100000000', must be between [1s=24h0m0s]"]);
  const strict = await startDoubleForTest(t, { ...CFG, double: { autoRegisterNodes: false } });
  t.same((await call(strict.url, 'PUT', '/v1/session/create', JSON.stringify({ Node: 'new-node' }))).text, 'Missing node registration');
});

t.test('deregistering a bound check invalidates; Behavior delete deletes; session/node lists', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  await d.setChecks({ Node: 'cmp-01', CheckID: 'mem', Status: 'passing' });
  const id = (await call(d.url, 'PUT', '/v1/session/create', JSON.stringify({ Checks: ['mem'], Behavior: 'delete', LockDelay: '0s' }))).json().ID;
  t.equal((await call(d.url, 'PUT', `/v1/kv/gone?acquire=${id}`, 'x')).text, 'true');
  t.same((await call(d.url, 'GET', '/v1/session/node/cmp-01')).json().map((s: any) => s.ID), [id]);
  t.same((await call(d.url, 'GET', '/v1/session/node/other')).json(), []);
  t.equal(await d.deleteCheck('cmp-01', 'mem'), true);
  t.same((await call(d.url, 'GET', `/v1/session/info/${id}`)).json(), []);
  t.equal((await call(d.url, 'GET', '/v1/kv/gone')).status, 404, 'Behavior delete removed the key');
  t.match((await d.sessions()).invalidations, [{ id, why: 'check mem of cmp-01 deregistered' }]);
  t.equal((await call(d.url, 'PUT', '/v1/kv/k?acquire=', 'x')).status, 500, 'an empty session cannot acquire');
});

t.test('txn details: delete-cas, delete-tree, get-or-empty, Node ops refused; indexes never 0', async (t) => {
  const d = await startDoubleForTest(t, CFG);
  await call(d.url, 'PUT', '/v1/kv/t/a', '1');
  await call(d.url, 'PUT', '/v1/kv/t/b', '2');
  const a = (await call(d.url, 'GET', '/v1/kv/t/a')).json()[0];
  const txn = (ops: unknown[]) => call(d.url, 'PUT', '/v1/txn', JSON.stringify(ops));
  t.same((await txn([{ KV: { Verb: 'delete-cas', Key: 't/a', Index: a.ModifyIndex + 1 } }])).json().Errors,
    [{ OpIndex: 0, What: 'failed to delete key "t/a", index is stale' }]);
  const ok = await txn([{ KV: { Verb: 'delete-cas', Key: 't/a', Index: a.ModifyIndex } }, { KV: { Verb: 'delete-cas', Key: 't/none', Index: 9 } },
    { KV: { Verb: 'get-or-empty', Key: 't/a' } }]);
  t.equal(ok.status, 200);
  t.match(ok.json().Results, [{ KV: { Key: 't/a', Value: null, ModifyIndex: 0 } }], 'absent key: delete-cas succeeds; get-or-empty gives Value null');
  t.same((await txn([{ KV: { Verb: 'delete-tree', Key: 't/' } }])).json(), { Results: [], Errors: null }, 'deletes add no result');
  t.equal((await call(d.url, 'GET', '/v1/kv/t?recurse')).status, 404);
  t.equal((await txn([{ Node: { Verb: 'get', Node: { Node: 'x' } } }])).status, 400);
  const ignored = await txn([{}, { KV: { Verb: 'get-tree', Key: 'none/' } }]);
  t.same(ignored.json(), { Results: [], Errors: null }, 'an element with no known kind is dropped; get-tree of nothing gives no results');
  const fresh = await startDoubleForTest(t, { ...CFG, double: { version: '1.10.0', autoRegisterNodes: true } });
  const empty = await call(fresh.url, 'GET', '/v1/kv/nothing');
  t.ok(Number(empty.headers.get('x-consul-index')) >= 1, 'X-Consul-Index is never 0');
  t.equal((await call(fresh.url, 'GET', '/v1/agent/members')).headers.get('x-consul-index'), null, 'members: agent-local, no index');
});

t.test('catalog/nodes: a failed node is still listed; leave removes it; blocking on the catalog index', async (t) => {
  const d = await startDoubleForTest(t, { ...CFG, double: { clients: [{ name: 'cmp-02', addr: '10.0.0.12' }] } });
  const first = await call(d.url, 'GET', '/v1/catalog/nodes');
  t.same(first.json().map((n: any) => [n.Node, n.Address]), [['cmp-01', '127.0.0.1'], ['cmp-02', '10.0.0.12'], ['server-1', '10.0.0.5']]);
  await d.setMembers({ Name: 'cmp-02', Status: 4 });
  t.equal((await call(d.url, 'GET', '/v1/catalog/nodes')).json().length, 3, 'failed: still listed');
  const waiting = call(d.url, 'GET', `/v1/catalog/nodes?index=${first.headers.get('x-consul-index')}&wait=5s`);
  setTimeout(() => { void d.setMembers({ Name: 'cmp-02', Status: 3 }); }, 100);
  t.same((await waiting).json().map((n: any) => n.Node), ['cmp-01', 'server-1'], 'left: deregistered');
  t.match((await d.members()).find((m) => m.Name === 'cmp-02'), { Status: 3 }, 'still a member, Status 3 (left)');
});
