// The Consul TEST DOUBLE (test/support/consul-double) against the formats of
// shared/spec/consul-api.md: a real process on loopback, driven over HTTP.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import {
  startConsulDouble, freeLoopbackPort, tempAgentConfig, writeAgentConfig, type ConsulDouble, type AgentConfigFile,
} from '../support/consul-double';
import { parseAgentSelf } from '../../src/consul/client';
import { waitFor } from '../support/vigil';

interface Res { status: number; type: string; headers: Headers; text: string; json: () => any }

async function call(base: string, method: string, p: string, body?: string, headers: Record<string, string> = {}): Promise<Res> {
  const r = await fetch(`${base}${p}`, { method, body, headers, signal: AbortSignal.timeout(5000) });
  const text = await r.text();
  return { status: r.status, type: r.headers.get('content-type') ?? '', headers: r.headers, text, json: () => JSON.parse(text) };
}

async function start(t: tap.Test, cfg: AgentConfigFile, extra: { state?: any } = {}): Promise<ConsulDouble> {
  const dir = tempAgentConfig(cfg);
  const d = await startConsulDouble({ configDir: dir, host: '127.0.0.1', port: await freeLoopbackPort(), ...extra });
  t.teardown(async () => { await d.stop(); fs.rmSync(dir, { recursive: true, force: true }); });
  return d;
}

const CLIENT: AgentConfigFile = { node_name: 'cmp-01', datacenter: 'management', retry_join: ['10.0.0.5', '10.0.0.6', '10.0.0.7'] };

/** Every leaf under Stats must be a string (consul-api.md: "All Stats values are strings"). */
function nonStringStats(stats: Record<string, Record<string, unknown>>): string[] {
  const bad: string[] = [];
  for (const [sec, kv] of Object.entries(stats)) for (const [k, v] of Object.entries(kv)) if (typeof v !== 'string') bad.push(`${sec}.${k}`);
  return bad;
}

/** agent/event_endpoint.go uuidToUint64, recomputed here independently. */
function xorFold(id: string): string {
  const hex = id.replace(/-/g, '');
  return (BigInt(`0x${hex.slice(0, 16)}`) ^ BigInt(`0x${hex.slice(16)}`)).toString();
}

t.test('reads a config dir like consul agent -config-dir (files merged, arrays appended)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-cd-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const port = await freeLoopbackPort();
  fs.writeFileSync(path.join(dir, '10-base.json'), JSON.stringify({ node_name: 'cmp-07', datacenter: 'tenant', retry_join: ['10.1.0.5'], addresses: { http: '127.0.0.1' }, ports: { http: port } }));
  fs.writeFileSync(path.join(dir, '20-more.json'), JSON.stringify({ retry_join: ['10.1.0.6'] }));
  fs.writeFileSync(path.join(dir, 'README.txt'), 'not json, ignored');
  const d = await startConsulDouble({ configDir: dir });
  t.teardown(() => d.stop());
  t.equal(d.url, `http://127.0.0.1:${port}`, 'listens on addresses.http:ports.http');
  const self = (await call(d.url, 'GET', '/v1/agent/self')).json();
  t.equal(self.Config.NodeName, 'cmp-07');
  t.equal(self.Config.Datacenter, 'tenant');
  t.equal(self.Stats.consul.known_servers, '2', 'both retry_join servers known');
  const members = (await call(d.url, 'GET', '/v1/agent/members')).json();
  t.same(members.filter((m: any) => m.Tags.role === 'consul').map((m: any) => m.Addr).sort(), ['10.1.0.5', '10.1.0.6']);
  t.same(members.filter((m: any) => m.Tags.role === 'node').map((m: any) => m.Name), ['cmp-07']);
  t.ok(members.every((m: any) => m.Status === 1 && typeof m.Port === 'number'), 'Status is an integer (1 alive)');
});

t.test('a bad config file stops the double with a message', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-cd-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'a.json'), '{ not json');
  await t.rejects(startConsulDouble({ configDir: dir, port: 0 }), /Error parsing/);
});

