// parseAgentSelf on the spec's fixtures (shared/spec/consul-api.md 3a) and on wrong types.
import t from 'tap';
import { parseAgentSelf, parseConsulEvent } from '../../src/consul/client';

// Fixture A4 (derived JSON, client, 1.x).
const A4 = {
  Config: { Datacenter: 'management', NodeName: 'cmp-01', NodeID: '9d754d17-d864-b1d3-e758-f3fe25a9874f', Server: false, Revision: '28141971', Version: '1.2.0' },
  Coord: { Vec: [0, 0, 0, 0, 0, 0, 0, 0], Error: 1.5, Adjustment: 0, Height: 1e-05 },
  Member: { Name: 'cmp-01', Addr: '192.0.2.14', Port: 8301, Tags: { dc: 'management', role: 'node' }, Status: 1 },
  Stats: {
    agent: { check_monitors: '3', check_ttls: '0', checks: '7', services: '6' },
    build: { prerelease: '', revision: '28141971', version: '1.2.0' },
    consul: { known_servers: '3', server: 'false' },
    runtime: { arch: 'amd64', cpu_count: '2', goroutines: '115', max_procs: '2', os: 'linux', version: 'go1.10.1' },
    serf_lan: { coordinate_resets: '0', encrypted: 'true', event_queue: '0', event_time: '1186', failed: '0', health_score: '0',
      intent_queue: '0', left: '415', member_time: '22158', members: '1019', query_queue: '0', query_time: '1' },
  },
  Meta: {},
};

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
function with_(mut: (s: any) => void): any {
  const s = clone(A4);
  mut(s);
  return s;
}

t.test('A4 client', async (t) => {
  t.same(parseAgentSelf(A4), {
    server: false, knownServers: 3, nodeName: 'cmp-01', datacenter: 'management', version: '1.2.0',
    serfMembers: 1019, serfFailed: 0, serfHealthScore: 0,
  });
});

t.test('isolated variant and A2 (never found a server)', async (t) => {
  const isolated = with_((s) => { s.Stats.consul.known_servers = '0'; s.Stats.serf_lan.failed = '3'; s.Stats.serf_lan.health_score = '2'; });
  t.match(parseAgentSelf(isolated), { server: false, knownServers: 0, serfFailed: 3, serfHealthScore: 2, serfMembers: 1019 });
  const a2 = with_((s) => { s.Stats.consul.known_servers = '0'; s.Stats.serf_lan.members = '1'; s.Stats.serf_lan.left = '0'; });
  t.match(parseAgentSelf(a2), { knownServers: 0, serfMembers: 1, serfFailed: 0 });
});

t.test('1.4+ acl key is ignored', async (t) => {
  t.equal(parseAgentSelf(with_((s) => { s.Stats.consul.acl = 'enabled'; })).knownServers, 3);
});

t.test('A3 server: no known_servers, leader_addr', async (t) => {
  const a3 = with_((s) => {
    s.Config.Server = true;
    s.Stats.consul = { bootstrap: 'false', known_datacenters: '1', leader: 'false', leader_addr: '10.0.71.68:8300', server: 'true' };
    s.Stats.raft = { applied_index: '87538244', commit_index: '87538244', fsm_pending: '0', last_contact: '31.715476ms' };
  });
  t.same(parseAgentSelf(a3), { server: true, knownServers: undefined, nodeName: 'cmp-01', datacenter: 'management', version: '1.2.0',
    serfMembers: 1019, serfFailed: 0, serfHealthScore: 0, leaderAddr: '10.0.71.68:8300' });
  const leaderless = with_((s) => { s.Config.Server = true; s.Stats.consul = { server: 'true', leader_addr: '' }; });
  t.equal(parseAgentSelf(leaderless).leaderAddr, '', 'a server that knows no leader');
});

