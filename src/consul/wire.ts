/**
 * Layer: executor helpers (pure). What every Consul endpoint file shares:
 * the transport contract ConsulClient implements, the query metadata of
 * blocking reads (shared/spec/consul-api.md §3j), and strict JSON helpers
 * that turn an unexpected answer into `ECONSULBADRESPONSE`.
 */
import type * as http from 'node:http';
import { VigilError, ConfigError } from '../errors';

/** One raw answer. */
export interface RawResponse { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

/** Options of one request. */
export interface RequestOptions {
  query?: Record<string, string | undefined>;
  body?: Buffer | string;
  /** Statuses returned as a value rather than thrown (2xx always are). */
  accept?: number[];
  /** This request's whole deadline, instead of the client's `timeoutMs` (blocking reads add their wait). */
  timeoutMs?: number;
  /** Abort the request (a background blocking read when its watcher stops); it rejects with `ECONSULABORTED`. */
  signal?: AbortSignal;
}

/** What the endpoint files need from a client: one request under a hard deadline. */
export interface Transport {
  request(method: string, path: string, opts?: RequestOptions): Promise<RawResponse>;
  /** The client's per-request deadline, to which a blocking read adds its wait. */
  readonly timeoutMs: number;
}

/** Consistency mode of a read: the default (leader), `consistent` (quorum-verified) or `stale` (any server). */
export type Consistency = 'default' | 'consistent' | 'stale';

/** Options of a read that may block (§3j). */
export interface ReadOptions {
  /** X-Consul-Index of the previous answer; > 0 makes the read block until the index passes it. */
  index?: number;
  /** How long the server may hold a blocking read (default 5 min on the server; capped at 10 min). */
  waitMs?: number;
  consistency?: Consistency;
}

/** Headers of a read answer. */
export interface QueryMeta {
  /** X-Consul-Index, or undefined when absent (read-only txn, agent endpoints). */
  index: number | undefined;
  knownLeader: boolean | undefined;
  lastContactMs: number | undefined;
}

/** A read's value with its metadata. */
export interface Read<T> { value: T; meta: QueryMeta }

/** Largest wait a server honours (max_query_time). */
export const MAX_WAIT_MS = 600_000;

/** An `ECONSULBADRESPONSE`: a 2xx answer that is not the documented shape. */
export function bad(what: string): VigilError {
  return new VigilError('ECONSULBADRESPONSE', `consul: unexpected response: ${what}`);
}

/** A plain JSON object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parse a JSON body, or throw `ECONSULBADRESPONSE` quoting its start. */
export function parseJson(what: string, body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw bad(`${what}: not JSON: ${body.toString('utf8').slice(0, 100)}`);
  }
}

/** The agent's literal `true`/`false` answer. */
export function parseBool(what: string, body: Buffer): boolean {
  const v = parseJson(what, body);
  if (typeof v !== 'boolean') throw bad(`${what}: expected true or false`);
  return v;
}

function header(h: http.IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** X-Consul-Index / KnownLeader / LastContact of an answer. */
export function parseMeta(h: http.IncomingHttpHeaders): QueryMeta {
  const idx = header(h, 'x-consul-index');
  const leader = header(h, 'x-consul-knownleader');
  const contact = header(h, 'x-consul-lastcontact');
  let index: number | undefined;
  if (idx !== undefined) {
    if (!/^\d{1,16}$/.test(idx) || !Number.isSafeInteger(Number(idx))) throw bad(`X-Consul-Index ${JSON.stringify(idx)}`);
    index = Number(idx);
  }
  return {
    index,
    knownLeader: leader === undefined ? undefined : leader === 'true',
    lastContactMs: contact !== undefined && /^\d+$/.test(contact) ? Number(contact) : undefined,
  };
}

/**
 * Query parameters and the request deadline of a read: `index`/`wait` only
 * when blocking, and a deadline of the client timeout plus wait × 17/16,
 * since the server adds up to wait/16 of jitter (§3j) — a hung agent still
 * fails the read, it never stalls it.
 */
export function readQuery(t: Transport, opts: ReadOptions): { query: Record<string, string | undefined>; timeoutMs: number } {
  const query: Record<string, string | undefined> = {};
  let timeoutMs = t.timeoutMs;
  if (opts.consistency === 'stale') query.stale = '';
  else if (opts.consistency === 'consistent') query.consistent = '';
  if (opts.index !== undefined && opts.index > 0) {
    const waitMs = Math.min(opts.waitMs ?? 300_000, MAX_WAIT_MS);
    if (!(Number.isInteger(waitMs) && waitMs > 0)) throw new ConfigError(`blocking wait ${opts.waitMs} ms must be a positive integer`);
    query.index = String(opts.index);
    query.wait = `${waitMs}ms`;
    timeoutMs += Math.ceil(waitMs * 17 / 16);
  }
  return { query, timeoutMs };
}
