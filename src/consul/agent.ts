/**
 * Layer: executor helpers (pure). The agent-local answers vigil reads —
 * `agent/self`, `agent/members`, user events — parsed strictly
 * (shared/spec/consul-api.md §3a, §3b, §3h). Re-exported by client.ts.
 */
import { bad, isObject } from './wire';

/** What vigil reads from `GET /v1/agent/self`. */
export interface AgentSelfInfo {
  /** True for a server agent (which never fences its host). */
  server: boolean;
  /** `Stats.consul.known_servers` of a client; undefined on a server. */
  knownServers: number | undefined;
  nodeName: string;
  datacenter?: string;
  version?: string;
  /** `Stats.serf_lan.members` / `failed` / `health_score` when present (evidence only). */
  serfMembers?: number;
  serfFailed?: number;
  serfHealthScore?: number;
  /** `Stats.consul.leader_addr` of a server (`""` when it knows no leader). */
  leaderAddr?: string;
}

/** One entry of `GET /v1/agent/members`. */
export interface ConsulMember {
  name: string;
  addr: string;
  port: number;
  /** serf MemberStatus: 0 none, 1 alive, 2 leaving, 3 left, 4 failed. */
  status: number;
  /** `Tags.role`: `consul` for servers, `node` for clients. */
  role: string | undefined;
  tags: Record<string, string>;
}

/** A user event as the agent returns it, with the payload decoded. */
export interface ConsulEvent {
  id: string;
  name: string;
  payload: Buffer | null;
  nodeFilter: string;
  serviceFilter: string;
  tagFilter: string;
  version: number;
  ltime: number;
}

/** Filters for {@link ConsulClient.fireEvent} (regular expressions, as Consul applies them). */
export interface FireFilters { node?: string; service?: string; tag?: string }

const DECIMAL_RE = /^(0|[1-9][0-9]{0,9})$/;

function decimalStat(v: unknown): number | undefined {
  return typeof v === 'string' && DECIMAL_RE.test(v) ? Number(v) : undefined;
}

/**
 * Read what matters from an `agent/self` answer, tolerant of the 0.9 and 1.x
 * shapes and strict about types: Stats values are strings, and a client's
 * `known_servers` must be a decimal string (a number, `"3 "` or `"-1"` is
 * refused). Only `Stats.consul.server` / `known_servers` / `leader_addr`
 * and `Config.Server` / `Config.NodeName` decide anything.
 * @throws VigilError `ECONSULBADRESPONSE`
 */
export function parseAgentSelf(json: unknown): AgentSelfInfo {
  if (!isObject(json)) throw bad('agent/self is not an object');
  const stats = json.Stats;
  if (!isObject(stats)) throw bad('agent/self has no Stats');
  const consul = stats.consul;
  if (!isObject(consul)) throw bad('agent/self has no Stats.consul');
  const config = isObject(json.Config) ? json.Config : undefined;

  let statServer: boolean | undefined;
  if (consul.server !== undefined) {
    if (consul.server !== 'true' && consul.server !== 'false') throw bad(`Stats.consul.server is ${JSON.stringify(consul.server)}`);
    statServer = consul.server === 'true';
  }
  let configServer: boolean | undefined;
  if (config && config.Server !== undefined) {
    if (typeof config.Server !== 'boolean') throw bad(`Config.Server is ${JSON.stringify(config.Server)}`);
    configServer = config.Server;
  }
  if (statServer === undefined && configServer === undefined) throw bad('neither Stats.consul.server nor Config.Server is present');
  if (statServer !== undefined && configServer !== undefined && statServer !== configServer) {
    throw bad('Stats.consul.server and Config.Server disagree');
  }
  const server = (statServer ?? configServer) as boolean;

  let knownServers: number | undefined;
  if (!server) {
    knownServers = decimalStat(consul.known_servers);
    if (knownServers === undefined) throw bad(`Stats.consul.known_servers is ${JSON.stringify(consul.known_servers)}, expected a decimal string`);
  }
  const member = isObject(json.Member) ? json.Member : undefined;
  const nodeName = typeof config?.NodeName === 'string' ? config.NodeName : typeof member?.Name === 'string' ? member.Name : undefined;
  if (nodeName === undefined) throw bad('agent/self has no Config.NodeName');

  const info: AgentSelfInfo = { server, knownServers, nodeName };
  if (typeof config?.Datacenter === 'string') info.datacenter = config.Datacenter;
  const build = isObject(stats.build) ? stats.build : undefined;
  if (typeof config?.Version === 'string') info.version = config.Version;
  else if (typeof build?.version === 'string') info.version = build.version;
  const serf = isObject(stats.serf_lan) ? stats.serf_lan : undefined;
  if (serf) {
    const members = decimalStat(serf.members);
    const failed = decimalStat(serf.failed);
    const health = decimalStat(serf.health_score);
    if (members !== undefined) info.serfMembers = members;
    if (failed !== undefined) info.serfFailed = failed;
    if (health !== undefined) info.serfHealthScore = health;
  }
  if (server && typeof consul.leader_addr === 'string') info.leaderAddr = consul.leader_addr;
  return info;
}

/** Decode one event object of `/v1/event/fire` or `/v1/event/list`. */
export function parseConsulEvent(v: unknown): ConsulEvent {
  if (!isObject(v)) throw bad('event is not an object');
  const str = (k: string): string => {
    const s = v[k];
    if (typeof s !== 'string') throw bad(`event ${k} is ${JSON.stringify(s)}`);
    return s;
  };
  const num = (k: string): number => {
    const n = v[k];
    if (typeof n !== 'number' || !Number.isInteger(n)) throw bad(`event ${k} is ${JSON.stringify(n)}`);
    return n;
  };
  let payload: Buffer | null = null;
  if (v.Payload !== null && v.Payload !== undefined) {
    if (typeof v.Payload !== 'string') throw bad('event Payload is not base64 text');
    payload = Buffer.from(v.Payload, 'base64');
  }
  return { id: str('ID'), name: str('Name'), payload, nodeFilter: str('NodeFilter'), serviceFilter: str('ServiceFilter'),
    tagFilter: str('TagFilter'), version: num('Version'), ltime: num('LTime') };
}

/** Decode one entry of `/v1/agent/members`. */
export function parseMember(v: unknown): ConsulMember {
  if (!isObject(v)) throw bad('member is not an object');
  if (typeof v.Name !== 'string' || typeof v.Addr !== 'string' || typeof v.Port !== 'number' || typeof v.Status !== 'number') {
    throw bad(`member ${JSON.stringify(v).slice(0, 200)}`);
  }
  const tags: Record<string, string> = {};
  if (isObject(v.Tags)) for (const [k, t] of Object.entries(v.Tags)) if (typeof t === 'string') tags[k] = t;
  return { name: v.Name, addr: v.Addr, port: v.Port, status: v.Status, role: tags.role, tags };
}

