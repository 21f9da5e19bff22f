/**
 * Layer: test support. The network-namespace test lab: N test hosts as
 * network namespaces, each with one veth pair whose other end is a port of a
 * bridge living in its own namespace. Addresses are private (10.X.Y.0/24,
 * X.Y random per run); every kernel name carries a per-run prefix `vgXXXXXX`.
 *
 *   [vgXXXXXX-a] eth0 ──veth── v-a ┐
 *   [vgXXXXXX-b] eth0 ──veth── v-b ┼─ br0  [vgXXXXXX-br]
 *   …                              ┘
 *
 * Nothing is created in the machine's own namespace: the veth pairs are made
 * inside the bridge namespace with their peer placed straight into the host
 * namespace. Teardown happens on destroy(), and — through a process-wide
 * registry of live labs — on exit and on SIGINT/SIGTERM/SIGHUP/SIGALRM (tap's
 * timeout), synchronously.
 * Each lab is also recorded under /run/vigil-lab/ so that
 * {@link cleanupStaleLabs} can remove what a crashed run left behind.
 *
 * Test code may spawn (`ip`, `ping`, …); the no-spawn rule is for vigil's
 * steady-state loop, not for the lab.
 */
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Where each live lab is recorded (pid, creation time, namespaces). */
export const LAB_REGISTRY_DIR = '/run/vigil-lab';
/** An unrecorded lab-named namespace older than this is a leftover. */
export const STALE_LAB_MS = 10 * 60_000;
const LAB_NS_RE = /^vg[0-9a-f]{6}-[a-z0-9]+$/;
const HOST_NAME_RE = /^[a-z][a-z0-9]{0,7}$/;
const DEFAULT_EXEC_TIMEOUT_MS = 10_000;
const KILL_GRACE_MS = 1500;

/** The subset of a tap Test this module needs. */
export interface PlannableTest { plan(end: number, comment?: string): void }

/** Result of {@link LabHost.exec}. `code` is null when the command was killed by a signal (or timed out). */
export interface ExecResult { code: number | null; stdout: string; stderr: string }

/** One test host: a network namespace with `eth0` on the lab bridge. */
export interface LabHost {
  /** Logical name, e.g. 'a'. */
  name: string;
  /** Network namespace name, e.g. 'vg1234ab-a'. */
  ns: string;
  /** '/run/netns/<ns>', for setns(2). */
  nsPath: string;
  /** Interface inside the namespace: 'eth0'. */
  ifname: string;
  /** Its primary address, 10.X.Y.(10+i). */
  ip: string;
  /** 24. */
  prefix: number;
  /** eth0's MAC, lower-case colon hex (fixed per lab and host, locally administered). */
  mac: string;
  /** Run a command in the namespace (`ip netns exec <ns> …`) and collect its output. */
  exec(argv: string[], opts?: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv }): Promise<ExecResult>;
  /**
   * Start a long-running process in the namespace, as the leader of its own
   * process group; destroy() kills the group. stdio defaults to 'pipe'
   * (read or resume the streams, or pass 'ignore', or a busy child blocks).
   */
  spawn(argv: string[], opts?: { env?: NodeJS.ProcessEnv; cwd?: string; stdio?: StdioOptions }): ChildProcess;
  /** Set the bridge-side veth end DOWN: eth0 loses carrier inside the namespace. */
  cutLink(): Promise<void>;
  /** Undo {@link cutLink}; after {@link deleteLink}, recreate the pair with the same MAC and primary address. */
  restoreLink(): Promise<void>;
  /** Delete the host's veth pair: eth0 disappears (the "host gone" fault). */
  deleteLink(): Promise<void>;
  /** Whether eth0 exists, is up and has carrier (LOWER_UP): what a test waits for after {@link restoreLink}. */
  carrierUp(): Promise<boolean>;
  /**
   * Detach the bridge-side veth end from the bridge (`nomaster`): eth0 keeps
   * carrier but every frame is lost (a dead uplink behind an access switch).
   */
  isolate(): Promise<void>;
  /** Undo {@link isolate}. */
  unisolate(): Promise<void>;
  /**
   * Run `fn` synchronously with the main thread inside this namespace
   * (native netnsEnter/netnsRestore), always switching back. Only the
   * synchronous part of `fn` runs inside: open sockets there, await outside.
   */
  inNetns<T>(fn: () => T): T;
}

