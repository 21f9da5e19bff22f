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
/** Path of the heartbeat sender a lab host runs so the double sees it as a live member. */
export const HEARTBEAT_SENDER = path.join(__dirname, 'heartbeat.js');

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
  /** false: no cluster leader — writes and default reads answer 500 `No cluster leader`, `?stale` reads still answer. */
  leader?: boolean;
  /** A TTL session is invalidated this many TTLs after its last renew (default 2, as the leader's timer). */
  sessionTtlMultiplier?: number;
  /** false: no random 0…wait/16 added to blocking waits (default true, as Consul). */
  blockingJitter?: boolean;
  /** false: a session on a node the catalog does not know is refused (`Missing node registration`, as Consul); default true registers it. */
  autoRegisterNodes?: boolean;
  /** Prefix RPC errors with `rpc error making call: `, as a client agent forwarding to a server does. */
  rpcErrorPrefix?: boolean;
  /** Largest /v1/txn op count (default 64 before 1.14, 128 from 1.14). */
  txnMaxOps?: number;
  /** Heartbeat listener (UDP) for lab hosts running heartbeat.js: port (0 any) and address (default the HTTP address). */
  heartbeat?: { port?: number; host?: string; suspicionTimeoutMs?: number };
  /** Other doubles (agents of the same datacenter) by base URL: an event fired here is also delivered to each over the network, as gossip would. */
  gossipEvents?: string[];
  /** Log invalidations and member changes on stderr. */
  log?: boolean;
}

/** A health check as the double stores it (and `/v1/health/*` returns it). */
export interface DoubleCheck {
  Node: string;
  CheckID: string;
  Status: 'passing' | 'warning' | 'critical';
  Name?: string;
  Output?: string;
  Notes?: string;
  ServiceID?: string;
  ServiceName?: string;
  [key: string]: unknown;
}

/**
 * A fault rule: requests whose method and path (a regular expression, default
 * every `/v1/` path) match are delayed by `delayMs` plus a random
 * 0…`jitterMs`, then hang forever (`hang`), answer `status` with the text
 * `body`, or are served normally; for the first `times` matches only if set.
 */
export interface FaultRule { path?: string; method?: string; delayMs?: number; jitterMs?: number; hang?: boolean; status?: number; body?: string; times?: number }

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
  /** Also serve everything on this unix socket; the control calls then use it (reachable from outside a lab namespace). */
  unixSocket?: string;
  /** How to start the process, e.g. `(argv) => lab.host('w').spawn(argv)` (default: a plain child process). */
  spawn?: (argv: string[]) => ChildProcess;
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
  /** UDP port heartbeats go to (when `double.heartbeat` is configured). */
  heartbeatPort: number | undefined;
  /** Create or update health checks; a check turning critical invalidates the sessions bound to it. */
  setChecks(checks: DoubleCheck | DoubleCheck[]): Promise<DoubleCheck[]>;
  /** Deregister a check (sessions bound to it are invalidated). */
  deleteCheck(node: string, checkId: string): Promise<boolean>;
  /** Set member statuses (1 alive, 3 left, 4 failed); serfHealth follows. Returns the member list. */
  setMembers(members: { Name: string; Status: 1 | 3 | 4; Addr?: string } | { Name: string; Status: 1 | 3 | 4; Addr?: string }[]): Promise<Record<string, any>[]>;
  /** The member list (same as `/v1/agent/members`, whatever the state). */
  members(): Promise<Record<string, any>[]>;
  /** Replace the fault rules ([] or clearFaults() removes them). */
  setFaults(rules: FaultRule | FaultRule[]): Promise<unknown>;
  clearFaults(): Promise<unknown>;
  /** Sessions, the invalidation log `{id, node, why, at}` and the lock-delay table (key → ms epoch). */
  sessions(): Promise<{ sessions: Record<string, any>[]; invalidations: { id: string; node: string; why: string; at: number }[]; lockDelay: Record<string, number> }>;
  /**
   * Restart in place: connections cut, port closed for `downMs`, then back.
   * keepState (default true) keeps KV, sessions and checks but loses the
   * lock-delay table and restarts TTL timers; false forgets everything and
   * the index starts low again. Resolves once the port answers again.
   */
  restart(opts?: { keepState?: boolean; downMs?: number }): Promise<void>;
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

/** An environment for the double and heartbeat children, without tap's loader and coverage hooks. */
export function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

