/**
 * Layer: executor (I/O through a {@link Transport}). `/v1/health/node/:node`
 * and `/v1/health/state/:state` (shared/spec/consul-api.md §3h), blocking
 * reads. An unknown node is `[]`, not an error. `serfHealth` critical is
 * how the servers say a node failed.
 */
import { ConfigError } from '../errors';
import { bad, isObject, parseJson, parseMeta, readQuery, type Read, type ReadOptions, type Transport } from './wire';

/** A check status; `maintenance` only exists as an aggregate in the Go API. */
export type CheckStatus = 'passing' | 'warning' | 'critical';

/** One HealthCheck (unknown fields ignored). */
export interface HealthCheck {
  node: string;
  checkId: string;
  name: string;
  status: CheckStatus;
  output: string;
  serviceId: string;
  serviceName: string;
  modifyIndex: number;
}

const STATUSES: readonly string[] = ['passing', 'warning', 'critical'];

/** Decode one HealthCheck; a status outside passing/warning/critical is a bad response. */
export function parseHealthCheck(v: unknown): HealthCheck {
  if (!isObject(v) || typeof v.Node !== 'string' || typeof v.CheckID !== 'string' || typeof v.Status !== 'string' || !STATUSES.includes(v.Status)) {
    throw bad(`health check ${JSON.stringify(v).slice(0, 200)}`);
  }
  const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : '');
  return { node: v.Node, checkId: v.CheckID, name: str('Name'), status: v.Status as CheckStatus, output: str('Output'),
    serviceId: str('ServiceID'), serviceName: str('ServiceName'), modifyIndex: typeof v.ModifyIndex === 'number' ? v.ModifyIndex : 0 };
}

async function checks(t: Transport, path: string, opts: ReadOptions): Promise<Read<HealthCheck[]>> {
  const { query, timeoutMs } = readQuery(t, opts);
  const r = await t.request('GET', path, { query, timeoutMs });
  const v = parseJson(`GET ${path}`, r.body);
  if (!Array.isArray(v)) throw bad(`${path} is not a list`);
  return { value: v.map(parseHealthCheck), meta: parseMeta(r.headers) };
}

/** `GET /v1/health/node/<node>`: its checks, serfHealth included ([] for an unknown node). */
export function healthNode(t: Transport, node: string, opts: ReadOptions = {}): Promise<Read<HealthCheck[]>> {
  if (node === '') throw new ConfigError('health node: empty node name');
  return checks(t, `/v1/health/node/${encodeURIComponent(node)}`, opts);
}

/** `GET /v1/health/state/<state>`: every check in that state (`any` for all). */
export function healthState(t: Transport, state: CheckStatus | 'any', opts: ReadOptions = {}): Promise<Read<HealthCheck[]>> {
  return checks(t, `/v1/health/state/${state}`, opts);
}
