#!/usr/bin/env node
/*
 * Layer: test support. A TEST DOUBLE of the Consul agent HTTP API — NOT Consul.
 *
 * No Consul binary can be installed on the build and test machines, so the
 * tests run this stateful stand-in instead. It is a real process that reads an
 * agent config directory like `consul agent -config-dir DIR` and serves the
 * response formats written down in shared/spec/consul-api.md: string-typed
 * Stats, text/plain errors, 500 "No known Consul servers" when the servers are
 * lost, PUT-only join/leave/fire on 1.x, unanchored regex node filters, a
 * 256-event ring buffer, KV with sessions, CAS and locks.
 *
 * Plain CommonJS with no dependencies beyond node itself, so it can be spawned
 * with `node server.js agent -config-dir DIR` anywhere (also as the `command`
 * of a supervised agent in a vigil config). See README.md for the control
 * channel (`/_double/*`, SIGUSR1/SIGUSR2) and the options.
 */
'use strict';

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const crypto = require('node:crypto');

const STATES = ['healthy', 'servers-lost', 'never-had-servers', 'hung', 'dead'];
const EVENT_BUFFER = 256; // agent/user_event.go: remoteEventBuffer
const NO_SERVERS = 'No known Consul servers'; // structs.ErrNoServers
const MAX_KV_VALUE = 512 * 1024; // raft entry limit Consul enforces on KV values
const USER_EVENT_LIMIT = 512; // serf's default UserEventSizeLimit (name + payload, before encoding)
const MAX_BODY = 4 * 1024 * 1024;
const MAX_REQUEST_LOG = 2000;

// ---------------------------------------------------------------------------
// Command line and agent configuration

function die(msg) {
  process.stderr.write(`consul-double: ${msg}\n`);
  process.exit(1);
}

/** Parse consul-style flags (`-config-dir DIR`, `-config-dir=DIR`) plus the double's own. */
function parseCli(argv) {
  const out = { configDirs: [], configFiles: [], host: undefined, port: undefined, state: undefined };
  const args = argv.slice();
  if (args[0] === 'agent') args.shift();
  while (args.length > 0) {
    let a = args.shift();
    let v;
    const eq = a.indexOf('=');
    if (a.startsWith('-') && eq > 0) { v = a.slice(eq + 1); a = a.slice(0, eq); }
    const name = a.replace(/^--?/, '');
    const val = () => {
      if (v !== undefined) return v;
      if (args.length === 0) die(`flag ${a} needs a value`);
      return args.shift();
    };
    switch (name) {
      case 'config-dir': out.configDirs.push(val()); break;
      case 'config-file': out.configFiles.push(val()); break;
      case 'host': case 'http-addr': case 'client': out.host = val(); break;
      case 'port': case 'http-port': out.port = Number(val()); break;
      case 'state': out.state = val(); break;
      default: die(`unknown flag ${a}`);
    }
  }
  if (out.port !== undefined && !(Number.isInteger(out.port) && out.port >= 0 && out.port < 65536)) die('bad port');
  return out;
}

/**
 * Merge config fragments the way the agent does: objects merge key by key,
 * arrays concatenate (retry_join from two files adds up), scalars: last wins.
 */
function merge(a, b) {
  if (Array.isArray(a) && Array.isArray(b)) return a.concat(b);
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const out = Object.assign({}, a);
    for (const k of Object.keys(b)) out[k] = k in out ? merge(out[k], b[k]) : b[k];
    return out;
  }
  return b;
}

function readConfig(cli) {
  const files = [];
  for (const dir of cli.configDirs) {
    let names;
    try { names = fs.readdirSync(dir); } catch (e) { die(`cannot read config dir ${dir}: ${e.code || e.message}`); }
    // The agent reads a directory's files in lexical order.
    for (const n of names.filter((n) => n.endsWith('.json')).sort()) files.push(path.join(dir, n));
  }
  files.push(...cli.configFiles);
  let cfg = {};
  for (const f of files) {
    let parsed;
    try { parsed = JSON.parse(fs.readFileSync(f, 'utf8')); } catch (e) { die(`Error parsing ${f}: ${e.message}`); }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) die(`Error parsing ${f}: not a JSON object`);
    cfg = merge(cfg, parsed);
  }
  return cfg;
}

function stripPort(addr) {
  const s = String(addr);
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(s);
  if (m) return m[1];
  const parts = s.split(':');
  return parts.length === 2 ? parts[0] : s;
}

