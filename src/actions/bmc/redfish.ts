/**
 * Layer: executor. BMC power through Redfish (DMTF DSP0266) over HTTPS:
 * `ComputerSystem.Reset` with `{"ResetType": "ForceOff"}` POSTed to the
 * action's advertised `target`, and `PowerState` read from the system
 * (bmc-and-nova.md §2).
 *
 * Trust is pinned, never the system store: either a CA certificate (PEM,
 * `ca_file`; the chain and the BMC's address in the certificate are checked)
 * or the SHA-256 fingerprint of the BMC's own certificate (`fingerprint`;
 * BMCs mostly ship self-signed certificates). Auth: one Redfish session
 * (X-Auth-Token) for all calls until close(), which deletes it (leaked
 * sessions count against a per-BMC limit), falling back to Basic when the
 * service has no SessionService (404/405), as sushy does; or Basic only.
 * Every request has a hard timeout; nothing here throws to the fence.
 */
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { ConfigError, VigilError, errorMessage } from '../../errors';
import { moduleLog, type Logger } from '../../log';
import { isIPv4 } from '../../util/ip';
import { loadBmcCredentials, redact, type BmcCredentials } from './credentials';
import type { ActionOutcome, BmcFailureCode, PowerAction, PowerDriver, PowerReading } from './types';

/** Options of the `redfish` method (config keys in brackets). */
export interface RedfishOptions {
  /** BMC address [ip], IPv4 literal. */
  ip: string;
  /** HTTPS port [port]; default 443. */
  port?: number;
  /** [user] and [password_file] (0600 root file, first line). */
  user: string;
  passwordFile: string;
  /** System id under /redfish/v1/Systems/ [system_id]; default: the only member. */
  systemId?: string;
  /** PEM CA that signed the BMC's certificate [ca_file]. */
  caFile?: string;
  /** SHA-256 fingerprint of the BMC's certificate [fingerprint], hex with or without colons. */
  fingerprint?: string;
  /** [auth]: `session` (default, Basic if the service has none) or `basic`. */
  auth?: 'session' | 'basic';
  /** Hard bound on each HTTPS request [request_timeout]; default 5 s. */
  requestTimeoutMs?: number;
}

/** One HTTP exchange, as the injectable request function sees it. */
export interface HttpRequest { method: string; path: string; headers: Record<string, string>; body?: string; timeoutMs: number }
export interface HttpResponse { status: number; headers: Record<string, string | string[] | undefined>; body: string }
/** Performs one request; rejects on transport errors and timeouts. */
export type RequestFn = (req: HttpRequest) => Promise<HttpResponse>;

