/*
 * Layer: test support, part of the Consul TEST DOUBLE (not Consul).
 * Response helpers and the small parsers every endpoint file shares.
 */
'use strict';

function send(res, status, body, type, headers) {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body === undefined ? '' : body);
  res.writeHead(status, Object.assign({ 'Content-Type': type || 'text/plain; charset=utf-8', 'Content-Length': buf.length }, headers || {}));
  res.end(buf);
}

function json(res, value, headers, status) {
  send(res, status || 200, JSON.stringify(value), 'application/json', headers);
}

/** Consul's errors are text/plain bodies (shared/spec/consul-api.md, Formats). */
function text(res, status, msg, headers) { send(res, status, msg, 'text/plain; charset=utf-8', headers); }

function methodNotAllowed(res, method, allow) {
  send(res, 405, `method ${method} not allowed`, 'text/plain; charset=utf-8', { Allow: allow.join(',') });
}

const UNIT_MS = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };

/** Go's time.ParseDuration subset: "10s", "1m30s", "150ms", "0". Returns ms, or undefined when unparseable. */
function parseGoDuration(s) {
  if (typeof s !== 'string' || s === '') return undefined;
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let m;
  let pos = 0;
  while ((m = re.exec(s)) !== null) { total += Number(m[1]) * UNIT_MS[m[2]]; pos = re.lastIndex; }
  return pos === s.length ? total : undefined;
}

/** Go's Duration.String() for whole milliseconds: 10000 → "10s", 86400000 → "24h0m0s", 500 → "500ms". */
function formatGoDuration(ms) {
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3600000);
  const m = Math.floor((ms % 3600000) / 60000);
  const s = (ms % 60000) / 1000;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/** Strict standard base64 with padding, as Go's encoding/json decodes []byte. Returns a Buffer or an Error. */
function decodeBase64(s) {
  if (typeof s !== 'string' || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) {
    const at = typeof s === 'string' ? Math.max(0, s.search(/[^A-Za-z0-9+/=]/)) : 0;
    return new Error(`illegal base64 data at input byte ${at}`);
  }
  return Buffer.from(s, 'base64');
}

module.exports = { send, json, text, methodNotAllowed, parseGoDuration, formatGoDuration, decodeBase64 };
