/*
 * Layer: test support, part of the Consul TEST DOUBLE (not Consul).
 * The KV store and `/v1/kv/*` (shared/spec/consul-api.md §3f, §3i, §3j):
 * DirEntry indexes, `?cas`, `?acquire`/`?release` with lock-delay, `?recurse`,
 * `?keys[&separator]`, `?raw`, DELETE with `?cas`/`?recurse`, blocking reads.
 * The store operations are shared with /v1/txn (txn.js), which runs them on
 * the live maps after taking a snapshot it restores on a rollback.
 */
'use strict';

const { json, text, methodNotAllowed } = require('./util');

const MAX_KV_VALUE = 512 * 1024; // kv_max_value_size
const MAX_LOCK_DELAY_MS = 60000; // structs.MaxLockDelay

function install(D) {
  D.kv = new Map(); // key → {Key, Value: Buffer|null, Flags, CreateIndex, ModifyIndex, LockIndex, Session}
  D.kvTombstones = new Map(); // key → index of its delete (for prefix indexes)
  D.kvIndex = 0; // the KV table's index
  D.lockDelay = new Map(); // key → ms epoch until which acquire is refused (the leader's in-memory Delay table)

  D.kvView = (e, withValue = true) => {
    const out = { LockIndex: e.LockIndex, Key: e.Key, Flags: e.Flags,
      Value: withValue && e.Value !== null ? e.Value.toString('base64') : null, CreateIndex: e.CreateIndex, ModifyIndex: e.ModifyIndex };
    if (e.Session) out.Session = e.Session; // omitempty in current structs.DirEntry
    return out;
  };

  function touch(idx) { D.kvIndex = Math.max(D.kvIndex, idx); }

  /** Write a key's value and flags at `idx`, keeping (or setting) its lock fields. */
  D.kvSet = (key, value, flags, idx, lockFields) => {
    const e = D.kv.get(key) || { Key: key, CreateIndex: idx, LockIndex: 0, Session: undefined };
    Object.assign(e, { Value: value, Flags: flags, ModifyIndex: idx }, lockFields || {});
    D.kv.set(key, e);
    D.kvTombstones.delete(key);
    touch(idx);
    return e;
  };

  /** state store kvsSetCASTxn: 0 = create only; otherwise the ModifyIndex must match. */
  D.kvCas = (key, value, flags, cas, idx) => {
    const e = D.kv.get(key);
    if (cas === 0 ? e !== undefined : (!e || e.ModifyIndex !== cas)) return undefined;
    return D.kvSet(key, value, flags, idx);
  };

  D.kvDelete = (key, idx) => {
    if (!D.kv.delete(key)) return;
    D.kvTombstones.set(key, idx);
    touch(idx);
  };

  /** kvsDeleteCASTxn: an absent key succeeds, an index mismatch fails. */
  D.kvDeleteCas = (key, cas, idx) => {
    const e = D.kv.get(key);
    if (!e) return true;
    if (e.ModifyIndex !== cas) return false;
    D.kvDelete(key, idx);
    return true;
  };

  D.kvDeleteTree = (prefix, idx) => {
    for (const k of Array.from(D.kv.keys())) if (k.startsWith(prefix)) D.kvDelete(k, idx);
    touch(idx);
  };

  D.inLockDelay = (key) => {
    const until = D.lockDelay.get(key);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    D.lockDelay.delete(key);
    return false;
  };

  /** Lock-delay after an invalidation: now + min(LockDelay, 60 s) (state/delay.go). */
  D.setLockDelay = (key, lockDelayNs) => {
    const ms = Math.min(lockDelayNs / 1e6, MAX_LOCK_DELAY_MS);
    if (ms > 0) D.lockDelay.set(key, Math.max(D.lockDelay.get(key) || 0, Date.now() + ms));
  };

  /** kvsLockTxn: 'held' when another session holds it, else the entry (LockIndex+1 unless already ours). */
  D.kvLock = (key, value, flags, session, idx) => {
    const e = D.kv.get(key);
    if (e && e.Session && e.Session !== session) return 'held';
    if (e && e.Session === session) return D.kvSet(key, value, flags, idx);
    return D.kvSet(key, value, flags, idx, { Session: session, LockIndex: (e ? e.LockIndex : 0) + 1 });
  };

  /** kvsUnlockTxn: only the holder unlocks; LockIndex is kept. undefined when not held by `session`. */
  D.kvUnlock = (key, value, flags, session, idx) => {
    const e = D.kv.get(key);
    if (!e || e.Session !== session) return undefined;
    return D.kvSet(key, value, flags, idx, { Session: undefined });
  };

  D.kvTree = (prefix) => Array.from(D.kv.values()).filter((e) => e.Key.startsWith(prefix))
    .sort((a, b) => (a.Key < b.Key ? -1 : a.Key > b.Key ? 1 : 0));

  /** Index of a prefix read: max over the entries and the prefix's tombstones, else the table's. */
  D.kvPrefixIndex = (prefix, hits) => {
    let idx = hits.reduce((m, e) => Math.max(m, e.ModifyIndex), 0);
    for (const [k, i] of D.kvTombstones) if (k.startsWith(prefix)) idx = Math.max(idx, i);
    return idx || D.kvIndex;
  };

  D.handleKv = (req, res, rawKey, query, body) => {
    let key;
    try { key = decodeURIComponent(rawKey || ''); } catch { return text(res, 400, 'Invalid key escaping'); }
    if (req.method === 'GET') return kvGet(req, res, key, query);
    if (!D.gateWrite(res)) return undefined;
    if (req.method === 'PUT') return kvPut(res, key, query, body);
    if (req.method === 'DELETE') return kvDel(res, key, query);
    return methodNotAllowed(res, req.method, ['GET', 'PUT', 'DELETE']);
  };

  function kvGet(req, res, key, query) {
    const q = D.queryOptions(res, query);
    if (!q || !D.gateRead(res, q)) return undefined;
    if (query.has('keys')) {
      const sep = query.get('separator') || '';
      return D.blockingRead(req, res, q, () => {
        const hits = D.kvTree(key);
        const keys = [];
        for (const e of hits) {
          const i = sep ? e.Key.indexOf(sep, key.length) : -1;
          const k = i >= 0 ? e.Key.slice(0, i + sep.length) : e.Key;
          if (keys[keys.length - 1] !== k) keys.push(k);
        }
        const index = D.kvPrefixIndex(key, hits);
        return { index, send: (h) => (keys.length === 0 ? notFound(res, h) : json(res, keys, h)) };
      });
    }
    if (query.has('recurse')) {
      return D.blockingRead(req, res, q, () => {
        const hits = D.kvTree(key);
        return { index: D.kvPrefixIndex(key, hits), send: (h) => (hits.length === 0 ? notFound(res, h) : json(res, hits.map((e) => D.kvView(e)), h)) };
      });
    }
    return D.blockingRead(req, res, q, () => {
      const e = D.kv.get(key);
      // A missing key reads with the table's index, so a reader can block until it appears.
      if (!e) return { index: D.kvIndex, send: (h) => notFound(res, h) };
      return { index: e.ModifyIndex, send: (h) => {
        if (!query.has('raw')) return json(res, [D.kvView(e)], h);
        // ≥1.9.5 no longer sniffs the content type (CVE-2020-25864).
        res.writeHead(200, Object.assign({ 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' }, h));
        return res.end(e.Value || Buffer.alloc(0));
      } };
    });
  }

  function notFound(res, headers) { res.writeHead(404, headers); res.end(); }

  function parseUint(query, name) {
    if (!query.has(name)) return undefined;
    const v = query.get(name);
    return /^\d+$/.test(v) ? Number(v) : NaN;
  }

  function kvPut(res, key, query, body) {
    if (key === '') return text(res, 400, 'Missing key name');
    if (body.length > MAX_KV_VALUE) return text(res, 413, `Request body(${body.length} bytes) too large, max size: ${MAX_KV_VALUE} bytes.`);
    const cas = parseUint(query, 'cas');
    if (Number.isNaN(cas)) return text(res, 400, 'Invalid cas index');
    const flagsQ = parseUint(query, 'flags');
    if (Number.isNaN(flagsQ)) return text(res, 400, 'Invalid flags');
    const flags = flagsQ === undefined ? 0 : flagsQ;
    const done = (ok, idx) => { if (ok) D.changed(); return json(res, ok, idx ? { 'X-Consul-Index': String(idx) } : {}); };
    // As in agent/kvs_endpoint.go the last of cas/acquire/release decides the verb.
    if (query.has('acquire')) {
      const sid = query.get('acquire');
      if (sid === '' || !D.sessions.has(sid)) return text(res, 500, D.rpcError(`invalid session "${sid}"`));
      if (D.inLockDelay(key)) { D.log(`Rejecting lock of ${key} due to lock-delay`); return done(false); }
      const idx = D.nextIndex();
      const r = D.kvLock(key, body, flags, sid, idx);
      return done(r !== 'held', idx);
    }
    if (query.has('release')) {
      const idx = D.nextIndex();
      return done(D.kvUnlock(key, body, flags, query.get('release'), idx) !== undefined, idx);
    }
    const idx = D.nextIndex();
    if (cas !== undefined) return done(D.kvCas(key, body, flags, cas, idx) !== undefined, idx);
    D.kvSet(key, body, flags, idx); // a plain PUT ignores the lock, as Consul does
    return done(true, idx);
  }

  function kvDel(res, key, query) {
    const cas = parseUint(query, 'cas');
    if (Number.isNaN(cas)) return text(res, 400, 'Invalid cas index');
    const idx = D.nextIndex();
    let ok = true;
    if (query.has('recurse')) D.kvDeleteTree(key, idx);
    else if (cas !== undefined) ok = D.kvDeleteCas(key, cas, idx);
    else D.kvDelete(key, idx);
    if (ok) D.changed();
    return json(res, ok);
  }
}

module.exports = { install, MAX_KV_VALUE };