t.test('A5: the 0.9 full-config shape', async (t) => {
  const a5 = with_((s) => {
    s.Config = { Bootstrap: true, Server: false, Datacenter: 'dc1', DataDir: '/tmp/consul', NodeID: '40e4a748-2192-161a-0510-9bf59fe950b5',
      NodeName: 'foobar', ClientAddr: '127.0.0.1', BindAddr: '0.0.0.0', AdvertiseAddr: '10.1.10.12',
      Ports: { DNS: 8600, HTTP: 8500, RPC: 8400, SerfLan: 8301, SerfWan: 8302, Server: 8300 } };
    s.Stats.build.version = '0.9.2';
  });
  t.match(parseAgentSelf(a5), { server: false, knownServers: 3, nodeName: 'foobar', datacenter: 'dc1', version: '0.9.2' });
});

t.test('server taken from Config.Server when Stats.consul.server is absent', async (t) => {
  t.equal(parseAgentSelf(with_((s) => { delete s.Stats.consul.server; })).server, false);
  const srv = with_((s) => { delete s.Stats.consul.server; delete s.Stats.consul.known_servers; s.Config.Server = true; });
  t.equal(parseAgentSelf(srv).server, true);
});

t.test('strict about types', async (t) => {
  const bad: [string, (s: any) => void][] = [
    ['known_servers as a number', (s) => { s.Stats.consul.known_servers = 3; }],
    ['known_servers with a space', (s) => { s.Stats.consul.known_servers = '3 '; }],
    ['negative known_servers', (s) => { s.Stats.consul.known_servers = '-1'; }],
    ['hex known_servers', (s) => { s.Stats.consul.known_servers = '0x3'; }],
    ['empty known_servers', (s) => { s.Stats.consul.known_servers = ''; }],
    ['leading zero', (s) => { s.Stats.consul.known_servers = '03'; }],
    ['missing known_servers on a client', (s) => { delete s.Stats.consul.known_servers; }],
    ['Nomad-style address list', (s) => { s.Stats.consul.known_servers = '10.0.0.1:4647'; }],
    ['server as a boolean', (s) => { s.Stats.consul.server = false; }],
    ['server "yes"', (s) => { s.Stats.consul.server = 'yes'; }],
    ['Config.Server as a string', (s) => { s.Config.Server = 'false'; }],
    ['Stats and Config disagree', (s) => { s.Config.Server = true; }],
    ['no Stats', (s) => { delete s.Stats; }],
    ['no Stats.consul', (s) => { delete s.Stats.consul; }],
    ['no server anywhere', (s) => { delete s.Stats.consul.server; delete s.Config.Server; }],
    ['no node name', (s) => { delete s.Config.NodeName; delete s.Member.Name; }],
  ];
  for (const [what, mut] of bad) t.throws(() => parseAgentSelf(with_(mut)), { code: 'ECONSULBADRESPONSE' }, what);
  for (const junk of [null, [], 'x', 3]) t.throws(() => parseAgentSelf(junk), { code: 'ECONSULBADRESPONSE' });
  // Serf evidence with odd types is left out, not fatal: it decides nothing.
  const odd = parseAgentSelf(with_((s) => { s.Stats.serf_lan.failed = 3; }));
  t.equal(odd.serfFailed, undefined);
  t.equal(odd.knownServers, 3);
});

t.test('parseConsulEvent: the B1 doc sample and a null payload', async (t) => {
  const b1 = { ID: 'f07f3fcc-4b7d-3a7c-6d1e-cf414039fcee', Name: 'web-deploy', Payload: 'MTYwOTAzMA==', NodeFilter: '', ServiceFilter: '', TagFilter: '', Version: 1, LTime: 18 };
  const e = parseConsulEvent(b1);
  t.equal(e.payload?.toString(), '1609030');
  t.match(e, { id: b1.ID, name: 'web-deploy', ltime: 18, version: 1 });
  t.equal(parseConsulEvent({ ...b1, Payload: null }).payload, null);
  t.throws(() => parseConsulEvent({ ...b1, LTime: '18' }), { code: 'ECONSULBADRESPONSE' });
});
