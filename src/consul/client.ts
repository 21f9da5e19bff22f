/**
 * Layer: executor (I/O). A small HTTP client for the local Consul agent,
 * on node's own `http` module (`https` for an agent with TLS; an https
 * agent's certificate is verified against the system CAs, or `ca`).
 *
 * Every request has one hard deadline for the whole exchange — connect,
 * send, a server that accepted the connection and never answers, and the
 * body — because a hung agent must read as *unknown* within the configured
 * timeout, never stall the loop (shared/spec/consul-api.md; issue 4).
 * Failures are VigilErrors with stable codes:
 * - `ECONSULTIMEOUT`: no complete answer within `timeoutMs` (retryable);
 * - `ECONSULUNREACHABLE`: connection refused/reset, no route, a TLS
 *   failure (`detail.errno` says which);
 * - `ECONSULHTTP`: a 4xx/5xx answer, with `status` and the text body
 *   (Consul errors are text/plain, e.g. `No known Consul servers`);
 * - `ECONSULBADRESPONSE`: a 2xx answer that is not the documented shape.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { VigilError, ConfigError } from '../errors';

/** Options for {@link ConsulClient}. */
export interface ConsulClientOptions {
  /** Agent base URL, e.g. `http://127.0.0.1:8500`, or `https://…` for an agent with TLS. */
  url: string;
  /** CA certificate(s) (PEM) to verify an https agent against, instead of the system's. */
  ca?: string | Buffer;
  /** ACL token, sent as `X-Consul-Token`. */
  token?: string;
  /** Deadline for each whole request. */
  timeoutMs: number;
  /** Largest response body accepted (default 8 MiB). */
  maxBodyBytes?: number;
}

/** An HTTP error answer from the agent. */
export class ConsulHttpError extends VigilError {
  readonly status: number;
  readonly body: string;
  constructor(method: string, path: string, status: number, body: string) {
    const text = body.trim().slice(0, 500);
    super('ECONSULHTTP', `consul ${method} ${path}: HTTP ${status}${text ? `: ${text}` : ''}`, {
      retryable: status >= 500,
      detail: { method, path, status, body: text },
    });
    this.name = 'ConsulHttpError';
    this.status = status;
    this.body = text;
  }
}

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

/** One KV entry, value decoded. */
export interface KvEntry {
  key: string;
  value: Buffer | null;
  flags: number;
  session?: string;
  createIndex: number;
  modifyIndex: number;
  lockIndex: number;
}

/** A session as `GET /v1/session/info/:id` returns it (0.9 and 1.x shapes). */
export interface ConsulSession {
  id: string;
  name: string;
  node: string;
  behavior: string;
  ttl: string;
  lockDelayNs: number;
  checks: string[];
}

/** Options of a new session. */
export interface SessionSpec { name?: string; node?: string; ttl?: string; lockDelay?: string; behavior?: 'release' | 'delete'; checks?: string[] }

