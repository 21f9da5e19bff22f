/**
 * Layer: bench support. The two HA implementations the benches compare,
 * behind one small driver: vigil (the compiled daemon, `vigil run`) and
 * keepalived (the distribution's binary, VRRP only), each started inside a
 * lab host's network namespace, never in the machine's own.
 *
 * Roles are read from the daemons' own log lines as they arrive (vigil's
 * `role X -> Y`, keepalived's `Entering X STATE`), timestamped on receipt
 * with the bench clock (CLOCK_MONOTONIC): both write their logs unbuffered
 * to a pipe, so receipt is within a millisecond of the transition, and no
 * status polling adds load to the daemons being measured.
 *
 * keepalived runs with `-n` (no daemon fork), `-P` (VRRP only), `-B` (no
 * BFD), `-l -D -G` (detailed log on the console, no syslog) and its own pid
 * files in the bench's scratch directory; its VRRP child is still a forked
 * process (keepalived always runs VRRP in a child), so CPU and memory are
 * taken over the parent and its children.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import type { LabHost } from '../../test/support/lab';
import { writeConfig, startDaemon, daemonStatus } from '../../test/support/vigil';
import { nowNs } from './client';
import { alive, killAll, processTree } from './procstat';

/** Which implementation. */
export type Impl = 'vigil' | 'keepalived';

/** Roles, normalized across implementations. */
export type BenchRole = 'down' | 'init' | 'backup' | 'master' | 'fault' | 'stopping';

/** One role change of one node, on the bench clock. */
export interface RoleEvent { atNs: bigint; role: BenchRole; raw: string }

/** One benchmarked configuration. */
export interface HaConfig {
  impl: Impl;
  /** 'default', 'aggressive', 'advert_int 1', 'advert_int 0.1'. */
  config: string;
  /** vigil: the `vip` timing keys (none = the documented defaults). */
  vip?: Record<string, unknown>;
  /** keepalived: advert_int in seconds. */
  advertInt?: number;
  /**
   * The configuration's detection cycle in ms (vigil check_interval,
   * keepalived advert_int): faults are placed at a uniformly random phase of it.
   */
  cycleMs: number;
  /**
   * The period of the master's upkeep in ms (vigil master_check_interval,
   * where a split brain is seen; keepalived advert_int): heals are placed at
   * a random phase of it.
   */
  upkeepMs: number;
}

/** vigil's documented defaults (etc/vigil.example.yml). */
export const VIGIL_DEFAULT: HaConfig = { impl: 'vigil', config: 'default', cycleMs: 1000, upkeepMs: 2000 };
/**
 * The aggressive timing: one probe per 200 ms at rest (an ARP request and
 * its reply, ~10 frames/s: keepalived advert_int 0.1's wire rate), then a
 * confirmation burst (failure_check_interval 0: each confirming probe goes
 * out when the last one timed out) with the timeout learnt from the round
 * trip, floor probe_timeout_min (default 20 ms), ceiling probe_timeout.
 */
export const VIGIL_AGGRESSIVE: HaConfig = {
  impl: 'vigil', config: 'aggressive', cycleMs: 200, upkeepMs: 2000,
  vip: { check_interval: '200ms', failure_check_interval: '0ms', probe_timeout: '50ms' },
};
/** keepalived, VRRPv3 unicast, advert_int 1 s (its default). */
export const KEEPALIVED_1: HaConfig = { impl: 'keepalived', config: 'advert_int 1', advertInt: 1, cycleMs: 1000, upkeepMs: 1000 };
/** keepalived, VRRPv3 unicast, advert_int 0.1 s (VRRPv3 centiseconds). */
export const KEEPALIVED_01: HaConfig = { impl: 'keepalived', config: 'advert_int 0.1', advertInt: 0.1, cycleMs: 100, upkeepMs: 100 };

