// ConsulClient (src/consul/client.ts) against the Consul TEST DOUBLE and raw
// loopback sockets: error codes, the hard timeout, the token header, KV and sessions.
import t from 'tap';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { ConsulClient, ConsulHttpError } from '../../src/consul/client';
import { VigilError } from '../../src/errors';
import { startConsulDouble, freeLoopbackPort, tempAgentConfig, type ConsulDouble, type AgentConfigFile } from '../support/consul-double';

const CLIENT: AgentConfigFile = { node_name: 'cmp-01', datacenter: 'management', retry_join: ['10.0.0.5', '10.0.0.6'] };

async function start(t: tap.Test, cfg: AgentConfigFile = CLIENT): Promise<ConsulDouble> {
  const dir = tempAgentConfig(cfg);
  const d = await startConsulDouble({ configDir: dir, host: '127.0.0.1', port: await freeLoopbackPort() });
  t.teardown(async () => { await d.stop(); fs.rmSync(dir, { recursive: true, force: true }); });
  return d;
}

async function caught(p: Promise<unknown>): Promise<VigilError> {
  try { await p; } catch (e) { return e as VigilError; }
  throw new Error('expected a rejection');
}

/** A loopback server that accepts and then does `behaviour` with each socket. */
async function rawServer(t: tap.Test, behaviour: (s: net.Socket) => void): Promise<string> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => { sockets.add(s); s.on('error', () => {}); behaviour(s); });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { for (const s of sockets) s.destroy(); srv.close(() => r()); }));
  return `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
}

t.test('constructor refuses what it cannot speak', async (t) => {
  t.throws(() => new ConsulClient({ url: 'ftp://127.0.0.1:8501', timeoutMs: 1000 }), { code: 'EVIGILCONFIG' });
  t.throws(() => new ConsulClient({ url: 'not a url', timeoutMs: 1000 }), { code: 'EVIGILCONFIG' });
  t.throws(() => new ConsulClient({ url: 'http://127.0.0.1:8500?x=1', timeoutMs: 1000 }), { code: 'EVIGILCONFIG' });
  t.throws(() => new ConsulClient({ url: 'http://127.0.0.1:8500', timeoutMs: 0 }), { code: 'EVIGILCONFIG' });
});

t.test('self, members, leader, peers on a healthy agent', async (t) => {
  const d = await start(t);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  t.match(await c.self(), { server: false, knownServers: 2, nodeName: 'cmp-01' });
  const members = await c.members();
  t.same(members.filter((m) => m.role === 'consul').map((m) => m.addr), ['10.0.0.5', '10.0.0.6']);
  t.equal(members[0]!.status, 1);
  t.equal(await c.leader(), '10.0.0.5:8300');
  t.same(await c.peers(), ['10.0.0.5:8300', '10.0.0.6:8300']);
});

t.test('servers lost: ECONSULHTTP carries status 500 and the text body', async (t) => {
  const d = await start(t);
  await d.setState('servers-lost');
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  t.equal((await c.self()).knownServers, 0, 'agent/self still answers');
  for (const p of [c.peers(), c.leader(), c.fireEvent('fence', 'x'), c.kvGet('a'), c.sessionCreate()]) {
    const e = await caught(p);
    t.ok(e instanceof ConsulHttpError);
    t.match(e, { code: 'ECONSULHTTP', status: 500, body: 'No known Consul servers', retryable: true });
    t.match(e.message, /No known Consul servers/);
  }
});

t.test('join and leave', async (t) => {
  const d = await start(t);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  await d.setState('servers-lost');
  await c.join('10.0.0.6');
  t.equal((await d.getState()).state, 'healthy', 'a PUT join reached the double and healed it');
  const e = await caught(c.join('10.9.9.9'));
  t.match(e, { code: 'ECONSULHTTP', status: 500 });
  await t.rejects(c.join('10.0.0.5/../x'), { code: 'EVIGILCONFIG' });
  t.same((await d.joins()).map((j) => [j.method, j.addr]), [['PUT', '10.0.0.6'], ['PUT', '10.9.9.9']]);
  await c.leave();
  await d.exited;
  const gone = await caught(c.self());
  t.match(gone, { code: 'ECONSULUNREACHABLE', retryable: true, detail: { errno: 'ECONNREFUSED' } });
});

t.test('hard timeout: a hung agent that accepted the connection', async (t) => {
  const d = await start(t);
  await d.setState('hung');
  const c = new ConsulClient({ url: d.url, timeoutMs: 300 });
  const started = Date.now();
  const e = await caught(c.self());
  const took = Date.now() - started;
  t.match(e, { code: 'ECONSULTIMEOUT', retryable: true });
  t.ok(took >= 250 && took < 2000, `gave up after ${took} ms`);
});

t.test('hard timeout covers the whole exchange: headers sent, body never finished', async (t) => {
  const url = await rawServer(t, (s) => {
    s.once('data', () => s.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"Stats":'));
  });
  const c = new ConsulClient({ url, timeoutMs: 300 });
  const started = Date.now();
  const e = await caught(c.selfRaw());
  t.match(e, { code: 'ECONSULTIMEOUT' });
  t.ok(Date.now() - started < 2000);
});

t.test('a server that accepts and closes: unreachable, not a timeout', async (t) => {
  const url = await rawServer(t, (s) => s.destroy());
  const e = await caught(new ConsulClient({ url, timeoutMs: 2000 }).self());
  t.match(e, { code: 'ECONSULUNREACHABLE' });
});

t.test('nothing listening: ECONSULUNREACHABLE', async (t) => {
  const port = await freeLoopbackPort();
  const e = await caught(new ConsulClient({ url: `http://127.0.0.1:${port}`, timeoutMs: 2000 }).self());
  t.match(e, { code: 'ECONSULUNREACHABLE', detail: { errno: 'ECONNREFUSED' } });
});

