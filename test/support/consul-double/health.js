/*
 * Layer: test support, part of the Consul TEST DOUBLE (not Consul).
 * The catalog's nodes and health checks, and `/v1/health/node/:node` and
 * `/v1/health/state/:state` (shared/spec/consul-api.md §3h). Every node has a
 * `serfHealth` check written from its member status, as the leader does;
 * tests add more checks through the control channel. A check turning
 * critical, or being deregistered, invalidates the sessions bound to it in
 * the same index, as ensureCheckTxn does.
 */
'use strict';

const { json, text, methodNotAllowed } = require('./util');

const SERF = { CheckID: 'serfHealth', Name: 'Serf Health Status' };
const STATUSES = ['passing', 'warning', 'critical'];

function install(D) {
  D.catalog = new Map(); // node → {Node, Address, CreateIndex, ModifyIndex}
  D.checks = new Map(); // `${node}\0${checkId}` → HealthCheck
  D.checksIndex = 0;
  D.catalogIndex = 0;

  const ck = (node, id) => `${node}\0${id}`;
  D.getCheck = (node, id) => D.checks.get(ck(node, id));
  D.nodeRegistered = (node) => D.catalog.has(node);

  /** Register a catalog node with a passing serfHealth (a join, or a heartbeat from a new host). */
  D.registerNode = (node, address) => {
    if (D.catalog.has(node)) {
      const n = D.catalog.get(node);
      if (address && n.Address !== address) n.Address = address;
      return;
    }
    const idx = D.nextIndex();
    D.catalog.set(node, { Node: node, Address: address || '', CreateIndex: idx, ModifyIndex: idx });
    D.catalogIndex = idx;
    D.setCheck({ Node: node, CheckID: SERF.CheckID, Name: SERF.Name, Status: 'passing', Output: 'Agent alive and reachable' }, idx);
  };

  /** Deregister a node (leave, reap): its checks go, and with them every session on it. */
  D.deregisterNode = (node, why) => {
    if (!D.catalog.has(node)) return;
    const idx = D.nextIndex();
    for (const s of Array.from(D.sessions.values())) if (s.Node === node) D.invalidateSession(s.ID, `node ${node} deregistered (${why})`, idx);
    for (const k of Array.from(D.checks.keys())) if (k.startsWith(`${node}\0`)) D.checks.delete(k);
    D.catalog.delete(node);
    D.catalogIndex = idx;
    D.checksIndex = idx;
    D.changed();
  };

  /**
   * Create or update a check. When it becomes critical, the sessions bound to
   * it are invalidated at the same index; warning does not invalidate.
   */
  D.setCheck = (c, at) => {
    if (!STATUSES.includes(c.Status)) throw new Error(`check status ${JSON.stringify(c.Status)}: one of ${STATUSES.join(', ')}`);
    if (!D.catalog.has(c.Node)) D.registerNode(c.Node, '');
    const key = ck(c.Node, c.CheckID);
    const old = D.checks.get(key);
    if (old && old.Status === c.Status && (c.Output === undefined || old.Output === c.Output)) return old;
    const idx = at || D.nextIndex();
    const check = Object.assign(old || { Node: c.Node, CheckID: c.CheckID, Name: c.CheckID, Status: 'passing', Notes: '', Output: '',
      ServiceID: '', ServiceName: '', ServiceTags: [], Type: '', Definition: {}, CreateIndex: idx }, stripUndefined(c), { ModifyIndex: idx });
    if (!Array.isArray(check.ServiceTags)) check.ServiceTags = []; // the handlers replace null with []
    D.checks.set(key, check);
    D.checksIndex = idx;
    if (check.Status === 'critical') {
      for (const s of D.sessionsBoundTo(c.Node, c.CheckID)) D.invalidateSession(s.ID, `check ${c.CheckID} of ${c.Node} critical`, idx);
    }
    D.changed();
    return check;
  };

  /** Deregister a check: the sessions bound to it are invalidated. */
  D.deleteCheck = (node, id) => {
    const key = ck(node, id);
    if (!D.checks.has(key)) return false;
    const idx = D.nextIndex();
    for (const s of D.sessionsBoundTo(node, id)) D.invalidateSession(s.ID, `check ${id} of ${node} deregistered`, idx);
    D.checks.delete(key);
    D.checksIndex = idx;
    D.changed();
    return true;
  };

  /** serfHealth from a member status (agent/consul/leader.go). */
  D.serfFromStatus = (node, status) => {
    if (status === 1) D.setCheck({ Node: node, CheckID: SERF.CheckID, Name: SERF.Name, Status: 'passing', Output: 'Agent alive and reachable' });
    else if (status === 4) D.setCheck({ Node: node, CheckID: SERF.CheckID, Name: SERF.Name, Status: 'critical', Output: 'Agent not live or unreachable' });
    else if (status === 3) D.deregisterNode(node, 'left');
  };

  D.handleHealth = (req, res, kind, rawArg, query) => {
    if (req.method !== 'GET') return methodNotAllowed(res, req.method, ['GET']);
    const arg = decodeURIComponent(rawArg || '');
    if (kind === 'state' && arg === '') return text(res, 400, 'Missing check state');
    if (kind === 'node' && arg === '') return text(res, 400, 'Missing node name');
    const q = D.queryOptions(res, query);
    if (!q || !D.gateRead(res, q)) return undefined;
    const pick = () => Array.from(D.checks.values()).filter((c) => (kind === 'node' ? c.Node === arg : arg === 'any' || c.Status === arg))
      .sort((a, b) => (a.Node + a.CheckID < b.Node + b.CheckID ? -1 : 1));
    // Unknown node (or a state nothing is in): 200 [], never 404.
    return D.blockingRead(req, res, q, () => {
      const list = pick();
      return { index: D.checksIndex, send: (h) => json(res, list, h) };
    });
  };
}

/**
 * `GET /v1/catalog/nodes` (blocking): every registered node. A failed node is
 * still listed — only its serfHealth is critical; it goes on leave or reap.
 */
function installCatalog(D) {
  D.handleCatalogNodes = (req, res, query) => {
    if (req.method !== 'GET') return methodNotAllowed(res, req.method, ['GET']);
    const q = D.queryOptions(res, query);
    if (!q || !D.gateRead(res, q)) return undefined;
    return D.blockingRead(req, res, q, () => {
      const list = Array.from(D.catalog.values()).sort((a, b) => (a.Node < b.Node ? -1 : 1)).map((n) => ({
        ID: '', Node: n.Node, Address: n.Address, Datacenter: D.datacenter, TaggedAddresses: { lan: n.Address, wan: n.Address },
        Meta: {}, CreateIndex: n.CreateIndex, ModifyIndex: n.ModifyIndex }));
      return { index: D.catalogIndex, send: (h) => json(res, list, h) };
    });
  };
}

function stripUndefined(o) {
  const out = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

module.exports = { install: (D) => { install(D); installCatalog(D); }, STATUSES };