/** A running lab. */
export interface Lab {
  /** Unique per run: 'vg' + 6 hex digits. */
  prefix: string;
  /** '10.X.Y.0/24'. */
  subnet: string;
  hosts: LabHost[];
  /** The host with that logical name; throws if there is none. */
  host(name: string): LabHost;
  /** The n-th address (0 ≤ n ≤ 54) no host uses, 10.X.Y.(200+n), for HA IPs. */
  freeIp(n: number): string;
  /** Namespace of the bridge `br0`. */
  bridgeNs: string;
  /** Kill tracked processes, delete every namespace. Idempotent. */
  destroy(): Promise<void>;
}

interface RegistryRecord { prefix: string; pid: number; pidStart: string; createdAt: number; subnet: string; namespaces: string[] }

let toolCheck: Map<string, boolean> | undefined;

function hasTool(name: string): boolean {
  toolCheck ??= new Map();
  let ok = toolCheck.get(name);
  if (ok === undefined) {
    const dirs = (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin']);
    ok = dirs.some((d) => {
      try { fs.accessSync(path.join(d, name), fs.constants.X_OK); return true; } catch { return false; }
    });
    toolCheck.set(name, ok);
  }
  return ok;
}

/**
 * Skip the test (one-line reason, `t.plan(0, reason)`) unless running as
 * root; as root, throw when `ip` (or any other of `tools`, e.g. 'ping') is
 * missing, since .ci/run installs them. Returns true when skipped: the
 * caller should return.
 */
export function skipUnlessRoot(t: PlannableTest, tools: string[] = []): boolean {
  let reason: string | undefined;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) reason = 'needs root to create network namespaces';
  else {
    // As root (always so in CI) a missing tool is a failure, never a skip:
    // .ci/run installs every package a test uses.
    const missing = ['ip', ...tools].filter((x) => !hasTool(x));
    if (missing.length) throw new Error(`needs ${missing.join(', ')}: .ci/run installs them (iproute2, iputils-ping, ...)`);
  }
  if (!reason) return false;
  t.plan(0, reason);
  return true;
}

/** Run `ip …`, rejecting with stderr when it fails. */
function ip(args: string[], timeoutMs = DEFAULT_EXEC_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`ip ${args.join(' ')}: ${sig ? `killed by ${sig}` : `exit ${code}`}: ${err.trim()}`));
    });
  });
}

function ownStartTime(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime), counted after the ')' that ends the command name.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

function pidAlive(pid: number, start: string): boolean {
  return start !== '' && ownStartTime(pid) === start;
}

/** Kill every process still inside namespace `ns` (synchronously). */
/** SIGKILL every process in namespace `ns` (a test's background process whose pid was lost, say). */
export function killNsPidsSync(ns: string): void {
  const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 5000 });
  for (const p of (r.stdout ?? '').split(/\s+/).filter(Boolean)) {
    const pid = Number(p);
    if (pid > 1 && pid !== process.pid) { try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ } }
  }
}

function deleteNsSync(ns: string): void {
  if (!fs.existsSync(`/run/netns/${ns}`)) return;
  killNsPidsSync(ns);
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore', timeout: 5000 });
}

// ---- process-wide registry of live labs and the exit/signal hooks ---------

const liveLabs = new Set<LabImpl>();
let hooksInstalled = false;
// SIGALRM is how tap ends a test process that ran past its timeout (SIGKILL follows 500 ms later).
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGALRM'];

function cleanupAllSync(): void {
  for (const lab of [...liveLabs]) lab.destroySync();
}

function onSignal(sig: NodeJS.Signals): void {
  cleanupAllSync();
  // Step aside and deliver the signal again, so the default action (or the
  // next handler, e.g. tap's signal-exit) ends the process as it would have.
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  process.removeListener('exit', cleanupAllSync);
  hooksInstalled = false;
  process.kill(process.pid, sig);
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', cleanupAllSync);
  for (const s of SIGNALS) process.on(s, onSignal);
}

function readRegistry(): Array<{ file: string; rec: RegistryRecord | undefined }> {
  let names: string[];
  try { names = fs.readdirSync(LAB_REGISTRY_DIR); } catch { return []; }
  return names.filter((n) => n.endsWith('.json')).map((n) => {
    const file = path.join(LAB_REGISTRY_DIR, n);
    try { return { file, rec: JSON.parse(fs.readFileSync(file, 'utf8')) as RegistryRecord }; } catch { return { file, rec: undefined }; }
  });
}

