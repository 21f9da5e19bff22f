/**
 * Layer: test support. A Redfish TEST DOUBLE (not a BMC): a small
 * in-process HTTPS server imitating the formats in
 * shared/spec/bmc-and-nova.md §2 — service root, Systems collection, one
 * ComputerSystem with `PowerState` and `#ComputerSystem.Reset` (target and
 * AllowableValues), SessionService sessions (201, X-Auth-Token, Location,
 * DELETE) and Basic auth, Redfish error bodies.
 *
 * The simulated host is a real TCP listener on loopback that is open while
 * the host "runs": a fence's host check can see whether a powered-off host
 * is really silent. Knobs: the power state, a failing reset, a hang (the
 * connection is accepted and never answered), a lie (ForceOff → PowerState
 * Off while the host keeps running), a reset that is accepted and ignored.
 *
 * Certificates are made at test time with `openssl` into a temp dir
 * ({@link makeCerts}); nothing secret is checked in.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

/** Files made by {@link makeCerts}. */
export interface DoubleCerts { dir: string; caCert: string; caKey: string; cert: string; key: string; otherCaCert: string }

/**
 * A throwaway CA and a server certificate it signs for IP 127.0.0.1, plus an
 * unrelated CA (to test that only the pinned one is trusted).
 */
export function makeCerts(dir: string): DoubleCerts {
  const f = (n: string) => path.join(dir, n);
  const ssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  const ca = (name: string) => ssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', `/CN=vigil test ${name}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.pem`)]);
  ca('ca');
  ca('other-ca');
  ssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=redfish-double', '-keyout', f('server.key'), '-out', f('server.csr')]);
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  ssl(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('server.pem')]);
  return { dir, caCert: f('ca.pem'), caKey: f('ca.key'), cert: f('server.pem'), key: f('server.key'), otherCaCert: f('other-ca.pem') };
}

/** Knobs, changeable while running with {@link RedfishDouble.set}. */
export interface RedfishDoubleKnobs {
  power: 'On' | 'Off';
  /** Reset answers this HTTP status with an error body (e.g. 500), and does nothing. */
  failReset?: number;
  /** Accept connections and never answer. */
  hang: boolean;
  /** ForceOff: report PowerState Off, but the host keeps running. */
  lie: boolean;
  /** Reset answered 204 and ignored. */
  ignoreReset: boolean;
  /** No SessionService (404), like sushy-tools: clients fall back to Basic. */
  noSessions: boolean;
  /** How long PoweringOff lasts before Off. */
  transitionMs: number;
}

/** One request as the double saw it. */
export interface SeenRequest { method: string; path: string; auth: 'basic' | 'token' | 'none'; body: string }

/** A running double. */
export interface RedfishDouble {
  port: number;
  /** The simulated host's TCP port: listening while the host runs. */
  hostPort: number;
  requests: SeenRequest[];
  /** Sessions created and not deleted. */
  openSessions(): number;
  /** Forget every session, as a BMC does after SessionTimeout: their tokens now get 401. */
  expireSessions(): void;
  set(k: Partial<RedfishDoubleKnobs>): void;
  /** Whether the simulated host is running (what PowerState should say). */
  hostRunning(): boolean;
  fingerprint256(): string;
  stop(): Promise<void>;
}