/** Normalise `AA:bb:…` or `aabb…` to upper-case colon form (Node's `fingerprint256`). */
export function normalizeFingerprint(fp: string): string | undefined {
  const hex = fp.replace(/[:\s]/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return undefined;
  return hex.match(/../g)!.join(':');
}

/**
 * The real request function: HTTPS to `ip:port` with the pinned trust.
 * With a fingerprint, the chain is not verified by OpenSSL (self-signed is
 * the point) and Node would then never call checkServerIdentity, so the
 * connection is made here and the peer certificate's SHA-256 compared
 * *before* the socket is handed to the request: no header, so no
 * credential, is written to a server that fails the pin.
 */
export function httpsRequester(ip: string, port: number, trust: { ca?: string; fingerprint?: string }): RequestFn {
  return (req) => new Promise((resolve, reject) => {
    let finished = false;
    const fail = (e: Error) => { if (!finished) { finished = true; clearTimeout(timer); agent.destroy(); reject(e); } };
    const timer = setTimeout(() => { r.destroy(new Error(`no response within ${req.timeoutMs} ms`)); }, req.timeoutMs);
    const createConnection = (_o: unknown, cb: (err: Error | null, s?: tls.TLSSocket) => void) => {
      const s = tls.connect({
        host: ip, port, servername: undefined,
        ...(trust.ca ? { ca: trust.ca, rejectUnauthorized: true, checkServerIdentity: (_h: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(ip, cert) } : { rejectUnauthorized: false }),
      });
      // A BMC that takes TCP but never finishes TLS: this socket is not the
      // request's yet, so the request's timer cannot reach it.
      s.setTimeout(req.timeoutMs, () => s.destroy(new Error(`no TLS handshake within ${req.timeoutMs} ms`)));
      s.once('secureConnect', () => {
        s.setTimeout(0);
        if (trust.fingerprint && s.getPeerCertificate().fingerprint256 !== trust.fingerprint) {
          const got = s.getPeerCertificate().fingerprint256 ?? 'none';
          s.destroy();
          cb(Object.assign(new Error(`certificate fingerprint ${got} does not match the pinned ${trust.fingerprint}`), { code: 'EVIGILPIN' }));
          return;
        }
        cb(null, s);
      });
      s.once('error', (e) => cb(e));
      return undefined;
    };
    // `agent: false` would make Node build a stock Agent that ignores a
    // request-level createConnection; an Agent of our own uses it (Node's
    // Agent waits for the callback when createConnection returns nothing).
    const agent = new https.Agent({ keepAlive: false, maxCachedSessions: 0 });
    (agent as unknown as { createConnection: typeof createConnection }).createConnection = createConnection;
    const r = https.request({
      host: ip, port, method: req.method, path: req.path, agent,
      headers: { ...req.headers, ...(req.body !== undefined ? { 'Content-Length': String(Buffer.byteLength(req.body)) } : {}) },
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { if (body.length < 1 << 20) body += c; });
      res.on('end', () => { if (!finished) { finished = true; clearTimeout(timer); agent.destroy(); resolve({ status: res.statusCode ?? 0, headers: res.headers, body }); } });
      res.on('error', fail);
    });
    r.on('error', fail);
    r.end(req.body);
  });
}

const STATE: Record<string, 'on' | 'off'> = { On: 'on', Off: 'off', PoweringOff: 'on', PoweringOn: 'on', Paused: 'on' };
const ACTION_RESET: Record<PowerAction, string> = { off: 'ForceOff', on: 'On', cycle: 'PowerCycle' };

/** A Redfish error body's most useful message (ExtendedInfo, then error.message). */
function errorText(body: string): string {
  try {
    const e = (JSON.parse(body) as { error?: { message?: string; '@Message.ExtendedInfo'?: { MessageId?: string; Message?: string }[] } }).error;
    const x = e?.['@Message.ExtendedInfo']?.[0];
    return (x ? `${x.MessageId ?? ''} ${x.Message ?? ''}`.trim() : e?.message ?? '').slice(0, 300);
  } catch { return body.slice(0, 200); }
}

/** A transport error sorted for the evidence: timeout, unreachable, TLS/pin, else refused. */
function transportCode(e: unknown): BmcFailureCode {
  const code = (e as NodeJS.ErrnoException).code ?? '';
  const msg = errorMessage(e);
  if (/^no (response|TLS handshake) within/.test(msg)) return 'EBMCTIMEOUT';
  if (['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN'].includes(code)) return 'EBMCUNREACHABLE';
  if (code === 'EVIGILPIN' || /CERT|SIGNATURE|ISSUER|ERR_TLS|ERR_SSL/.test(code)) return 'EBMCTLS';
  return 'EBMCREFUSED';
}

/** An HTTP answer that is not the expected one: 401/403 are auth, the rest refusals. */
function httpError(what: string, res: HttpResponse): VigilError {
  const code: BmcFailureCode = res.status === 401 || res.status === 403 ? 'EBMCAUTH' : 'EBMCREFUSED';
  return new VigilError(code, `${what}: HTTP ${res.status} ${errorText(res.body)}`.trim());
}

/** The code of whatever a call threw (a JSON body that does not parse is EBMCOUTPUT). */
function failureCode(e: unknown): BmcFailureCode {
  return e instanceof VigilError ? e.code as BmcFailureCode : 'EBMCOUTPUT';
}

/** One BMC driven over Redfish. The constructor checks options and reads the credentials. */
export class RedfishClient implements PowerDriver {
  readonly method = 'redfish';
  readonly target: string;
  readonly #creds: BmcCredentials;
  readonly #request: RequestFn;
  readonly #opts: RedfishOptions & { requestTimeoutMs: number; auth: 'session' | 'basic' };
  readonly #log: Logger;
  #systemPath?: string;
  #session?: { token: string; location?: string };
  #basicOnly = false;

  constructor(opts: RedfishOptions, deps: { request?: RequestFn; log?: Logger } = {}) {
    if (!isIPv4(opts.ip)) throw new ConfigError(`ip ${JSON.stringify(opts.ip)} is not an IPv4 address; expected the BMC's address`, { key: 'ip' });
    if ((opts.caFile === undefined) === (opts.fingerprint === undefined)) {
      throw new ConfigError('give exactly one of ca_file and fingerprint: the BMC certificate must be pinned', { key: 'ca_file' });
    }
    const fingerprint = opts.fingerprint === undefined ? undefined : normalizeFingerprint(opts.fingerprint);
    if (opts.fingerprint !== undefined && !fingerprint) throw new ConfigError(`fingerprint ${JSON.stringify(opts.fingerprint)} is not a SHA-256 fingerprint; expected 64 hex digits`, { key: 'fingerprint' });
    if (opts.systemId !== undefined && !/^[\w.:-]+$/.test(opts.systemId)) throw new ConfigError(`system_id ${JSON.stringify(opts.systemId)} has characters a Redfish id cannot have`, { key: 'system_id' });
    let ca: string | undefined;
    if (opts.caFile !== undefined) {
      try { ca = fs.readFileSync(opts.caFile, 'utf8'); } catch (e) { throw new ConfigError(`ca_file ${opts.caFile} cannot be read: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`, { key: 'ca_file' }); }
      if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(`ca_file ${opts.caFile} holds no PEM certificate`, { key: 'ca_file' });
    }
    this.#creds = loadBmcCredentials(opts.user, opts.passwordFile);
    const port = opts.port ?? 443;
    this.#opts = { ...opts, requestTimeoutMs: opts.requestTimeoutMs ?? 5000, auth: opts.auth ?? 'session' };
    this.target = `https://${opts.ip}:${port}`;
    this.#request = deps.request ?? httpsRequester(opts.ip, port, { ...(ca ? { ca } : {}), ...(fingerprint ? { fingerprint } : {}) });
    this.#log = (deps.log ?? moduleLog('bmc')).child({ method: 'redfish', bmc: this.target });
  }

  private basic(): string {
    return `Basic ${Buffer.from(`${this.#creds.user}:${this.#creds.password}`).toString('base64')}`;
  }

  /** One request with the given auth header; transport errors become a rejected promise with a redacted message. */
  private async call(method: string, path: string, auth: Record<string, string>, body?: unknown): Promise<HttpResponse> {
    const headers: Record<string, string> = { Accept: 'application/json', 'OData-Version': '4.0', ...auth };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    try {
      const res = await this.#request({ method, path, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}), timeoutMs: this.#opts.requestTimeoutMs });
      this.#log.debug({ method: method, path, status: res.status }, 'redfish request');
      return res;
    } catch (e) {
      throw new VigilError(transportCode(e), `${method} ${path}: ${redact(errorMessage(e), this.#creds.password)}`, { retryable: true });
    }
  }

  /** The auth header to send: Basic, or the current session's token (opening one if needed). */
  private async authHeader(): Promise<Record<string, string>> {
    if (this.#opts.auth === 'basic' || this.#basicOnly) return { Authorization: this.basic() };
    if (this.#session) return { 'X-Auth-Token': this.#session.token };
    const res = await this.call('POST', '/redfish/v1/SessionService/Sessions', {}, { UserName: this.#creds.user, Password: this.#creds.password });
    if (res.status === 404 || res.status === 405) {
      // No SessionService (sushy-tools): Basic on every request, as sushy does.
      this.#basicOnly = true;
      return { Authorization: this.basic() };
    }
    if (res.status < 200 || res.status > 299) throw httpError('session refused', res);
    const token = typeof res.headers['x-auth-token'] === 'string' ? res.headers['x-auth-token'] : undefined;
    if (!token) throw new VigilError('EBMCOUTPUT', `session answer HTTP ${res.status} without X-Auth-Token`);
    let location = typeof res.headers.location === 'string' ? res.headers.location : undefined;
    if (!location) { try { location = (JSON.parse(res.body) as { '@odata.id'?: string })['@odata.id']; } catch { /* no body */ } }
    this.#session = { token, ...(location ? { location: new URL(location, 'https://bmc').pathname } : {}) };
    return { 'X-Auth-Token': token };
  }

  /**
   * Run `fn` with an auth header. One session serves every call until
   * {@link close}; a session the BMC has expired (401 on a token) is
   * replaced once.
   */
  private async withAuth<T>(fn: (auth: Record<string, string>) => Promise<T>): Promise<T> {
    const auth = await this.authHeader();
    try {
      return await fn(auth);
    } catch (e) {
      if (!(e instanceof VigilError && e.code === 'EBMCAUTH' && auth['X-Auth-Token'])) throw e;
      this.#session = undefined;
      return fn(await this.authHeader());
    }
  }

  /** Log out (DELETE the session): leaked sessions count against a per-BMC limit. Never throws. */
  async close(): Promise<void> {
    const s = this.#session;
    this.#session = undefined;
    if (s?.location) await this.call('DELETE', s.location, { 'X-Auth-Token': s.token }).catch(() => undefined);
  }

  /** The system's path: configured, or the only member of the Systems collection. */
  private async systemPath(auth: Record<string, string>): Promise<string> {
    if (this.#systemPath) return this.#systemPath;
    if (this.#opts.systemId) return (this.#systemPath = `/redfish/v1/Systems/${this.#opts.systemId}`);
    const res = await this.call('GET', '/redfish/v1/Systems', auth);
    if (res.status !== 200) throw httpError('GET /redfish/v1/Systems', res);
    const members = ((JSON.parse(res.body) as { Members?: { '@odata.id'?: string }[] }).Members ?? []).map((m) => m['@odata.id']).filter((x): x is string => typeof x === 'string');
    if (members.length !== 1) throw new VigilError('EBMCOUTPUT', `${members.length} systems on this BMC; set system_id`);
    return (this.#systemPath = members[0]!);
  }

  private async getSystem(auth: Record<string, string>): Promise<{ path: string; sys: Record<string, any> }> {
    const path = await this.systemPath(auth);
    const res = await this.call('GET', path, auth);
    if (res.status !== 200) throw httpError(`GET ${path}`, res);
    return { path, sys: JSON.parse(res.body) as Record<string, any> };
  }

  /** `PowerState`: Off → off; On, PoweringOff, PoweringOn, Paused → on; absent, null, errors → unknown. */
  async powerStatus(): Promise<PowerReading> {
    const t0 = performance.now();
    try {
      const ps = await this.withAuth(async (auth) => (await this.getSystem(auth)).sys.PowerState as unknown);
      const state = typeof ps === 'string' ? STATE[ps] : undefined;
      const detail = `PowerState ${JSON.stringify(ps ?? null)}`;
      if (!state) return { state: 'unknown', detail, durationMs: performance.now() - t0, code: 'EBMCOUTPUT' };
      return { state, detail, durationMs: performance.now() - t0 };
    } catch (e) {
      return { state: 'unknown', detail: errorMessage(e), durationMs: performance.now() - t0, code: failureCode(e) };
    }
  }

  /** POST the Reset action to its advertised target; any 2xx is "accepted", then the fence polls. */
  async power(action: PowerAction): Promise<ActionOutcome> {
    const t0 = performance.now();
    const resetType = ACTION_RESET[action];
    try {
      return await this.withAuth(async (auth) => {
        const { path, sys } = await this.getSystem(auth);
        const reset = sys.Actions?.['#ComputerSystem.Reset'] as { target?: string; 'ResetType@Redfish.AllowableValues'?: string[] } | undefined;
        const allowed = reset?.['ResetType@Redfish.AllowableValues'];
        if (Array.isArray(allowed) && !allowed.includes(resetType)) {
          return { ok: false, detail: `ResetType ${resetType} not among the allowed ${allowed.join(', ')}`, durationMs: performance.now() - t0, code: 'EBMCREFUSED' };
        }
        // POST to the advertised target (spec §2); the standard path only when none is advertised.
        const target = reset?.target ? new URL(reset.target, 'https://bmc').pathname : `${path}/Actions/ComputerSystem.Reset`;
        const res = await this.call('POST', target, auth, { ResetType: resetType });
        const what = `POST ${target} ${resetType}`;
        if (res.status >= 200 && res.status <= 299) return { ok: true, detail: `${what}: HTTP ${res.status}`, durationMs: performance.now() - t0 };
        const err = httpError(what, res);
        return { ok: false, detail: err.message, durationMs: performance.now() - t0, code: err.code as BmcFailureCode };
      });
    } catch (e) {
      return { ok: false, detail: errorMessage(e), durationMs: performance.now() - t0, code: failureCode(e) };
    }
  }
}