// ---------------------------------------------------------------------------
// State

const cli = parseCli(process.argv.slice(2));
const cfg = readConfig(cli);
const dbl = (cfg.double && typeof cfg.double === 'object') ? cfg.double : {};

const httpAddrCfg = cfg.addresses && typeof cfg.addresses.http === 'string' ? cfg.addresses.http.split(/\s+/)[0] : undefined;
const host = cli.host || httpAddrCfg || cfg.client_addr || '127.0.0.1';
if (host.startsWith('unix://')) die('unix sockets are not supported by the double');
const port = cli.port !== undefined ? cli.port : (cfg.ports && Number.isInteger(cfg.ports.http) ? cfg.ports.http : 8500);

const version = typeof dbl.version === 'string' ? dbl.version : '1.2.0';
const major = Number(version.split('.')[0]);
const minor = Number(version.split('.')[1]);
const legacy = major === 0; // 0.9.x: full Config in agent/self, join accepts any method, session `Checks`
const hasAcl = major > 1 || (major === 1 && minor >= 4);
const hasNodeChecks = major > 1 || (major === 1 && minor >= 7);

const isServer = cfg.server === true;
const nodeName = typeof cfg.node_name === 'string' ? cfg.node_name : os.hostname();
const datacenter = typeof cfg.datacenter === 'string' ? cfg.datacenter : 'dc1';
const nodeId = typeof cfg.node_id === 'string' ? cfg.node_id : crypto.randomUUID();
const selfAddr = cfg.advertise_addr || cfg.bind_addr || (host === '0.0.0.0' ? '127.0.0.1' : host);
const retryJoin = [].concat(cfg.retry_join || [], cfg.start_join || []).map(String);

function normMembers(list, prefix) {
  return (Array.isArray(list) ? list : []).map((m, i) => (typeof m === 'string'
    ? { name: `${prefix}-${i + 1}`, addr: stripPort(m) }
    : { name: String(m.name || `${prefix}-${i + 1}`), addr: stripPort(m.addr) }));
}

const S = {
  state: undefined,
  knownServers: Number.isInteger(dbl.knownServers) ? dbl.knownServers : undefined,
  servers: normMembers(dbl.servers !== undefined ? dbl.servers : retryJoin, 'server'),
  clients: normMembers(dbl.clients, 'client'),
  services: Array.isArray(dbl.services) ? dbl.services : [],
  healOnJoin: dbl.healOnJoin !== false,
  aclToken: typeof dbl.aclToken === 'string' ? dbl.aclToken : undefined,
  joins: [],
  requests: [],
  events: [],
  ltime: 0,
  eventWaiters: new Set(),
  kv: new Map(),
  index: 10,
  sessions: new Map(),
  lockDelay: new Map(),
  hungResponses: new Set(),
};
S.state = cli.state || dbl.state || (isServer || S.servers.length > 0 ? 'healthy' : 'never-had-servers');
if (!STATES.includes(S.state)) die(`unknown state ${S.state}`);

function serversReachable() {
  return isServer ? S.state !== 'servers-lost' : S.state === 'healthy';
}

function knownServersNow() {
  if (S.state === 'servers-lost' || S.state === 'never-had-servers') return 0;
  return S.knownServers !== undefined ? S.knownServers : S.servers.length;
}

function nextIndex() { S.index += 1; return S.index; }

// ---------------------------------------------------------------------------
// Response helpers

