/**
 * Layer: bench support. The chaos bench's hands: three vigil nodes in a lab,
 * and the faults it makes to them — link cuts, a lossy and delaying relay in a
 * link, kill -9, SIGSTOP, graceful stops, IP-file rewrites, bad reloads — and
 * what it reads back from the world (`ip addr` in every namespace), never
 * from vigil's own log.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import type { Lab, LabHost } from '../../test/support/lab';
import { BIN } from '../../test/support/vigil';
import { HaNode, slug, type HaConfig } from './ha';
import { onLines } from './lines';
import { nowNs } from './client';

const run = promisify(execFile);

/** Package root (bench/lib or dist/bench/lib → the folder with package.json). */
function packageRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 6 && !fs.existsSync(path.join(dir, 'package.json')); i++) dir = path.dirname(dir);
  return dir;
}
const RELAY_PY = path.join(packageRoot(), 'bench', 'lib', 'relay.py');

/** A node of the chaos cluster: the daemon plus what the bench did to it. */
export interface ChaosNode {
  ha: HaNode;
  host: LabHost;
  /** The daemon's config file (rewritten by the bad-reload fault). */
  config: string;
  /** Its control socket: present once the daemon has started. */
  socket: string;
  /** Link cut (no carrier). */
  cut: boolean;
  /** Daemon not running (killed or stopped, not yet restarted). */
  down: boolean;
  /** The relay in its link, while a lossy-link fault lasts. */
  relay?: Relay;
}

/** A relay in a node's link. */
export interface Relay { proc: ChildProcess; vethA: string; vethB: string; brPort: string; done: Promise<string> }

/** Start the three daemons. */
export function startNodes(lab: Lab, cfg: HaConfig, names: string[], spec: { haIp: string; dir: string; ipFile: string }): ChaosNode[] {
  return names.map((n) => {
    const host = lab.host(n);
    const ha = new HaNode(cfg, host, host, spec);
    const base = path.join(spec.dir, `${slug(cfg)}-${n}`);
    ha.start();
    return { ha, host, config: path.join(base, 'vigil.yml'), socket: path.join(base, 'vigil.sock'), cut: false, down: false };
  });
}

/** The addresses (IPv4, no prefix) on a node's eth0, read in its namespace. */
export async function addressesOf(h: LabHost): Promise<Set<string>> {
  const { stdout } = await run('ip', ['-n', h.ns, '-4', '-o', 'addr', 'show', 'dev', h.ifname]).catch(() => ({ stdout: '' }));
  return new Set([...stdout.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1]!));
}

/** Who holds which of `wanted`: node index → the wanted addresses on its interface. */
export async function holdings(nodes: readonly ChaosNode[], wanted: readonly string[]): Promise<string[][]> {
  return Promise.all(nodes.map(async (n) => {
    const have = await addressesOf(n.host);
    return wanted.filter((a) => have.has(a));
  }));
}

/** Exactly one node holds every wanted address and no other node holds any: its index, or undefined. */
export function soleHolder(held: readonly string[][], wanted: readonly string[]): number | undefined {
  const holders = held.map((h, i) => [h, i] as const).filter(([h]) => h.length > 0);
  if (holders.length !== 1) return undefined;
  const [h, i] = holders[0]!;
  return wanted.every((a) => h.includes(a)) ? i : undefined;
}

