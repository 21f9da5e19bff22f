/**
 * Layer: test support. Starts and drives the Consul TEST DOUBLE (server.js),
 * a stand-in for the Consul agent HTTP API. It is not Consul.
 *
 * The double is a real process on a loopback port; this wrapper spawns it,
 * waits for its ready line, and talks to its control channel (`/_double/*`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/** Path of the double's entry point (plain JavaScript, spawnable with `node`). */
export const CONSUL_DOUBLE_SERVER = path.join(__dirname, 'server.js');

/** The states the double can be switched into. */
export type ConsulDoubleState = 'healthy' | 'servers-lost' | 'never-had-servers' | 'hung' | 'dead';

/** A member given to the double: a bare address or a name with an address. */
export type DoubleMember = string | { name: string; addr: string };

/** Options of the double itself (the `double` key of its config, or `/_double/config`). */
export interface ConsulDoubleOptions {
  state?: ConsulDoubleState;
  /** Override of `known_servers` while healthy (default: the number of servers). */
  knownServers?: number | null;
  /** Server members (default: the agent config's `retry_join` / `start_join`). */
  servers?: DoubleMember[];
  /** Other client members. */
  clients?: DoubleMember[];
  /** Local services, for events with a service filter. */
  services?: { name: string; tags?: string[] }[];
  /** A join to a known server address heals `servers-lost` (default true); false: the join fails. */
  healOnJoin?: boolean;
  /** When set, every non-status endpoint requires this X-Consul-Token (else 403 Permission denied). */
  aclToken?: string;
  /** Consul version the double imitates (default 1.2.0; `0.9.x` gives the old shapes). */
  version?: string;
}

/** The agent config written into a config dir by {@link writeAgentConfig}. */
export interface AgentConfigFile {
  node_name?: string;
  datacenter?: string;
  server?: boolean;
  client_addr?: string;
  addresses?: { http?: string };
  ports?: { http?: number };
  retry_join?: string[];
  bind_addr?: string;
  advertise_addr?: string;
  double?: ConsulDoubleOptions;
  [key: string]: unknown;
}

/** Options for {@link startConsulDouble}. */
export interface StartOptions {
  configDir: string;
  /** Overrides the config's `addresses.http` / `client_addr`. */
  host?: string;
  /** Overrides the config's `ports.http` (0: any free port, read back from the ready line). */
  port?: number;
  /** Initial state (overrides the config). */
  state?: ConsulDoubleState;
  startTimeoutMs?: number;
}

/** One join attempt recorded by the double. */
export interface JoinRecord { addr: string; wan: boolean; method: string; at: number; status: number }

/** One request recorded by the double (control paths excluded). */
export interface RequestRecord { method: string; path: string; query: string; at: number; token: boolean }

/** A running double. */
export interface ConsulDouble {
  url: string;
  host: string;
  port: number;
  pid: number;
  process: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  setState(state: ConsulDoubleState, opts?: Omit<ConsulDoubleOptions, 'state'>): Promise<Record<string, unknown>>;
  configure(opts: ConsulDoubleOptions): Promise<Record<string, unknown>>;
  getState(): Promise<Record<string, unknown>>;
  joins(): Promise<JoinRecord[]>;
  requests(): Promise<RequestRecord[]>;
  /** Deliver events as if another node had fired them (the agent's filters apply). */
  injectEvents(events: Record<string, unknown>[]): Promise<Record<string, unknown>[]>;
  /** Graceful stop (SIGTERM), resolves once the process is gone. */
  stop(): Promise<void>;
  kill(signal?: NodeJS.Signals): void;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address() as net.AddressInfo;
      s.close(() => resolve(a.port));
    });
  });
}

/** Write `agent.json` (and nothing else) into a fresh config dir; returns the dir. */
export function writeAgentConfig(dir: string, config: AgentConfigFile): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'agent.json'), JSON.stringify(config, null, 2));
  return dir;
}

/** A temporary config dir with the given agent config. */
export function tempAgentConfig(config: AgentConfigFile): string {
  return writeAgentConfig(fs.mkdtempSync(path.join(os.tmpdir(), 'vg-consul-double-')), config);
}

/** The argv that runs the double as an agent command (for a supervised `fence.agents[].command`). */
export function consulDoubleCommand(configDir: string): string[] {
  return [process.execPath, CONSUL_DOUBLE_SERVER, 'agent', '-config-dir', configDir];
}

/** An environment for children without tap's coverage hooks. */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

/** Plain HTTP request to the double's control channel. */
function request(url: string, method: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout on ${method} ${url}`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function control<T>(base: string, method: string, what: string, body?: unknown): Promise<T> {
  const r = await request(`${base}/_double/${what}`, method, body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
  if (r.status !== 200) throw new Error(`consul double ${method} ${what}: ${r.status} ${r.body}`);
  return JSON.parse(r.body) as T;
}

/** Spawn the double on the config dir and wait until it listens. */
export function startConsulDouble(opts: StartOptions): Promise<ConsulDouble> {
  const args = [CONSUL_DOUBLE_SERVER, 'agent', '-config-dir', opts.configDir];
  if (opts.host !== undefined) args.push('-host', opts.host);
  if (opts.port !== undefined) args.push('-port', String(opts.port));
  if (opts.state !== undefined) args.push('-state', opts.state);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString('utf8'); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`consul double did not start: ${stderr}`)); }, opts.startTimeoutMs ?? 10_000);
    const onData = (c: Buffer) => {
      out += c.toString('utf8');
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.stdout!.resume();
      let ready: { url?: string; pid?: number; dead?: boolean };
      try { ready = JSON.parse(out.slice(0, nl)) as typeof ready; } catch { reject(new Error(`consul double: bad ready line ${out}`)); return; }
      if (!ready.url) { reject(new Error('consul double started dead')); return; }
      const u = new URL(ready.url);
      const base = ready.url;
      resolve({
        url: base, host: u.hostname, port: Number(u.port), pid: child.pid!, process: child, exited,
        setState: (state, more) => control(base, 'PUT', 'state', { ...(more ?? {}), state }),
        configure: (o) => control(base, 'PUT', 'config', o),
        getState: () => control(base, 'GET', 'state'),
        joins: () => control(base, 'GET', 'joins'),
        requests: () => control(base, 'GET', 'requests'),
        injectEvents: (events) => control(base, 'PUT', 'events', events),
        stop: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
          await exited;
          clearTimeout(killer);
        },
        kill: (signal = 'SIGKILL') => { child.kill(signal); },
        stderr: () => stderr,
      });
    };
    child.stdout!.on('data', onData);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`consul double exited before ready (${code ?? signal}): ${stderr}`));
    });
  });
}