t.test('healthy client: agent/self is the A4 shape with string stats', async (t) => {
  const d = await start(t, CLIENT);
  const r = await call(d.url, 'GET', '/v1/agent/self');
  t.equal(r.status, 200);
  t.match(r.type, /application\/json/);
  const self = r.json();
  t.same(Object.keys(self).sort(), ['Config', 'Coord', 'Member', 'Meta', 'Stats']);
  t.same(nonStringStats(self.Stats), [], 'all Stats values are strings');
  t.same(self.Stats.consul, { known_servers: '3', server: 'false' }, 'no acl key before 1.4');
  t.equal(self.Config.Server, false);
  t.equal(self.Member.Tags.role, 'node');
  for (const k of ['members', 'failed', 'health_score', 'left', 'event_time']) t.type(self.Stats.serf_lan[k], 'string');
  t.match(parseAgentSelf(self), { server: false, knownServers: 3, nodeName: 'cmp-01', serfFailed: 0, serfHealthScore: 0 });
});

t.test('servers lost: known_servers "0", failed > 0, health_score > 0, and 500 No known Consul servers', async (t) => {
  const d = await start(t, CLIENT);
  await d.setState('servers-lost');
  const self = (await call(d.url, 'GET', '/v1/agent/self')).json();
  t.same(nonStringStats(self.Stats), []);
  t.equal(self.Stats.consul.known_servers, '0');
  t.ok(Number(self.Stats.serf_lan.members) > 1, 'members > 1');
  t.ok(Number(self.Stats.serf_lan.failed) > 0, 'failed > 0');
  t.ok(Number(self.Stats.serf_lan.health_score) > 0, 'health_score > 0');
  const members = (await call(d.url, 'GET', '/v1/agent/members')).json();
  t.same(members.filter((m: any) => m.Tags.role === 'consul').map((m: any) => m.Status), [4, 4, 4], 'servers failed (4)');
  for (const [m, p] of [['GET', '/v1/status/leader'], ['GET', '/v1/status/peers'], ['PUT', '/v1/event/fire/fence'], ['GET', '/v1/kv/x'], ['PUT', '/v1/session/create']]) {
    const r = await call(d.url, m!, p!);
    t.equal(r.status, 500, `${m} ${p} → 500`);
    t.equal(r.text, 'No known Consul servers');
    t.match(r.type, /^text\/plain/);
  }
  t.equal((await call(d.url, 'GET', '/v1/event/list')).status, 200, 'local endpoints still answer');
});

t.test('never had servers: known_servers "0" with one member (A2)', async (t) => {
  const d = await start(t, { node_name: 'cmp-01' }); // no retry_join: nothing to find
  const self = (await call(d.url, 'GET', '/v1/agent/self')).json();
  t.equal(self.Stats.consul.known_servers, '0');
  t.equal(self.Stats.serf_lan.members, '1');
  t.equal(self.Stats.serf_lan.failed, '0');
  t.equal((await call(d.url, 'GET', '/v1/agent/members')).json().length, 1);
  t.equal((await call(d.url, 'GET', '/v1/status/peers')).text, 'No known Consul servers');
  t.equal((await d.getState()).state, 'never-had-servers');
});

t.test('server agent: no known_servers, server "true", leader_addr, role consul (A3)', async (t) => {
  const d = await start(t, { node_name: 'ctrl-01', server: true, retry_join: ['10.0.0.5'] });
  const self = (await call(d.url, 'GET', '/v1/agent/self')).json();
  t.same(nonStringStats(self.Stats), []);
  t.notOk('known_servers' in self.Stats.consul);
  t.equal(self.Stats.consul.server, 'true');
  t.equal(self.Stats.consul.leader_addr, '10.0.0.5:8300');
  t.ok(self.Stats.raft, 'raft stats');
  t.equal(self.Config.Server, true);
  t.equal(self.Member.Tags.role, 'consul');
  t.match(parseAgentSelf(self), { server: true, knownServers: undefined, leaderAddr: '10.0.0.5:8300' });
  t.equal((await call(d.url, 'GET', '/v1/status/leader')).json(), '10.0.0.5:8300');
});

t.test('join: PUT only (405 otherwise), records attempts, heals servers-lost when the address is a server', async (t) => {
  const d = await start(t, CLIENT);
  const get = await call(d.url, 'GET', '/v1/agent/join/10.0.0.5');
  t.equal(get.status, 405);
  t.equal(get.headers.get('allow'), 'PUT');
  await d.setState('servers-lost');
  const unknown = await call(d.url, 'PUT', '/v1/agent/join/10.9.9.9');
  t.equal(unknown.status, 500);
  t.match(unknown.text, /Failed to join 10\.9\.9\.9/);
  t.equal((await d.getState()).state, 'servers-lost');
  const ok = await call(d.url, 'PUT', '/v1/agent/join/10.0.0.6:8301');
  t.equal(ok.status, 200);
  t.equal(ok.text, '', 'empty body');
  t.equal((await d.getState()).state, 'healthy', 'healed');
  t.equal((await call(d.url, 'GET', '/v1/agent/self')).json().Stats.consul.known_servers, '3');
  const joins = await d.joins();
  t.same(joins.map((j) => [j.method, j.addr, j.status]), [['GET', '10.0.0.5', 405], ['PUT', '10.9.9.9', 500], ['PUT', '10.0.0.6:8301', 200]]);
  // With healOnJoin off, the network stays dead: the join fails and nothing heals.
  await d.setState('servers-lost', { healOnJoin: false });
  t.equal((await call(d.url, 'PUT', '/v1/agent/join/10.0.0.5')).status, 500);
  t.equal((await d.getState()).state, 'servers-lost');
});

