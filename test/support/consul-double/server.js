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
 * of a supervised agent in a vigil config). This file is the command line,
 * the shared state `D`, the router and the listener; each endpoint family is
 * one file that adds its part to `D`: util, blocking (index/wait, headers),
 * kv, sessions, health (catalog and checks), members (and the heartbeat
 * listener), txn, events, agent, control (`/_double/*`, fault rules).
 * See README.md for the control channel and the options.
 */
'use strict';

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const crypto = require('node:crypto');
const { send, json, text, methodNotAllowed, parseGoDuration } = require('./util');

const STATES = ['healthy', 'servers-lost', 'never-had-servers', 'hung', 'dead'];
const NO_SERVERS = 'No known Consul servers'; // structs.ErrNoServers
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
  const out = { configDirs: [], configFiles: [], host: undefined, port: undefined, state: undefined, unix: undefined };
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
      case 'unix': out.unix = val(); break;
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
// State shared by the endpoint files (each adds its part to D)

const cli = parseCli(process.argv.slice(2));
const cfg = readConfig(cli);
const dbl = (cfg.double && typeof cfg.double === 'object') ? cfg.double : {};

const httpAddrCfg = cfg.addresses && typeof cfg.addresses.http === 'string' ? cfg.addresses.http.split(/\s+/)[0] : undefined;
const host = cli.host || httpAddrCfg || cfg.client_addr || '127.0.0.1';
if (host.startsWith('unix://')) die('unix sockets are not supported by the double');
const port = cli.port !== undefined ? cli.port : (cfg.ports && Number.isInteger(cfg.ports.http) ? cfg.ports.http : 8500);
const version = typeof dbl.version === 'string' ? dbl.version : '1.2.0';

const D = {
  cfg, host, port, version, stripPort, log,
  major: Number(version.split('.')[0]),
  minor: Number(version.split('.')[1]),
  isServer: cfg.server === true,
  nodeName: typeof cfg.node_name === 'string' ? cfg.node_name : os.hostname(),
  datacenter: typeof cfg.datacenter === 'string' ? cfg.datacenter : 'dc1',
  nodeId: typeof cfg.node_id === 'string' ? cfg.node_id : crypto.randomUUID(),
  NO_SERVERS,
  opts: {},
  index: 10,
  invalidations: [],
};
D.legacy = D.major === 0; // 0.9.x: full Config in agent/self, join accepts any method, session `Checks`
D.hasAcl = D.major > 1 || (D.major === 1 && D.minor >= 4);
D.hasNodeChecks = D.major > 1 || (D.major === 1 && D.minor >= 7);
D.selfAddr = cfg.advertise_addr || cfg.bind_addr || (host === '0.0.0.0' ? '127.0.0.1' : host);
const retryJoin = [].concat(cfg.retry_join || [], cfg.start_join || []).map(String);

function normMembers(list, prefix) {
  return (Array.isArray(list) ? list : []).map((m, i) => (typeof m === 'string'
    ? { name: `${prefix}-${i + 1}`, addr: stripPort(m) }
    : { name: String(m.name || `${prefix}-${i + 1}`), addr: stripPort(m.addr) }));
}

const S = {
  state: undefined,
  leader: true,
  leaderLostAt: 0,
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
  hungResponses: new Set(),
};
D.S = S;
S.state = cli.state || dbl.state || (D.isServer || S.servers.length > 0 ? 'healthy' : 'never-had-servers');
if (!STATES.includes(S.state)) die(`unknown state ${S.state}`);

function log(msg) { if (D.opts.log) process.stderr.write(`consul-double: ${msg}\n`); }

D.nextIndex = () => { D.index += 1; return D.index; };
D.serversReachable = () => (D.isServer ? S.state !== 'servers-lost' : S.state === 'healthy');
D.knownLeader = () => D.serversReachable() && S.leader !== false;
D.lastContactMs = () => (D.knownLeader() ? 0 : S.leaderLostAt ? Date.now() - S.leaderLostAt : 0);
D.knownServersNow = () => {
  if (S.state === 'servers-lost' || S.state === 'never-had-servers') return 0;
  return S.knownServers !== undefined ? S.knownServers : S.servers.length;
};
/** RPC errors as a client agent relays them; `rpcErrorPrefix` adds the forwarding hop's prefix (§3i). */
D.rpcError = (msg) => (D.opts.rpcErrorPrefix ? `rpc error making call: ${msg}` : msg);
/** Reads need servers; without a leader only `?stale` reads answer (§3j). */
D.gateRead = (res, q) => {
  if (!D.serversReachable()) { text(res, 500, NO_SERVERS); return false; }
  if (S.leader === false && !q.stale) { text(res, 500, 'No cluster leader'); return false; }
  return true;
};
D.gateWrite = (res) => {
  if (!D.serversReachable()) { text(res, 500, NO_SERVERS); return false; }
  if (S.leader === false) { text(res, 500, 'No cluster leader'); return false; }
  return true;
};
D.url = () => `http://${host}:${serverPort()}`;

