/**
 * Layer: test support. The promote role's three-site scenario (issue 17):
 * W runs the Consul TEST DOUBLE inside its namespace, listening on W's lab
 * addresses; A and B run `vigil run` with the promote role, each reaching
 * the double over its own link to W. The promote/demote commands are
 * marker-writing stand-ins: each appends `<ns epoch> <site> <step>` to one
 * timeline file, and the promote steps start a tiny TCP "service" on the
 * site's A–B address that the peer's probe sees (the demote step stops it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { BIN, ROOT, scratchDir } from './vigil';
import { childEnv, writeAgentConfig } from './consul-double';
import { createSitesLab, readText, type SitesLab } from './sites-lab';

/** The timings of a scenario. */
export interface Timing { ttlMs: number; lockDelayMs: number; renewMs: number; retries: number; demoteTimeoutMs: number; checkMs: number }
/** TTL, lock-delay and renewal the scenarios use (the config's floors: 10 s TTL, 15 s lock-delay). */
export const TIMING: Timing = { ttlMs: 10_000, lockDelayMs: 15_000, renewMs: 2000, retries: 1, demoteTimeoutMs: 3000, checkMs: 1000 };
/** Latest a surviving site promotes after the holder is cut off: 2 × TTL (server invalidation) + lock-delay + checks. */
export const TAKEOVER_BOUND_MS = 2 * TIMING.ttlMs + TIMING.lockDelayMs + 5 * TIMING.checkMs + 5000;
const SERVICE_PORT = 7070;

/** One timeline entry. */
export interface Mark { atMs: number; site: string; what: string }

/** A running scenario. */
export interface Scenario {
  lab: SitesLab;
  dir: string;
  timeline(): Mark[];
  /** Marks of a site, `what` only. */
  whats(site: string): string[];
  logs(site: 'a' | 'b'): string;
  /** Last log lines of both daemons, for failure messages. */
  tails(): string;
  start(site: 'a' | 'b', over?: Record<string, unknown>): void;
  /** Write a site's config file (as start() does) without starting it; returns its path. */
  configFile(site: 'a' | 'b', over?: Record<string, unknown>): string;
  /** A shell command appending `<ns epoch> <site> <what>` to the timeline, as the stand-in steps do. */
  markCmd(site: 'a' | 'b', what: string): string;
  /** The site's step journal (`journal_dir/NAME.json`), or undefined while there is none. */
  journal(site: 'a' | 'b'): { phase: string; steps: { name: string; status: string }[] } | undefined;
  /** Run `vigil ARGS -c <the site's config>` to completion inside the site's namespace. */
  cli(site: 'a' | 'b', args: string[], timeoutMs?: number): Promise<{ code: number | null; stdout: string; stderr: string }>;
  kill(site: 'a' | 'b', signal?: NodeJS.Signals): void;
  readyFile(site: 'a' | 'b'): string;
  stop(): Promise<void>;
  /** The double's unix socket (reachable from outside W's namespace: control channel). */
  doubleSocket: string;
  /** SIGSTOP / SIGCONT a site's daemon. */
  signal(site: 'a' | 'b', signal: NodeJS.Signals): void;
  /** The unix socket of a site's metrics listener. */
  metricsSocket(site: 'a' | 'b'): string;
}

const sh = (script: string): string[] => ['/bin/sh', '-c', script];