t.test('leave: PUT only, 200 empty, then the agent is gone (ECONNREFUSED)', async (t) => {
  const d = await start(t, CLIENT);
  t.equal((await call(d.url, 'POST', '/v1/agent/leave')).status, 405, 'not a POST');
  const r = await call(d.url, 'PUT', '/v1/agent/leave');
  t.equal(r.status, 200);
  t.equal(r.text, '');
  t.same(await d.exited, { code: 0, signal: null }, 'the process shut down');
  const err = await fetch(`${d.url}/v1/agent/self`).then(() => undefined, (e: any) => e);
  t.equal(err?.cause?.code, 'ECONNREFUSED');
});

t.test('event fire: raw body to base64, uuid ID, LTime 0, the spec errors', async (t) => {
  const d = await start(t, CLIENT);
  const r = await call(d.url, 'PUT', '/v1/event/fire/fence?node=%5Ecmp-01%24', 'fence@ctrl-01@1700000000');
  t.equal(r.status, 200);
  const ev = r.json();
  t.match(ev, { Name: 'fence', Payload: 'ZmVuY2VAY3RybC0wMUAxNzAwMDAwMDAw', NodeFilter: '^cmp-01$', ServiceFilter: '', TagFilter: '', Version: 1, LTime: 0 });
  t.match(ev.ID, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  t.equal((await call(d.url, 'PUT', '/v1/event/fire/deploy')).json().Payload, null, 'no body → null payload');
  const missing = await call(d.url, 'PUT', '/v1/event/fire/');
  t.same([missing.status, missing.text], [400, 'Missing name']);
  const tag = await call(d.url, 'PUT', '/v1/event/fire/fence?tag=x');
  t.same([tag.status, tag.text], [500, 'Cannot provide tag filter without service filter']);
  t.equal((await call(d.url, 'GET', '/v1/event/fire/fence')).status, 405);
  t.equal((await call(d.url, 'PUT', '/v1/event/fire/fence?node=(')).status, 500, 'a filter that is not a regex');
  const list = (await call(d.url, 'GET', '/v1/event/list?name=fence')).json();
  t.equal(list.length, 1);
  t.equal(list[0].ID, ev.ID);
  t.ok(list[0].LTime > 0, 'LTime set on receipt');
});

t.test('event storage follows the unanchored node-filter regex, as Consul does', async (t) => {
  const d = await start(t, { ...CLIENT, node_name: 'cmp-10' });
  const fire = async (node: string) => (await call(d.url, 'PUT', `/v1/event/fire/fence?node=${encodeURIComponent(node)}`, 'x')).json().ID as string;
  const stored = [await fire('cmp-1'), await fire(''), await fire('^cmp-10$'), await fire('cmp-.*')];
  await fire('^cmp-1$');
  await fire('cmp-2');
  await fire('^cmp-100$');
  const list = (await call(d.url, 'GET', '/v1/event/list?name=fence')).json();
  t.same(list.map((e: any) => e.ID), stored, 'cmp-1 (unanchored) reaches cmp-10; anchored or other names do not');
  await call(d.url, 'PUT', '/v1/event/fire/fence?service=nova', 'x');
  t.equal((await call(d.url, 'GET', '/v1/event/list?name=fence')).json().length, 4, 'no local service nova: not stored');
});

t.test('event list: name filter, X-Consul-Index is the XOR-fold of the last ID, ring of 256', async (t) => {
  const d = await start(t, CLIENT);
  const empty = await call(d.url, 'GET', '/v1/event/list?name=fence');
  t.same(empty.json(), []);
  t.equal(empty.headers.get('x-consul-index'), '1', 'empty list: index 1');
  const ids: string[] = [];
  for (let i = 0; i < 300; i++) {
    const name = i % 10 === 0 ? 'other' : 'fence';
    const id = (await call(d.url, 'PUT', `/v1/event/fire/${name}`, `p${i}`)).json().ID as string;
    ids.push(id);
  }
  const all = await call(d.url, 'GET', '/v1/event/list');
  t.equal(all.json().length, 256, 'the buffer holds 256');
  t.same(all.json().map((e: any) => e.ID), ids.slice(-256), 'the newest 256, oldest first');
  t.equal(all.headers.get('x-consul-index'), xorFold(ids[299]!));
  const fence = await call(d.url, 'GET', '/v1/event/list?name=fence');
  const fenceIds = ids.slice(-256).filter((_, i) => (i + 44) % 10 !== 0);
  t.same(fence.json().map((e: any) => e.ID), fenceIds, 'name filter');
  t.equal(fence.headers.get('x-consul-index'), xorFold(fenceIds[fenceIds.length - 1]!));
  t.equal(xorFold('5c9f6a2e-1d3b-4e8f-9a7c-2b1e0d4f6a83'), '14331370113913332748', 'the fold matches fixture B3');
});

t.test('event list blocking query returns when a new event arrives', async (t) => {
  const d = await start(t, CLIENT);
  await call(d.url, 'PUT', '/v1/event/fire/fence', 'a');
  const first = await call(d.url, 'GET', '/v1/event/list?name=fence');
  const idx = first.headers.get('x-consul-index')!;
  const started = Date.now();
  const blocked = call(d.url, 'GET', `/v1/event/list?name=fence&index=${idx}&wait=4s`);
  await new Promise((r) => setTimeout(r, 300));
  await call(d.url, 'PUT', '/v1/event/fire/fence', 'b');
  const r = await blocked;
  t.equal(r.json().length, 2);
  t.not(r.headers.get('x-consul-index'), idx);
  t.ok(Date.now() - started < 3500, 'answered on the event, not at the wait timeout');
  const timed = await call(d.url, 'GET', `/v1/event/list?name=fence&index=${r.headers.get('x-consul-index')}&wait=200ms`);
  t.equal(timed.json().length, 2, 'wait expiry answers with the same list');
});

t.test('hung: accepts connections and never answers; the control channel still works', async (t) => {
  const d = await start(t, CLIENT);
  await d.setState('hung');
  const started = Date.now();
  const err = await fetch(`${d.url}/v1/agent/self`, { signal: AbortSignal.timeout(400) }).then(() => undefined, (e: Error) => e);
  t.ok(err, 'no answer');
  t.equal(err?.name, 'TimeoutError');
  t.ok(Date.now() - started >= 350, 'waited for the timeout');
  t.equal((await d.getState()).state, 'hung');
  await d.setState('healthy');
  t.equal((await call(d.url, 'GET', '/v1/agent/self')).status, 200, 'answers again');
});

t.test('dead: the process exits; SIGKILL does the same', async (t) => {
  const d = await start(t, CLIENT);
  await d.setState('dead');
  const ex = await d.exited;
  t.not(ex.code, 0, 'exited like a crash');
  const err = await fetch(`${d.url}/v1/agent/self`).then(() => undefined, (e: any) => e);
  t.equal(err?.cause?.code, 'ECONNREFUSED');
  const d2 = await start(t, CLIENT);
  d2.kill('SIGKILL');
  t.equal((await d2.exited).signal, 'SIGKILL');
});

t.test('signals: SIGUSR1 loses the servers, SIGUSR2 brings them back', async (t) => {
  const d = await start(t, CLIENT);
  const known = async () => (await call(d.url, 'GET', '/v1/agent/self')).json().Stats.consul.known_servers as string;
  d.kill('SIGUSR1');
  await waitFor(async () => (await known()) === '0', 5000, 'servers lost').catch(() => undefined);
  t.equal(await known(), '0');
  d.kill('SIGUSR2');
  await waitFor(async () => (await known()) === '3', 5000, 'servers back').catch(() => undefined);
  t.equal(await known(), '3');
});

t.test('known_servers override and member list are configurable at runtime', async (t) => {
  const d = await start(t, { ...CLIENT, double: { clients: [{ name: 'cmp-02', addr: '10.0.0.20' }] } });
  await d.configure({ knownServers: 1, servers: [{ name: 'srv-a', addr: '10.0.0.9' }] });
  t.equal((await call(d.url, 'GET', '/v1/agent/self')).json().Stats.consul.known_servers, '1');
  const members = (await call(d.url, 'GET', '/v1/agent/members')).json();
  t.same(members.map((m: any) => [m.Name, m.Tags.role]), [['cmp-01', 'node'], ['srv-a', 'consul'], ['cmp-02', 'node']]);
  t.same((await call(d.url, 'GET', '/v1/status/peers')).json(), ['10.0.0.9:8300']);
  const bad = await fetch(`${d.url}/_double/state`, { method: 'PUT', body: 'asleep' });
  t.equal(bad.status, 400, 'unknown state refused');
});

t.test('KV: 404, base64 values, literal true/false, cas, recurse, delete', async (t) => {
  const d = await start(t, CLIENT);
  const miss = await call(d.url, 'GET', '/v1/kv/ha/x');
  t.equal(miss.status, 404);
  t.ok(miss.headers.get('x-consul-index'), 'index header on 404');
  const put = await call(d.url, 'PUT', '/v1/kv/ha/x', '2');
  t.same([put.status, put.text], [200, 'true']);
  const got = await call(d.url, 'GET', '/v1/kv/ha/x');
  const [e] = got.json();
  t.match(e, { Key: 'ha/x', Value: 'Mg==', Flags: 0, LockIndex: 0 });
  t.notOk('Session' in e, 'Session omitted when unlocked (omitempty)');
  t.equal(got.headers.get('x-consul-knownleader'), 'true');
  t.equal((await call(d.url, 'PUT', '/v1/kv/ha/x?cas=0', '3')).text, 'false', 'cas=0 on an existing key');
  t.equal((await call(d.url, 'PUT', `/v1/kv/ha/x?cas=${e.ModifyIndex}`, '3')).text, 'true');
  t.equal((await call(d.url, 'PUT', `/v1/kv/ha/x?cas=${e.ModifyIndex}`, '3')).text, 'false', 'same cas again');
  t.equal((await call(d.url, 'PUT', '/v1/kv/ha/new?cas=0', 'v')).text, 'true', 'cas=0 creates');
  t.same((await call(d.url, 'GET', '/v1/kv/ha?recurse')).json().map((x: any) => x.Key), ['ha/new', 'ha/x']);
  t.same((await call(d.url, 'GET', '/v1/kv/ha?keys')).json(), ['ha/new', 'ha/x']);
  t.equal((await call(d.url, 'GET', '/v1/kv/ha/x?raw')).text, '3');
  const cur = (await call(d.url, 'GET', '/v1/kv/ha/x')).json()[0];
  t.equal((await call(d.url, 'DELETE', `/v1/kv/ha/x?cas=${cur.ModifyIndex - 1}`)).text, 'false', 'delete with a stale cas');
  t.equal((await call(d.url, 'DELETE', `/v1/kv/ha/x?cas=${cur.ModifyIndex}`)).text, 'true');
  t.equal((await call(d.url, 'GET', '/v1/kv/ha/x')).status, 404);
  t.equal((await call(d.url, 'PUT', '/v1/kv/', 'x')).status, 400, 'missing key name');
});

t.test('sessions and locks: acquire, contention, release, destroy with lock-delay, TTL bounds', async (t) => {
  const d = await start(t, CLIENT);
  const s1 = (await call(d.url, 'PUT', '/v1/session/create', JSON.stringify({ Name: 'ha-in-use-ha1', Node: 'ha1', LockDelay: '1s', TTL: '30s' }))).json().ID;
  const s2 = (await call(d.url, 'PUT', '/v1/session/create', '')).json().ID;
  t.match(s1, /^[0-9a-f-]{36}$/);
  const info = (await call(d.url, 'GET', `/v1/session/info/${s1}`)).json();
  t.match(info[0], { ID: s1, Name: 'ha-in-use-ha1', Node: 'ha1', LockDelay: 1e9, Behavior: 'release', TTL: '30s', Checks: ['serfHealth'] }, '1.2 shape: Checks');
  t.same((await call(d.url, 'GET', '/v1/session/info/00000000-0000-0000-0000-000000000000')).json(), []);
  t.equal((await call(d.url, 'PUT', `/v1/kv/lock?acquire=${s1}`, 'True')).text, 'true');
  const held = (await call(d.url, 'GET', '/v1/kv/lock')).json()[0];
  t.match(held, { Session: s1, LockIndex: 1, Value: 'VHJ1ZQ==' });
  t.equal((await call(d.url, 'PUT', `/v1/kv/lock?acquire=${s2}`, 'x')).text, 'false', 'held by another session');
  t.equal((await call(d.url, 'PUT', `/v1/kv/lock?acquire=${s1}`, 'again')).text, 'true', 'the holder may update');
  t.equal((await call(d.url, 'GET', '/v1/kv/lock')).json()[0].LockIndex, 1, 'LockIndex unchanged on re-acquire');
  t.equal((await call(d.url, 'PUT', `/v1/kv/lock?release=${s2}`, 'x')).text, 'false', 'only the holder releases');
  t.equal((await call(d.url, 'PUT', `/v1/kv/lock?release=${s1}`, 'free')).text, 'true');
  t.notOk('Session' in (await call(d.url, 'GET', '/v1/kv/lock')).json()[0]);
  t.equal((await call(d.url, 'PUT', `/v1/kv/lock?acquire=${s1}`, 'mine')).text, 'true');
  t.equal((await call(d.url, 'PUT', `/v1/session/destroy/${s1}`)).text, 'true');
  t.notOk('Session' in (await call(d.url, 'GET', '/v1/kv/lock')).json()[0], 'destroy released the lock');
  t.equal((await call(d.url, 'PUT', `/v1/kv/lock?acquire=${s2}`, 'x')).text, 'false', 'lock-delay after invalidation');
  await new Promise((r) => setTimeout(r, 1100));
  t.equal((await call(d.url, 'PUT', `/v1/kv/lock?acquire=${s2}`, 'x')).text, 'true', 'free after lock-delay');
  t.equal((await call(d.url, 'PUT', `/v1/kv/lock?acquire=${s1}`, 'x')).status, 500, 'a destroyed session cannot acquire');
  t.equal((await call(d.url, 'PUT', '/v1/kv/lock', 'plain')).text, 'true', 'a plain PUT ignores the lock');
  t.equal((await call(d.url, 'PUT', `/v1/session/renew/${s1}`)).status, 404);
  t.equal((await call(d.url, 'PUT', `/v1/session/renew/${s2}`)).status, 200);
  t.equal((await call(d.url, 'PUT', '/v1/session/create', JSON.stringify({ TTL: '5s' }))).status, 500, 'TTL below 10s');
  t.equal((await call(d.url, 'GET', '/v1/session/create')).status, 405);
});

t.test('0.9 shapes: full Config, join accepts GET, session Checks', async (t) => {
  const d = await start(t, { ...CLIENT, double: { version: '0.9.2' } });
  const self = (await call(d.url, 'GET', '/v1/agent/self')).json();
  t.match(self.Config, { Server: false, NodeName: 'cmp-01', Ports: { HTTP: d.port } });
  t.equal(parseAgentSelf(self).knownServers, 3);
  t.equal((await call(d.url, 'GET', '/v1/agent/join/10.0.0.5')).status, 200);
  const sid = (await call(d.url, 'PUT', '/v1/session/create', '{}')).json().ID;
  const info = (await call(d.url, 'GET', `/v1/session/info/${sid}`)).json()[0];
  t.same(info.Checks, ['serfHealth']);
  t.notOk('NodeChecks' in info);
});

t.test('ACL token: 403 Permission denied without it', async (t) => {
  const d = await start(t, { ...CLIENT, double: { aclToken: 's3cret', version: '1.10.0' } });
  const denied = await call(d.url, 'PUT', '/v1/event/fire/fence', 'x');
  t.same([denied.status, denied.text], [403, 'Permission denied']);
  t.equal((await call(d.url, 'PUT', '/v1/event/fire/fence', 'x', { 'X-Consul-Token': 's3cret' })).status, 200);
  const self = (await call(d.url, 'GET', '/v1/agent/self', undefined, { 'X-Consul-Token': 's3cret' })).json();
  t.equal(self.Stats.consul.acl, 'disabled', '1.4+ has consul.acl');
  const sid = (await call(d.url, 'PUT', '/v1/session/create', '{}', { 'X-Consul-Token': 's3cret' })).json().ID;
  const info = (await call(d.url, 'GET', `/v1/session/info/${sid}`, undefined, { 'X-Consul-Token': 's3cret' })).json()[0];
  t.match(info, { NodeChecks: ['serfHealth'], ServiceChecks: null }, '1.7+ shape: NodeChecks');
  const reqs = await d.requests();
  t.same(reqs.map((r) => r.token), [false, true, true, true, true]);
});

t.test('writeAgentConfig helper writes agent.json', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-cd-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  writeAgentConfig(dir, CLIENT);
  t.same(JSON.parse(fs.readFileSync(path.join(dir, 'agent.json'), 'utf8')), CLIENT);
});
