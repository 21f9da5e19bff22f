// os_nova KV codec: keys (N-4, N-5), True/False (N-7), listing decode with per-key errors, txn ops (consul-api §3g).
import t from 'tap';
import { inspect } from 'node:util';
import {
  COMPUTE_KEYS, Secret, computeKey, decodeBool, decodeCount, decodeInventory, encodeBool, encodeJson, haKey, isDefaultCredential,
  latchTxn, maintenanceTxn, mergeInventory, resetTxn, type RawKvEntry,
} from '../../../../src/roles/monitor/kvschema';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString();
let idx = 100;
const kv = (key: string, value: string | null, extra: Partial<RawKvEntry> = {}): RawKvEntry =>
  ({ Key: `ha_cluster/${key}`, Value: value === null ? null : b64(value), ModifyIndex: ++idx, CreateIndex: 1, LockIndex: 0, Flags: 0, ...extra });

/** A compute node as os_nova's schema initialisation writes it (N-4), with real credentials. */
function node(h: string, over: Record<string, string> = {}): RawKvEntry[] {
  const vals: Record<string, string> = {
    general: '', 'status/failed': 'False', 'status/recovered': 'False', 'internal/number_fails': '0',
    'internal/runtime_config': '{}', 'config/bmc/ip': '192.0.2.101', 'config/bmc/user': 'admin', 'config/bmc/password': 's3cret!',
    'config/ssh/user': 'probe', 'config/ssh/password': 'ssh-pw', ...over,
  };
  return Object.entries(vals).map(([k, v]) => kv(`compute_nodes/${h}/${k}`, v));
}

t.test('key builders follow N-4 / N-5', async (t) => {
  const table: [string, string][] = [
    [COMPUTE_KEYS.failed, 'ha_cluster/compute_nodes/cmp-01/status/failed'],
    [COMPUTE_KEYS.recovered, 'ha_cluster/compute_nodes/cmp-01/status/recovered'],
    [COMPUTE_KEYS.numberFails, 'ha_cluster/compute_nodes/cmp-01/internal/number_fails'],
    [COMPUTE_KEYS.runtimeConfig, 'ha_cluster/compute_nodes/cmp-01/internal/runtime_config'],
    [COMPUTE_KEYS.bmcIp, 'ha_cluster/compute_nodes/cmp-01/config/bmc/ip'],
    [COMPUTE_KEYS.bmcUser, 'ha_cluster/compute_nodes/cmp-01/config/bmc/user'],
    [COMPUTE_KEYS.bmcPassword, 'ha_cluster/compute_nodes/cmp-01/config/bmc/password'],
    [COMPUTE_KEYS.sshUser, 'ha_cluster/compute_nodes/cmp-01/config/ssh/user'],
    [COMPUTE_KEYS.incident, 'ha_cluster/compute_nodes/cmp-01/incident'],
  ];
  for (const [sub, want] of table) t.equal(computeKey('ha_cluster', 'cmp-01', sub), want);
  t.equal(haKey('ha_cluster', 'ha1', 'status/in_use'), 'ha_cluster/ha_nodes/ha1/status/in_use');
});

t.test('booleans, counts and JSON as os_nova writes them (N-7)', async (t) => {
  t.equal(encodeBool(true), 'True');
  t.equal(encodeBool(false), 'False');
  for (const s of ['True', 'true', 'T', 'yes', '1']) t.equal(decodeBool(s), true, s);
  for (const s of ['False', 'false', 'f', 'no', '0', '']) t.equal(decodeBool(s), false, s);
  for (const s of ['maybe', 'Tru', '2']) t.equal(decodeBool(s), undefined, s);
  t.equal(decodeCount('3'), 3);
  t.equal(decodeCount(' 3\n'), 3);
  for (const s of ['-1', '3.5', 'x', '']) t.equal(decodeCount(s), undefined, s);
  t.equal(encodeJson({ b: 1, a: { d: 2, c: 3 } }), '{\n    "a": {\n        "c": 3,\n        "d": 2\n    },\n    "b": 1\n}');
});

t.test('decodeInventory: a healthy tree', async (t) => {
  const inv = decodeInventory([
    ...node('cmp-01', { 'internal/number_fails': '2', 'internal/runtime_config': '{"nova": {"host": "cmp-01"}}' }),
    ...node('cmp-02', { 'status/failed': 'True' }),
    kv('ha_nodes/ha1/status/in_use', 'False'),
    kv('ha_nodes/ha1/config/os_cloud', 'cloud_v3_api'),
    kv('compute_nodes/cmp-02/incident', '{"step": "fencing"}', { Session: 'sess-1' }),
    kv('other/thing', 'x'),
  ]);
  t.same(inv.problems, []);
  t.same(Object.keys(inv.computeNodes).sort(), ['cmp-01', 'cmp-02']);
  const c1 = inv.computeNodes['cmp-01']!;
  t.match(c1, { failed: { value: false }, numberFails: { value: 2 }, runtimeConfig: { value: { nova: { host: 'cmp-01' } } }, bmc: { ip: '192.0.2.101', user: 'admin' } });
  t.ok(c1.bmc.password instanceof Secret);
  t.equal(c1.bmc.password!.reveal(), 's3cret!');
  t.equal(inv.computeNodes['cmp-02']!.failed!.value, true);
  t.match(inv.computeNodes['cmp-02']!.incident, { session: 'sess-1', journal: { step: 'fencing' } });
  t.match(inv.haNodes.ha1, { inUse: { value: false }, osCloud: 'cloud_v3_api' });
  t.ok(c1.numberFails!.modifyIndex > 100, 'the ModifyIndex is kept for CAS');
});