/** The four configurations of issue 7, in report order. */
export const ALL_CONFIGS: HaConfig[] = [VIGIL_DEFAULT, VIGIL_AGGRESSIVE, KEEPALIVED_1, KEEPALIVED_01];

/**
 * Not part of the default run (`--only "vigil tuned"`): the aggressive
 * check_interval with the confirming probes 20 ms apart and a fixed 20 ms
 * timeout (the aggressive timing before the learnt timeout and the burst).
 */
export const VIGIL_TUNED: HaConfig = {
  impl: 'vigil', config: 'tuned', cycleMs: 200, upkeepMs: 2000,
  vip: { check_interval: '200ms', failure_check_interval: '20ms', probe_timeout: '20ms', probe_timeout_min: '20ms' },
};

/** Configurations a bench can be asked for by label. */
export const KNOWN_CONFIGS: HaConfig[] = [...ALL_CONFIGS, VIGIL_TUNED];

/** "vigil default", "keepalived advert_int 1". */
export const label = (c: HaConfig): string => `${c.impl} ${c.config}`;
/** A file-name slug: "vigil-default", "keepalived-advert_int-0.1". */
export const slug = (c: HaConfig): string => label(c).replace(/\s+/g, '-');

let keepalivedPath: string | null | undefined;

/** The keepalived binary, or undefined when it is not installed. */
export function findKeepalived(): string | undefined {
  if (keepalivedPath === undefined) {
    keepalivedPath = null;
    for (const d of ['/usr/sbin', '/sbin', '/usr/local/sbin', '/usr/bin', ...(process.env.PATH ?? '').split(':')]) {
      const p = path.join(d, 'keepalived');
      try { fs.accessSync(p, fs.constants.X_OK); keepalivedPath = p; break; } catch { /* next */ }
    }
  }
  return keepalivedPath ?? undefined;
}

/** `keepalived --version`, first line. */
export function keepalivedVersion(): string | undefined {
  const bin = findKeepalived();
  if (!bin) return undefined;
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 5000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0]?.trim();
}

/** What a node needs to know about the cluster. */
export interface ClusterSpec {
  /** The HA IP (the lab's free address), prefix /24 like the lab subnet. */
  haIp: string;
  /** Scratch directory for configs, pid files and logs (removed by the caller). */
  dir: string;
  /** vigil only: an IP file to configure. */
  ipFile?: string;
  /**
   * The HA IP's prefix (default 24, the lab subnet). IPv6 runs (an fd00::/8
   * HA IP) give 64 and `unicastOf`, each host's own IPv6 address, which
   * keepalived's unicast VRRPv3 needs in the HA IP's family.
   */
  prefixLen?: number;
  unicastOf?: (h: LabHost) => string;
}

/** One node of an HA pair: a daemon in a lab host, restartable. */
export class HaNode {
  /** Role changes since the node was created, in order. */
  readonly events: RoleEvent[] = [];
  /** Current role. */
  role: BenchRole = 'down';
  /** The running daemon's process (undefined when down). */
  proc: ChildProcess | undefined;
  /** Resolves when the current process exits. */
  exited: Promise<void> = Promise.resolve();
  /** Log lines kept for diagnosis (the last 200). */
  readonly tail: string[] = [];
  private readonly configFile: string;
  private readonly base: string;

  constructor(readonly cfg: HaConfig, readonly host: LabHost, readonly peer: LabHost, readonly spec: ClusterSpec) {
    this.base = path.join(spec.dir, `${slug(cfg)}-${host.name}`);
    fs.mkdirSync(this.base, { recursive: true, mode: 0o755 });
    this.configFile = cfg.impl === 'vigil' ? this.writeVigilConfig() : this.writeKeepalivedConfig();
  }

  /** The daemon's main pid (vigil's node process; keepalived's parent). */
  get pid(): number | undefined { return this.proc?.pid; }

