/**
 * Layer: test support. A three-"site" lab for the promote role: network
 * namespaces A, B and W with one point-to-point link per pair (a veth pair
 * each), so any single link can be cut on its own — the shared-bridge lab
 * (lab.ts) can only cut a host from everyone.
 *
 *   [vgXXXXXX-a] aw ──── wa [vgXXXXXX-w]     A–W 10.X.Y.1/30 – .2
 *   [vgXXXXXX-b] bw ──── wb [vgXXXXXX-w]     B–W 10.X.Y.5/30 – .6
 *   [vgXXXXXX-a] ab ──── ba [vgXXXXXX-b]     A–B 10.X.Y.9/30 – .10
 *
 * Namespace names follow lab.ts's `vgXXXXXX-name` form, so its
 * cleanupStaleLabs removes what a crashed run left behind; destroy() (and a
 * process exit hook) removes them normally. Test code may spawn (`ip`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { killNsPidsSync } from './lab';

/** A site: its namespace and its address on each of its two links. */
export interface Site {
  name: 'a' | 'b' | 'w';
  ns: string;
  /** Address of this site on the link to `peer`. */
  addr: Record<string, string>;
  /** Start a long-running process in the namespace (own process group; killed by destroy()). */
  spawn(argv: string[], env?: NodeJS.ProcessEnv): ChildProcess;
  exec(argv: string[], timeoutMs?: number): Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** The lab. */
export interface SitesLab {
  prefix: string;
  site(name: 'a' | 'b' | 'w'): Site;
  /** Cut the link between two sites (silently: frames are dropped, links and routes stay), or heal it. */
  cut(x: string, y: string): Promise<void>;
  heal(x: string, y: string): Promise<void>;
  destroy(): Promise<void>;
}

const LINKS: [string, string, number][] = [['a', 'w', 0], ['b', 'w', 4], ['a', 'b', 8]];

function ipSync(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: exit ${r.status}: ${(r.stderr ?? '').trim()}`);
}

const live = new Set<() => void>();
let hooked = false;

/** Build the lab. If creation fails, whatever was created is removed before the error is thrown. */
export async function createSitesLab(): Promise<SitesLab> {
  const prefix = `vg${randomBytes(3).toString('hex')}`;
  const base = `10.${100 + (randomBytes(1)[0]! % 128)}.${randomBytes(1)[0]}`;
  const ns = (n: string) => `${prefix}-${n}`;
  const children = new Set<ChildProcess>();
  const created: string[] = [];
  const destroySync = () => {
    for (const c of children) { if (c.pid) { try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ } } }
    children.clear();
    // Every process still in a site (a promote step's background service whose pid file a
    // re-run step overwrote, say) dies with it: a deleted namespace lives on while one is inside.
    for (const n of created.splice(0)) { killNsPidsSync(n); spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore', timeout: 5000 }); }
    live.delete(destroySync);
  };
  live.add(destroySync);
  if (!hooked) { hooked = true; process.on('exit', () => { for (const d of [...live]) d(); }); }
  const addr: Record<string, Record<string, string>> = { a: {}, b: {}, w: {} };
  try {
    for (const n of ['a', 'b', 'w']) {
      ipSync(['netns', 'add', ns(n)]);
      created.push(ns(n));
      spawnSync('ip', ['netns', 'exec', ns(n), 'sh', '-c', 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6'], { stdio: 'ignore' });
      ipSync(['-n', ns(n), 'link', 'set', 'lo', 'up']);
    }
    for (const [x, y, off] of LINKS) {
      ipSync(['-n', ns(x), 'link', 'add', `${x}${y}`, 'type', 'veth', 'peer', 'name', `${y}${x}`, 'netns', ns(y)]);
      addr[x]![y] = `${base}.${off + 1}`;
      addr[y]![x] = `${base}.${off + 2}`;
      ipSync(['-n', ns(x), 'addr', 'add', `${addr[x]![y]}/30`, 'dev', `${x}${y}`]);
      ipSync(['-n', ns(y), 'addr', 'add', `${addr[y]![x]}/30`, 'dev', `${y}${x}`]);
      ipSync(['-n', ns(x), 'link', 'set', `${x}${y}`, 'up']);
      ipSync(['-n', ns(y), 'link', 'set', `${y}${x}`, 'up']);
    }
  } catch (e) {
    destroySync();
    throw e;
  }
  const site = (n: 'a' | 'b' | 'w'): Site => ({
    name: n, ns: ns(n), addr: addr[n]!,
    spawn(argv, env) {
      const c = spawn('ip', ['netns', 'exec', ns(n), ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env, detached: true });
      children.add(c);
      c.once('exit', () => children.delete(c));
      return c;
    },
    exec(argv, timeoutMs = 10_000) {
      const r = spawnSync('ip', ['netns', 'exec', ns(n), ...argv], { encoding: 'utf8', timeout: timeoutMs });
      return Promise.resolve({ code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' });
    },
  });
  const link = (x: string, y: string): [string, string] => (LINKS.some(([p, q]) => p === x && q === y) ? [x, y] : [y, x]);
  // A cut keeps both links up and their routes in place (a WAN cut does not remove the route either):
  // each end's neighbour entry for the other points at a MAC nobody has, so every frame is dropped
  // by the receiver as not addressed to it, and senders see silence, not an error.
  const setLink = (x: string, y: string, cut: boolean) => {
    const [p, q] = link(x, y);
    for (const [me, other] of [[p, q], [q, p]] as const) {
      const dev = `${me}${other}`;
      const peerIp = addr[other]![me]!;
      ipSync(cut
        ? ['-n', ns(me), 'neigh', 'replace', peerIp, 'lladdr', '02:00:5e:00:53:ff', 'nud', 'permanent', 'dev', dev]
        : ['-n', ns(me), 'neigh', 'del', peerIp, 'dev', dev]);
    }
  };
  return {
    prefix,
    site,
    async cut(x, y) { setLink(x, y, true); },
    async heal(x, y) { setLink(x, y, false); },
    async destroy() {
      for (const c of children) { if (c.pid) { try { process.kill(-c.pid, 'SIGTERM'); } catch { /* gone */ } } }
      await new Promise((r) => setTimeout(r, 300));
      destroySync();
    },
  };
}

/** Read a file or '' (timelines written by the stand-ins). */
export function readText(file: string): string {
  try { return fs.readFileSync(file, 'utf8'); } catch { return ''; }
}
