/**
 * Layer: metrics. The optional HTTP listener that serves the registry in the
 * Prometheus text format (`GET /metrics`).
 *
 * It must never slow the check loop, whatever its clients do:
 *  - the exposition is rendered at most once per RENDER_TTL_MS and shared by
 *    every scrape in that window, so a scrape storm costs one render per
 *    window, not one per request;
 *  - a client that connects and never reads holds one socket, not the loop:
 *    writes are asynchronous, `maxConnections` bounds how many such sockets
 *    there can be, and idle, header and request timeouts close them;
 *  - only GET and HEAD of `/metrics` (and `/`) are served; anything else is a
 *    small 404/405 with no body to parse.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { ListenAddress } from '../config/kinds';
import { VigilError } from '../errors';
import { render } from './registry';

/** A scrape storm shares one render per this window (Prometheus scrapes every 15 s or so). */
const RENDER_TTL_MS = 250;
/** Open connections at most; more are refused by the kernel backlog / closed at once. */
const MAX_CONNECTIONS = 64;
/** A connection that sends nothing for this long is closed. */
const IDLE_TIMEOUT_MS = 10_000;

/** A running listener. */
export interface MetricsServer {
  /** Where it listens (the bound port for `:0` in tests). */
  readonly address: string;
  close(): Promise<void>;
}

/** Start serving `/metrics` on `listen`. Rejects with `EMETRICSLISTEN` if it cannot bind. */
export async function serveMetrics(listen: ListenAddress): Promise<MetricsServer> {
  let cache: { at: number; text: string; contentType: string } | undefined;
  let pending: Promise<{ text: string; contentType: string }> | undefined;
  const exposition = async () => {
    const now = Date.now();
    if (cache && now - cache.at < RENDER_TTL_MS) return cache;
    // Concurrent scrapes in one window wait for the same render.
    pending ??= render().then((r) => { cache = { at: Date.now(), ...r }; return r; }).finally(() => { pending = undefined; });
    return pending;
  };
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' && path !== '/') { res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: try /metrics\n'); return; }
    if (req.method !== 'GET' && req.method !== 'HEAD') { res.writeHead(405, { Allow: 'GET, HEAD' }).end(); return; }
    exposition().then((r) => {
      res.writeHead(200, { 'Content-Type': r.contentType, 'Content-Length': Buffer.byteLength(r.text) });
      res.end(req.method === 'HEAD' ? undefined : r.text);
    }, (e: unknown) => {
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`metrics: ${String(e)}\n`);
    });
  });
  server.maxConnections = MAX_CONNECTIONS;
  server.keepAliveTimeout = IDLE_TIMEOUT_MS;
  server.headersTimeout = IDLE_TIMEOUT_MS;
  server.requestTimeout = IDLE_TIMEOUT_MS;
  server.timeout = IDLE_TIMEOUT_MS; // a socket that neither sends nor drains is destroyed
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });

  if (listen.kind === 'unix') removeStaleSocket(listen.path);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new VigilError('EMETRICSLISTEN',
      `metrics: cannot listen on ${describe(listen)}: ${e.code ?? e.message}`, { detail: { errno: e.code } })));
    if (listen.kind === 'unix') server.listen(listen.path, resolve);
    else server.listen({ host: listen.host, port: listen.port, exclusive: true }, resolve);
  });
  if (listen.kind === 'unix') fs.chmodSync(listen.path, 0o660);
  const bound = server.address();
  const address = typeof bound === 'string' ? bound : bound ? `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}` : describe(listen);
  return {
    address,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
      if (listen.kind === 'unix') fs.rmSync(listen.path, { force: true });
    }),
  };
}

function describe(l: ListenAddress): string {
  return l.kind === 'unix' ? l.path : l.host.includes(':') ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`;
}

/** A socket file left by a crashed daemon would make listen fail with EADDRINUSE; a non-socket is never removed. */
function removeStaleSocket(path: string): void {
  let st: fs.Stats;
  try { st = fs.lstatSync(path); } catch { return; }
  if (!st.isSocket()) throw new VigilError('EMETRICSLISTEN', `metrics: ${path} exists and is not a socket: refusing to replace it`);
  fs.rmSync(path, { force: true });
}
