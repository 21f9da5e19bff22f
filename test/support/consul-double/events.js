/*
 * Layer: test support, part of the Consul TEST DOUBLE (not Consul).
 * User events (shared/spec/consul-api.md §3b, §3c, §3j): `PUT /v1/event/fire`,
 * `GET /v1/event/list` with its XOR-folded, non-monotonic index and its own
 * blocking (no jitter, no leader headers), a 256-event ring buffer, and the
 * agent's unanchored regex filters.
 */
'use strict';

const http = require('node:http');

const crypto = require('node:crypto');
const { json, text, methodNotAllowed, parseGoDuration } = require('./util');

const EVENT_BUFFER = 256; // agent/user_event.go: remoteEventBuffer
const USER_EVENT_LIMIT = 512; // serf's default UserEventSizeLimit (name + payload, before encoding)

function install(D) {
  const S = D.S;

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
  D.shouldStore = (ev) => {
    if (ev.NodeFilter !== '') {
      const re = compileFilter(ev.NodeFilter);
      if (re instanceof Error || !re.test(D.nodeName)) return false;
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
  };

  D.storeEvent = (ev) => {
    S.ltime += 1;
    const stored = Object.assign({}, ev, { LTime: S.ltime });
    S.events.push(stored);
    if (S.events.length > EVENT_BUFFER) S.events.shift();
    for (const w of Array.from(S.eventWaiters)) w();
    return stored;
  };

  const eventList = (name) => S.events.filter((e) => name === undefined || e.Name === name);
  const eventIndex = (list) => (list.length === 0 ? '1' : uuidIndex(list[list.length - 1].ID));

  /**
   * `double.gossipEvents`: the other agents (doubles) of this datacenter, by control URL. A fired
   * event is delivered to each over the network, as gossip would (their filters apply there); a
   * peer that cannot be reached (a cut link) misses it. Injected events are not passed on.
   */
  function gossip(ev) {
    for (const url of D.opts.gossipEvents || []) {
      try {
        const req = http.request(`${url.replace(/\/$/, '')}/_double/events`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, timeout: 2000 });
        req.on('error', () => {});
        req.on('timeout', () => req.destroy());
        req.on('response', (r) => r.resume());
        req.end(JSON.stringify([ev]));
      } catch { /* a bad URL: nothing delivered */ }
    }
  }

  D.handleFire = (req, res, rawName, query, body) => {
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
    if (!D.serversReachable()) return text(res, 500, D.NO_SERVERS);
    if (D.shouldStore(ev)) D.storeEvent(ev); // gossip brings our own event back to us
    gossip(ev);
    return json(res, ev);
  };

  D.handleEventList = (req, res, query) => {
    if (req.method !== 'GET') return methodNotAllowed(res, req.method, ['GET']);
    const name = query.has('name') ? query.get('name') : undefined;
    const respond = () => { const l = eventList(name); json(res, l, { 'X-Consul-Index': eventIndex(l) }); };
    const want = query.get('index');
    if (want === null || want !== eventIndex(eventList(name))) return respond();
    // Blocking query: wait for the index to change, or for `wait` (default and cap 10 min, no jitter).
    const waitMs = Math.min(parseGoDuration(query.get('wait') || '10m') || 600000, 600000);
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
  };
}

module.exports = { install };