  private setRole(role: BenchRole, raw: string, atNs = nowNs()): void {
    this.role = role;
    this.events.push({ atNs, role, raw });
  }

  private writeVigilConfig(): string {
    const vip: Record<string, unknown> = { interface: this.host.ifname, address: `${this.spec.haIp}/${this.spec.prefixLen ?? 24}`, ...(this.cfg.vip ?? {}) };
    if (this.spec.ipFile) vip.ip_file = this.spec.ipFile;
    return writeConfig(this.base, 'vigil', {
      node: `bench-${this.host.name}`,
      pidfile: path.join(this.base, 'vigil.pid'),
      state_dir: path.join(this.base, 'state'),
      log: { level: 'info' },
      vip,
    });
  }

  private writeKeepalivedConfig(): string {
    // Both nodes equal (state BACKUP, same priority, nopreempt), like vigil's
    // symmetric nodes: whoever holds the address keeps it; a tie between two
    // masters goes to the higher primary address (RFC 5798 §6.4.3).
    const conf = [
      'global_defs {',
      `  router_id ${this.host.ns}`,
      '  vrrp_version 3',
      '}',
      'vrrp_instance VI_BENCH {',
      '  state BACKUP',
      `  interface ${this.host.ifname}`,
      '  virtual_router_id 51',
      '  priority 100',
      '  nopreempt',
      `  advert_int ${this.cfg.advertInt ?? 1}`,
      `  unicast_src_ip ${this.spec.unicastOf?.(this.host) ?? this.host.ip}`,
      '  unicast_peer {',
      `    ${this.spec.unicastOf?.(this.peer) ?? this.peer.ip}`,
      '  }',
      '  virtual_ipaddress {',
      `    ${this.spec.haIp}/${this.spec.prefixLen ?? 24} dev ${this.host.ifname}`,
      '  }',
      '}',
      '',
    ].join('\n');
    const file = path.join(this.base, 'keepalived.conf');
    fs.writeFileSync(file, conf, { mode: 0o600 });
    return file;
  }

  /**
   * Forget the runtime files of a previous run (pid files, control socket),
   * as a rebooted host's fresh /run would. Needed after a hard kill:
   * keepalived's orphaned VRRP child can linger as a zombie until init
   * reaps it, and keepalived takes its pid file for a running daemon.
   */
  clearRuntimeFiles(): void {
    for (const f of ['keepalived.pid', 'vrrp.pid', 'checkers.pid', 'bfd.pid', 'vigil.pid', 'vigil.sock']) {
      fs.rmSync(path.join(this.base, f), { force: true });
    }
  }

