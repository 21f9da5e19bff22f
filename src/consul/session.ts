/**
 * Layer: executor (I/O through a {@link Transport}). Sessions
 * (shared/spec/consul-api.md §3f, §3i): create, renew, destroy, info, list,
 * node. A session that is gone is a value (false / undefined), not an error:
 * renew's 404 is how a holder learns its session was invalidated.
 */
import { bad, isObject, parseBool, parseJson, parseMeta, readQuery, type Read, type ReadOptions, type Transport } from './wire';

/** A session as `GET /v1/session/info/:id` returns it (0.9 and 1.x shapes). */
export interface ConsulSession {
  id: string;
  name: string;
  node: string;
  behavior: string;
  ttl: string;
  lockDelayNs: number;
  /** `NodeChecks` (1.7+) or `Checks` (older). */
  checks: string[];
  serviceChecks: string[];
  createIndex: number;
  modifyIndex: number;
}

/** Options of a new session; unset fields take the agent's defaults (LockDelay 15 s, release, serfHealth). */
export interface SessionSpec {
  name?: string;
  node?: string;
  /** Go duration, 10s…24h (or the server's session_ttl_min); the servers invalidate it up to 2 × TTL after the last renew. */
  ttl?: string;
  /** Go duration string (`"15s"`), or milliseconds; 0 disables lock-delay. */
  lockDelay?: string | number;
  behavior?: 'release' | 'delete';
  /** Node checks the session is bound to; `[]` = none (no serfHealth). Sent as `Checks`, which every version accepts. */
  checks?: string[];
  /** Service checks (1.7+), by check ID. */
  serviceChecks?: string[];
}

/** Decode one session of info/list/renew, 0.9 (`Checks`) or 1.7+ (`NodeChecks`/`ServiceChecks`). */
export function parseSession(v: unknown): ConsulSession {
  if (!isObject(v) || typeof v.ID !== 'string') throw bad('session');
  const strings = (x: unknown): string[] => (Array.isArray(x) ? x.filter((c): c is string => typeof c === 'string') : []);
  const checks = Array.isArray(v.NodeChecks) ? v.NodeChecks : Array.isArray(v.Checks) ? v.Checks : [];
  const svc = Array.isArray(v.ServiceChecks) ? v.ServiceChecks.map((c) => (isObject(c) ? c.ID : undefined)) : [];
  const int = (k: string) => (typeof v[k] === 'number' ? (v[k] as number) : 0);
  return { id: v.ID, name: typeof v.Name === 'string' ? v.Name : '', node: typeof v.Node === 'string' ? v.Node : '',
    behavior: typeof v.Behavior === 'string' ? v.Behavior : 'release', ttl: typeof v.TTL === 'string' ? v.TTL : '',
    lockDelayNs: typeof v.LockDelay === 'number' ? v.LockDelay : 0, checks: strings(checks), serviceChecks: strings(svc),
    createIndex: int('CreateIndex'), modifyIndex: int('ModifyIndex') };
}

function sessionList(what: string, body: Buffer): ConsulSession[] {
  const v = parseJson(what, body);
  if (v === null) return [];
  if (!Array.isArray(v)) throw bad(`${what} is not a list`);
  return v.map(parseSession);
}

const sid = (id: string) => encodeURIComponent(id);

/** `PUT /v1/session/create`; returns the session ID. */
export async function sessionCreate(t: Transport, spec: SessionSpec = {}): Promise<string> {
  const body: Record<string, unknown> = {};
  if (spec.name !== undefined) body.Name = spec.name;
  if (spec.node !== undefined) body.Node = spec.node;
  if (spec.ttl !== undefined) body.TTL = spec.ttl;
  // A bare number below 1000 would be read as seconds by the agent: always send a duration string.
  if (spec.lockDelay !== undefined) body.LockDelay = typeof spec.lockDelay === 'number' ? `${Math.round(spec.lockDelay)}ms` : spec.lockDelay;
  if (spec.behavior !== undefined) body.Behavior = spec.behavior;
  if (spec.checks !== undefined) body.Checks = spec.checks;
  if (spec.serviceChecks !== undefined) body.ServiceChecks = spec.serviceChecks.map((id) => ({ ID: id }));
  const v = parseJson('PUT /v1/session/create', (await t.request('PUT', '/v1/session/create', { body: JSON.stringify(body) })).body);
  if (!isObject(v) || typeof v.ID !== 'string') throw bad('session/create has no ID');
  return v.ID;
}

/** `PUT /v1/session/destroy/<id>` (true also for an unknown id). */
export async function sessionDestroy(t: Transport, id: string): Promise<boolean> {
  return parseBool('PUT /v1/session/destroy', (await t.request('PUT', `/v1/session/destroy/${sid(id)}`)).body);
}

/** `PUT /v1/session/renew/<id>`: the session (its TTL may come back larger), or undefined when it is gone (404). */
export async function sessionRenew(t: Transport, id: string): Promise<ConsulSession | undefined> {
  const r = await t.request('PUT', `/v1/session/renew/${sid(id)}`, { accept: [404] });
  if (r.status === 404) return undefined;
  return sessionList('PUT /v1/session/renew', r.body)[0];
}

/** `GET /v1/session/info/<id>`: the session, or undefined when it is gone (`[]`). */
export async function sessionInfo(t: Transport, id: string, opts: ReadOptions = {}): Promise<Read<ConsulSession | undefined>> {
  const { query, timeoutMs } = readQuery(t, opts);
  const r = await t.request('GET', `/v1/session/info/${sid(id)}`, { query, timeoutMs });
  return { value: sessionList('GET /v1/session/info', r.body)[0], meta: parseMeta(r.headers) };
}

/** `GET /v1/session/list`, or `/v1/session/node/<node>` when `node` is given. */
export async function sessionsRead(t: Transport, node: string | undefined, opts: ReadOptions = {}): Promise<Read<ConsulSession[]>> {
  const { query, timeoutMs } = readQuery(t, opts);
  const path = node === undefined ? '/v1/session/list' : `/v1/session/node/${encodeURIComponent(node)}`;
  const r = await t.request('GET', path, { query, timeoutMs });
  return { value: sessionList(`GET ${path}`, r.body), meta: parseMeta(r.headers) };
}
