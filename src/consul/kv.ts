/**
 * Layer: executor (I/O through a {@link Transport}). The KV endpoints
 * (shared/spec/consul-api.md §3f, §3j): reads that may block, CAS writes,
 * lock acquire/release and deletes. Values are raw bytes; the agent's
 * literal `true`/`false` answers come back as booleans.
 */
import { ConfigError } from '../errors';
import { bad, isObject, parseBool, parseJson, parseMeta, readQuery, type Read, type ReadOptions, type Transport } from './wire';

/** One KV entry, value decoded. */
export interface KvEntry {
  key: string;
  value: Buffer | null;
  flags: number;
  /** The holding session; absent when unlocked (`Session` omitted or `""`). */
  session?: string;
  createIndex: number;
  modifyIndex: number;
  /** How many times the key was acquired: with key and session, the lock's sequencer (fencing token). */
  lockIndex: number;
}

/** Options of a KV write: at most one of `cas`, `acquire`, `release`. */
export interface KvPutOptions { cas?: number; acquire?: string; release?: string; flags?: number }

/** Decode one DirEntry (`Value` base64 → bytes; `Session` "" → absent). */
export function parseKvEntry(v: unknown): KvEntry {
  if (!isObject(v) || typeof v.Key !== 'string') throw bad('KV entry');
  const int = (k: string) => (typeof v[k] === 'number' ? (v[k] as number) : 0);
  const e: KvEntry = {
    key: v.Key,
    value: typeof v.Value === 'string' ? Buffer.from(v.Value, 'base64') : null,
    flags: int('Flags'), createIndex: int('CreateIndex'), modifyIndex: int('ModifyIndex'), lockIndex: int('LockIndex'),
  };
  // `Session` is omitempty in 1.x and "" in older answers: both mean unlocked.
  if (typeof v.Session === 'string' && v.Session !== '') e.session = v.Session;
  return e;
}

/** The URL path of a key, each segment escaped. */
export function kvPath(key: string): string {
  if (key.startsWith('/')) throw new ConfigError(`KV key ${JSON.stringify(key)} must not start with /`);
  return `/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/** `GET /v1/kv/<key>`: the entry (undefined on 404) and the index to block on next. */
export async function kvRead(t: Transport, key: string, opts: ReadOptions = {}): Promise<Read<KvEntry | undefined>> {
  const { query, timeoutMs } = readQuery(t, opts);
  const r = await t.request('GET', kvPath(key), { query, timeoutMs, accept: [404] });
  const meta = parseMeta(r.headers);
  if (r.status === 404) return { value: undefined, meta };
  const v = parseJson('GET /v1/kv', r.body);
  if (!Array.isArray(v) || v.length !== 1) throw bad('KV answer is not a one-entry list');
  return { value: parseKvEntry(v[0]), meta };
}

/** `GET /v1/kv/<prefix>?recurse`: every entry under the prefix ([] on 404). */
export async function kvReadTree(t: Transport, prefix: string, opts: ReadOptions = {}): Promise<Read<KvEntry[]>> {
  const { query, timeoutMs } = readQuery(t, opts);
  const r = await t.request('GET', kvPath(prefix), { query: { ...query, recurse: '' }, timeoutMs, accept: [404] });
  const meta = parseMeta(r.headers);
  if (r.status === 404) return { value: [], meta };
  const v = parseJson('GET /v1/kv?recurse', r.body);
  if (!Array.isArray(v)) throw bad('KV answer is not a list');
  return { value: v.map(parseKvEntry), meta };
}

/** `GET /v1/kv/<prefix>?keys[&separator=]`: the key names ([] on 404). */
export async function kvKeys(t: Transport, prefix: string, opts: ReadOptions & { separator?: string } = {}): Promise<Read<string[]>> {
  const { query, timeoutMs } = readQuery(t, opts);
  const r = await t.request('GET', kvPath(prefix), { query: { ...query, keys: '', separator: opts.separator }, timeoutMs, accept: [404] });
  const meta = parseMeta(r.headers);
  if (r.status === 404) return { value: [], meta };
  const v = parseJson('GET /v1/kv?keys', r.body);
  if (!Array.isArray(v) || !v.every((k) => typeof k === 'string')) throw bad('KV keys answer is not a list of strings');
  return { value: v as string[], meta };
}

/**
 * `PUT /v1/kv/<key>` with `?cas=`, `?acquire=` or `?release=`; the agent's
 * literal `true`/`false`. A plain PUT ignores locks, as Consul does.
 */
export async function kvPut(t: Transport, key: string, value: Buffer | string, opts: KvPutOptions = {}): Promise<boolean> {
  const set = [opts.cas !== undefined, opts.acquire !== undefined, opts.release !== undefined].filter(Boolean).length;
  if (set > 1) throw new ConfigError('kvPut: at most one of cas, acquire, release');
  const r = await t.request('PUT', kvPath(key), {
    body: value,
    query: { cas: opts.cas?.toString(), acquire: opts.acquire, release: opts.release, flags: opts.flags?.toString() },
  });
  return parseBool('PUT /v1/kv', r.body);
}

/** `DELETE /v1/kv/<key>` (optionally `?cas=`, false on a stale index; or `?recurse`). */
export async function kvDelete(t: Transport, key: string, opts: { cas?: number; recurse?: boolean } = {}): Promise<boolean> {
  const r = await t.request('DELETE', kvPath(key), { query: { cas: opts.cas?.toString(), recurse: opts.recurse ? '' : undefined } });
  return parseBool('DELETE /v1/kv', r.body);
}
