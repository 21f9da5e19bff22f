/**
 * Layer: daemon. The control socket: a unix stream socket beside the PID
 * file (mode 0600, root only) through which `vigil status` and
 * `vigil reload` talk to the running daemon. One JSON line in, one out.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { VigilError } from '../errors';

/** A request the daemon understands. */
export type ControlRequest = { cmd: 'status' } | { cmd: 'reload' } | { cmd: 'leave' };

/** Where the control socket of a daemon with this PID file lives. */
export function controlPath(pidfile: string): string {
  return pidfile.replace(/\.pid$/, '') + '.sock';
}

/** Serve requests until closed. The handler's result is sent back as JSON. */
export function serveControl(path: string, handler: (req: ControlRequest) => Promise<unknown>): Promise<net.Server> {
  try {
    const st = fs.lstatSync(path);
    // A leftover socket from a crashed run (we hold the PID lock, so it is stale).
    if (st.isSocket()) fs.unlinkSync(path);
    else throw new VigilError('ECONTROL', `${path} exists and is not a socket; refusing to replace it`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const server = net.createServer((conn) => {
    let buf = '';
    conn.setEncoding('utf8');
    conn.setTimeout(10_000, () => conn.destroy());
    conn.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > 4096) { conn.destroy(); return; }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let req: ControlRequest;
      try {
        req = JSON.parse(buf.slice(0, nl)) as ControlRequest;
      } catch {
        conn.end(JSON.stringify({ ok: false, error: 'bad request' }) + '\n');
        return;
      }
      handler(req).then(
        (res) => conn.end(JSON.stringify(res) + '\n'),
        (e) => conn.end(JSON.stringify({ ok: false, error: e instanceof Error ? e.message : String(e) }) + '\n'),
      );
    });
    conn.on('error', () => { /* client went away */ });
  });
  return new Promise((resolve, reject) => {
    const old = process.umask(0o177); // the socket is created 0600
    server.once('error', (e) => { process.umask(old); reject(e); });
    server.listen(path, () => {
      process.umask(old);
      resolve(server);
    });
  });
}

/** Send one request to a running daemon; rejects ECONNREFUSED/ENOENT when none runs. */
export function askControl(path: string, req: ControlRequest, timeoutMs = 10_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(path);
    let buf = '';
    const timer = setTimeout(() => { conn.destroy(); reject(new VigilError('ETIMEDOUT', `no answer from ${path} within ${timeoutMs} ms`)); }, timeoutMs);
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(JSON.stringify(req) + '\n'));
    conn.on('data', (c: string) => { buf += c; });
    conn.on('end', () => {
      clearTimeout(timer);
      try { resolve(JSON.parse(buf)); } catch { reject(new VigilError('ECONTROL', `bad answer from ${path}`)); }
    });
    conn.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}
