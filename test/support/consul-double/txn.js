/*
 * Layer: test support, part of the Consul TEST DOUBLE (not Consul).
 * `PUT /v1/txn` with KV ops (shared/spec/consul-api.md §3g): base64 values,
 * the op-count and body limits (413), pre-checks (empty key, session,
 * lock-delay) collected before anything runs, then every op applied in
 * order on the live store — later ops see earlier ones — with all failures
 * collected; any failure restores the snapshot and answers 409 with
 * `Errors` (OpIndex, What), otherwise 200 with `Results`. All writes of one
 * txn share one index, as one Raft entry does. A read-only txn carries no
 * X-Consul-Index.
 */
'use strict';

const { json, text, methodNotAllowed, decodeBase64 } = require('./util');

const MAX_TXN_BODY = 512 * 1024; // txn_max_req_len
const WRITE_VERBS = new Set(['set', 'cas', 'lock', 'unlock', 'delete', 'delete-tree', 'delete-cas']);
const VERBS = new Set([...WRITE_VERBS, 'get', 'get-tree', 'check-index', 'check-session', 'check-not-exists', 'get-or-empty']);

function install(D) {
  /** 64 up to 1.13, 128 from 1.14.0 (hashicorp/consul#14599), unless configured. */
  const maxOps = () => (Number.isInteger(D.opts.txnMaxOps) ? D.opts.txnMaxOps
    : D.major > 1 || (D.major === 1 && D.minor >= 14) ? 128 : 64);

  D.handleTxn = (req, res, query, body) => {
    if (req.method !== 'PUT') return methodNotAllowed(res, req.method, ['PUT']);
    if (body.length > MAX_TXN_BODY) return text(res, 413, `Request body too large, max size: ${MAX_TXN_BODY} bytes`);
    let raw;
    try { raw = JSON.parse(body.toString('utf8')); } catch (e) { return text(res, 400, `Failed to parse body: ${e.message}`); }
    if (!Array.isArray(raw)) return text(res, 400, 'Failed to parse body: not a JSON array');
    if (raw.length > maxOps()) return text(res, 413, `Transaction contains too many operations (${raw.length} > ${maxOps()})`);
    // convertOps has no default branch: an element with none of the four kinds is dropped.
    const ops = [];
    for (const el of raw) {
      if (!el || typeof el !== 'object') continue;
      if (el.Node || el.Service || el.Check) return text(res, 400, 'Failed to parse body: the double only supports KV ops');
      if (!el.KV || typeof el.KV !== 'object') continue;
      const kv = el.KV;
      let value = null;
      if (kv.Value !== undefined && kv.Value !== null) {
        const v = decodeBase64(kv.Value);
        if (v instanceof Error) return text(res, 400, `Failed to parse body: ${v.message}`);
        value = v;
      }
      if (value && value.length > 512 * 1024) return text(res, 413, `Value for key "${kv.Key}" is too large (${value.length} > 524288 bytes)`);
      ops.push({ verb: String(kv.Verb || ''), key: String(kv.Key || ''), value, flags: Number(kv.Flags) || 0,
        index: Number(kv.Index) || 0, session: typeof kv.Session === 'string' ? kv.Session : '' });
    }
    const readOnly = ops.every((o) => !WRITE_VERBS.has(o.verb));
    if (readOnly) {
      const q = D.queryOptions(res, query);
      if (!q || !D.gateRead(res, q)) return undefined;
    } else if (!D.gateWrite(res)) return undefined;

    // Pre-checks on the leader (kvsPreApply), all collected; the txn then never reaches Raft.
    const pre = [];
    ops.forEach((o, i) => {
      if (!VERBS.has(o.verb)) pre.push({ OpIndex: i, What: `unknown KV verb "${o.verb}"` });
      else if (o.key === '' && o.verb !== 'delete-tree') pre.push({ OpIndex: i, What: 'Must provide key' });
      else if (o.verb === 'lock') {
        if (o.session === '') pre.push({ OpIndex: i, What: 'missing session' });
        else if (!D.sessions.has(o.session)) pre.push({ OpIndex: i, What: `invalid session "${o.session}"` });
        else if (D.inLockDelay(o.key)) pre.push({ OpIndex: i, What: `failed to lock key "${o.key}" due to lock delay` });
      }
    });
    const headers = readOnly ? D.readHeaders(undefined) : {};
    if (pre.length > 0) return json(res, { Results: null, Errors: pre }, headers, 409);

    const snapshot = { kv: new Map(Array.from(D.kv, ([k, e]) => [k, Object.assign({}, e)])), tomb: new Map(D.kvTombstones), kvIndex: D.kvIndex };
    const idx = readOnly ? D.index : D.nextIndex();
    const results = [];
    const errors = [];
    ops.forEach((o, i) => {
      const r = applyOp(D, o, idx);
      if (typeof r === 'string') errors.push({ OpIndex: i, What: r });
      else for (const e of r) results.push({ KV: e });
    });
    if (errors.length > 0) {
      D.kv = snapshot.kv;
      D.kvTombstones = snapshot.tomb;
      D.kvIndex = snapshot.kvIndex;
      return json(res, { Results: null, Errors: errors }, headers, 409);
    }
    if (!readOnly) D.changed();
    return json(res, { Results: results, Errors: null }, readOnly ? headers : { 'X-Consul-Index': String(idx) });
  };
}