  /** Start the daemon (in the host's namespace). */
  start(): void {
    if (this.proc) throw new Error(`${label(this.cfg)} on ${this.host.name} is already running`);
    let proc: ChildProcess;
    if (this.cfg.impl === 'vigil') {
      proc = startDaemon(this.host, this.configFile, path.join(this.base, 'vigil.pid')).proc;
    } else {
      const bin = findKeepalived();
      if (!bin) throw new Error('keepalived is not installed (apt-get install keepalived)');
      const pid = (n: string) => path.join(this.base, `${n}.pid`);
      proc = this.host.spawn([bin, '-n', '-l', '-D', '-G', '-P', '-B', '-f', this.configFile,
        '-p', pid('keepalived'), '-r', pid('vrrp'), '-c', pid('checkers'), '-b', pid('bfd')]);
    }
    this.proc = proc;
    this.setRole('init', 'started');
    let buf = '';
    const onData = (d: Buffer) => {
      const at = nowNs();
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.onLine(line, at);
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    this.exited = new Promise((resolve) => {
      proc.once('exit', () => {
        if (this.proc === proc) this.proc = undefined;
        this.setRole('down', 'exited');
        resolve();
      });
    });
  }

  private onLine(line: string, at: bigint): void {
    this.tail.push(line);
    if (this.tail.length > 200) this.tail.shift();
    if (this.cfg.impl === 'vigil') {
      if (!line.startsWith('{')) return;
      let o: { msg?: string; to?: string };
      try { o = JSON.parse(line) as { msg?: string; to?: string }; } catch { return; }
      if (typeof o.msg !== 'string' || !o.msg.startsWith('role ') || typeof o.to !== 'string') return;
      const map: Record<string, BenchRole> = { slave: 'backup', master: 'master', stopping: 'stopping', stopped: 'down', inactive: 'init' };
      this.setRole(map[o.to] ?? 'init', o.msg, at);
      return;
    }
    const m = /Entering (MASTER|BACKUP|FAULT) STATE/.exec(line);
    if (m) this.setRole(m[1] === 'MASTER' ? 'master' : m[1] === 'BACKUP' ? 'backup' : 'fault', m[0], at);
    else if (/: Stopping$/.test(line)) this.setRole('stopping', 'Stopping', at);
  }

  /** Graceful stop: SIGTERM, what `vigil stop` sends (keepalived: its priority-0 advert). */
  term(): void { this.proc?.kill('SIGTERM'); }

  /**
   * Hard kill (the host is gone): SIGKILL to the daemon and every process
   * under it (keepalived's VRRP child runs in a session of its own, so a
   * process-group kill would miss it). Resolves when all are gone.
   */
  async kill(): Promise<void> {
    const pid = this.proc?.pid;
    if (!pid) return;
    await killAll(processTree(pid));
    await this.exited;
  }

  /**
   * vigil only: the ARP frames its kernel filter has let through to
   * JavaScript since the daemon started (`roles.vip.arp.delivered` of
   * `vigil status --json`, read over the control socket); undefined for
   * keepalived, a daemon that does not answer, or one without the counter.
   * One status request: read at a window's edges, not polled.
   */
  async arpDelivered(): Promise<number | undefined> {
    if (this.cfg.impl !== 'vigil' || !this.proc) return undefined;
    const st = await daemonStatus(path.join(this.base, 'vigil.pid'));
    const d = (st?.roles as Record<string, any> | undefined)?.vip?.arp?.delivered as unknown;
    return typeof d === 'number' ? d : undefined;
  }

  /** The daemon's processes now (main pid first), for CPU and memory readings. */
  pids(): number[] {
    return this.proc?.pid ? processTree(this.proc.pid) : [];
  }

  /** Stop and wait (SIGTERM, then SIGKILL after `graceMs`). */
  async stop(graceMs = 5000): Promise<void> {
    const p = this.proc;
    if (!p) return;
    p.kill('SIGTERM');
    const tree = processTree(p.pid!);
    const timer = setTimeout(() => { void killAll(processTree(p.pid!)); }, graceMs);
    await this.exited;
    clearTimeout(timer);
    // keepalived's parent waits for its child, but make sure nothing outlives the stop.
    await killAll(tree.filter(alive), 1000);
  }

  /** The role this node had at `atNs` (by its event history). */
  roleAt(atNs: bigint): BenchRole {
    let r: BenchRole = 'down';
    for (const e of this.events) { if (e.atNs > atNs) break; r = e.role; }
    return r;
  }
}

/** Start a pair (a, b) of one configuration. */
export function startPair(cfg: HaConfig, a: LabHost, b: LabHost, spec: ClusterSpec): [HaNode, HaNode] {
  const na = new HaNode(cfg, a, b, spec);
  const nb = new HaNode(cfg, b, a, spec);
  na.start();
  nb.start();
  return [na, nb];
}

/** The pair's master when exactly one node is master and the other backup; else undefined. */
export function soleMaster(nodes: readonly HaNode[]): HaNode | undefined {
  const masters = nodes.filter((n) => n.role === 'master');
  if (masters.length !== 1) return undefined;
  return nodes.every((n) => n === masters[0] || n.role === 'backup') ? masters[0] : undefined;
}