/**
 * Remove what crashed runs left behind: labs recorded under
 * /run/vigil-lab/ whose process is gone (killed, crashed), and unrecorded
 * `vgXXXXXX-*` namespaces older than {@link STALE_LAB_MS}. Labs of processes
 * still running are left alone, however old. `prefixes`
 * limits the sweep to those labs (tests use it with a shifted `now`).
 * Returns the namespaces deleted.
 */
export function cleanupStaleLabs(opts: { now?: number; prefixes?: string[] } = {}): string[] {
  const now = opts.now ?? Date.now();
  const inScope = (prefix: string): boolean => !opts.prefixes || opts.prefixes.includes(prefix);
  const removed: string[] = [];
  const kept = new Set<string>();
  for (const { file, rec } of readRegistry()) {
    if (rec && !inScope(rec.prefix)) { for (const ns of rec.namespaces) kept.add(ns); continue; }
    if (!rec && opts.prefixes) continue;
    let stale: boolean;
    if (rec) {
      // A recorded lab belongs to its process for as long as that process lives (pid and start time, so a reused pid does not count).
      stale = !pidAlive(rec.pid, rec.pidStart) && ![...liveLabs].some((l) => l.prefix === rec.prefix);
    } else {
      // Unreadable record: only once it is old, so a record being written right now is never taken for garbage.
      try { stale = now - fs.statSync(file).mtimeMs > STALE_LAB_MS; } catch { stale = false; }
    }
    if (!stale) { for (const ns of rec?.namespaces ?? []) kept.add(ns); continue; }
    for (const ns of rec?.namespaces ?? []) {
      if (fs.existsSync(`/run/netns/${ns}`)) { deleteNsSync(ns); removed.push(ns); }
    }
    try { fs.unlinkSync(file); } catch { /* raced with another cleaner */ }
  }
  let entries: string[] = [];
  try { entries = fs.readdirSync('/run/netns'); } catch { /* no namespaces at all */ }
  for (const ns of entries) {
    if (!LAB_NS_RE.test(ns) || kept.has(ns) || !inScope(ns.slice(0, 8))) continue;
    if ([...liveLabs].some((l) => ns.startsWith(`${l.prefix}-`))) continue;
    let age = 0;
    // The nsfs mount's times are the namespace's creation time.
    try { age = now - fs.statSync(`/run/netns/${ns}`).mtimeMs; } catch { continue; }
    if (age > STALE_LAB_MS) { deleteNsSync(ns); removed.push(ns); }
  }
  return removed;
}

// ---- the lab ---------------------------------------------------------------

interface HostPlan { name: string; index: number; ns: string; brPort: string; ip: string; mac: string }

type NativeNetns = { netnsEnter(path: string): number; netnsRestore(fd: number): void };

function nativeNetns(): NativeNetns {
  // Loaded lazily: only inNetns needs the addon, and the lab works without it.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { native } = require('../../src/native') as { native: () => NativeNetns };
  return native();
}

class LabHostImpl implements LabHost {
  readonly nsPath: string;
  readonly ifname = 'eth0';
  readonly prefix = 24;
  private deleted = false;

  constructor(private readonly lab: LabImpl, private readonly plan: HostPlan) {
    this.nsPath = `/run/netns/${plan.ns}`;
  }

  get name(): string { return this.plan.name; }
  get ns(): string { return this.plan.ns; }
  get ip(): string { return this.plan.ip; }
  get mac(): string { return this.plan.mac; }