for (const part of ['blocking', 'kv', 'sessions', 'health', 'members', 'txn', 'events', 'agent', 'control']) require(`./${part}`).install(D);

/** The double's own options: `double` in the agent config, or `/_double/config`. */
function setDoubleOptions(o) {
  for (const k of ['sessionTtlMultiplier', 'blockingJitter', 'autoRegisterNodes', 'rpcErrorPrefix', 'txnMaxOps', 'maxQueryTimeMs', 'log', 'gossipEvents']) {
    if (o[k] !== undefined) D.opts[k] = o[k];
  }
  if (o.heartbeat !== undefined) D.opts.heartbeat = Object.assign({}, D.opts.heartbeat || {}, o.heartbeat);
}
setDoubleOptions(dbl);
// session_ttl_min is a real agent (server) option; tests lower it to see expiry in seconds.
if (typeof cfg.session_ttl_min === 'string') {
  const ms = parseGoDuration(cfg.session_ttl_min);
  if (ms === undefined) die(`session_ttl_min ${cfg.session_ttl_min}: not a duration`);
  D.opts.sessionTtlMinMs = ms;
}

D.applyOptions = (o) => {
  if (!o || typeof o !== 'object') throw new Error('options must be a JSON object');
  if (o.state !== undefined && !STATES.includes(o.state)) throw new Error(`unknown state ${JSON.stringify(o.state)}; one of ${STATES.join(', ')}`);
  if (o.knownServers !== undefined && o.knownServers !== null && !(Number.isInteger(o.knownServers) && o.knownServers >= 0)) throw new Error('knownServers must be a non-negative integer or null');
  if (o.servers !== undefined) S.servers = normMembers(o.servers, 'server');
  if (o.clients !== undefined) S.clients = normMembers(o.clients, 'client');
  if (o.servers !== undefined || o.clients !== undefined) D.syncStaticNodes();
  if (o.services !== undefined) S.services = Array.isArray(o.services) ? o.services : [];
  if (o.healOnJoin !== undefined) S.healOnJoin = o.healOnJoin !== false;
  if (o.knownServers !== undefined) S.knownServers = o.knownServers === null ? undefined : o.knownServers;
  if (o.leader !== undefined) {
    if (o.leader === false && S.leader !== false) S.leaderLostAt = Date.now();
    S.leader = o.leader !== false;
  }
  setDoubleOptions(o);
  if (o.state !== undefined) D.setState(o.state);
  D.changed();
};

D.setState = (st) => {
  S.state = st;
  // Let the control reply leave first, then die the way a crashed agent does.
  if (st === 'dead') setTimeout(() => process.exit(3), 50);
};

/** Forget every KV entry, session, check and dynamic member (a restart without its data dir). */
function dropData() {
  for (const s of D.sessions.values()) clearTimeout(s.timer);
  D.sessions.clear();
  D.kv = new Map();
  D.kvTombstones = new Map();
  D.kvIndex = 0;
  D.sessionsIndex = 0;
  D.catalog.clear();
  D.checks.clear();
  D.checksIndex = 0;
  D.catalogIndex = 0;
  D.dynamicMembers.clear();
  D.staticStatus.clear();
  D.index = 10; // lower than before: clients must reset their blocking index (§3j rule 1)
  D.syncStaticNodes();
}
D.syncStaticNodes();

// ---------------------------------------------------------------------------
// Router

function checkToken(req, query) {
  if (S.aclToken === undefined) return true;
  return req.headers['x-consul-token'] === S.aclToken || query.get('token') === S.aclToken;
}

function hold(res) { S.hungResponses.add(res); res.on('close', () => S.hungResponses.delete(res)); }

function route(req, res, body) {
  const url = new URL(req.url, 'http://double');
  const p = url.pathname;
  const q = url.searchParams;
  if (p.startsWith('/_double/')) return D.handleControl(req, res, p, q, body);
  S.requests.push({ method: req.method, path: p, query: url.search, at: Date.now(), token: req.headers['x-consul-token'] !== undefined });
  if (S.requests.length > MAX_REQUEST_LOG) S.requests.shift();
  if (S.state === 'hung') return hold(res);
  const fault = D.matchFault(req.method, p);
  if (!fault) return dispatch(req, res, p, q, body);
  const act = () => {
    if (res.destroyed) return undefined;
    if (fault.hang) return hold(res);
    if (fault.status !== undefined) return text(res, fault.status, fault.body);
    return dispatch(req, res, p, q, body);
  };
  const delay = fault.delayMs + Math.random() * fault.jitterMs;
  if (delay > 0) { setTimeout(() => { try { act(); } catch (e) { if (!res.headersSent) text(res, 500, `double: ${e.message}`); } }, delay); return undefined; }
  return act();
}

