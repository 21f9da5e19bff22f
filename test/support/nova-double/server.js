#!/usr/bin/env node
'use strict';
/**
 * A Nova + Keystone TEST DOUBLE: a stand-in for the few OpenStack calls a
 * recovery makes, shaped after ../shared/spec/bmc-and-nova.md §3. It is not
 * OpenStack. Stateful: compute services, servers with host/task/vm state,
 * evacuation migrations that go accepted → done after `evacuateMs` (the
 * server's host changes and its task state clears, as finish_evacuation
 * does), every call recorded in order.
 *
 * Usage: node server.js <config.json>; prints `ready <port>` on stdout.
 * Config: {host, port, socket (control and API also on this unix socket, for a test outside a lab namespace), user, password, project, computes: [{host, state}], servers: [{id, host, status}],
 *          evacuateMs, maxVersion}
 * Control: GET /_double/calls, GET /_double/state, POST /_double/knobs {fail: {<serverId>: 'error'|'hang'|'refuse'},
 *          faults: [{method, path (substring), status|garbage|hang, times}]}
 */
const http = require('node:http');
const crypto = require('node:crypto');
const fs = require('node:fs');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const S = {
  tokens: new Set(),
  services: (cfg.computes || []).map((c) => ({ id: crypto.randomUUID(), binary: 'nova-compute', host: c.host, state: c.state || 'up', status: 'enabled', disabled_reason: null, forced_down: false, zone: 'nova', updated_at: '2026-01-01T00:00:00.000000' })),
  servers: new Map((cfg.servers || []).map((s) => [s.id, { id: s.id, name: s.id, status: s.status || 'ACTIVE', host: s.host, vm_state: (s.status || 'ACTIVE') === 'SHUTOFF' ? 'stopped' : 'active', task_state: null }])),
  migrations: [],
  calls: [],
  knobs: { fail: {}, faults: [] },
  rebuilding: 0,
  maxRebuilding: 0,
};
let migId = 0;
const maxVersion = cfg.maxVersion || '2.94';
const vnum = (v) => { const [a, b] = String(v).split('.').map(Number); return a * 1000 + b; };