  exec(argv: string[], opts: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      const child = spawn('ip', ['netns', 'exec', this.ns, ...argv], {
        stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        env: opts.env ?? process.env,
        detached: true,
      });
      this.lab.track(child);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
      child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
      if (opts.input !== undefined) child.stdin!.end(opts.input);
      const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } },
        opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS);
      child.on('error', (e) => { clearTimeout(timer); reject(e); });
      child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    });
  }

  spawn(argv: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; stdio?: StdioOptions } = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.ns, ...argv], {
      stdio: opts.stdio ?? 'pipe',
      env: opts.env ?? process.env,
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      // Own process group, so destroy() reaches the process and its children.
      detached: true,
    });
    this.lab.track(child);
    return child;
  }

  async cutLink(): Promise<void> {
    await ip(['-n', this.lab.bridgeNs, 'link', 'set', this.plan.brPort, 'down']);
  }

  async restoreLink(): Promise<void> {
    if (this.deleted) {
      await this.lab.createPort(this.plan);
      this.deleted = false;
      return;
    }
    await ip(['-n', this.lab.bridgeNs, 'link', 'set', this.plan.brPort, 'up']);
  }

  async isolate(): Promise<void> {
    await ip(['-n', this.lab.bridgeNs, 'link', 'set', this.plan.brPort, 'nomaster']);
  }

  async unisolate(): Promise<void> {
    await ip(['-n', this.lab.bridgeNs, 'link', 'set', this.plan.brPort, 'master', 'br0']);
  }

  async deleteLink(): Promise<void> {
    await ip(['-n', this.lab.bridgeNs, 'link', 'del', this.plan.brPort]);
    this.deleted = true;
  }

  async carrierUp(): Promise<boolean> {
    const out = await ip(['-n', this.ns, '-o', 'link', 'show', 'dev', 'eth0']).catch(() => '');
    return /[<,]LOWER_UP[,>]/.test(out) && /[<,]UP[,>]/.test(out);
  }

  inNetns<T>(fn: () => T): T {
    const n = nativeNetns();
    const fd = n.netnsEnter(this.nsPath);
    try {
      return fn();
    } finally {
      n.netnsRestore(fd);
    }
  }
}

class LabImpl implements Lab {
  readonly hosts: LabHostImpl[] = [];
  readonly bridgeNs: string;
  private readonly children = new Set<ChildProcess>();
  private readonly namespaces: string[] = [];
  private readonly registryFile: string;
  private destroying: Promise<void> | undefined;
  private destroyed = false;
  private readonly base: string;

  constructor(readonly prefix: string, readonly subnet: string, private readonly plans: HostPlan[]) {
    this.bridgeNs = `${prefix}-br`;
    this.base = subnet.slice(0, subnet.lastIndexOf('.'));
    this.registryFile = path.join(LAB_REGISTRY_DIR, `${prefix}.json`);
    this.namespaces = [this.bridgeNs, ...plans.map((p) => p.ns)];
    for (const p of plans) this.hosts.push(new LabHostImpl(this, p));
  }

