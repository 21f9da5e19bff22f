/**
 * Layer: test support. Starts the Nova + Keystone TEST DOUBLE (server.js) —
 * a stand-in for the OpenStack calls a recovery makes, not OpenStack — on a
 * loopback port, and reads its record of calls and state.
 */
import { spawn } from 'node:child_process';
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

export async function startNovaDouble(t: { teardown(fn: () => unknown): void }, cfg: NovaDoubleConfig): Promise<NovaDouble> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-nova-double-'));
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify(cfg));
  const child = spawn(process.execPath, [NOVA_DOUBLE_SERVER, file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => { out += c.toString(); const m = /ready (\d+)/.exec(out); if (m) resolve(Number(m[1])); });
    child.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
    child.on('exit', (code) => reject(new Error(`nova double exited (${code}): ${err}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  const get = async (p: string) => (await fetch(`${url}${p}`)).json() as Promise<any>;
  const d: NovaDouble = {
    url, authUrl: `${url}/v3`,
    calls: () => get('/_double/calls'),
    state: () => get('/_double/state'),
    async knobs(k) { await fetch(`${url}/_double/knobs`, { method: 'POST', body: JSON.stringify(k) }); },
    async stop() {
      if (child.exitCode === null) { child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  t.teardown(() => d.stop());
  return d;
}