function send(res, status, body, headers = {}) {
  const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
const FAULT = { 400: 'badRequest', 401: 'unauthorized', 403: 'forbidden', 404: 'itemNotFound', 406: 'notAcceptable', 409: 'conflictingRequest' };
const fault = (res, code, message) => send(res, code, { [FAULT[code] || 'computeFault']: { code, message } });

function serverView(s) {
  return { id: s.id, name: s.name, status: s.status, 'OS-EXT-SRV-ATTR:host': s.host, 'OS-EXT-SRV-ATTR:hypervisor_hostname': `${s.host}.example`, 'OS-EXT-STS:vm_state': s.vm_state, 'OS-EXT-STS:task_state': s.task_state, 'OS-EXT-STS:power_state': s.vm_state === 'active' ? 1 : 4 };
}

function catalog(port) {
  const url = `http://${cfg.host || '127.0.0.1'}:${port}/v2.1/p-${cfg.project}`;
  return [{ type: 'compute', name: 'nova', id: 'c1', endpoints: ['public', 'internal', 'admin'].map((i) => ({ interface: i, region: 'RegionOne', region_id: 'RegionOne', id: `e-${i}`, url })) }];
}

function evacuate(s, res) {
  const src = S.services.find((x) => x.host === s.host);
  if (src && src.state === 'up' && !src.forced_down) return fault(res, 400, `Compute service of ${s.host} is still in use.`);
  if (s.task_state !== null || !['active', 'stopped', 'error'].includes(s.vm_state)) return fault(res, 409, `Cannot 'evacuate' instance ${s.id} while it is in vm_state ${s.vm_state}`);
  const mode = S.knobs.fail[s.id];
  if (mode === 'refuse') return fault(res, 500, 'Unexpected API Error.');
  const dest = S.services.find((x) => x.host !== s.host && !x.forced_down && x.status === 'enabled' && x.state === 'up');
  const m = { id: ++migId, uuid: crypto.randomUUID(), instance_uuid: s.id, source_compute: s.host, dest_compute: null, dest_host: null, dest_node: null, status: 'accepted', migration_type: 'evacuation', created_at: new Date().toISOString(), updated_at: null };
  S.migrations.push(m);
  s.task_state = 'rebuilding'; s.status = 'REBUILD';
  S.rebuilding += 1; S.maxRebuilding = Math.max(S.maxRebuilding, S.rebuilding);
  const wasStopped = s.vm_state === 'stopped';
  if (mode !== 'hang') {
    setTimeout(() => {
      S.rebuilding -= 1;
      if (mode === 'error' || !dest) { s.task_state = null; s.vm_state = 'error'; s.status = 'ERROR'; m.status = dest ? 'failed' : 'error'; return; }
      s.host = dest.host; m.dest_compute = dest.host; m.dest_host = dest.host; m.status = 'done'; m.updated_at = new Date().toISOString();
      s.task_state = null; s.vm_state = wasStopped ? 'stopped' : 'active'; s.status = wasStopped ? 'SHUTOFF' : 'ACTIVE';
    }, cfg.evacuateMs ?? 300);
  }
  send(res, 200);
}

function handle(req, res) {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const u = new URL(req.url, 'http://x');
    const text = Buffer.concat(chunks).toString('utf8');
    let body;
    try { body = text ? JSON.parse(text) : undefined; } catch { return fault(res, 400, 'Malformed request body'); }
    if (u.pathname.startsWith('/_double/')) {
      if (u.pathname === '/_double/calls') return send(res, 200, S.calls);
      if (u.pathname === '/_double/state') return send(res, 200, { services: S.services, servers: [...S.servers.values()].map(serverView), migrations: S.migrations, maxRebuilding: S.maxRebuilding });
      if (u.pathname === '/_double/knobs') { Object.assign(S.knobs, body || {}); return send(res, 200, S.knobs); }
      return send(res, 404, {});
    }
    const version = req.headers['openstack-api-version'] ? String(req.headers['openstack-api-version']).replace(/^compute\s+/, '') : '2.1';
    S.calls.push({ method: req.method, path: u.pathname.replace(/^\/v2\.1\/[^/]+/, ''), query: u.search, version, body: u.pathname.includes('auth') ? '[auth]' : body, atMs: Date.now() });
    const f = S.knobs.faults.find((x) => (!x.method || x.method === req.method) && u.pathname.includes(x.path) && (x.times === undefined || x.times > 0));
    if (f) {
      if (f.times !== undefined) f.times -= 1;
      if (f.hang) return; // never answers
      if (f.garbage) { res.writeHead(200, { 'Content-Type': 'application/json' }); return res.end('{"services": [tru'); }
      return send(res, f.status, f.status === 401 ? 'Authentication required' : { computeFault: { code: f.status, message: 'Unexpected API Error.' } });
    }
    if (req.method === 'POST' && u.pathname === '/v3/auth/tokens') {
      const user = body?.auth?.identity?.password?.user;
      if (!user || user.name !== cfg.user || user.password !== cfg.password || !user.domain) return send(res, 401, { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } });
      const tok = crypto.randomBytes(16).toString('hex');
      S.tokens.add(tok);
      return send(res, 201, { token: { expires_at: new Date(Date.now() + 3600_000).toISOString(), issued_at: new Date().toISOString(), methods: ['password'], roles: [{ id: 'r', name: 'admin' }], catalog: catalog(server.address().port) } }, { 'X-Subject-Token': tok, Vary: 'X-Auth-Token' });
    }
    const m = /^\/v2\.1\/[^/]+(\/.*)$/.exec(u.pathname);
    if (!m) return fault(res, 404, 'Not found');
    if (!S.tokens.has(req.headers['x-auth-token'])) return send(res, 401, 'Authentication required', { 'Content-Type': 'text/plain' });
    if (!/^\d+\.\d+$/.test(version)) return fault(res, 400, `API Version String ${version} is of invalid format. Must be of format MajorNum.MinorNum.`);
    if (vnum(version) > vnum(maxVersion)) return fault(res, 406, `Version ${version} is not supported by the API. Minimum is 2.1 and maximum is ${maxVersion}.`);
    const p = m[1];
    const vh = { 'OpenStack-API-Version': `compute ${version}`, Vary: 'OpenStack-API-Version' };
    if (req.method === 'GET' && p === '/os-services') {
      const list = S.services.filter((s) => (!u.searchParams.get('host') || s.host === u.searchParams.get('host')) && (!u.searchParams.get('binary') || s.binary === u.searchParams.get('binary')));
      return send(res, 200, { services: list.map((s) => ({ ...s, state: s.forced_down ? 'down' : s.state })) }, vh);
    }
    if (req.method === 'PUT' && p.startsWith('/os-services/')) {
      const rest = p.slice('/os-services/'.length);
      if (['force-down', 'disable-log-reason', 'disable', 'enable'].includes(rest)) {
        if (vnum(version) >= vnum('2.53')) return fault(res, 404, 'Unknown action');
        const s = S.services.find((x) => x.host === body?.host && x.binary === body?.binary);
        if (!s) return fault(res, 404, `Could not find binary ${body?.binary} on host ${body?.host}.`);
        if (rest === 'force-down') { s.forced_down = !!body.forced_down; return send(res, 200, { service: { binary: s.binary, host: s.host, forced_down: s.forced_down } }, vh); }
        if (rest === 'disable-log-reason') { if (!body.disabled_reason) return fault(res, 400, 'Missing disabled reason field'); s.status = 'disabled'; s.disabled_reason = body.disabled_reason; return send(res, 200, { service: { binary: s.binary, host: s.host, disabled_reason: s.disabled_reason, status: 'disabled' } }, vh); }
        s.status = rest === 'disable' ? 'disabled' : 'enabled';
        return send(res, 200, { service: { binary: s.binary, host: s.host, status: s.status } }, vh);
      }
      if (vnum(version) < vnum('2.53')) return fault(res, 404, 'Unknown action');
      const s = S.services.find((x) => x.id === rest);
      if (!s) return fault(res, 404, `Service ${rest} could not be found.`);
      if (!body || (body.status === undefined && body.forced_down === undefined)) return fault(res, 400, "No updates were requested. Fields 'status' or 'forced_down' should be specified.");
      if (body.status === 'enabled' && body.disabled_reason !== undefined) return fault(res, 400, "Specifying 'disabled_reason' with status 'enabled' is invalid.");
      if (body.status !== undefined) { s.status = body.status; s.disabled_reason = body.status === 'disabled' ? (body.disabled_reason ?? null) : null; }
      if (body.forced_down !== undefined) s.forced_down = !!body.forced_down;
      return send(res, 200, { service: { ...s, state: s.forced_down ? 'down' : s.state } }, vh);
    }
    if (req.method === 'GET' && p === '/servers/detail') {
      const host = u.searchParams.get('host');
      const list = [...S.servers.values()].filter((s) => !host || s.host === host);
      return send(res, 200, { servers: list.map(serverView), servers_links: [] }, vh);
    }
    let sm = /^\/servers\/([^/]+)$/.exec(p);
    if (req.method === 'GET' && sm) {
      const s = S.servers.get(decodeURIComponent(sm[1]));
      return s ? send(res, 200, { server: serverView(s) }, vh) : fault(res, 404, 'Instance could not be found.');
    }
    sm = /^\/servers\/([^/]+)\/action$/.exec(p);
    if (req.method === 'POST' && sm) {
      const s = S.servers.get(decodeURIComponent(sm[1]));
      if (!s) return fault(res, 404, 'Instance could not be found.');
      if (!body || typeof body.evacuate !== 'object') return fault(res, 400, 'Invalid input for field/attribute action.');
      return evacuate(s, res);
    }
    if (req.method === 'GET' && p === '/os-migrations') {
      const id = u.searchParams.get('instance_uuid');
      const list = S.migrations.filter((x) => (!id || x.instance_uuid === id) && (!u.searchParams.get('migration_type') || x.migration_type === u.searchParams.get('migration_type')));
      return send(res, 200, { migrations: [...list].reverse() }, vh);
    }
    return fault(res, 404, 'Not found');
  });
}
const server = http.createServer(handle);
server.listen(cfg.port || 0, cfg.host || '127.0.0.1', () => {
  if (!cfg.socket) return process.stdout.write(`ready ${server.address().port}\n`);
  try { fs.unlinkSync(cfg.socket); } catch { /* none */ }
  http.createServer(handle).listen(cfg.socket, () => process.stdout.write(`ready ${server.address().port}\n`));
});
process.on('SIGTERM', () => process.exit(0));
