/**
 * Layer: executor (I/O). A small OpenStack client for what recovery needs
 * (spec/bmc-and-nova.md §3): a Keystone v3 password token, the compute
 * endpoint from its catalog, and the Nova calls of an evacuation —
 * force-down and disable the host's nova-compute, list its servers,
 * evacuate one, read one back.
 *
 * Why hand-written: five calls, and each has a pitfall the spec names
 * (the token is a header, not the body; `host` is silently dropped for a
 * non-admin token; force-down changed shape at 2.53). Node's own `fetch`
 * with an AbortSignal per request gives the timeout; no dependency.
 *
 * The password comes from a root-only file (readSecureFile at start) and
 * is held in a {@link Secret}; it is never logged and never put in an
 * error message. A 401 from Nova re-authenticates once and retries the
 * call once (§3a).
 */
import { VigilError, errorMessage } from '../../errors';

/** Microversion pinned for every call: ≥ 2.53 (UUID service ids), < 2.95 (evacuate keeps the power state, §3e). */
export const NOVA_MICROVERSION = '2.53';
/**
 * When a cloud refuses 2.53 (406): 2.14, the lowest with the legacy
 * force-down (≥ 2.11) and an evacuate body without onSharedStorage (§3e).
 */
export const NOVA_LEGACY_MICROVERSION = '2.14';

/** A password that prints as `[redacted]`. */
export interface PasswordSource { reveal(): string }

export interface NovaClientOptions {
  /** Keystone v3 base, e.g. http://keystone:5000/v3 */
  authUrl: string;
  user: string;
  userDomain: string;
  project: string;
  projectDomain: string;
  password: PasswordSource;
  /** Catalog interface (public/internal/admin) and optional region. */
  interface: string;
  region?: string;
  /** Per-request deadline. */
  timeoutMs: number;
}

/** A Nova or Keystone answer that was not what the call needs. The message carries status and Nova's fault message, never credentials. */
export class NovaError extends VigilError {
  constructor(message: string, readonly status?: number, opts: { retryable?: boolean } = {}) {
    super('ENOVA', message, { retryable: opts.retryable ?? (status === undefined || status >= 500 || status === 429) });
    this.name = 'NovaError';
  }
}

/** A server as recovery needs it. */
export interface NovaServer { id: string; status: string; host: string | null; taskState: string | null; vmState: string | null }

function faultMessage(body: string): string {
  try {
    const v = JSON.parse(body) as Record<string, { message?: string; title?: string }>;
    const f = Object.values(v)[0];
    if (f && typeof f === 'object' && typeof f.message === 'string') return f.message.slice(0, 300);
  } catch { /* not JSON */ }
  return body.slice(0, 200).replace(/\s+/g, ' ');
}

export class NovaClient {
  private token: string | undefined;
  private endpoint: string | undefined;
  private expiresAtMs = 0;
  /** The microversion spoken: 2.53, or the legacy one after a 406. */
  version: string = NOVA_MICROVERSION;

  constructor(private readonly o: NovaClientOptions) {}

