/**
 * Layer: test support. Starts the Nova + Keystone TEST DOUBLE (server.js) —
 * a stand-in for the OpenStack calls a recovery makes, not OpenStack — on a
 * loopback port, and reads its record of calls and state.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const NOVA_DOUBLE_SERVER = path.join(__dirname, 'server.js');

export interface NovaDoubleConfig {
  user: string;
  password: string;
  project: string;
  computes: { host: string; state?: 'up' | 'down' }[];
  servers: { id: string; host: string; status?: 'ACTIVE' | 'SHUTOFF' | 'ERROR' }[];
  /** How long an evacuation takes (accepted → done). */
  evacuateMs?: number;
  /** Highest microversion (default 2.94); '2.52' makes the client fall back to the legacy force-down. */
  maxVersion?: string;
}

export interface NovaCall { method: string; path: string; query: string; version: string; body: unknown; atMs: number }
export interface NovaFault { method?: string; path: string; status?: number; garbage?: boolean; hang?: boolean; times?: number }

export interface NovaDouble {
  url: string;
  authUrl: string;
  calls(): Promise<NovaCall[]>;
  state(): Promise<{ services: Record<string, any>[]; servers: Record<string, any>[]; migrations: Record<string, any>[]; maxRebuilding: number }>;
  knobs(k: { fail?: Record<string, 'error' | 'hang' | 'refuse'>; faults?: NovaFault[] }): Promise<void>;
  stop(): Promise<void>;
}

/** Where the double runs: by default a plain child on 127.0.0.1; in a lab, spawned in a lab host on its address (control through a unix socket). */
export interface NovaDoubleWhere { host?: string; port?: number; spawn?: (argv: string[]) => ChildProcess }

function viaSocket(socketPath: string, method: string, p: string, body?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path: p, headers: body ? { 'Content-Length': Buffer.byteLength(body) } : {} }, (res) => {
      let out = '';
      res.on('data', (c: Buffer) => { out += c.toString(); });
      res.on('end', () => resolve(out));
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function startNovaDouble(t: { teardown(fn: () => unknown): void }, cfg: NovaDoubleConfig, where: NovaDoubleWhere = {}): Promise<NovaDouble> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-nova-double-'));
  fs.chmodSync(dir, 0o755);
  const file = path.join(dir, 'config.json');
  const socket = where.spawn ? path.join(dir, 'nova.sock') : undefined;
  fs.writeFileSync(file, JSON.stringify({ ...cfg, ...(where.host ? { host: where.host } : {}), ...(where.port ? { port: where.port } : {}), ...(socket ? { socket } : {}) }));
  const argv = [process.execPath, NOVA_DOUBLE_SERVER, file];
  const child = where.spawn ? where.spawn(argv) : spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => { out += c.toString(); const m = /ready (\d+)/.exec(out); if (m) resolve(Number(m[1])); });
    child.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
    child.on('exit', (code) => reject(new Error(`nova double exited (${code}): ${err}`)));
  });
  const url = `http://${where.host ?? '127.0.0.1'}:${port}`;
  const ctl = async (method: string, p: string, body?: string): Promise<string> => (socket ? viaSocket(socket, method, p, body) : (await fetch(`${url}${p}`, { method, ...(body ? { body } : {}) })).text());
  const get = async (p: string) => JSON.parse(await ctl('GET', p)) as any;
  const d: NovaDouble = {
    url, authUrl: `${url}/v3`,
    calls: () => get('/_double/calls'),
    state: () => get('/_double/state'),
    async knobs(k) { await ctl('POST', '/_double/knobs', JSON.stringify(k)); },
    async stop() {
      if (child.exitCode === null) { child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  t.teardown(() => d.stop());
  return d;
}