function dispatch(req, res, p, q, body) {
  if (!p.startsWith('/v1/status/') && !checkToken(req, q)) return text(res, 403, 'Permission denied');
  let m;
  if (p === '/v1/agent/self') return req.method === 'GET' ? json(res, D.agentSelf()) : methodNotAllowed(res, req.method, ['GET']);
  if (p === '/v1/agent/members') return req.method === 'GET' ? json(res, D.members()) : methodNotAllowed(res, req.method, ['GET']);
  if ((m = /^\/v1\/agent\/join\/(.+)$/.exec(p))) return D.handleJoin(req, res, m[1], q);
  if (p === '/v1/agent/leave') {
    if (!D.legacy && req.method !== 'PUT') return methodNotAllowed(res, req.method, ['PUT']);
    // A graceful leave is followed by agent shutdown: later calls get ECONNREFUSED.
    res.on('finish', () => shutdown(0));
    return send(res, 200, '');
  }
  if ((m = /^\/v1\/status\/(leader|peers)$/.exec(p))) return D.handleStatus(req, res, m[1]);
  if ((m = /^\/v1\/event\/fire\/?(.*)$/.exec(p))) return D.handleFire(req, res, m[1], q, body);
  if (p === '/v1/event/list') return D.handleEventList(req, res, q);
  if ((m = /^\/v1\/kv\/(.*)$/.exec(p))) return D.handleKv(req, res, m[1], q, body);
  if (p === '/v1/txn') return D.handleTxn(req, res, q, body);
  if ((m = /^\/v1\/session\/(create|destroy|info|renew|list|node)(?:\/(.*))?$/.exec(p))) return D.handleSession(req, res, m[1], m[2], q, body);
  if ((m = /^\/v1\/health\/(node|state)(?:\/(.*))?$/.exec(p))) return D.handleHealth(req, res, m[1], m[2], q);
  if (p === '/v1/catalog/nodes') return D.handleCatalogNodes(req, res, q);
  return text(res, 404, 'Invalid URL path: not a recognized HTTP API endpoint');
}

// ---------------------------------------------------------------------------
// Server

const sockets = new Set();
function onRequest(req, res) {
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
}
const server = http.createServer(onRequest);
server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
// `-unix PATH`: the same API and control channel on a unix socket, which (unlike the TCP port inside a
// lab namespace) the test process in the machine's own namespace can reach. Not affected by restart.
let unixServer;
const unixReady = new Promise((resolve) => {
  if (!cli.unix) { resolve(); return; }
  try { fs.unlinkSync(cli.unix); } catch { /* not there */ }
  unixServer = http.createServer(onRequest);
  unixServer.on('error', (e) => die(`listen ${cli.unix}: ${e.code || e.message}`));
  unixServer.listen(cli.unix, resolve);
});
server.keepAliveTimeout = 5000;

let boundPort = port;
D.listening = () => server.listening;
function serverPort() { const a = server.address(); return a && typeof a === 'object' ? a.port : boundPort; }

/**
 * Restart in place: every connection is cut and the port closed for
 * `downMs`; with keepState the data survives but the leader's lock-delay
 * table is lost and session TTL timers restart (as on a leader election);
 * without it everything is forgotten and the index starts low again.
 */
D.restart = ({ keepState, downMs }) => {
  boundPort = serverPort();
  D.dropWaiters();
  server.close();
  for (const s of sockets) s.destroy();
  for (const r of S.hungResponses) r.destroy();
  D.lockDelay.clear();
  if (keepState) for (const s of D.sessions.values()) D.armTtl(s);
  else dropData();
  setTimeout(() => server.listen(boundPort, host, () => log(`restarted on ${boundPort} (keepState ${keepState})`)), downMs);
};

let shuttingDown = false;
function shutdown(code) {
  if (shuttingDown) return;
  shuttingDown = true;
  D.stopHeartbeats();
  if (unixServer) { unixServer.close(); try { fs.unlinkSync(cli.unix); } catch { /* gone */ } }
  server.close(() => process.exit(code));
  for (const s of sockets) s.destroy();
  setTimeout(() => process.exit(code), 1000).unref();
}

process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
// Signals as a second control channel: USR1 loses the servers, USR2 brings them back.
process.on('SIGUSR1', () => D.setState('servers-lost'));
process.on('SIGUSR2', () => D.setState('healthy'));

server.on('error', (e) => die(`listen ${host}:${port}: ${e.code || e.message}`));
server.listen(port, host, () => {
  if (S.state === 'dead') { process.stdout.write(`${JSON.stringify({ double: 'consul', dead: true })}\n`); process.exit(3); }
  Promise.all([D.startHeartbeats(), unixReady]).then(([hbPort]) => {
    D.heartbeatPort = hbPort;
    process.stdout.write(`${JSON.stringify({ double: 'consul', url: D.url(), pid: process.pid, node: D.nodeName, state: S.state, heartbeatPort: hbPort })}\n`);
  }, (e) => die(`heartbeat listen: ${e.code || e.message}`));
});