/** One op against the live store: the result entries, or the `What` of its failure (state/txn.go, state/kvs.go). */
function applyOp(D, o, idx) {
  const k = o.key;
  const view = (e, withValue) => (e ? [D.kvView(e, withValue)] : []);
  const cur = () => D.kv.get(k);
  switch (o.verb) {
    case 'set': return view(D.kvSet(k, o.value, o.flags, idx), false);
    case 'cas': {
      const e = D.kvCas(k, o.value, o.flags, o.index, idx);
      return e ? view(e, false) : `failed to set key "${k}", index is stale`;
    }
    case 'lock': {
      const e = D.kvLock(k, o.value, o.flags, o.session, idx);
      return e === 'held' ? `failed to lock key "${k}", lock is already held` : view(e, false);
    }
    case 'unlock': {
      const e = D.kvUnlock(k, o.value, o.flags, o.session, idx);
      return e ? view(e, false) : `failed to unlock key "${k}", lock isn't held, or is held by another session`;
    }
    case 'get': return cur() ? view(cur(), true) : `key "${k}" doesn't exist`;
    case 'get-tree': return D.kvTree(k).map((e) => D.kvView(e, true));
    case 'get-or-empty': return cur() ? view(cur(), true) : [{ LockIndex: 0, Key: k, Flags: 0, Value: null, CreateIndex: 0, ModifyIndex: 0 }];
    case 'check-index': {
      const e = cur();
      if (!e) return `failed to check index, key "${k}" doesn't exist`;
      return e.ModifyIndex === o.index ? view(e, false) : `failed index check for key "${k}", current modify index ${e.ModifyIndex} != ${o.index}`;
    }
    case 'check-session': {
      const e = cur();
      if (!e) return `failed to check session, key "${k}" doesn't exist`;
      const holder = e.Session || '';
      return holder === o.session ? view(e, false) : `failed session check for key "${k}", current session "${holder}" != "${o.session}"`;
    }
    case 'check-not-exists': return cur() ? `key "${k}" exists` : [];
    case 'delete': D.kvDelete(k, idx); return [];
    case 'delete-tree': D.kvDeleteTree(k, idx); return [];
    case 'delete-cas': return D.kvDeleteCas(k, o.index, idx) ? [] : `failed to delete key "${k}", index is stale`;
    default: return `unknown KV verb "${o.verb}"`;
  }
}

module.exports = { install, MAX_TXN_BODY };