interface RawResponse { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

interface RequestOptions {
  query?: Record<string, string | undefined>;
  body?: Buffer | string;
  /** Statuses returned as a value rather than thrown (2xx always are). */
  accept?: number[];
}

const DECIMAL_RE = /^(0|[1-9][0-9]{0,9})$/;

function bad(what: string): VigilError {
  return new VigilError('ECONSULBADRESPONSE', `consul: unexpected response: ${what}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

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

function parseMember(v: unknown): ConsulMember {
  if (!isObject(v)) throw bad('member is not an object');
  if (typeof v.Name !== 'string' || typeof v.Addr !== 'string' || typeof v.Port !== 'number' || typeof v.Status !== 'number') {
    throw bad(`member ${JSON.stringify(v).slice(0, 200)}`);
  }
  const tags: Record<string, string> = {};
  if (isObject(v.Tags)) for (const [k, t] of Object.entries(v.Tags)) if (typeof t === 'string') tags[k] = t;
  return { name: v.Name, addr: v.Addr, port: v.Port, status: v.Status, role: tags.role, tags };
}

function parseKvEntry(v: unknown): KvEntry {
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

function parseSession(v: unknown): ConsulSession {
  if (!isObject(v) || typeof v.ID !== 'string') throw bad('session');
  const checks = Array.isArray(v.NodeChecks) ? v.NodeChecks : Array.isArray(v.Checks) ? v.Checks : [];
  return { id: v.ID, name: typeof v.Name === 'string' ? v.Name : '', node: typeof v.Node === 'string' ? v.Node : '',
    behavior: typeof v.Behavior === 'string' ? v.Behavior : 'release', ttl: typeof v.TTL === 'string' ? v.TTL : '',
    lockDelayNs: typeof v.LockDelay === 'number' ? v.LockDelay : 0, checks: checks.filter((c): c is string => typeof c === 'string') };
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN',
  'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ECONNABORTED', 'EADDRNOTAVAIL']);

/** HTTP client for one Consul agent. */
export class ConsulClient {
  readonly url: string;
  private readonly base: URL;
  private readonly token?: string;
  private readonly timeoutMs: number;
  private readonly maxBody: number;
  private readonly ca?: string | Buffer;

  constructor(opts: ConsulClientOptions) {
    let u: URL;
    try { u = new URL(opts.url); } catch { throw new ConfigError(`consul agent url ${JSON.stringify(opts.url)} is not a URL`); }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`consul agent url ${JSON.stringify(opts.url)}: expected http:// or https://`);
    if (u.search || u.hash || u.username) throw new ConfigError(`consul agent url ${JSON.stringify(opts.url)}: no query, fragment or credentials`);
    if (!(Number.isFinite(opts.timeoutMs) && opts.timeoutMs > 0)) throw new ConfigError(`consul timeout ${opts.timeoutMs} must be > 0 ms`);
    this.base = u;
    this.url = u.toString().replace(/\/$/, '');
    if (opts.token !== undefined && opts.token !== '') this.token = opts.token;
    this.timeoutMs = opts.timeoutMs;
    this.maxBody = opts.maxBodyBytes ?? 8 * 1024 * 1024;
    if (opts.ca !== undefined) this.ca = opts.ca;
  }

  /** One request with the hard deadline; 2xx and `accept` statuses resolve, others throw. */
  request(method: string, path: string, opts: RequestOptions = {}): Promise<RawResponse> {
    const url = new URL(this.base.toString());
    url.pathname = `${url.pathname.replace(/\/$/, '')}${path}`;
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
    const headers: http.OutgoingHttpHeaders = { Accept: 'application/json' };
    if (this.token) headers['X-Consul-Token'] = this.token;
    if (body) headers['Content-Length'] = body.length;
    else if (method === 'PUT' || method === 'POST') headers['Content-Length'] = 0;
    const desc = `${method} ${path}`;
    return new Promise<RawResponse>((resolve, reject) => {
      let done = false;
      const finish = (err: Error | undefined, res?: RawResponse) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) { req.destroy(); reject(err); } else resolve(res!);
      };
      const onResponse = (res: http.IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > this.maxBody) { finish(bad(`${desc}: body larger than ${this.maxBody} bytes`)); return; }
          chunks.push(c);
        });
        res.on('error', (e) => finish(this.transportError(desc, e)));
        res.on('aborted', () => finish(new VigilError('ECONSULUNREACHABLE', `consul ${desc}: connection closed mid-answer`, { retryable: true })));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const buf = Buffer.concat(chunks);
          if ((status >= 200 && status < 300) || (opts.accept ?? []).includes(status)) finish(undefined, { status, headers: res.headers, body: buf });
          else finish(new ConsulHttpError(method, path, status, buf.toString('utf8')));
        });
      };
      // agent: false — a fresh connection per request, nothing pooled that a hung agent could hold.
      const req = url.protocol === 'https:'
        ? https.request(url, { method, headers, agent: false, ...(this.ca !== undefined ? { ca: this.ca } : {}) }, onResponse)
        : http.request(url, { method, headers, agent: false }, onResponse);
      const timer = setTimeout(() => finish(new VigilError('ECONSULTIMEOUT', `consul ${desc}: no answer from ${this.url} within ${this.timeoutMs} ms`, {
        retryable: true, detail: { url: this.url, timeoutMs: this.timeoutMs },
      })), this.timeoutMs);
      req.on('error', (e) => finish(this.transportError(desc, e)));
      req.end(body);
    });
  }

  private transportError(desc: string, e: Error): VigilError {
    if (e instanceof VigilError) return e;
    const code = (e as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
    return new VigilError('ECONSULUNREACHABLE', `consul ${desc}: ${this.url} unreachable: ${code}`, {
      retryable: UNREACHABLE.has(code), detail: { url: this.url, errno: code }, cause: e,
    });
  }

  private async getJson(path: string, opts: RequestOptions = {}): Promise<unknown> {
    return parseJson(`GET ${path}`, (await this.request('GET', path, opts)).body);
  }

  /** `GET /v1/agent/self`, raw. */
  async selfRaw(): Promise<unknown> {
    return this.getJson('/v1/agent/self');
  }

  /** `GET /v1/agent/self`, parsed with {@link parseAgentSelf}. */
  async self(): Promise<AgentSelfInfo> {
    return parseAgentSelf(await this.selfRaw());
  }

  /** `GET /v1/agent/members` (LAN). */
  async members(): Promise<ConsulMember[]> {
    const v = await this.getJson('/v1/agent/members');
    if (!Array.isArray(v)) throw bad('agent/members is not an array');
    return v.map(parseMember);
  }

  /** `PUT /v1/agent/join/<addr>` (PUT only since Consul 1.0). */
  async join(addr: string, opts: { wan?: boolean } = {}): Promise<void> {
    if (addr === '' || /[/?#\s]/.test(addr)) throw new ConfigError(`join address ${JSON.stringify(addr)} is not an address`);
    await this.request('PUT', `/v1/agent/join/${encodeURIComponent(addr)}`, { query: { wan: opts.wan ? '1' : undefined } });
  }

  /** `PUT /v1/agent/leave`: a graceful leave, after which the agent shuts down. */
  async leave(): Promise<void> {
    await this.request('PUT', '/v1/agent/leave');
  }

  /** `GET /v1/status/leader`: `ip:port`, or `""` when there is no leader. */
  async leader(): Promise<string> {
    const v = await this.getJson('/v1/status/leader');
    if (typeof v !== 'string') throw bad('status/leader is not a string');
    return v;
  }

  /** `GET /v1/status/peers`: the raft peers (`ip:port`). */
  async peers(): Promise<string[]> {
    const v = await this.getJson('/v1/status/peers');
    if (!Array.isArray(v) || !v.every((p) => typeof p === 'string')) throw bad('status/peers is not a list of strings');
    return v as string[];
  }

  /** `PUT /v1/event/fire/<name>` with the raw payload as the body; returns the event (its ID). */
  async fireEvent(name: string, payload: Buffer | string, filters: FireFilters = {}): Promise<ConsulEvent> {
    if (name === '') throw new ConfigError('event name is empty');
    const r = await this.request('PUT', `/v1/event/fire/${encodeURIComponent(name)}`, {
      body: payload, query: { node: filters.node, service: filters.service, tag: filters.tag },
    });
    return parseConsulEvent(parseJson('PUT /v1/event/fire', r.body));
  }

  /**
   * `GET /v1/event/list?name=`: the agent's buffered events, oldest first,
   * with the raw JSON text (what a watch handler gets on stdin) and
   * `X-Consul-Index`. With `index`, a blocking query up to `wait`.
   */
  async listEvents(name?: string, opts: { index?: string; wait?: string } = {}): Promise<{ events: ConsulEvent[]; raw: string; index: string }> {
    const r = await this.request('GET', '/v1/event/list', { query: { name, index: opts.index, wait: opts.wait } });
    const raw = r.body.toString('utf8');
    const v = parseJson('GET /v1/event/list', r.body);
    if (!Array.isArray(v)) throw bad('event/list is not an array');
    const idx = r.headers['x-consul-index'];
    return { events: v.map(parseConsulEvent), raw, index: typeof idx === 'string' ? idx : '' };
  }

  /** `GET /v1/kv/<key>`: the entry, or undefined when the key is missing (404). */
  async kvGet(key: string): Promise<KvEntry | undefined> {
    const r = await this.request('GET', `/v1/kv/${kvPath(key)}`, { accept: [404] });
    if (r.status === 404) return undefined;
    const v = parseJson('GET /v1/kv', r.body);
    if (!Array.isArray(v) || v.length !== 1) throw bad('KV answer is not a one-entry list');
    return parseKvEntry(v[0]);
  }

  /** `GET /v1/kv/<prefix>?recurse`: every entry under the prefix ([] when none). */
  async kvList(prefix: string): Promise<KvEntry[]> {
    const r = await this.request('GET', `/v1/kv/${kvPath(prefix)}`, { query: { recurse: '' }, accept: [404] });
    if (r.status === 404) return [];
    const v = parseJson('GET /v1/kv', r.body);
    if (!Array.isArray(v)) throw bad('KV answer is not a list');
    return v.map(parseKvEntry);
  }

  /**
   * `PUT /v1/kv/<key>` with `?cas=`, `?acquire=` or `?release=`; the agent's
   * literal `true`/`false`. A plain PUT ignores locks, as Consul does.
   */
  async kvPut(key: string, value: Buffer | string, opts: { cas?: number; acquire?: string; release?: string; flags?: number } = {}): Promise<boolean> {
    const r = await this.request('PUT', `/v1/kv/${kvPath(key)}`, {
      body: value,
      query: { cas: opts.cas?.toString(), acquire: opts.acquire, release: opts.release, flags: opts.flags?.toString() },
    });
    return parseBool('PUT /v1/kv', r.body);
  }

  /** `DELETE /v1/kv/<key>` (optionally `?cas=` or `?recurse`). */
  async kvDelete(key: string, opts: { cas?: number; recurse?: boolean } = {}): Promise<boolean> {
    const r = await this.request('DELETE', `/v1/kv/${kvPath(key)}`, { query: { cas: opts.cas?.toString(), recurse: opts.recurse ? '' : undefined } });
    return parseBool('DELETE /v1/kv', r.body);
  }

  /** `PUT /v1/session/create`; returns the session ID. */
  async sessionCreate(spec: SessionSpec = {}): Promise<string> {
    const body: Record<string, unknown> = {};
    if (spec.name !== undefined) body.Name = spec.name;
    if (spec.node !== undefined) body.Node = spec.node;
    if (spec.ttl !== undefined) body.TTL = spec.ttl;
    if (spec.lockDelay !== undefined) body.LockDelay = spec.lockDelay;
    if (spec.behavior !== undefined) body.Behavior = spec.behavior;
    if (spec.checks !== undefined) body.Checks = spec.checks;
    const v = parseJson('PUT /v1/session/create', (await this.request('PUT', '/v1/session/create', { body: JSON.stringify(body) })).body);
    if (!isObject(v) || typeof v.ID !== 'string') throw bad('session/create has no ID');
    return v.ID;
  }

  /** `PUT /v1/session/destroy/<id>`. */
  async sessionDestroy(id: string): Promise<boolean> {
    return parseBool('PUT /v1/session/destroy', (await this.request('PUT', `/v1/session/destroy/${encodeURIComponent(id)}`)).body);
  }

  /** `PUT /v1/session/renew/<id>`; false when the session is gone (404). */
  async sessionRenew(id: string): Promise<boolean> {
    const r = await this.request('PUT', `/v1/session/renew/${encodeURIComponent(id)}`, { accept: [404] });
    return r.status !== 404;
  }

  /** `GET /v1/session/info/<id>`; undefined when there is no such session. */
  async sessionInfo(id: string): Promise<ConsulSession | undefined> {
    const v = await this.getJson(`/v1/session/info/${encodeURIComponent(id)}`);
    if (v === null) return undefined;
    if (!Array.isArray(v)) throw bad('session/info is not a list');
    return v.length === 0 ? undefined : parseSession(v[0]);
  }
}

function kvPath(key: string): string {
  if (key.startsWith('/')) throw new ConfigError(`KV key ${JSON.stringify(key)} must not start with /`);
  return key.split('/').map(encodeURIComponent).join('/');
}

function parseJson(what: string, body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw bad(`${what}: not JSON: ${body.toString('utf8').slice(0, 100)}`);
  }
}

function parseBool(what: string, body: Buffer): boolean {
  const v = parseJson(what, body);
  if (typeof v !== 'boolean') throw bad(`${what}: expected true or false`);
  return v;
}