/** The argv of a heartbeat sender for lab host `node` (run it inside the host's namespace). */
export function heartbeatCommand(node: string, to: { host: string; port: number }, opts: { addr?: string; intervalMs?: number } = {}): string[] {
  const argv = [process.execPath, HEARTBEAT_SENDER, '-node', node, '-to', `${to.host}:${to.port}`];
  if (opts.addr) argv.push('-addr', opts.addr);
  if (opts.intervalMs) argv.push('-interval-ms', String(opts.intervalMs));
  return argv;
}

/** Where the control channel is: a TCP base URL, optionally a unix socket used instead. */
interface Endpoint { url: string; socketPath?: string }

/** Plain HTTP request to the double (control channel or API), over the unix socket when there is one. */
export function doubleRequest(ep: Endpoint | string, method: string, p: string, body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const e: Endpoint = typeof ep === 'string' ? { url: ep } : ep;
  const target = e.socketPath ? `http://double${p}` : `${e.url}${p}`;
  return new Promise((resolve, reject) => {
    const req = http.request(target, { method, agent: false, timeout: 5000, ...(e.socketPath ? { socketPath: e.socketPath } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout on ${method} ${target}`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function control<T>(base: Endpoint, method: string, what: string, body?: unknown): Promise<T> {
  const r = await doubleRequest(base, method, `/_double/${what}`, body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
  if (r.status !== 200) throw new Error(`consul double ${method} ${what}: ${r.status} ${r.body}`);
  return JSON.parse(r.body) as T;
}

/** Spawn the double on the config dir and wait until it listens. */
export function startConsulDouble(opts: StartOptions): Promise<ConsulDouble> {
  const args = [CONSUL_DOUBLE_SERVER, 'agent', '-config-dir', opts.configDir];
  if (opts.host !== undefined) args.push('-host', opts.host);
  if (opts.port !== undefined) args.push('-port', String(opts.port));
  if (opts.state !== undefined) args.push('-state', opts.state);
  if (opts.unixSocket !== undefined) args.push('-unix', opts.unixSocket);
  const child = opts.spawn ? opts.spawn([process.execPath, ...args]) : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
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
      let ready: { url?: string; pid?: number; dead?: boolean; heartbeatPort?: number };
      try { ready = JSON.parse(out.slice(0, nl)) as typeof ready; } catch { reject(new Error(`consul double: bad ready line ${out}`)); return; }
      if (!ready.url) { reject(new Error('consul double started dead')); return; }
      const u = new URL(ready.url);
      const base: Endpoint = { url: ready.url, ...(opts.unixSocket ? { socketPath: opts.unixSocket } : {}) };
      resolve({
        url: ready.url, host: u.hostname, port: Number(u.port), pid: child.pid!, process: child, exited,
        heartbeatPort: ready.heartbeatPort,
        setChecks: (c) => control(base, 'PUT', 'checks', c),
        deleteCheck: (node, id) => control(base, 'DELETE', `checks?node=${encodeURIComponent(node)}&check=${encodeURIComponent(id)}`),
        setMembers: (m) => control(base, 'PUT', 'members', m),
        members: () => control(base, 'GET', 'members'),
        setFaults: (r) => control(base, 'PUT', 'faults', r),
        clearFaults: () => control(base, 'DELETE', 'faults'),
        sessions: () => control(base, 'GET', 'sessions'),
        restart: async (o = {}) => {
          await control(base, 'PUT', 'restart', o);
          const deadline = Date.now() + (o.downMs ?? 0) + 5000;
          for (;;) {
            // The TCP port is what restarts (the unix socket stays up): wait until the double says it listens again.
            try { if ((await control<{ listening: boolean }>(base, 'GET', 'state')).listening) return; } catch { /* still down */ }
            if (Date.now() > deadline) throw new Error('consul double did not come back after restart');
            await new Promise((r) => setTimeout(r, 25));
          }
        },
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

/**
 * A double on a free loopback port for one tap test, with a temporary config
 * dir; both are gone when the test ends, failing or not.
 */
export async function startDoubleForTest(t: { teardown(fn: () => unknown): void }, config: AgentConfigFile): Promise<ConsulDouble> {
  const dir = tempAgentConfig(config);
  const d = await startConsulDouble({ configDir: dir, host: '127.0.0.1', port: await freeLoopbackPort() });
  t.teardown(async () => { await d.stop(); fs.rmSync(dir, { recursive: true, force: true }); });
  return d;
}