function send(res, status, body, type) {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body === undefined ? '' : body);
  res.writeHead(status, { 'Content-Type': type || 'text/plain; charset=utf-8', 'Content-Length': buf.length });
  res.end(buf);
}
function json(res, value, headers, status) {
  const buf = Buffer.from(JSON.stringify(value));
  res.writeHead(status || 200, Object.assign({ 'Content-Type': 'application/json', 'Content-Length': buf.length }, headers || {}));
  res.end(buf);
}
function text(res, status, msg) { send(res, status, msg, 'text/plain; charset=utf-8'); }
function methodNotAllowed(res, method, allow) {
  const buf = Buffer.from(`method ${method} not allowed`);
  res.writeHead(405, { Allow: allow.join(','), 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': buf.length });
  res.end(buf);
}
function consistencyHeaders(index) {
  return { 'X-Consul-Index': String(index), 'X-Consul-KnownLeader': String(serversReachable()), 'X-Consul-LastContact': '0' };
}

/** Go duration subset used by `?wait=` and session TTLs: "10s", "1m30s", "150ms". Returns ms or undefined. */
function parseGoDuration(s) {
  if (typeof s !== 'string' || s === '') return undefined;
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  const unit = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };
  let total = 0;
  let m;
  let pos = 0;
  while ((m = re.exec(s)) !== null) { total += Number(m[1]) * unit[m[2]]; pos = re.lastIndex; }
  return pos === s.length ? total : undefined;
}

// ---------------------------------------------------------------------------
// Agent endpoints

function memberObj(name, addr, role, status) {
  const tags = { dc: datacenter, role, segment: '', vsn: '2', vsn_min: '2', vsn_max: '3', build: `${version}:28141971`,
    id: name === nodeName ? nodeId : crypto.createHash('md5').update(name).digest('hex').replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5') };
  if (role === 'consul') { tags.port = '8300'; tags.expect = '3'; }
  return { Name: name, Addr: addr, Port: 8301, Tags: tags, Status: status,
    ProtocolMin: 1, ProtocolMax: 5, ProtocolCur: 2, DelegateMin: 2, DelegateMax: 5, DelegateCur: 4 };
}

function members() {
  const out = [memberObj(nodeName, selfAddr, isServer ? 'consul' : 'node', 1)];
  if (S.state === 'never-had-servers') return out;
  const others = S.state === 'servers-lost' ? 4 : 1; // serf MemberStatus: 1 alive, 4 failed
  for (const s of S.servers) if (s.name !== nodeName) out.push(memberObj(s.name, s.addr, 'consul', others));
  for (const c of S.clients) out.push(memberObj(c.name, c.addr, 'node', others));
  return out;
}

function serfLanStats() {
  const ms = members();
  const failed = ms.filter((m) => m.Status === 4).length;
  return { coordinate_resets: '0', encrypted: 'false', event_queue: '0', event_time: String(S.ltime + 1),
    failed: String(failed), health_score: S.state === 'servers-lost' ? '2' : '0', intent_queue: '0', left: '0',
    member_time: String(ms.length + 1), members: String(ms.length), query_queue: '0', query_time: '1' };
}

function leaderAddr() {
  if (!serversReachable()) return '';
  const s = S.servers[0];
  return `${s ? s.addr : selfAddr}:8300`;
}

function agentSelf() {
  const consul = isServer
    ? { bootstrap: 'false', known_datacenters: '1', leader: String(leaderAddr() === `${selfAddr}:8300`), leader_addr: leaderAddr(), server: 'true' }
    : { known_servers: String(knownServersNow()), server: 'false' };
  if (hasAcl) consul.acl = 'disabled';
  const stats = {
    agent: { check_monitors: '0', check_ttls: '0', checks: '0', services: String(S.services.length) },
    build: { prerelease: '', revision: '28141971', version },
    consul,
    runtime: { arch: 'amd64', cpu_count: '2', goroutines: '115', max_procs: '2', os: 'linux', version: 'go1.10.1' },
    serf_lan: serfLanStats(),
  };
  if (isServer) {
    stats.raft = { applied_index: String(S.index), commit_index: String(S.index), fsm_pending: '0', last_contact: '0',
      num_peers: String(Math.max(0, S.servers.length - 1)), state: consul.leader === 'true' ? 'Leader' : 'Follower', term: '2' };
    stats.serf_wan = Object.assign({}, stats.serf_lan, { members: '1', failed: '0', health_score: '0' });
  }
  const config = legacy
    ? { Bootstrap: false, Server: isServer, Datacenter: datacenter, DataDir: cfg.data_dir || '/tmp/consul', NodeID: nodeId,
      NodeName: nodeName, ClientAddr: host, BindAddr: cfg.bind_addr || '0.0.0.0', AdvertiseAddr: selfAddr,
      Ports: { DNS: 8600, HTTP: port, RPC: 8400, SerfLan: 8301, SerfWan: 8302, Server: 8300 }, Version: version, Revision: '28141971' }
    : { Datacenter: datacenter, NodeName: nodeName, NodeID: nodeId, Server: isServer, Revision: '28141971', Version: version };
  return { Config: config, Coord: { Vec: [0, 0, 0, 0, 0, 0, 0, 0], Error: 1.5, Adjustment: 0, Height: 1e-05 },
    Member: memberObj(nodeName, selfAddr, isServer ? 'consul' : 'node', 1), Stats: stats, Meta: {} };
}

function handleJoin(req, res, rawAddr, query) {
  const addr = decodeURIComponent(rawAddr);
  const rec = { addr, wan: query.has('wan'), method: req.method, at: Date.now(), status: 0 };
  S.joins.push(rec);
  if (!legacy && req.method !== 'PUT') { rec.status = 405; return methodNotAllowed(res, req.method, ['PUT']); }
  const host = stripPort(addr);
  const server = S.servers.find((s) => s.addr === host);
  const client = S.clients.find((c) => c.addr === host);
  const fail = (why) => { rec.status = 500; text(res, 500, `1 error occurred:\n\t* Failed to join ${host}: dial tcp ${host}:8301: ${why}\n\n`); };
  if (!server && !client) return fail('connect: connection refused');
  if (S.state === 'servers-lost' || S.state === 'never-had-servers') {
    // The network is what failed; a join "heals" only when the test says the path is back.
    if (!S.healOnJoin) return fail('i/o timeout');
    if (server) S.state = 'healthy';
  }
  rec.status = 200;
  return send(res, 200, '');
}

// ---------------------------------------------------------------------------
// Events

/** agent/event_endpoint.go uuidToUint64: low 64 bits XOR high 64 bits of the ID. */
function uuidIndex(id) {
  const lower = BigInt(`0x${id.slice(0, 8)}${id.slice(9, 13)}${id.slice(14, 18)}`);
  const upper = BigInt(`0x${id.slice(19, 23)}${id.slice(24, 36)}`);
  return (lower ^ upper).toString();
}

function compileFilter(re) {
  try { return new RegExp(re); } catch (e) { return e; }
}

/** agent/user_event.go shouldProcessUserEvent: unanchored regexes against this node and its services. */
function shouldStore(ev) {
  if (ev.NodeFilter !== '') {
    const re = compileFilter(ev.NodeFilter);
    if (re instanceof Error || !re.test(nodeName)) return false;
  }
  if (ev.ServiceFilter !== '') {
    const sre = compileFilter(ev.ServiceFilter);
    const tre = ev.TagFilter !== '' ? compileFilter(ev.TagFilter) : undefined;
    if (sre instanceof Error || tre instanceof Error) return false;
    const hit = S.services.some((s) => sre.test(String(s.name))
      && (tre === undefined || (Array.isArray(s.tags) && s.tags.some((t) => tre.test(String(t))))));
    if (!hit) return false;
  }
  return true;
}

function storeEvent(ev) {
  S.ltime += 1;
  const stored = Object.assign({}, ev, { LTime: S.ltime });
  S.events.push(stored);
  if (S.events.length > EVENT_BUFFER) S.events.shift();
  for (const w of Array.from(S.eventWaiters)) w();
  return stored;
}

function eventList(name) {
  return S.events.filter((e) => name === undefined || e.Name === name);
}

function eventIndex(list) {
  return list.length === 0 ? '1' : uuidIndex(list[list.length - 1].ID);
}

function handleFire(req, res, rawName, query, body) {
  if (req.method !== 'PUT') return methodNotAllowed(res, req.method, ['PUT']);
  const name = decodeURIComponent(rawName || '');
  if (name === '') return text(res, 400, 'Missing name');
  const ev = { ID: crypto.randomUUID(), Name: name, Payload: body.length > 0 ? body.toString('base64') : null,
    NodeFilter: query.get('node') || '', ServiceFilter: query.get('service') || '', TagFilter: query.get('tag') || '',
    Version: 1, LTime: 0 };
  // agent/user_event.go validateUserEvent, checked before the RPC.
  if (ev.TagFilter !== '' && ev.ServiceFilter === '') return text(res, 500, 'Cannot provide tag filter without service filter');
  for (const f of ['NodeFilter', 'ServiceFilter', 'TagFilter']) {
    if (ev[f] !== '' && compileFilter(ev[f]) instanceof Error) return text(res, 500, `Invalid ${f.replace('Filter', '').toLowerCase()} filter: ${ev[f]}`);
  }
  if (Buffer.byteLength(name) + body.length > USER_EVENT_LIMIT) {
    return text(res, 500, `user event exceeds configured limit of ${USER_EVENT_LIMIT} bytes before encoding`);
  }
  // Fired through a server RPC (Internal.EventFire): impossible without servers.
  if (!serversReachable()) return text(res, 500, NO_SERVERS);
  if (shouldStore(ev)) storeEvent(ev); // gossip brings our own event back to us
  return json(res, ev);
}

function handleEventList(req, res, query) {
  if (req.method !== 'GET') return methodNotAllowed(res, req.method, ['GET']);
  const name = query.has('name') ? query.get('name') : undefined;
  const respond = () => { const l = eventList(name); json(res, l, { 'X-Consul-Index': eventIndex(l) }); };
  const want = query.get('index');
  if (want === null || want !== eventIndex(eventList(name))) return respond();
  // Blocking query: wait for the index to change, or for `wait` (default 5m, at most 10m).
  const waitMs = Math.min(parseGoDuration(query.get('wait') || '5m') || 300000, 600000);
  let timer;
  const waiter = () => {
    if (eventIndex(eventList(name)) === want) return;
    done();
  };
  const done = () => { clearTimeout(timer); S.eventWaiters.delete(waiter); if (!res.writableEnded) respond(); };
  timer = setTimeout(done, waitMs);
  S.eventWaiters.add(waiter);
  res.on('close', () => { clearTimeout(timer); S.eventWaiters.delete(waiter); });
  return undefined;
}

// ---------------------------------------------------------------------------
// KV and sessions

function kvView(e) {
  const out = { LockIndex: e.LockIndex, Key: e.Key, Flags: e.Flags, Value: e.Value === null ? null : e.Value.toString('base64'),
    CreateIndex: e.CreateIndex, ModifyIndex: e.ModifyIndex };
  if (e.Session) out.Session = e.Session; // omitempty in current structs.DirEntry
  return out;
}

function sessionView(s) {
  const out = { ID: s.ID, Name: s.Name, Node: s.Node, LockDelay: s.LockDelay, Behavior: s.Behavior, TTL: s.TTL };
  if (hasNodeChecks) { out.NodeChecks = s.Checks; out.ServiceChecks = null; } else out.Checks = s.Checks;
  out.CreateIndex = s.CreateIndex;
  out.ModifyIndex = s.ModifyIndex;
  return out;
}

function destroySession(id) {
  const s = S.sessions.get(id);
  if (!s) return false;
  clearTimeout(s.timer);
  S.sessions.delete(id);
  const idx = nextIndex();
  for (const [key, e] of Array.from(S.kv)) {
    if (e.Session !== id) continue;
    if (s.Behavior === 'delete') S.kv.delete(key);
    else { e.Session = undefined; e.ModifyIndex = idx; }
    // Lock-delay: after an invalidation nobody may acquire the key for LockDelay.
    if (s.LockDelay > 0) S.lockDelay.set(key, Date.now() + s.LockDelay / 1e6);
  }
  return true;
}

function armTtl(s) {
  clearTimeout(s.timer);
  const ttl = parseGoDuration(s.TTL);
  // The servers invalidate a TTL session after 2 × TTL without a renew.
  if (ttl) { s.timer = setTimeout(() => destroySession(s.ID), ttl * 2); s.timer.unref(); }
}

function handleSession(req, res, op, id, body) {
  const needPut = op === 'create' || op === 'destroy' || op === 'renew';
  if (needPut && req.method !== 'PUT') return methodNotAllowed(res, req.method, ['PUT']);
  if (!needPut && req.method !== 'GET') return methodNotAllowed(res, req.method, ['GET']);
  if (!serversReachable()) return text(res, 500, NO_SERVERS);
  if (op === 'create') {
    let spec = {};
    if (body.length > 0) {
      try { spec = JSON.parse(body.toString('utf8')); } catch (e) { return text(res, 400, `Request decode failed: ${e.message}`); }
      if (!spec || typeof spec !== 'object') return text(res, 400, 'Request decode failed: not an object');
    }
    const behavior = spec.Behavior || 'release';
    if (behavior !== 'release' && behavior !== 'delete') return text(res, 500, `Invalid Behavior setting '${behavior}'`);
    const ttl = spec.TTL || '';
    if (ttl !== '') {
      const ms = parseGoDuration(ttl);
      if (ms === undefined) return text(res, 400, `Request decode failed: time: invalid duration "${ttl}"`);
      if (ms !== 0 && (ms < 10000 || ms > 86400000)) return text(res, 500, `Invalid Session TTL '${ms * 1e6}', must be between [10s=24h0m0s]`);
    }
    let lockDelayNs = 15e9;
    if (typeof spec.LockDelay === 'number') lockDelayNs = spec.LockDelay < 1e9 && spec.LockDelay > 0 ? spec.LockDelay * 1e9 : spec.LockDelay;
    else if (typeof spec.LockDelay === 'string') { const ms = parseGoDuration(spec.LockDelay); if (ms === undefined) return text(res, 400, 'Request decode failed: bad LockDelay'); lockDelayNs = ms * 1e6; }
    const checks = Array.isArray(spec.NodeChecks) ? spec.NodeChecks : Array.isArray(spec.Checks) ? spec.Checks : ['serfHealth'];
    const idx = nextIndex();
    const s = { ID: crypto.randomUUID(), Name: String(spec.Name || ''), Node: String(spec.Node || nodeName), LockDelay: lockDelayNs,
      Behavior: behavior, TTL: ttl, Checks: checks, CreateIndex: idx, ModifyIndex: idx, timer: undefined };
    S.sessions.set(s.ID, s);
    armTtl(s);
    return json(res, { ID: s.ID });
  }
  const sid = decodeURIComponent(id || '');
  if (sid === '') return text(res, 400, 'Missing session');
  if (op === 'destroy') { destroySession(sid); return json(res, true); }
  const s = S.sessions.get(sid);
  if (op === 'renew') {
    if (!s) return text(res, 404, `Session id '${sid}' not found`);
    armTtl(s);
    return json(res, [sessionView(s)], consistencyHeaders(S.index));
  }
  if (op === 'info') return json(res, s ? [sessionView(s)] : [], consistencyHeaders(S.index));
  if (op === 'list') return json(res, Array.from(S.sessions.values()).map(sessionView), consistencyHeaders(S.index));
  return text(res, 404, 'Not found');
}

function parseIndexParam(v) {
  if (v === null) return undefined;
  return /^\d+$/.test(v) ? Number(v) : NaN;
}

function handleKv(req, res, rawKey, query, body) {
  const key = decodeURIComponent(rawKey || '');
  if (!serversReachable()) return text(res, 500, NO_SERVERS);
  if (req.method === 'GET') {
    const prefix = query.has('recurse') || query.has('keys');
    const hits = Array.from(S.kv.values()).filter((e) => (prefix ? e.Key.startsWith(key) : e.Key === key))
      .sort((a, b) => (a.Key < b.Key ? -1 : a.Key > b.Key ? 1 : 0));
    const headers = consistencyHeaders(hits.reduce((m, e) => Math.max(m, e.ModifyIndex), 0) || S.index);
    if (hits.length === 0) { res.writeHead(404, headers); return res.end(); }
    if (query.has('keys')) return json(res, hits.map((e) => e.Key), headers);
    if (query.has('raw')) { res.writeHead(200, Object.assign({ 'Content-Type': 'text/plain; charset=utf-8' }, headers)); return res.end(hits[0].Value || Buffer.alloc(0)); }
    return json(res, hits.map(kvView), headers);
  }
  if (req.method === 'PUT') {
    if (key === '') return text(res, 400, 'Missing key name');
    if (body.length > MAX_KV_VALUE) return text(res, 413, `Request body(${body.length} bytes) too large, max size: ${MAX_KV_VALUE} bytes.`);
    const cas = parseIndexParam(query.get('cas'));
    if (Number.isNaN(cas)) return text(res, 400, 'Invalid cas index');
    const flags = query.has('flags') ? Number(query.get('flags')) : 0;
    const existing = S.kv.get(key);
    const write = (fields) => {
      const idx = nextIndex();
      const e = existing || { Key: key, CreateIndex: idx, LockIndex: 0, Session: undefined };
      Object.assign(e, { Value: body, Flags: flags, ModifyIndex: idx }, fields || {});
      S.kv.set(key, e);
      return json(res, true, { 'X-Consul-Index': String(idx) });
    };
    if (query.has('acquire')) {
      const sid = query.get('acquire');
      if (!S.sessions.has(sid)) return text(res, 500, `invalid session "${sid}"`);
      const until = S.lockDelay.get(key);
      if (until !== undefined && until > Date.now()) return json(res, false);
      if (existing && existing.Session && existing.Session !== sid) return json(res, false);
      if (existing && existing.Session === sid) return write(); // already held: only the value changes
      return write({ Session: sid, LockIndex: (existing ? existing.LockIndex : 0) + 1 });
    }
    if (query.has('release')) {
      const sid = query.get('release');
      if (!existing || existing.Session !== sid) return json(res, false);
      return write({ Session: undefined });
    }
    if (cas !== undefined) {
      if (cas === 0 && existing) return json(res, false);
      if (cas !== 0 && (!existing || existing.ModifyIndex !== cas)) return json(res, false);
    }
    return write(); // a plain PUT ignores the lock, as Consul does
  }
  if (req.method === 'DELETE') {
    const cas = parseIndexParam(query.get('cas'));
    if (Number.isNaN(cas)) return text(res, 400, 'Invalid cas index');
    if (query.has('recurse')) {
      for (const k of Array.from(S.kv.keys())) if (k.startsWith(key)) S.kv.delete(k);
      nextIndex();
      return json(res, true);
    }
    const existing = S.kv.get(key);
    if (cas !== undefined) {
      // state store kvsDeleteCASTxn: true when absent, false on an index mismatch.
      if (!existing) return json(res, true);
      if (existing.ModifyIndex !== cas) return json(res, false);
    }
    S.kv.delete(key);
    nextIndex();
    return json(res, true);
  }
  return methodNotAllowed(res, req.method, ['GET', 'PUT', 'DELETE']);
}

// ---------------------------------------------------------------------------
// Control channel of the double (never part of the Consul API)

function controlState() {
  return { double: 'consul', state: S.state, knownServers: knownServersNow(), knownServersOverride: S.knownServers,
    servers: S.servers, clients: S.clients, healOnJoin: S.healOnJoin, node: nodeName, server: isServer,
    version, events: S.events.length, hung: S.hungResponses.size, url: `http://${host}:${serverPort()}` };
}

function applyOptions(o) {
  if (o.state !== undefined) {
    if (!STATES.includes(o.state)) throw new Error(`unknown state ${JSON.stringify(o.state)}; one of ${STATES.join(', ')}`);
  }
  if (o.knownServers !== undefined && o.knownServers !== null && !(Number.isInteger(o.knownServers) && o.knownServers >= 0)) throw new Error('knownServers must be a non-negative integer or null');
  if (o.servers !== undefined) S.servers = normMembers(o.servers, 'server');
  if (o.clients !== undefined) S.clients = normMembers(o.clients, 'client');
  if (o.services !== undefined) S.services = Array.isArray(o.services) ? o.services : [];
  if (o.healOnJoin !== undefined) S.healOnJoin = o.healOnJoin !== false;
  if (o.knownServers !== undefined) S.knownServers = o.knownServers === null ? undefined : o.knownServers;
  if (o.state !== undefined) setState(o.state);
}

function setState(st) {
  S.state = st;
  // Let the control reply leave first, then die the way a crashed agent does.
  if (st === 'dead') setTimeout(() => process.exit(3), 50);
}

function handleControl(req, res, pathname, body) {
  const what = pathname.slice('/_double/'.length);
  if (what === 'state') {
    if (req.method === 'GET') return json(res, controlState());
    if (req.method !== 'PUT') return methodNotAllowed(res, req.method, ['GET', 'PUT']);
    const raw = body.toString('utf8').trim();
    let opts;
    try { opts = raw.startsWith('{') ? JSON.parse(raw) : { state: raw }; applyOptions(opts); } catch (e) { return text(res, 400, e.message); }
    return json(res, controlState());
  }
  if (what === 'config') {
    if (req.method !== 'PUT') return methodNotAllowed(res, req.method, ['PUT']);
    try { applyOptions(JSON.parse(body.toString('utf8'))); } catch (e) { return text(res, 400, e.message); }
    return json(res, controlState());
  }
  if (what === 'joins') {
    if (req.method === 'DELETE') { S.joins = []; return json(res, true); }
    return json(res, S.joins);
  }
  if (what === 'requests') {
    if (req.method === 'DELETE') { S.requests = []; return json(res, true); }
    return json(res, S.requests);
  }
  if (what === 'events') {
    // Deliver an event "by gossip", as if another node fired it; the agent's filters still apply.
    if (req.method !== 'PUT') return json(res, S.events);
    let list;
    try { list = JSON.parse(body.toString('utf8')); } catch (e) { return text(res, 400, e.message); }
    const stored = [];
    for (const e of Array.isArray(list) ? list : [list]) {
      const ev = { ID: typeof e.ID === 'string' ? e.ID : crypto.randomUUID(), Name: String(e.Name || ''),
        Payload: e.Payload === undefined ? null : e.Payload, NodeFilter: e.NodeFilter || '', ServiceFilter: e.ServiceFilter || '',
        TagFilter: e.TagFilter || '', Version: 1, LTime: 0 };
      if (shouldStore(ev)) stored.push(storeEvent(ev));
    }
    return json(res, stored);
  }
  return text(res, 404, 'unknown control path');
}

// ---------------------------------------------------------------------------
// Router

function checkToken(req, query) {
  if (S.aclToken === undefined) return true;
  return req.headers['x-consul-token'] === S.aclToken || query.get('token') === S.aclToken;
}

function route(req, res, body) {
  const url = new URL(req.url, 'http://double');
  const p = url.pathname;
  const q = url.searchParams;
  if (p.startsWith('/_double/')) return handleControl(req, res, p, body);
  S.requests.push({ method: req.method, path: p, query: url.search, at: Date.now(), token: req.headers['x-consul-token'] !== undefined });
  if (S.requests.length > MAX_REQUEST_LOG) S.requests.shift();
  if (S.state === 'hung') { S.hungResponses.add(res); res.on('close', () => S.hungResponses.delete(res)); return undefined; }
  if (!p.startsWith('/v1/status/') && !checkToken(req, q)) return text(res, 403, 'Permission denied');

  let m;
  if (p === '/v1/agent/self') return req.method === 'GET' ? json(res, agentSelf()) : methodNotAllowed(res, req.method, ['GET']);
  if (p === '/v1/agent/members') return req.method === 'GET' ? json(res, members()) : methodNotAllowed(res, req.method, ['GET']);
  if ((m = /^\/v1\/agent\/join\/(.+)$/.exec(p))) return handleJoin(req, res, m[1], q);
  if (p === '/v1/agent/leave') {
    if (!legacy && req.method !== 'PUT') return methodNotAllowed(res, req.method, ['PUT']);
    // A graceful leave is followed by agent shutdown: later calls get ECONNREFUSED.
    res.on('finish', () => shutdown(0));
    return send(res, 200, '');
  }
  if (p === '/v1/status/leader') {
    if (req.method !== 'GET') return methodNotAllowed(res, req.method, ['GET']);
    if (!serversReachable()) return text(res, 500, NO_SERVERS);
    return json(res, leaderAddr());
  }
  if (p === '/v1/status/peers') {
    if (req.method !== 'GET') return methodNotAllowed(res, req.method, ['GET']);
    if (!serversReachable()) return text(res, 500, NO_SERVERS);
    const peers = S.servers.map((s) => `${s.addr}:8300`);
    return json(res, peers.length > 0 ? peers : [`${selfAddr}:8300`]);
  }
  if ((m = /^\/v1\/event\/fire\/?(.*)$/.exec(p))) return handleFire(req, res, m[1], q, body);
  if (p === '/v1/event/list') return handleEventList(req, res, q);
  if ((m = /^\/v1\/kv\/(.*)$/.exec(p))) return handleKv(req, res, m[1], q, body);
  if ((m = /^\/v1\/session\/(create|destroy|info|renew|list)(?:\/(.*))?$/.exec(p))) return handleSession(req, res, m[1], m[2], body);
  return text(res, 404, `Invalid URL path: not a recognized HTTP API endpoint`);
}

// ---------------------------------------------------------------------------
// Server

const sockets = new Set();
const server = http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > MAX_BODY) { text(res, 413, 'Request body too large'); req.destroy(); return; }
    chunks.push(c);
  });
  req.on('end', () => {
    if (res.writableEnded) return;
    try { route(req, res, Buffer.concat(chunks)); } catch (e) { if (!res.headersSent) text(res, 500, `double: ${e.message}`); }
  });
});
server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
server.keepAliveTimeout = 5000;

function serverPort() { const a = server.address(); return a && typeof a === 'object' ? a.port : port; }

let shuttingDown = false;
function shutdown(code) {
  if (shuttingDown) return;
  shuttingDown = true;
  server.close(() => process.exit(code));
  for (const s of sockets) s.destroy();
  setTimeout(() => process.exit(code), 1000).unref();
}

process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
// Signals as a second control channel: USR1 loses the servers, USR2 brings them back.
process.on('SIGUSR1', () => setState('servers-lost'));
process.on('SIGUSR2', () => setState('healthy'));

server.on('error', (e) => die(`listen ${host}:${port}: ${e.code || e.message}`));
server.listen(port, host, () => {
  if (S.state === 'dead') { process.stdout.write(`${JSON.stringify({ double: 'consul', dead: true })}\n`); process.exit(3); }
  process.stdout.write(`${JSON.stringify({ double: 'consul', url: `http://${host}:${serverPort()}`, pid: process.pid, node: nodeName, state: S.state })}\n`);
});