t.test('decodeInventory: each bad value names its key and drops only that host', async (t) => {
  const table: [string, string, RegExp][] = [
    ['status/failed', 'Ture', /status\/failed: "Ture" does not parse \(expected True or False\)/],
    ['internal/number_fails', 'three', /internal\/number_fails: "three" does not parse \(expected a non-negative integer\)/],
    ['internal/runtime_config', '{not json', /internal\/runtime_config: .* \(expected a JSON object\)/],
    ['internal/runtime_config', '[1,2]', /expected a JSON object/],
    ['internal/number_fails_by_network', '{"mgmt": -1}', /expected a JSON object of network/],
    ['status/maintenance', 'perhaps', /status\/maintenance/],
  ];
  for (const [sub, value, re] of table) {
    const inv = decodeInventory([...node('cmp-01', { [sub]: value }), ...node('cmp-02')]);
    t.equal(inv.problems.length, 1, sub);
    t.match(inv.problems[0], { code: 'EKVPARSE', host: 'cmp-01', key: `ha_cluster/compute_nodes/cmp-01/${sub}` });
    t.match(inv.problems[0]!.message, re);
    t.notOk('cmp-01' in inv.computeNodes, 'the bad host is left out');
    t.ok('cmp-02' in inv.computeNodes, 'other hosts are unaffected');
  }
  const notB64 = decodeInventory([{ Key: 'ha_cluster/compute_nodes/cmp-01/status/failed', Value: '%%%', ModifyIndex: 1 }]);
  t.match(notB64.problems[0]!.message, /not base64/);
});

t.test('default credentials in KV are refused, naming the key, never quoting the password', async (t) => {
  const inv = decodeInventory(node('cmp-01', { 'config/bmc/user': 'test', 'config/bmc/password': 'Test123.' }));
  t.same(inv.problems.map((p) => [p.code, p.key]), [
    ['EKVDEFAULTCRED', 'ha_cluster/compute_nodes/cmp-01/config/bmc/user'],
    ['EKVDEFAULTCRED', 'ha_cluster/compute_nodes/cmp-01/config/bmc/password'],
  ]);
  t.notMatch(JSON.stringify(inv.problems), /Test123/);
  t.notOk('cmp-01' in inv.computeNodes);
  const ssh = decodeInventory(node('cmp-01', { 'config/ssh/password': 'Test123.' }));
  t.match(ssh.problems, [{ key: 'ha_cluster/compute_nodes/cmp-01/config/ssh/password' }]);
  t.equal(isDefaultCredential('test', 'x'), true);
  t.equal(isDefaultCredential('admin', 'Test123.'), true);
  t.equal(isDefaultCredential('admin', 'pw'), false);
});

t.test('a decoded tree never shows a password when serialised', async (t) => {
  const inv = decodeInventory([kv('compute_nodes/cmp-01/config/bmc/password', 'hunter2'), kv('compute_nodes/cmp-01/status/failed', 'nope')]);
  t.notMatch(JSON.stringify(inv), /hunter2/);
  t.notMatch(inspect(inv, { depth: 10 }), /hunter2/);
});

t.test('Secret never prints', async (t) => {
  const s = new Secret('pw-123');
  t.equal(JSON.stringify({ s }), '{"s":"[redacted]"}');
  t.equal(`${s}`, '[redacted]');
  t.notMatch(inspect({ s }), /pw-123/);
  t.equal(s.reveal(), 'pw-123');
});

t.test('mergeInventory keeps the last good record of a host that no longer parses', async (t) => {
  const good = decodeInventory([...node('cmp-01'), ...node('cmp-02')]);
  const bad = decodeInventory([...node('cmp-01', { 'status/failed': '??' }), ...node('cmp-02', { 'internal/number_fails': '4' })]);
  const merged = mergeInventory(good, bad);
  t.equal(merged.computeNodes['cmp-01'], good.computeNodes['cmp-01'], 'last good kept');
  t.equal(merged.computeNodes['cmp-02']!.numberFails!.value, 4, 'the good host is updated');
  t.equal(merged.problems.length, 1);
  t.equal(mergeInventory(undefined, bad), bad);
});

t.test('latchTxn: check-session first, then the latch, then the journal under the same lock', async (t) => {
  const ops = latchTxn('ha_cluster', 'cmp-01', 'failed', 'sess-1', { step: 'claimed' });
  t.same(ops.map((o) => [o.KV.Verb, o.KV.Key, o.KV.Session]), [
    ['check-session', 'ha_cluster/compute_nodes/cmp-01/incident', 'sess-1'],
    ['set', 'ha_cluster/compute_nodes/cmp-01/status/failed', undefined],
    ['lock', 'ha_cluster/compute_nodes/cmp-01/incident', 'sess-1'],
  ]);
  t.equal(unb64(ops[1]!.KV.Value), 'True');
  t.same(JSON.parse(unb64(ops[2]!.KV.Value)), { step: 'claimed' });
  t.equal(latchTxn('p', 'h', 'recovered', 's', {})[1]!.KV.Key, 'p/compute_nodes/h/status/recovered');
});

t.test('operator txns', async (t) => {
  const r = resetTxn('ha_cluster', 'cmp-01');
  t.same(r.map((o) => [o.KV.Key.split('/').slice(3).join('/'), unb64(o.KV.Value)]), [
    ['status/failed', 'False'], ['status/recovered', 'False'], ['internal/number_fails', '0'], ['internal/number_fails_by_network', '{}'],
  ]);
  t.same(maintenanceTxn('ha_cluster', 'cmp-01', true).map((o) => [o.KV.Key, unb64(o.KV.Value)]), [['ha_cluster/compute_nodes/cmp-01/status/maintenance', 'True']]);
});