  host(name: string): LabHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`lab ${this.prefix} has no host '${name}' (hosts: ${this.hosts.map((x) => x.name).join(', ')})`);
    return h;
  }

  freeIp(n: number): string {
    if (!Number.isInteger(n) || n < 0 || n > 54) throw new RangeError(`freeIp(n): n must be 0..54, got ${n}`);
    return `${this.base}.${200 + n}`;
  }

  track(child: ChildProcess): void {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
  }

  /** Record the lab before creating anything, so a crash mid-way is still found by cleanupStaleLabs. */
  register(): void {
    fs.mkdirSync(LAB_REGISTRY_DIR, { recursive: true, mode: 0o755 });
    const rec: RegistryRecord = {
      prefix: this.prefix, pid: process.pid, pidStart: ownStartTime(process.pid), createdAt: Date.now(),
      subnet: this.subnet, namespaces: this.namespaces,
    };
    // Write then rename, so a concurrent cleanupStaleLabs never reads half a record.
    const tmp = `${this.registryFile}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(rec) + '\n', { mode: 0o644 });
    fs.renameSync(tmp, this.registryFile);
    liveLabs.add(this);
    installHooks();
  }

  async build(): Promise<void> {
    await ip(['netns', 'add', this.bridgeNs]);
    await this.quietIpv6(this.bridgeNs);
    await ip(['-n', this.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge']);
    await ip(['-n', this.bridgeNs, 'link', 'set', 'br0', 'up']);
    await Promise.all(this.plans.map(async (p) => {
      await ip(['netns', 'add', p.ns]);
      await this.quietIpv6(p.ns);
      await ip(['-n', p.ns, 'link', 'set', 'lo', 'up']);
      await this.createPort(p);
    }));
  }

  /**
   * Turn IPv6 off in a lab namespace before its links exist, so the bridge
   * carries only what tests send (no router solicitations, MLD or DAD).
   */
  private async quietIpv6(ns: string): Promise<void> {
    await ip(['netns', 'exec', ns, 'sh', '-c',
      'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; true']);
  }

  /** Create (or recreate) a host's veth pair: bridge port in the bridge ns, eth0 in the host ns. */
  async createPort(p: HostPlan): Promise<void> {
    await ip(['-n', this.bridgeNs, 'link', 'add', p.brPort, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', p.ns]);
    await ip(['-n', this.bridgeNs, 'link', 'set', p.brPort, 'master', 'br0', 'up']);
    await ip(['-n', p.ns, 'link', 'set', 'eth0', 'address', p.mac, 'up']);
    await ip(['-n', p.ns, 'addr', 'add', `${p.ip}/24`, 'brd', '+', 'dev', 'eth0']);
  }

  destroy(): Promise<void> {
    this.destroying ??= this.destroyAsync();
    return this.destroying;
  }

  private async destroyAsync(): Promise<void> {
    const running = [...this.children].filter((c) => c.exitCode === null && c.signalCode === null && c.pid);
    for (const c of running) { try { process.kill(-c.pid!, 'SIGTERM'); } catch { /* gone */ } }
    await Promise.all(running.map((c) => new Promise<void>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) { resolve(); return; }
      const timer = setTimeout(() => { try { process.kill(-c.pid!, 'SIGKILL'); } catch { /* gone */ } resolve(); }, KILL_GRACE_MS);
      c.once('exit', () => { clearTimeout(timer); resolve(); });
    })));
    this.destroySync();
  }

  /** Synchronous teardown, for exit and signal hooks (and the end of destroy()). */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const c of this.children) { if (c.pid) { try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ } } }
    this.children.clear();
    // Host namespaces first: deleting one destroys its eth0 and with it the veth pair.
    for (const ns of [...this.namespaces].reverse()) deleteNsSync(ns);
    try { fs.unlinkSync(this.registryFile); } catch { /* already removed */ }
    liveLabs.delete(this);
  }
}

function randomSubnet(): string {
  const used = new Set(readRegistry().map((r) => r.rec?.subnet));
  for (;;) {
    const b = randomBytes(2);
    // 10.100–10.227: keeps clear of the 10.0–10.99 ranges people tend to use by hand.
    const s = `10.${100 + (b[0]! % 128)}.${b[1]}.0/24`;
    if (!used.has(s)) return s;
  }
}

let staleChecked = false;

/**
 * Build a lab with the given logical host names (1–8 lower-case letters and
 * digits each, e.g. ['a', 'b']). Host i gets eth0 = 10.X.Y.(10+i)/24. If
 * creation fails, whatever was created is removed before the error is thrown.
 */
export async function createLab(opts: { hosts: string[] }): Promise<Lab> {
  const names = opts.hosts;
  if (!Array.isArray(names) || names.length === 0 || names.length > 100) throw new RangeError('createLab: 1 to 100 hosts');
  for (const n of names) {
    if (!HOST_NAME_RE.test(n) || n === 'br') throw new RangeError(`createLab: bad host name '${n}' (1-8 of [a-z0-9], starting with a letter, not 'br')`);
  }
  if (new Set(names).size !== names.length) throw new RangeError('createLab: host names must be unique');
  if (!staleChecked) {
    staleChecked = true;
    try { cleanupStaleLabs(); } catch { /* best effort */ }
  }
  const prefix = `vg${randomBytes(3).toString('hex')}`;
  const subnet = randomSubnet();
  const base = subnet.slice(0, subnet.lastIndexOf('.'));
  const plans: HostPlan[] = names.map((name, index) => ({
    name, index, ns: `${prefix}-${name}`, brPort: `v-${name}`, ip: `${base}.${10 + index}`,
    // Locally administered unicast (02:…), carrying the run prefix and the host index.
    mac: `02:${prefix.slice(2, 4)}:${prefix.slice(4, 6)}:${prefix.slice(6, 8)}:${((index + 1) >> 8).toString(16).padStart(2, '0')}:${((index + 1) & 255).toString(16).padStart(2, '0')}`,
  }));
  const lab = new LabImpl(prefix, subnet, plans);
  lab.register();
  try {
    await lab.build();
  } catch (e) {
    await lab.destroy();
    throw e;
  }
  return lab;
}