/** Wait until the restarted daemon's control socket exists (it is opened once every role has started). */
export async function waitStarted(n: ChaosNode, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (fs.existsSync(n.socket)) return true;
    if (!n.ha.proc) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

/** Restart a node that is down (fresh runtime files, as after a reboot). */
export function restart(n: ChaosNode): void {
  n.ha.clearRuntimeFiles();
  n.ha.start();
}

/** SIGSTOP / SIGCONT to every process of the daemon. */
export function signalTree(n: ChaosNode, sig: 'SIGSTOP' | 'SIGCONT'): void {
  for (const pid of n.ha.pids()) { try { process.kill(pid, sig); } catch { /* gone */ } }
}

/** The bridge-side veth end of a host's eth0 (its peer, by ifindex). */
async function bridgePort(lab: Lab, h: LabHost): Promise<string> {
  const { stdout } = await run('ip', ['-n', h.ns, '-o', 'link', 'show', 'dev', h.ifname]);
  const peer = /@if(\d+):/.exec(stdout)?.[1];
  if (!peer) throw new Error(`cannot find the peer of ${h.ns}/${h.ifname}: ${stdout.trim()}`);
  const all = (await run('ip', ['-n', lab.bridgeNs, '-o', 'link', 'show'])).stdout;
  const m = new RegExp(`^${peer}: ([^@:]+)@`, 'm').exec(all);
  if (!m) throw new Error(`no interface ${peer} in ${lab.bridgeNs}`);
  return m[1]!;
}

/**
 * Put a relay in a node's link: its bridge port leaves the bridge, a new veth
 * pair joins it, and relay.py forwards between the two with `loss` and
 * `delayMs` (+ `jitterMs`). Carrier stays up on the node's side.
 */
export async function insertRelay(lab: Lab, n: ChaosNode, idx: number, loss: number, delayMs: number, jitterMs: number, seed: number): Promise<Relay> {
  const brPort = await bridgePort(lab, n.host);
  const vethA = `${lab.prefix}r${idx}a`;
  const vethB = `${lab.prefix}r${idx}b`;
  const ipn = (...args: string[]) => run('ip', ['-n', lab.bridgeNs, ...args]);
  await ipn('link', 'add', vethA, 'type', 'veth', 'peer', 'name', vethB);
  await ipn('link', 'set', vethB, 'master', 'br0');
  for (const i of [vethA, vethB, brPort]) await ipn('link', 'set', i, 'promisc', 'on', 'up');
  await ipn('link', 'set', brPort, 'nomaster');
  const proc = spawn('ip', ['netns', 'exec', lab.bridgeNs, 'python3', RELAY_PY, brPort, vethA, String(loss), String(delayMs), String(jitterMs), String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const ready = new Promise<void>((resolve, reject) => {
    onLines(proc.stdout!, (line) => { out += `${line}\n`; if (line === 'ready') resolve(); });
    proc.once('exit', (code) => reject(new Error(`relay exited (${code}) before it was ready: ${err.trim()}`)));
  });
  const done = new Promise<string>((resolve) => proc.once('exit', () => resolve(`${out}${err}`.trim())));
  await ready;
  const r: Relay = { proc, vethA, vethB, brPort, done };
  n.relay = r;
  return r;
}

/** Take the relay out and put the bridge port back. Returns the relay's own count line. */
export async function removeRelay(lab: Lab, n: ChaosNode): Promise<string> {
  const r = n.relay;
  if (!r) return '';
  n.relay = undefined;
  r.proc.kill('SIGTERM');
  const said = await r.done;
  await run('ip', ['-n', lab.bridgeNs, 'link', 'del', r.vethA]).catch(() => undefined);
  await run('ip', ['-n', lab.bridgeNs, 'link', 'set', r.brPort, 'promisc', 'off', 'master', 'br0']);
  return said.split('\n').pop() ?? '';
}

/** Write the IP file: `addresses` (with /24) and, when asked, a line that is not an address. */
export function writeIpFile(file: string, addresses: readonly string[], badLine?: string): void {
  const lines = ['# chaos bench IP file', ...addresses.map((a) => `${a}/24`), ...(badLine ? [badLine] : [])];
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, `${lines.join('\n')}\n`, { mode: 0o644 });
  fs.renameSync(tmp, file);
}

/** `vigil reload -c FILE`: exit code and output. */
export async function reloadNode(n: ChaosNode): Promise<{ code: number; out: string }> {
  try {
    const r = await run(BIN, ['reload', '-c', n.config]);
    return { code: 0, out: `${r.stdout}${r.stderr}` };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : 1, out: `${x.stdout ?? ''}${x.stderr ?? ''}` };
  }
}

/** Namespaces of this lab still present, and vigil or relay processes of this run still alive. */
export async function leftovers(lab: Lab, dir: string): Promise<string[]> {
  const left: string[] = [];
  const { stdout } = await run('ip', ['netns', 'list']).catch(() => ({ stdout: '' }));
  for (const l of stdout.split('\n')) if (l.startsWith(lab.prefix)) left.push(`namespace ${l.split(' ')[0]}`);
  const ps = (await run('ps', ['-eo', 'pid,args']).catch(() => ({ stdout: '' }))).stdout;
  for (const l of ps.split('\n')) if (l.includes(dir) || (l.includes('relay.py') && l.includes(lab.prefix))) left.push(`process ${l.trim()}`);
  return left;
}

export { nowNs };