/** Build the lab and start the double in W. Daemons start with {@link Scenario.start}. */
export async function startScenario(t: { teardown(fn: () => unknown): void }, tag: string, timing: Timing = TIMING): Promise<Scenario> {
  const TIMING = timing;
  const lab = await createSitesLab();
  const dir = scratchDir(`promote-${tag}`);
  const procs: Record<string, { kill(s?: NodeJS.Signals): void; out: string; pid: number }> = {};
  const timelineFile = path.join(dir, 'timeline');
  const w = lab.site('w');
  const doubleDir = path.join(dir, 'double');
  fs.mkdirSync(doubleDir);
  writeAgentConfig(doubleDir, { node_name: 'w', server: true, retry_join: [w.addr.a!], session_ttl_min: '1s' });
  const doubleSocket = path.join(dir, 'double.sock');
  // From the source tree, so the bench (run from dist/, where the double's .js files are not copied) finds it too.
  const server = path.join(ROOT, 'test', 'support', 'consul-double', 'server.js');
  const dbl = w.spawn([process.execPath, server, 'agent', '-config-dir', doubleDir, '-host', '0.0.0.0', '-port', '8500', '-unix', doubleSocket], childEnv());
  let dblOut = '';
  dbl.stdout!.on('data', (c: Buffer) => { dblOut += c.toString(); });
  dbl.stderr!.on('data', (c: Buffer) => { dblOut += c.toString(); });
  const stop = async () => {
    for (const p of Object.values(procs)) p.kill('SIGKILL');
    // A promote step starts the site's service in the background (its demote step kills it):
    // a test that ends while a site is promoted must not leave that service running.
    for (const name of ['a', 'b']) {
      const pid = Number(readText(path.join(dir, `${name}.svc.pid`)).trim());
      if (pid > 0) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    await lab.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  t.teardown(stop);
  // The double is up when it printed its JSON line.
  for (let i = 0; i < 100 && !dblOut.includes('"double"'); i++) await new Promise((r) => setTimeout(r, 50));
  if (!dblOut.includes('"double"')) throw new Error(`the Consul double did not start in W within 5 s: ${dblOut}`);

  const markCmd = (name: string, what: string) => `echo "$(date +%s%N) ${name} ${what} $VIGIL_LEASE_INDEX" >> ${timelineFile}`;
  const configFor = (name: 'a' | 'b', over: Record<string, unknown>) => {
    const me = lab.site(name);
    const peer = name === 'a' ? 'b' : 'a';
    const peerAddr = lab.site(peer).addr[name]!;
    const mark = (what: string) => markCmd(name, what);
    const pidf = path.join(dir, `${name}.svc.pid`);
    const serve = `${process.execPath} -e "require('net').createServer((s)=>s.end()).listen(${SERVICE_PORT},'${me.addr[peer]}')" </dev/null >/dev/null 2>&1 & echo $! > ${pidf}`;
    return {
      node: name,
      pidfile: path.join(dir, `${name}.pid`),
      state_dir: path.join(dir, `${name}-state`),
      log: { level: 'debug' },
      metrics: { listen: path.join(dir, `${name}-metrics.sock`) },
      promote: {
        name: 'mail', site: name, peer, mode: 'auto', witness_sites: 3,
        consul: { url: `http://${w.addr[name]}:8500`, timeout: '1s' },
        ttl: `${TIMING.ttlMs / 1000}s`, lock_delay: `${TIMING.lockDelayMs / 1000}s`, renew_interval: `${TIMING.renewMs / 1000}s`,
        retries: TIMING.retries, demote_timeout: `${TIMING.demoteTimeoutMs / 1000}s`, check_interval: `${TIMING.checkMs / 1000}s`,
        journal_dir: path.join(dir, `${name}-journal`),
        peer_probes: [{ kind: 'tcp', host: peerAddr, port: SERVICE_PORT, timeout: `${Math.min(500, TIMING.checkMs)}ms` }],
        ready: [],
        promote_steps: [
          { name: 'p1', command: sh(mark('p1')), timeout: '5s' },
          { name: 'p2', command: sh(`${mark('p2')}; ${serve}`), timeout: '5s' },
        ],
        demote_steps: [{ name: 'd1', command: sh(`kill $(cat ${pidf} 2>/dev/null) 2>/dev/null; rm -f ${pidf}; ${mark('d1')}`), timeout: '2s' }],
        ...over,
      },
    };
  };
  const sc: Scenario = {
    lab, dir,
    timeline() {
      return readText(timelineFile).trim().split('\n').filter(Boolean).map((l) => {
        const [ns, site, what] = l.split(' ');
        return { atMs: Number(BigInt(ns!) / 1_000_000n), site: site!, what: what! };
      });
    },
    whats(site) { return sc.timeline().filter((m) => m.site === site).map((m) => m.what); },
    logs(site) { return procs[site]?.out ?? ''; },
    tails() {
      const tail = (s: string) => s.trim().split('\n').slice(-15).join('\n');
      return `\n--- A's last log lines:\n${tail(sc.logs('a'))}\n--- B's last log lines:\n${tail(sc.logs('b'))}\n--- timeline:\n${readText(timelineFile)}`;
    },
    readyFile(site) { return path.join(dir, `${site}.ready`); },
    configFile(name, over = {}) {
      const file = path.join(dir, `${name}.yml`);
      fs.writeFileSync(file, stringify(configFor(name, over)), { mode: 0o600 });
      return file;
    },
    markCmd,
    metricsSocket(name) { return path.join(dir, `${name}-metrics.sock`); },
    journal(name) {
      const text = readText(path.join(dir, `${name}-journal`, 'mail.json'));
      try { return text ? JSON.parse(text) : undefined; } catch { return undefined; }
    },
    cli(name, args, timeoutMs = 30_000) {
      return lab.site(name).exec([process.execPath, BIN, ...args, '-c', path.join(dir, `${name}.yml`)], timeoutMs);
    },
    start(name, over = {}) {
      const file = sc.configFile(name, over);
      const p = lab.site(name).spawn([process.execPath, BIN, 'run', '-c', file]);
      const entry = { pid: p.pid!, out: '', kill: (s: NodeJS.Signals = 'SIGTERM') => { try { process.kill(-p.pid!, s); } catch { /* gone */ } } };
      p.stdout!.on('data', (c: Buffer) => { entry.out += c.toString(); });
      p.stderr!.on('data', (c: Buffer) => { entry.out += c.toString(); });
      procs[name] = entry;
    },
    kill(name, signal = 'SIGKILL') { procs[name]?.kill(signal); },
    doubleSocket,
    signal(name, signal) {
      // `ip netns exec` execs the program, so the spawned pid is vigil's own.
      const e = procs[name];
      if (e) { try { process.kill(e.pid, signal); } catch { /* gone */ } }
    },
    stop,
  };
  return sc;
}

/** Wait until `cond` holds, or fail saying what was expected by when, with both daemons' last lines. */
export async function until(sc: Scenario, cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`expected ${what} within ${timeoutMs} ms${sc.tails()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Hold for `ms` and fail at once if `bad` becomes true. */
export async function never(sc: Scenario, bad: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (bad()) throw new Error(`${what} happened within ${ms} ms, expected never${sc.tails()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
