/*
 * Layer: test support, part of the Consul TEST DOUBLE (not Consul).
 * The control channel `/_double/*` (never part of the Consul API) and the
 * fault rules it installs: per-request delays with jitter, hangs and error
 * answers, matched by method and path, optionally for a number of requests.
 */
'use strict';

const crypto = require('node:crypto');
const { json, text, methodNotAllowed } = require('./util');

function install(D) {
  const S = D.S;
  D.faults = []; // {method, path: RegExp, delayMs, jitterMs, hang, status, body, times, hits}

  D.controlState = () => ({ double: 'consul', state: S.state, knownServers: D.knownServersNow(), knownServersOverride: S.knownServers,
    servers: S.servers, clients: S.clients, healOnJoin: S.healOnJoin, node: D.nodeName, server: D.isServer, leader: S.leader,
    version: D.version, listening: D.listening(), events: S.events.length, hung: S.hungResponses.size, index: D.index, url: D.url(), heartbeatPort: D.heartbeatPort,
    faults: D.faults.map((f) => Object.assign({}, f, { path: f.path.source })) });

  /** The first fault rule matching this request (consuming one of its `times`). */
  D.matchFault = (method, p) => {
    for (const f of D.faults) {
      if (f.method && f.method !== method) continue;
      if (!f.path.test(p)) continue;
      if (f.times !== undefined && f.hits >= f.times) continue;
      f.hits += 1;
      return f;
    }
    return undefined;
  };

  function parseFault(o) {
    if (!o || typeof o !== 'object') throw new Error('a fault is an object');
    const f = { method: o.method ? String(o.method).toUpperCase() : undefined, path: new RegExp(o.path || '^/v1/'),
      delayMs: Number(o.delayMs) || 0, jitterMs: Number(o.jitterMs) || 0, hang: o.hang === true,
      status: o.status === undefined ? undefined : Number(o.status), body: o.body === undefined ? '' : String(o.body),
      times: o.times === undefined ? undefined : Number(o.times), hits: 0 };
    if (f.status !== undefined && !(f.status >= 100 && f.status < 600)) throw new Error(`fault status ${o.status}`);
    return f;
  }

  function body2json(body) { return JSON.parse(body.toString('utf8') || 'null'); }

  D.handleControl = (req, res, pathname, query, body) => {
    const what = pathname.slice('/_double/'.length);
    const bad = (e) => text(res, 400, e.message);
    switch (what) {
      case 'state': {
        if (req.method === 'GET') return json(res, D.controlState());
        if (req.method !== 'PUT') return methodNotAllowed(res, req.method, ['GET', 'PUT']);
        const raw = body.toString('utf8').trim();
        try { D.applyOptions(raw.startsWith('{') ? JSON.parse(raw) : { state: raw }); } catch (e) { return bad(e); }
        return json(res, D.controlState());
      }
      case 'config':
        if (req.method !== 'PUT') return methodNotAllowed(res, req.method, ['PUT']);
        try { D.applyOptions(body2json(body)); } catch (e) { return bad(e); }
        return json(res, D.controlState());
      case 'joins':
        if (req.method === 'DELETE') { S.joins = []; return json(res, true); }
        return json(res, S.joins);
      case 'requests':
        if (req.method === 'DELETE') { S.requests = []; return json(res, true); }
        return json(res, S.requests);
      case 'events': {
        // Deliver an event "by gossip", as if another node fired it; the agent's filters still apply.
        if (req.method !== 'PUT') return json(res, S.events);
        let list;
        try { list = body2json(body); } catch (e) { return bad(e); }
        const stored = [];
        for (const e of Array.isArray(list) ? list : [list]) {
          const ev = { ID: typeof e.ID === 'string' ? e.ID : crypto.randomUUID(), Name: String(e.Name || ''),
            Payload: e.Payload === undefined ? null : e.Payload, NodeFilter: e.NodeFilter || '', ServiceFilter: e.ServiceFilter || '',
            TagFilter: e.TagFilter || '', Version: 1, LTime: 0 };
          if (D.shouldStore(ev)) stored.push(D.storeEvent(ev));
        }
        return json(res, stored);
      }
      case 'checks':
        // PUT {Node, CheckID, Status, Name?, Output?, Notes?, ServiceID?, ServiceName?} (or a list); DELETE ?node=&check=.
        if (req.method === 'GET') return json(res, Array.from(D.checks.values()));
        if (req.method === 'DELETE') return json(res, D.deleteCheck(query.get('node') || '', query.get('check') || ''));
        if (req.method !== 'PUT') return methodNotAllowed(res, req.method, ['GET', 'PUT', 'DELETE']);
        try {
          const list = body2json(body);
          const out = (Array.isArray(list) ? list : [list]).map((c) => {
            if (!c || typeof c.Node !== 'string' || typeof c.CheckID !== 'string') throw new Error('a check needs Node and CheckID');
            return D.setCheck(c);
          });
          return json(res, out);
        } catch (e) { return bad(e); }
      case 'members':
        // PUT {Name, Status: 1|3|4, Addr?}: the member list and its serfHealth, as gossip would change them.
        if (req.method === 'GET') return json(res, D.members());
        if (req.method !== 'PUT') return methodNotAllowed(res, req.method, ['GET', 'PUT']);
        try {
          const list = body2json(body);
          for (const m of Array.isArray(list) ? list : [list]) D.setMemberStatus(String(m.Name), Number(m.Status), m.Addr ? String(m.Addr) : undefined);
          return json(res, D.members());
        } catch (e) { return bad(e); }
      case 'faults':
        // PUT a rule or a list (replaces all); DELETE clears. {path?, method?, delayMs?, jitterMs?, hang?, status?, body?, times?}
        if (req.method === 'GET') return json(res, D.controlState().faults);
        if (req.method === 'DELETE') { D.faults = []; return json(res, true); }
        if (req.method !== 'PUT') return methodNotAllowed(res, req.method, ['GET', 'PUT', 'DELETE']);
        try {
          const list = body2json(body);
          D.faults = (Array.isArray(list) ? list : [list]).map(parseFault);
          return json(res, D.controlState().faults);
        } catch (e) { return bad(e); }
      case 'sessions':
        // Every session with its last renew and the invalidation log (evidence for tests).
        return json(res, { sessions: Array.from(D.sessions.values()).map((s) => Object.assign(D.sessionView(s), { renewedAt: s.renewedAt })),
          invalidations: D.invalidations, lockDelay: Object.fromEntries(D.lockDelay) });
      case 'restart': {
        // {keepState?: bool, downMs?: number}: close every connection and the listener, come back on the same port.
        if (req.method !== 'PUT') return methodNotAllowed(res, req.method, ['PUT']);
        let o;
        try { o = body2json(body) || {}; } catch (e) { return bad(e); }
        res.on('finish', () => D.restart({ keepState: o.keepState !== false, downMs: Number(o.downMs) || 0 }));
        return json(res, { restarting: true, keepState: o.keepState !== false });
      }
      default:
        return text(res, 404, 'unknown control path');
    }
  };
}

module.exports = { install };