const SYSTEM = '/redfish/v1/Systems/437XR1138R2';
const RESET = `${SYSTEM}/Actions/ComputerSystem.Reset`;
const ALLOWED = ['On', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart', 'Nmi', 'ForceOn', 'PushPowerButton'];

function errorBody(messageId: string, message: string): string {
  return JSON.stringify({ error: { code: 'Base.1.0.GeneralError', message: 'A general error has occurred. See ExtendedInfo for more information.',
    '@Message.ExtendedInfo': [{ '@odata.type': '#Message.v1_1_1.Message', MessageId: messageId, Message: message, Severity: 'Warning' }] } });
}

/** Start the double on 127.0.0.1 (random ports) with user/password and the given certificate. */
export async function startRedfishDouble(o: { certs: DoubleCerts; user: string; password: string; knobs?: Partial<RedfishDoubleKnobs> }): Promise<RedfishDouble> {
  const knobs: RedfishDoubleKnobs = { power: 'On', hang: false, lie: false, ignoreReset: false, noSessions: false, transitionMs: 300, ...o.knobs };
  const requests: SeenRequest[] = [];
  const sessions = new Map<string, string>(); // id → token
  let poweringOff: NodeJS.Timeout | undefined;
  let reported: 'On' | 'Off' | 'PoweringOff' = knobs.power;
  let running = knobs.power === 'On';
  const hung = new Set<net.Socket>();

  // The simulated host: a listener that exists while the host runs.
  let host: net.Server | undefined;
  const hostPort = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => { const p = (probe.address() as net.AddressInfo).port; probe.close(() => resolve(p)); });
  });
  const setRunning = async (on: boolean) => {
    running = on;
    if (on && !host) { const h = net.createServer((s) => s.end()); host = h; await new Promise<void>((r) => h.listen(hostPort, '127.0.0.1', () => r())); }
    if (!on && host) { const h = host; host = undefined; await new Promise<void>((r) => h.close(() => r())); }
  };
  await setRunning(running);

  const certPem = fs.readFileSync(o.certs.cert);
  const server = https.createServer({ cert: certPem, key: fs.readFileSync(o.certs.key) }, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'https://double');
      const authz = req.headers.authorization ?? '';
      const token = req.headers['x-auth-token'];
      const auth: SeenRequest['auth'] = authz.startsWith('Basic ') ? 'basic' : typeof token === 'string' ? 'token' : 'none';
      requests.push({ method: req.method ?? '', path: url.pathname, auth, body });
      if (knobs.hang) { hung.add(req.socket); return; }
      const send = (status: number, obj?: unknown, headers: Record<string, string> = {}) => {
        const text = obj === undefined ? '' : typeof obj === 'string' ? obj : JSON.stringify(obj);
        res.writeHead(status, { 'Content-Type': 'application/json', 'OData-Version': '4.0', ...headers });
        res.end(text);
      };
      const p = url.pathname.replace(/\/$/, '');
      if (p === '/redfish/v1' || p === '/redfish') return send(200, { '@odata.id': '/redfish/v1', Systems: { '@odata.id': '/redfish/v1/Systems' }, Links: { Sessions: { '@odata.id': '/redfish/v1/SessionService/Sessions' } } });
      if (p === '/redfish/v1/SessionService/Sessions' && req.method === 'POST') {
        if (knobs.noSessions) return send(404, errorBody('Base.1.8.ResourceMissingAtURI', 'The resource at the URI was not found.'));
        let b: { UserName?: string; Password?: string } = {};
        try { b = JSON.parse(body) as typeof b; } catch { /* bad body → 400 below */ }
        if (b.UserName !== o.user || b.Password !== o.password) return send(401, errorBody('Base.1.8.NoValidSession', 'There is no valid session established with the implementation.'));
        const id = randomBytes(4).toString('hex');
        const tok = randomBytes(16).toString('hex');
        sessions.set(id, tok);
        const loc = `/redfish/v1/SessionService/Sessions/${id}`;
        return send(201, { '@odata.id': loc, Id: id, UserName: o.user }, { 'X-Auth-Token': tok, Location: loc });
      }
      // Everything else needs auth: Basic or a live session token.
      const basicOk = authz === `Basic ${Buffer.from(`${o.user}:${o.password}`).toString('base64')}`;
      const tokenOk = typeof token === 'string' && [...sessions.values()].includes(token);
      if (!basicOk && !tokenOk) return send(401, errorBody('Base.1.8.NoValidSession', 'There is no valid session established with the implementation.'), { 'WWW-Authenticate': 'Basic realm="double"' });
      const sm = /^\/redfish\/v1\/SessionService\/Sessions\/(\w+)$/.exec(p);
      if (sm && req.method === 'DELETE') { sessions.delete(sm[1]!); return send(204); }
      if (p === '/redfish/v1/Systems' && req.method === 'GET') return send(200, { '@odata.id': '/redfish/v1/Systems', 'Members@odata.count': 1, Members: [{ '@odata.id': SYSTEM }] });
      if (p === SYSTEM && req.method === 'GET') {
        return send(200, { '@odata.id': SYSTEM, Id: '437XR1138R2', Name: 'double', PowerState: reported, Status: { State: 'Enabled', Health: 'OK' },
          Actions: { '#ComputerSystem.Reset': { target: RESET, 'ResetType@Redfish.AllowableValues': ALLOWED } } });
      }
      if (p === RESET && req.method === 'POST') {
        let rt: unknown;
        try { rt = (JSON.parse(body) as { ResetType?: unknown }).ResetType; } catch { /* handled below */ }
        if (typeof rt !== 'string' || !ALLOWED.includes(rt)) {
          return send(400, errorBody('Base.1.8.ActionParameterNotSupported', `The parameter ${String(rt)} for the action ResetType is not supported on the target resource.`));
        }
        if (knobs.failReset) return send(knobs.failReset, errorBody('Base.1.8.InternalError', 'The request failed due to an internal service error.'));
        if (knobs.ignoreReset) return send(204);
        if (rt === 'ForceOff') {
          if (knobs.lie) { reported = 'Off'; return send(204); } // reports Off, host untouched
          reported = 'PoweringOff';
          clearTimeout(poweringOff);
          poweringOff = setTimeout(() => { void setRunning(false).then(() => { reported = 'Off'; }); }, knobs.transitionMs);
          return send(204);
        }
        if (rt === 'On' || rt === 'ForceOn') { void setRunning(true).then(() => { reported = 'On'; }); return send(204); }
        return send(204);
      }
      return send(404, errorBody('Base.1.8.ResourceMissingAtURI', `The resource at the URI ${p} was not found.`));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const x509 = new (await import('node:crypto')).X509Certificate(certPem);
  return {
    port,
    hostPort,
    requests,
    openSessions: () => sessions.size,
    expireSessions: () => sessions.clear(),
    set: (k) => {
      Object.assign(knobs, k);
      if (k.power) { reported = k.power; void setRunning(k.power === 'On'); }
    },
    hostRunning: () => running,
    fingerprint256: () => x509.fingerprint256,
    stop: async () => {
      clearTimeout(poweringOff);
      for (const s of hung) s.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await setRunning(false);
    },
  };
}
