/*
 * Layer: test support, part of the Consul TEST DOUBLE (not Consul).
 * Sessions (shared/spec/consul-api.md §3f, §3i): create with the documented
 * defaults and validation texts, renew, destroy, info, list, node; and
 * invalidation — TTL expiry (a timer of TTL × multiplier, 2 as on the
 * leader, reset on create, renew and restart), a bound check going critical
 * or deregistered, explicit destroy — each applying the session's Behavior
 * to the keys it holds and recording their lock-delay.
 */
'use strict';

const crypto = require('node:crypto');
const { json, text, methodNotAllowed, parseGoDuration, formatGoDuration } = require('./util');

const TTL_MAX_MS = 86400000; // structs.SessionTTLMax (24 h)

function install(D) {
  D.sessions = new Map();
  D.sessionsIndex = 0;

  const ttlMinMs = () => (D.opts.sessionTtlMinMs !== undefined ? D.opts.sessionTtlMinMs : 10000);
  const multiplier = () => (typeof D.opts.sessionTtlMultiplier === 'number' ? D.opts.sessionTtlMultiplier : 2);

  D.sessionView = (s) => {
    const out = { ID: s.ID, Name: s.Name, Node: s.Node, LockDelay: s.LockDelay, Behavior: s.Behavior, TTL: s.TTL };
    if (D.hasNodeChecks) { out.NodeChecks = s.NodeChecks; out.ServiceChecks = s.ServiceChecks; } else out.Checks = s.NodeChecks;
    out.CreateIndex = s.CreateIndex;
    out.ModifyIndex = s.ModifyIndex;
    return out;
  };

  /**
   * Destroy a session and apply its Behavior to the keys it holds: release
   * clears Session (LockIndex kept), delete removes the key; both record
   * lock-delay. `why` is kept for the control channel's log.
   */
  D.invalidateSession = (id, why, idx) => {
    const s = D.sessions.get(id);
    if (!s) return false;
    clearTimeout(s.timer);
    D.sessions.delete(id);
    const at = idx || D.nextIndex();
    D.sessionsIndex = at;
    for (const [key, e] of Array.from(D.kv)) {
      if (e.Session !== id) continue;
      if (s.Behavior === 'delete') D.kvDelete(key, at);
      else D.kvSet(key, e.Value, e.Flags, at, { Session: undefined });
      D.setLockDelay(key, s.LockDelay);
    }
    D.invalidations.push({ id, node: s.Node, why, at: Date.now() });
    if (D.invalidations.length > 1000) D.invalidations.shift();
    D.log(`session ${id} invalidated: ${why}`);
    D.changed();
    return true;
  };

  /** Sessions bound to check `checkId` of `node` (NodeChecks, or ServiceChecks by ID). */
  D.sessionsBoundTo = (node, checkId) => Array.from(D.sessions.values()).filter((s) => s.Node === node
    && (s.NodeChecks.includes(checkId) || (Array.isArray(s.ServiceChecks) && s.ServiceChecks.some((c) => c && c.ID === checkId))));

  /** The leader's timer: a session is not expired before TTL; it goes at TTL × multiplier (session_ttl.go). */
  D.armTtl = (s) => {
    clearTimeout(s.timer);
    const ttl = parseGoDuration(s.TTL);
    if (!ttl) return;
    s.renewedAt = Date.now();
    s.timer = setTimeout(() => D.invalidateSession(s.ID, `TTL ${s.TTL} expired`), ttl * multiplier());
    s.timer.unref();
  };

  function parseLockDelay(v) {
    // A number below 1000 is seconds, otherwise nanoseconds; a string is a Go duration.
    if (v === undefined || v === null) return 15e9;
    if (typeof v === 'number') return v < 1000 ? v * 1e9 : v;
    if (typeof v === 'string') { const ms = parseGoDuration(v); return ms === undefined ? NaN : ms * 1e6; }
    return NaN;
  }

  function create(res, body) {
    let spec = {};
    if (body.length > 0) {
      try { spec = JSON.parse(body.toString('utf8')); } catch (e) { return text(res, 400, `Request decode failed: ${e.message}`); }
      if (!spec || typeof spec !== 'object' || Array.isArray(spec)) return text(res, 400, 'Request decode failed: not an object');
    }
    const err = (msg) => text(res, 500, D.rpcError(msg));
    const behavior = spec.Behavior === undefined || spec.Behavior === '' ? 'release' : spec.Behavior;
    if (behavior !== 'release' && behavior !== 'delete') return err(`Invalid Behavior setting '${behavior}'`);
    const ttl = typeof spec.TTL === 'string' ? spec.TTL : '';
    if (ttl !== '') {
      const ms = parseGoDuration(ttl);
      if (ms === undefined) return err(`Session TTL '${ttl}' invalid: time: invalid duration "${ttl}"`);
      if (ms !== 0 && (ms < ttlMinMs() || ms > TTL_MAX_MS)) {
        return err(`Invalid Session TTL '${Math.round(ms * 1e6)}', must be between [${formatGoDuration(ttlMinMs())}=24h0m0s]`);
      }
    }
    const lockDelayNs = parseLockDelay(spec.LockDelay);
    if (Number.isNaN(lockDelayNs)) return text(res, 400, `Request decode failed: bad LockDelay ${JSON.stringify(spec.LockDelay)}`);
    // Sending the key replaces the default; [] gives a session with no checks.
    let nodeChecks = ['serfHealth'];
    if ('NodeChecks' in spec || 'Checks' in spec) {
      nodeChecks = [].concat(Array.isArray(spec.NodeChecks) ? spec.NodeChecks : [], Array.isArray(spec.Checks) ? spec.Checks : []).map(String);
      nodeChecks = Array.from(new Set(nodeChecks));
    }
    const serviceChecks = Array.isArray(spec.ServiceChecks) ? spec.ServiceChecks.map((c) => ({ ID: String(c.ID), Namespace: c.Namespace || '' })) : null;
    const node = typeof spec.Node === 'string' && spec.Node !== '' ? spec.Node : D.nodeName;
    if (!D.nodeRegistered(node)) {
      if (D.opts.autoRegisterNodes === false) return err('Missing node registration');
      D.registerNode(node, '', 'catalog');
    }
    for (const id of nodeChecks.concat((serviceChecks || []).map((c) => c.ID))) {
      const c = D.getCheck(node, id);
      if (!c) return err(`Missing check '${id}' registration`);
      if (c.Status === 'critical') return err(`Check '${id}' is in critical state`);
    }
    const idx = D.nextIndex();
    const s = { ID: crypto.randomUUID(), Name: String(spec.Name || ''), Node: node, LockDelay: lockDelayNs, Behavior: behavior,
      TTL: ttl === '0' || ttl === '0s' ? '' : ttl, NodeChecks: nodeChecks, ServiceChecks: serviceChecks,
      CreateIndex: idx, ModifyIndex: idx, timer: undefined, renewedAt: Date.now() };
    D.sessions.set(s.ID, s);
    D.sessionsIndex = idx;
    D.armTtl(s);
    D.changed();
    return json(res, { ID: s.ID });
  }

  D.handleSession = (req, res, op, rawId, query, body) => {
    const write = op === 'create' || op === 'destroy' || op === 'renew';
    if (write && req.method !== 'PUT') return methodNotAllowed(res, req.method, ['PUT']);
    if (!write && req.method !== 'GET') return methodNotAllowed(res, req.method, ['GET']);
    if (write && !D.gateWrite(res)) return undefined;
    if (op === 'create') return create(res, body);
    const arg = decodeURIComponent(rawId || '');
    if (op === 'destroy') {
      if (arg === '') return text(res, 400, 'Missing session');
      D.invalidateSession(arg, 'destroyed');
      return json(res, true); // also for unknown ids: destroy is idempotent
    }
    if (op === 'renew') {
      if (arg === '') return text(res, 400, 'Missing session');
      const s = D.sessions.get(arg);
      if (!s) return text(res, 404, `Session id '${arg}' not found`);
      D.armTtl(s);
      return json(res, [D.sessionView(s)], D.readHeaders(D.index));
    }
    const q = D.queryOptions(res, query);
    if (!q || !D.gateRead(res, q)) return undefined;
    if ((op === 'info' || op === 'node') && arg === '') return text(res, 400, op === 'info' ? 'Missing session' : 'Missing node name');
    const pick = () => {
      if (op === 'info') return D.sessions.has(arg) ? [D.sessions.get(arg)] : [];
      const all = Array.from(D.sessions.values());
      return op === 'node' ? all.filter((s) => s.Node === arg) : all;
    };
    return D.blockingRead(req, res, q, () => {
      const list = pick().map(D.sessionView);
      return { index: D.sessionsIndex, send: (h) => json(res, list, h) };
    });
  };
}

module.exports = { install };