  private async http(method: string, url: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; headers: Headers; text: string }> {
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(), this.o.timeoutMs);
    try {
      const r = await fetch(url, {
        method, signal: ac.signal,
        headers: { Accept: 'application/json', ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      return { status: r.status, headers: r.headers, text: await r.text() };
    } catch (e) {
      const what = ac.signal.aborted ? `no answer within ${this.o.timeoutMs} ms` : errorMessage(e);
      throw new NovaError(`${method} ${new URL(url).pathname}: ${what}`);
    } finally { clearTimeout(t); }
  }

  /** Keystone v3 password auth, project-scoped (§3a). */
  async authenticate(): Promise<void> {
    const body = { auth: {
      identity: { methods: ['password'], password: { user: { name: this.o.user, domain: { name: this.o.userDomain }, password: this.o.password.reveal() } } },
      scope: { project: { name: this.o.project, domain: { name: this.o.projectDomain } } },
    } };
    const r = await this.http('POST', `${this.o.authUrl.replace(/\/$/, '')}/auth/tokens`, {}, body);
    if (r.status !== 201) throw new NovaError(`keystone: token refused (HTTP ${r.status}: ${faultMessage(r.text)})`, r.status, { retryable: r.status >= 500 });
    const token = r.headers.get('x-subject-token');
    if (!token) throw new NovaError('keystone: 201 without an X-Subject-Token header', r.status);
    let v: { token?: { expires_at?: string; catalog?: { type?: string; endpoints?: { interface?: string; region?: string; region_id?: string; url?: string }[] }[] } };
    try { v = JSON.parse(r.text) as typeof v; } catch { throw new NovaError('keystone: the token body is not JSON', r.status); }
    const compute = v.token?.catalog?.find((c) => c.type === 'compute');
    const ep = compute?.endpoints?.find((e) => e.interface === this.o.interface && (this.o.region === undefined || e.region === this.o.region || e.region_id === this.o.region));
    if (!ep?.url) throw new NovaError(`keystone: no compute endpoint with interface ${this.o.interface}${this.o.region ? ` in ${this.o.region}` : ''} in the catalog`, r.status, { retryable: false });
    const exp = Date.parse(v.token?.expires_at ?? '');
    this.token = token;
    this.endpoint = ep.url.replace(/\/$/, '');
    // Re-authenticate a minute before expiry (§3a).
    this.expiresAtMs = Number.isFinite(exp) ? exp - 60_000 : Date.now() + 30 * 60_000;
  }

  /** One Nova call: token (re-auth when near expiry, and once on a 401), microversion header, JSON. */
  async call(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown; text: string }> {
    for (let attempt = 0, reauth = false; ; attempt++) {
      if (!this.token || Date.now() >= this.expiresAtMs) await this.authenticate();
      const version = this.version;
      const r = await this.http(method, `${this.endpoint!}${path}`, { 'X-Auth-Token': this.token!, 'OpenStack-API-Version': `compute ${version}`, 'X-OpenStack-Nova-API-Version': version }, body);
      if (r.status === 401 && !reauth) { reauth = true; this.token = undefined; continue; }
      // An older cloud: speak the legacy microversion from now on (§3b, §3c).
      if (r.status === 406 && version === NOVA_MICROVERSION && attempt < 3) { this.version = NOVA_LEGACY_MICROVERSION; continue; }
      let json: unknown;
      if (r.text !== '') {
        try { json = JSON.parse(r.text); } catch {
          if (r.status >= 200 && r.status < 300) throw new NovaError(`${method} ${path}: HTTP ${r.status} with a body that is not JSON`, r.status, { retryable: true });
        }
      }
      return { status: r.status, json, text: r.text };
    }
  }

  private fail(method: string, path: string, r: { status: number; text: string }): never {
    throw new NovaError(`${method} ${path}: HTTP ${r.status}: ${faultMessage(r.text)}`, r.status);
  }

  /**
   * Force the host's nova-compute down and disable it with a reason
   * (≥ 2.53: PUT /os-services/{uuid}); a cloud that refuses 2.53 (406)
   * gets the legacy force-down and disable-log-reason (2.11). Returns
   * what was done, for the record.
   */
  async forceDown(host: string, reason: string): Promise<string> {
    const q = `/os-services?binary=nova-compute&host=${encodeURIComponent(host)}`;
    if (this.version !== NOVA_MICROVERSION) return this.forceDownLegacy(host, reason);
    const r = await this.call('GET', q);
    if (this.version !== NOVA_MICROVERSION) return this.forceDownLegacy(host, reason);
    if (r.status !== 200) this.fail('GET', q, r);
    const list = (r.json as { services?: { id?: unknown; host?: string; binary?: string }[] } | undefined)?.services;
    if (!Array.isArray(list)) throw new NovaError(`GET ${q}: no services list in the answer`, r.status, { retryable: true });
    const svc = list.find((s) => s.host === host && s.binary === 'nova-compute');
    if (!svc || typeof svc.id !== 'string') throw new NovaError(`no nova-compute service on ${host}`, 404, { retryable: false });
    const p = `/os-services/${svc.id}`;
    const u = await this.call('PUT', p, { status: 'disabled', disabled_reason: reason, forced_down: true });
    if (u.status !== 200) this.fail('PUT', p, u);
    const got = (u.json as { service?: { forced_down?: boolean; status?: string } } | undefined)?.service;
    if (got?.forced_down !== true || got.status !== 'disabled') throw new NovaError(`PUT ${p}: the answer does not show the service forced down and disabled`, u.status, { retryable: true });
    return `service ${svc.id} forced down and disabled (2.53)`;
  }

  private async forceDownLegacy(host: string, reason: string): Promise<string> {
    const f = await this.call('PUT', '/os-services/force-down', { host, binary: 'nova-compute', forced_down: true });
    if (f.status !== 200) this.fail('PUT', '/os-services/force-down', f);
    const d = await this.call('PUT', '/os-services/disable-log-reason', { host, binary: 'nova-compute', disabled_reason: reason });
    if (d.status !== 200) this.fail('PUT', '/os-services/disable-log-reason', d);
    return `forced down and disabled (legacy calls at ${this.version}: the cloud refused ${NOVA_MICROVERSION})`;
  }

  /** The servers on `host` (admin; every result's host checked, pages followed, §3d). */
  async listServers(host: string): Promise<NovaServer[]> {
    const out: NovaServer[] = [];
    let path: string | undefined = `/servers/detail?all_tenants=1&host=${encodeURIComponent(host)}`;
    for (let page = 0; path !== undefined && page < 100; page++) {
      const r = await this.call('GET', path);
      if (r.status !== 200) this.fail('GET', path, r);
      const v = r.json as { servers?: unknown[]; servers_links?: { rel?: string; href?: string }[] } | undefined;
      if (!Array.isArray(v?.servers)) throw new NovaError(`GET ${path}: no servers list in the answer`, r.status, { retryable: true });
      for (const s of v.servers) {
        const srv = parseServer(s);
        // A non-admin token silently drops the host filter: never evacuate another host's server.
        if (srv.host !== host) throw new NovaError(`GET ${path}: server ${srv.id} is on ${String(srv.host)}, not ${host} (is the token admin?)`, r.status, { retryable: false });
        out.push(srv);
      }
      const next = v.servers_links?.find((l) => l.rel === 'next')?.href;
      path = next ? next.slice(next.indexOf('/servers')) : undefined;
    }
    return out;
  }

  async getServer(id: string): Promise<NovaServer> {
    const p = `/servers/${encodeURIComponent(id)}`;
    const r = await this.call('GET', p);
    if (r.status !== 200) this.fail('GET', p, r);
    return parseServer((r.json as { server?: unknown } | undefined)?.server);
  }

  /** The newest evacuation migration's status of a server, if any (§3e). */
  async migrationStatus(id: string): Promise<string | undefined> {
    const p = `/os-migrations?migration_type=evacuation&instance_uuid=${encodeURIComponent(id)}`;
    const r = await this.call('GET', p);
    if (r.status !== 200) this.fail('GET', p, r);
    const list = (r.json as { migrations?: { status?: string; id?: number }[] } | undefined)?.migrations;
    if (!Array.isArray(list) || list.length === 0) return undefined;
    const newest = [...list].sort((a, b) => (b.id ?? 0) - (a.id ?? 0))[0];
    return newest?.status;
  }

  /** Evacuate one server; the scheduler picks the destination (200, empty body at 2.14–2.94). */
  async evacuate(id: string): Promise<void> {
    const p = `/servers/${encodeURIComponent(id)}/action`;
    const r = await this.call('POST', p, { evacuate: {} });
    if (r.status !== 200 && r.status !== 202) this.fail('POST', p, r);
  }
}

function parseServer(s: unknown): NovaServer {
  const v = s as Record<string, unknown> | undefined;
  if (!v || typeof v.id !== 'string' || typeof v.status !== 'string') throw new NovaError('a server without id or status in the answer', undefined, { retryable: true });
  const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : null);
  return { id: v.id, status: v.status, host: str('OS-EXT-SRV-ATTR:host'), taskState: str('OS-EXT-STS:task_state'), vmState: str('OS-EXT-STS:vm_state') };
}
