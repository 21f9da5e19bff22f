/*
 * Layer: test support, part of the Consul TEST DOUBLE (not Consul).
 * Blocking queries and consistency modes (shared/spec/consul-api.md §3j):
 * `?index=&wait=` holds a read until its index passes `index` or the wait
 * (default 5 min, capped at 10 min, plus a random 0…wait/16 stagger) ends;
 * every answer carries X-Consul-Index (never 0), X-Consul-KnownLeader and
 * X-Consul-LastContact. Writers call `D.changed()` and the held reads
 * re-evaluate.
 */
'use strict';

const { text, parseGoDuration } = require('./util');

const DEFAULT_WAIT_MS = 5 * 60000; // default_query_time
const MAX_WAIT_MS = 10 * 60000; // max_query_time
const JITTER_FRACTION = 16; // lib.RandomStagger(queryTimeout / JitterFraction)

function install(D) {
  const waiters = new Set();

  /** Every write ends here: held blocking reads re-check their index. */
  D.changed = () => { for (const w of Array.from(waiters)) w(); };

  /** Headers of a read answer. `index` 0 is sent as 1 (newer setIndex never sends 0). */
  D.readHeaders = (index) => {
    const h = { 'X-Consul-KnownLeader': String(D.knownLeader()), 'X-Consul-LastContact': String(D.lastContactMs()) };
    if (index !== undefined) h['X-Consul-Index'] = String(Math.max(1, index));
    return h;
  };

  /**
   * Parse `?index`, `?wait`, `?stale`/`?consistent`; answer 400 and return
   * undefined on a bad value, else `{index, waitMs, stale}`.
   */
  D.queryOptions = (res, query) => {
    if (query.has('stale') && query.has('consistent')) {
      text(res, 400, 'Cannot specify ?stale with ?consistent, conflicting semantics.');
      return undefined;
    }
    let index = 0;
    if (query.has('index')) {
      const v = query.get('index');
      if (!/^\d+$/.test(v)) { text(res, 400, 'Invalid index'); return undefined; }
      index = Number(v);
    }
    let waitMs = DEFAULT_WAIT_MS;
    if (query.has('wait')) {
      const w = parseGoDuration(query.get('wait'));
      if (w === undefined) { text(res, 400, 'Invalid wait time'); return undefined; }
      waitMs = w;
    }
    return { index, waitMs: Math.min(waitMs, D.opts.maxQueryTimeMs || MAX_WAIT_MS), stale: query.has('stale') };
  };

  /**
   * Answer a read, blocking when asked. `compute()` returns `{index, send(headers)}`
   * for the current data; it is called again on each change.
   */
  D.blockingRead = (req, res, q, compute) => {
    const first = compute();
    if (q.index === 0 || first.index > q.index) return first.send(D.readHeaders(first.index));
    const stagger = D.opts.blockingJitter === false ? 0 : Math.floor(Math.random() * (q.waitMs / JITTER_FRACTION));
    let timer;
    const finish = (r) => {
      clearTimeout(timer);
      waiters.delete(waiter);
      if (res.writableEnded || res.destroyed) return;
      r.send(D.readHeaders(r.index));
    };
    const waiter = () => {
      const r = compute();
      if (r.index > q.index) finish(r);
    };
    timer = setTimeout(() => finish(compute()), q.waitMs + stagger);
    waiters.add(waiter);
    res.on('close', () => { clearTimeout(timer); waiters.delete(waiter); });
    return undefined;
  };

  /** Drop every held read (restart). */
  D.dropWaiters = () => waiters.clear();
}

module.exports = { install, DEFAULT_WAIT_MS, MAX_WAIT_MS };