t.test('a 200 that is not the documented shape: ECONSULBADRESPONSE', async (t) => {
  const body = JSON.stringify({ Config: { NodeName: 'cmp-01', Server: false }, Stats: { consul: { known_servers: 3, server: 'false' } } });
  const url = await rawServer(t, (s) => {
    s.once('data', () => s.end(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`));
  });
  const e = await caught(new ConsulClient({ url, timeoutMs: 2000 }).self());
  t.match(e, { code: 'ECONSULBADRESPONSE' });
  t.match(e.message, /known_servers/);
});

t.test('X-Consul-Token is sent when configured', async (t) => {
  const d = await start(t, { ...CLIENT, double: { aclToken: 'tok-123' } });
  const denied = await caught(new ConsulClient({ url: d.url, timeoutMs: 2000 }).fireEvent('fence', 'x'));
  t.match(denied, { code: 'ECONSULHTTP', status: 403, body: 'Permission denied', retryable: false });
  const ok = await new ConsulClient({ url: d.url, timeoutMs: 2000, token: 'tok-123' }).fireEvent('fence', 'x');
  t.equal(ok.name, 'fence');
});

t.test('events: fire with filters, list with raw text and index', async (t) => {
  const d = await start(t);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  const ev = await c.fireEvent('fence', Buffer.from('fence@ctrl-01@1700000000'), { node: '^cmp-01$' });
  t.match(ev, { name: 'fence', nodeFilter: '^cmp-01$', ltime: 0 });
  t.equal(ev.payload?.toString(), 'fence@ctrl-01@1700000000');
  await c.fireEvent('other', '');
  const list = await c.listEvents('fence');
  t.equal(list.events.length, 1);
  t.equal(list.events[0]!.id, ev.id);
  t.same(JSON.parse(list.raw)[0].Payload, 'ZmVuY2VAY3RybC0wMUAxNzAwMDAwMDAw', 'raw JSON as a watch handler gets it');
  const hex = ev.id.replace(/-/g, '');
  t.equal(list.index, (BigInt(`0x${hex.slice(0, 16)}`) ^ BigInt(`0x${hex.slice(16)}`)).toString());
  t.equal((await c.listEvents()).events.length, 2);
  await t.rejects(c.fireEvent('', 'x'), { code: 'EVIGILCONFIG' });
  t.match(await caught(c.fireEvent('fence', 'x', { tag: 'a' })), { status: 500, body: 'Cannot provide tag filter without service filter' });
});

t.test('KV and sessions through the client', async (t) => {
  const d = await start(t);
  const c = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  t.equal(await c.kvGet('ha_cluster/compute_nodes/cmp-01/internal/number_fails'), undefined, 'missing key');
  t.equal(await c.kvPut('ha_cluster/compute_nodes/cmp-01/internal/number_fails', '2'), true);
  const e = (await c.kvGet('ha_cluster/compute_nodes/cmp-01/internal/number_fails'))!;
  t.equal(e.value?.toString(), '2');
  t.equal(e.session, undefined);
  t.equal(await c.kvPut(e.key, '3', { cas: e.modifyIndex }), true);
  t.equal(await c.kvPut(e.key, '3', { cas: e.modifyIndex }), false, 'stale cas');
  t.equal(await c.kvPut('ha_cluster/x', 'v', { cas: 0 }), true);
  t.same((await c.kvList('ha_cluster/')).map((x) => x.key), ['ha_cluster/compute_nodes/cmp-01/internal/number_fails', 'ha_cluster/x']);
  t.same(await c.kvList('nothing/'), []);
  const s1 = await c.sessionCreate({ name: 'ha-in-use-ha1', node: 'ha1', ttl: '30s', lockDelay: '0s' });
  const s2 = await c.sessionCreate({});
  t.match(await c.sessionInfo(s1), { id: s1, name: 'ha-in-use-ha1', node: 'ha1', ttl: '30s', checks: ['serfHealth'], lockDelayNs: 0 });
  t.equal(await c.kvPut('ha_cluster/ha_nodes/ha1/status/in_use', 'True', { acquire: s1 }), true);
  t.equal(await c.kvPut('ha_cluster/ha_nodes/ha1/status/in_use', 'x', { acquire: s2 }), false);
  t.equal((await c.kvGet('ha_cluster/ha_nodes/ha1/status/in_use'))!.session, s1);
  t.equal(await c.kvPut('ha_cluster/ha_nodes/ha1/status/in_use', 'False', { release: s1 }), true);
  t.equal(await c.sessionRenew(s1), true);
  t.equal(await c.sessionDestroy(s1), true);
  t.equal(await c.sessionRenew(s1), false);
  t.equal(await c.sessionInfo(s1), undefined);
  t.equal(await c.kvDelete('ha_cluster/x', { cas: 1 }), false);
  t.equal(await c.kvDelete('ha_cluster/', { recurse: true }), true);
  t.same(await c.kvList('ha_cluster/'), []);
});

t.test('https agent: verified against the given CA, refused without it', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-tls-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  // openssl is required (.ci/run installs it): a failure here fails the test.
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const body = JSON.stringify({ Config: { NodeName: 'cmp-01', Server: false }, Stats: { consul: { known_servers: '2', server: 'false' } } });
  const srv = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json', 'X-Seen-Token': String(req.headers['x-consul-token']) });
    res.end(body);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  const url = `https://127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
  const ok = new ConsulClient({ url, timeoutMs: 3000, ca: fs.readFileSync(cert), token: 't' });
  t.match(await ok.self(), { knownServers: 2, nodeName: 'cmp-01' });
  const refused = await caught(new ConsulClient({ url, timeoutMs: 3000 }).self());
  t.match(refused, { code: 'ECONSULUNREACHABLE' });
  t.match(String(refused.detail?.errno), /SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
});
