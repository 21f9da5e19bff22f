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
 * - `ECONSULBADRESPONSE`: a 2xx answer that is not the documented shape;
 * - `ECONSULTXNCONFLICT`: a /v1/txn rolled back (409), see txn.ts.
 *
 * The endpoint families live beside it, each on the {@link Transport}
 * contract this class implements: kv.ts, session.ts, txn.ts, health.ts;
 * blocking.ts has the index rules of blocking reads and lock.ts a lock
 * helper on top. This class is the one facade callers hold.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { VigilError, ConfigError } from '../errors';
import { countConsulRequest } from '../metrics';
import { bad, parseJson, type RawResponse, type Read, type ReadOptions, type RequestOptions, type Transport } from './wire';
import { kvDelete, kvKeys, kvPut, kvRead, kvReadTree, type KvEntry, type KvPutOptions } from './kv';
import { sessionCreate, sessionDestroy, sessionInfo, sessionRenew, sessionsRead, type ConsulSession, type SessionSpec } from './session';
import { txn, type TxnKvOp, type TxnResult } from './txn';
import { healthNode, healthState, type CheckStatus, type HealthCheck } from './health';
import type { Consistency } from './wire';
import { parseAgentSelf, parseConsulEvent, parseMember, type AgentSelfInfo, type ConsulEvent, type ConsulMember, type FireFilters } from './agent';

export { parseAgentSelf, parseConsulEvent } from './agent';
export type { AgentSelfInfo, ConsulEvent, ConsulMember, FireFilters } from './agent';

export type { KvEntry, KvPutOptions } from './kv';
export type { ConsulSession, SessionSpec } from './session';
export type { TxnKvOp, TxnResult, TxnOpError } from './txn';
export { ConsulTxnConflict } from './txn';
export type { HealthCheck, CheckStatus } from './health';
export type { QueryMeta, Read, ReadOptions, Consistency } from './wire';

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

/** A request's outcome as a bounded metrics label. */
function resultOf(err: Error | undefined, res: RawResponse | undefined): string {
  const status = res?.status ?? (err instanceof ConsulHttpError ? err.status : undefined);
  if (status !== undefined) return `${Math.floor(status / 100)}xx`;
  const code = (err as VigilError | undefined)?.code;
  return code === 'ECONSULTIMEOUT' ? 'timeout' : code === 'ECONSULUNREACHABLE' ? 'unreachable' : code === 'ECONSULABORTED' ? 'aborted' : 'error';
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN',
  'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ECONNABORTED', 'EADDRNOTAVAIL']);

/** HTTP client for one Consul agent. */
export class ConsulClient implements Transport {
  readonly url: string;
  private readonly base: URL;
  private readonly token?: string;
  readonly timeoutMs: number;
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
      const onAbort = () => finish(new VigilError('ECONSULABORTED', `consul ${desc}: aborted`));
      const finish = (err: Error | undefined, res?: RawResponse) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        countConsulRequest(method, path, resultOf(err, res));
        opts.signal?.removeEventListener('abort', onAbort);
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
      const deadlineMs = opts.timeoutMs ?? this.timeoutMs;
      const timer = setTimeout(() => finish(new VigilError('ECONSULTIMEOUT', `consul ${desc}: no answer from ${this.url} within ${deadlineMs} ms`, {
        retryable: true, detail: { url: this.url, timeoutMs: deadlineMs },
      })), deadlineMs);
      req.on('error', (e) => finish(this.transportError(desc, e)));
      if (opts.signal?.aborted) onAbort();
      else opts.signal?.addEventListener('abort', onAbort, { once: true });
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
  async kvGet(key: string, opts: ReadOptions = {}): Promise<KvEntry | undefined> {
    return (await kvRead(this, key, opts)).value;
  }

  /** `GET /v1/kv/<key>` with its index, blocking when `opts.index` > 0. */
  kvRead(key: string, opts: ReadOptions = {}): Promise<Read<KvEntry | undefined>> {
    return kvRead(this, key, opts);
  }

  /** `GET /v1/kv/<prefix>?recurse`: every entry under the prefix ([] when none). */
  async kvList(prefix: string, opts: ReadOptions = {}): Promise<KvEntry[]> {
    return (await kvReadTree(this, prefix, opts)).value;
  }

  /** `GET /v1/kv/<prefix>?recurse` with its index, blocking when `opts.index` > 0. */
  kvReadTree(prefix: string, opts: ReadOptions = {}): Promise<Read<KvEntry[]>> {
    return kvReadTree(this, prefix, opts);
  }

  /** `GET /v1/kv/<prefix>?keys[&separator=]`. */
  kvKeys(prefix: string, opts: ReadOptions & { separator?: string } = {}): Promise<Read<string[]>> {
    return kvKeys(this, prefix, opts);
  }

  /**
   * `PUT /v1/kv/<key>` with `?cas=`, `?acquire=` or `?release=`; the agent's
   * literal `true`/`false`. A plain PUT ignores locks, as Consul does.
   */
  kvPut(key: string, value: Buffer | string, opts: KvPutOptions = {}): Promise<boolean> {
    return kvPut(this, key, value, opts);
  }

  /** `DELETE /v1/kv/<key>` (optionally `?cas=` or `?recurse`). */
  kvDelete(key: string, opts: { cas?: number; recurse?: boolean } = {}): Promise<boolean> {
    return kvDelete(this, key, opts);
  }

  /** `PUT /v1/session/create`; returns the session ID. */
  sessionCreate(spec: SessionSpec = {}): Promise<string> {
    return sessionCreate(this, spec);
  }

  /** `PUT /v1/session/destroy/<id>` (true also for an unknown id). */
  sessionDestroy(id: string): Promise<boolean> {
    return sessionDestroy(this, id);
  }

  /** `PUT /v1/session/renew/<id>`; false when the session is gone (404). */
  async sessionRenew(id: string): Promise<boolean> {
    return (await sessionRenew(this, id)) !== undefined;
  }

  /** `PUT /v1/session/renew/<id>`: the renewed session (re-read its TTL), undefined when gone. */
  sessionRenewInfo(id: string): Promise<ConsulSession | undefined> {
    return sessionRenew(this, id);
  }

  /** `GET /v1/session/info/<id>`; undefined when there is no such session. */
  async sessionInfo(id: string, opts: ReadOptions = {}): Promise<ConsulSession | undefined> {
    return (await sessionInfo(this, id, opts)).value;
  }

  /** `GET /v1/session/list`, or `/v1/session/node/<node>`, blocking when `opts.index` > 0. */
  sessionList(opts: ReadOptions & { node?: string } = {}): Promise<Read<ConsulSession[]>> {
    return sessionsRead(this, opts.node, opts);
  }

  /** `PUT /v1/txn`. @throws ConsulTxnConflict on 409 (rolled back). */
  txn(ops: TxnKvOp[], opts: { consistency?: Consistency; maxOps?: number } = {}): Promise<TxnResult> {
    return txn(this, ops, opts);
  }

  /** `GET /v1/health/node/<node>` ([] for an unknown node). */
  healthNode(node: string, opts: ReadOptions = {}): Promise<Read<HealthCheck[]>> {
    return healthNode(this, node, opts);
  }

  /** `GET /v1/health/state/<state>`. */
  healthState(state: CheckStatus | 'any', opts: ReadOptions = {}): Promise<Read<HealthCheck[]>> {
    return healthState(this, state, opts);
  }
}
