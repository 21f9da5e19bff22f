// Table tests: one network's members + health answers → per-host up/down/unknown (spec/consul-api.md §3h).
import t from 'tap';
import { sampleNetwork, sampleRound, parseChecks, parseMembers, type NetworkAnswer } from '../../../../src/roles/monitor/samples';

const member = (Name: string, Status: number) => ({ Name, Addr: '192.0.2.14', Port: 8301, Tags: { role: 'node' }, Status });
const check = (CheckID: string, Status: string, Name = CheckID) => ({ Node: 'cmp-01', CheckID, Name, Status, Output: '', ServiceID: '', ServiceName: '', ServiceTags: [] });
const hosts = [{ name: 'cmp-01', node: 'cmp-01' }];

function one(answer: NetworkAnswer, checks: string[] = []) {
  return sampleNetwork(hosts, answer, { network: 'mgmt', checks })[0]!;
}

t.test('member status without health answers', async (t) => {
  const table: [number, string][] = [[1, 'up'], [4, 'down'], [3, 'down'], [2, 'unknown'], [0, 'unknown'], [9, 'unknown']];
  for (const [status, want] of table) {
    const s = one({ members: [member('cmp-01', status)] });
    t.equal(s.state, want, `Status ${status} → ${want}`);
    t.match(s.reasons[0], new RegExp(`member Status ${status}`));
  }
});

t.test('health checks refine an alive member', async (t) => {
  const table: [string, unknown[], string[], string, RegExp][] = [
    ['serfHealth passing', [check('serfHealth', 'passing')], [], 'up', /serfHealth passing/],
    ['serfHealth critical beats alive', [check('serfHealth', 'critical')], [], 'down', /serfHealth critical/],
    ['configured check critical', [check('serfHealth', 'passing'), check('storage', 'critical')], ['storage'], 'down', /critical: storage/],
    ['configured check by Name', [check('serfHealth', 'passing'), check('c1', 'critical', 'Storage ping')], ['Storage ping'], 'down', /critical: Storage ping/],
    ['configured check warning is not down', [check('serfHealth', 'passing'), check('storage', 'warning')], ['storage'], 'up', /serfHealth passing/],
    ['unconfigured critical check is ignored', [check('serfHealth', 'passing'), check('web', 'critical')], [], 'up', /member Status 1/],
    ['configured check missing', [check('serfHealth', 'passing')], ['storage'], 'unknown', /not registered: storage/],
    ['node maintenance', [check('serfHealth', 'passing'), check('_node_maintenance', 'critical')], [], 'unknown', /maintenance/],
    ['unknown node: 200 []', [], [], 'up', /member Status 1/],
  ];
  for (const [name, checks, wanted, want, re] of table) {
    const s = one({ members: [member('cmp-01', 1)], health: { 'cmp-01': checks } }, wanted);
    t.equal(s.state, want, name);
    t.match(s.reasons.join('; '), re, name);
  }
});

t.test('failed member with critical serfHealth is down; failed member stays down whatever the checks', async (t) => {
  t.equal(one({ members: [member('cmp-01', 4)], health: { 'cmp-01': [check('serfHealth', 'critical')] } }).state, 'down');
  t.equal(one({ members: [member('cmp-01', 4)], health: { 'cmp-01': [check('serfHealth', 'passing')] } }).state, 'down');
});

t.test('unknown, never down: agent error, missing member, broken answers', async (t) => {
  const all = sampleNetwork([{ name: 'a', node: 'a' }, { name: 'b', node: 'b' }], { error: 'ECONNREFUSED' }, { network: 'tenant' });
  t.same(all.map((s) => s.state), ['unknown', 'unknown']);
  t.match(all[0], { network: 'tenant', reasons: ['agent error: ECONNREFUSED'] });
  t.match(one({ members: [member('cmp-02', 4)] }), { state: 'unknown', reasons: [/not in the member list/] });
  t.equal(one({ members: { not: 'a list' } }).state, 'unknown');
  t.equal(one({ members: [{ Name: 'cmp-01', Status: '1' }] }).state, 'unknown', 'string Status is not a member list');
  t.match(one({ members: [member('cmp-01', 1)], health: { 'cmp-01': { error: 'timeout' } } }, ['storage']), { state: 'unknown', reasons: [/member/, /health error: timeout/, /no health answer/] });
  t.equal(one({ members: [member('cmp-01', 1)], health: { 'cmp-01': { error: 'timeout' } } }).state, 'up', 'no configured checks: the member view decides');
  t.equal(one({ members: [member('cmp-01', 1)], health: { 'cmp-01': 'garbage' } }, ['x']).state, 'unknown');
});

t.test('per-network node names and addresses', async (t) => {
  const s = sampleNetwork([{ name: 'cmp-01', node: 'cmp-01-st' }], { members: [member('cmp-01', 4), member('cmp-01-st', 1)] }, { network: 'storage' });
  t.match(s[0], { host: 'cmp-01', node: 'cmp-01-st', state: 'up', addr: '192.0.2.14' });
});

t.test('parsers', async (t) => {
  t.same(parseMembers([member('x', 1)]), [{ name: 'x', status: 1, addr: '192.0.2.14' }]);
  t.equal(parseMembers(null), undefined);
  t.same(parseChecks([check('serfHealth', 'passing')]), [{ id: 'serfHealth', name: 'serfHealth', status: 'passing' }]);
  t.equal(parseChecks([{ CheckID: 1 }]), undefined);
});

t.test('sampleRound pivots every network into per-host samples; a missing answer is unknown', async (t) => {
  const hosts = [{ name: 'cmp-01', nodes: { mgmt: 'cmp-01', tenant: 'cmp-01-t' } }, { name: 'cmp-02', nodes: { mgmt: 'cmp-02', tenant: 'cmp-02' } }];
  const r = sampleRound(hosts, [{ name: 'mgmt' }, { name: 'tenant', checks: ['tping'] }, { name: 'storage' }], {
    mgmt: { members: [member('cmp-01', 1), member('cmp-02', 4)] },
    tenant: { members: [member('cmp-01-t', 1)], health: { 'cmp-01-t': [check('serfHealth', 'passing'), check('tping', 'critical')] } },
  });
  t.same(Object.keys(r), ['cmp-01', 'cmp-02']);
  t.same(Object.fromEntries(Object.entries(r['cmp-01']!).map(([n, s]) => [n, s.state])), { mgmt: 'up', tenant: 'down', storage: 'unknown' });
  t.same(Object.fromEntries(Object.entries(r['cmp-02']!).map(([n, s]) => [n, s.state])), { mgmt: 'down', tenant: 'unknown', storage: 'unknown' });
  t.match(r['cmp-01']!.storage!.reasons, ['agent error: no answer this round']);
  t.equal(r['cmp-01']!.tenant!.node, 'cmp-01-t');
});
