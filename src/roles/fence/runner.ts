/**
 * Layer: role runner. Drives the pure self-fencing machine (machine.ts):
 * polls the local Consul agents over HTTP each cycle, supervises the agents
 * vigil was asked to run, checks the host's own network (netlink carrier and
 * neighbours, ARP reachability) when every server is gone, rejoins, pets the
 * hardware watchdog, and runs the fence actions. No spawn in the cycle: the
 * only processes started are the operator's agents and fence actions.
 */
import { performance } from 'node:perf_hooks';
import type { FenceConfig, AgentConfig } from './config';
import { flushLog, type Logger } from '../../log';
import { ConfigError, VigilError, errorMessage } from '../../errors';
import { ConsulClient, type ConsulMember } from '../../consul/client';
import type { PingResult } from '../../net/icmp/pinger';
import { readSecureFile } from '../../config/permissions';
import { runCommand, describeCommand } from '../../actions/commands';
import { Supervised } from '../../actions/supervisor';
import { parseCidr } from '../../util/ip';
import { setRoleState } from '../../metrics';
import {
  fenceTransition, initialFenceState, type AgentObservation, type FenceEffect, type FenceEvent, type FenceState,
  type InterfaceObservation,
} from './machine';

/** One neighbour-table entry: its address and NUD states (e.g. ['STALE'], ['FAILED']). */
export interface NeighbourEntry { ip: string; state: string[] }

/**
 * The fence role's state as the metrics name it: `waiting` until some agent
 * has seen servers (nothing can be lost before), `armed`, `suspect` while
 * isolated cycles are being counted, then the machine's own phases.
 */
export function fenceMetricState(s: FenceState): string {
  if (s.phase !== 'running') return s.phase;
  return !s.seenServers ? 'waiting' : s.count > 0 ? 'suspect' : 'armed';
}

/** Outcome of one ARP probe. Tri-state: a probe that could not be made is not silence. */
export type ProbeOutcome = { status: 'answered'; mac: string; rttMs: number } | { status: 'silent' } | { status: 'error'; error: string };

/** Outcome of one ICMP echo: the pinger's own tri-state result. */
export type PingOutcome = PingResult;

/**
 * Network facts the runner needs; netlink and ARP in production, injectable
 * in tests. A method that throws counts as an error, never as evidence.
 */
export interface FenceNet {
  /** Carrier of an interface; undefined when netlink says it does not exist. */
  carrier(iface: string): Promise<boolean | undefined>;
  /** IPv4 addresses (with prefix) on an interface. */
  addresses(iface: string): Promise<{ address: string; prefix: number }[]>;
  /** Interface holding `ip`, if any. */
  interfaceOf(ip: string): Promise<string | undefined>;
  /** Neighbour entries on an interface (any state: the probe decides), in netlink dump order. */
  neighbours(iface: string): Promise<NeighbourEntry[]>;
  /** One ARP probe on `iface`. */
  probe(iface: string, ip: string, timeoutMs: number): Promise<ProbeOutcome>;
  /** One ICMP echo to a routed address (off every local subnet). */
  ping(ip: string, timeoutMs: number): Promise<PingOutcome>;
  close(): void;
}

/** Hardware watchdog operations (native in production). */
export interface WatchdogOps {
  open(path: string, timeoutS: number): number;
  pet(fd: number): void;
  close(fd: number, disarm: boolean): void;
}

interface AgentRt {
  cfg: AgentConfig;
  client: ConsulClient;
  supervised?: Supervised;
  last?: AgentObservation;
  servers: string[];
  membersAgeCycles: number;
}

/**
 * Most neighbour-table entries probed per interface per check (bounded work).
 * Server addresses are probed on top of these, all of them and first: a full
 * table of dead neighbours must never crowd out the live server.
 */
const MAX_NEIGHBOURS = 16;
/** Neighbour states that say the entry did not resolve lately: probed last. */
const UNRESOLVED_STATES = ['FAILED', 'INCOMPLETE'];
/** Healthy cycles between refreshes of the server member list. */
const MEMBERS_REFRESH_CYCLES = 6;

/**
 * What to probe on one interface, in order: every last-known or `join`
 * server address on its subnets, then up to MAX_NEIGHBOURS neighbours
 * (REACHABLE first, FAILED/INCOMPLETE last, else dump order). Never the
 * host's own addresses.
 */
function candidatesFor(servers: string[], neighbours: NeighbourEntry[], own: Set<string>): string[] {
  const rank = (n: NeighbourEntry) => (n.state.includes('REACHABLE') ? 0 : n.state.some((x) => UNRESOLVED_STATES.includes(x)) ? 2 : 1);
  const first = [...new Set(servers)].filter((ip) => !own.has(ip));
  const taken = new Set(first);
  // Array.prototype.sort is stable: equal ranks keep the dump order.
  const rest = [...neighbours].sort((a, b) => rank(a) - rank(b)).map((n) => n.ip).filter((ip) => !own.has(ip) && !taken.has(ip));
  return [...first, ...[...new Set(rest)].slice(0, MAX_NEIGHBOURS)];
}

/**
 * The agent's HTTP port refuses connections: nothing listens there, so no
 * agent is running on it. A timeout or any other error may be an agent that
 * is alive but hung or slow, and starting a second one would duplicate it.
 */
function nothingListens(e: unknown): boolean {
  return e instanceof VigilError && e.code === 'ECONSULUNREACHABLE' && e.detail?.errno === 'ECONNREFUSED';
}

/**
 * The kernel refused an echo for want of a path (ENETUNREACH, EHOSTUNREACH;
 * raw-socket reports strerror text): that is an answer about the network,
 * evidence like a carrier down, not a check that could not be made.
 */
function noPath(error: string): boolean {
  return /^(Network is unreachable|No route to host)$|ENETUNREACH|EHOSTUNREACH/.test(error);
}

function inSubnet(ip: string, net: { address: string; prefix: number }): boolean {
  const n = (s: string) => s.split('.').reduce((acc, o) => (acc << 8) + Number(o), 0) >>> 0;
  if (net.prefix === 0) return true;
  const mask = (0xffffffff << (32 - net.prefix)) >>> 0;
  return ((n(ip) & mask) >>> 0) === ((n(net.address) & mask) >>> 0);
}

/** The distinct error texts of failed probes, for the log (a few: they are usually all the same). */
function errorsOf(failed: { r: { status: string; error?: string } }[]): string {
  return [...new Set(failed.map((f) => f.r.error ?? 'unknown error'))].slice(0, 3).join('; ');
}

/** Runs the self-fencing role until stopped (or fenced). */
export class FenceRunner {
  private state: FenceState = initialFenceState();
  private cfg: FenceConfig;
  private readonly agents: AgentRt[];
  private cycleTimer?: NodeJS.Timeout;
  private watchdogFd?: number;
  private stopped = false;
  private leaving = false;
  private exitResolve?: (code: number) => void;
  readonly done: Promise<number>;
  lastProgressMs = performance.now();
  private interfaces: string[] = [];

  constructor(cfg: FenceConfig, private readonly net: FenceNet, private readonly log: Logger, private readonly watchdog?: WatchdogOps) {
    this.cfg = cfg;
    this.agents = cfg.agents.map((a) => this.makeAgent(a));
    this.done = new Promise((r) => { this.exitResolve = r; });
  }

  private makeAgent(a: AgentConfig): AgentRt {
    const token = a.tokenFile ? readSecureFile(a.tokenFile, 'key', { label: 'token file' }).trim() : undefined;
    return {
      cfg: a,
      client: new ConsulClient({ url: a.url, timeoutMs: this.cfg.requestTimeoutMs, ...(token ? { token } : {}) }),
      ...(a.command ? { supervised: new Supervised(a.name, a.command, this.log) } : {}),
      servers: [],
      membersAgeCycles: MEMBERS_REFRESH_CYCLES,
    };
  }

  /** Resolve interfaces, open the watchdog, start agents that do not answer, run the first cycle. */
  async start(): Promise<void> {
    this.interfaces = await this.resolveInterfaces();
    if (this.cfg.watchdog && this.watchdog) {
      this.watchdogFd = this.watchdog.open(this.cfg.watchdog.device, Math.max(1, Math.round(this.cfg.watchdog.timeoutMs / 1000)));
      this.log.info({ device: this.cfg.watchdog.device, timeoutMs: this.cfg.watchdog.timeoutMs }, 'hardware watchdog armed');
    }
    // Adopt agents that already answer; start the supervised ones where nothing listens.
    await Promise.all(this.agents.map(async (a) => {
      if (!a.supervised) return;
      const err = await a.client.self().then(() => undefined, (e: unknown) => e ?? new Error('unknown error'));
      if (err === undefined) this.log.info({ agent: a.cfg.name }, 'agent already answers: adopted, not started');
      else if (nothingListens(err)) a.supervised.ensureRunning();
      else this.log.warn({ agent: a.cfg.name, err: errorMessage(err) }, 'agent does not answer but something listens on its port (hung?): adopted, not started');
    }));
    this.log.info({ agents: this.agents.map((a) => ({ name: a.cfg.name, url: a.cfg.url, supervised: !!a.supervised })), interfaces: this.interfaces, checkIntervalMs: this.cfg.checkIntervalMs, confirmCycles: this.cfg.confirmCycles, dryRun: this.cfg.dryRun }, 'self-fencing started');
    this.scheduleCycle(0);
  }

  private async resolveInterfaces(): Promise<string[]> {
    if (this.cfg.interfaces && this.cfg.interfaces.length > 0) return [...this.cfg.interfaces];
    const found = new Set<string>();
    for (const a of this.agents) {
      const host = new URL(a.cfg.url).hostname;
      const iface = parseCidr(host) ? await this.net.interfaceOf(host) : undefined;
      if (iface && iface !== 'lo') found.add(iface);
    }
    if (found.size === 0) {
      throw new ConfigError('fence.interfaces is not set and no agent URL is an address on a non-loopback interface; set fence.interfaces');
    }
    return [...found];
  }

  /** Stop: close the watchdog cleanly (magic close), leave agents running. */
  stop(): void {
    this.feed({ type: 'stop', nowMs: performance.now() });
  }

  /** `vigil leave`: every agent leaves its cluster gracefully. */
  async leave(): Promise<{ agent: string; ok: boolean; error?: string }[]> {
    // Agents that left shut down: they must not be restarted on the way out.
    this.leaving = true;
    return Promise.all(this.agents.map(async (a) => {
      try {
        await a.client.leave();
        this.log.warn({ agent: a.cfg.name }, 'agent left its cluster (vigil leave)');
        return { agent: a.cfg.name, ok: true };
      } catch (e) {
        return { agent: a.cfg.name, ok: false, error: errorMessage(e) };
      }
    }));
  }

  /** Why `next` cannot apply live, or undefined. */
  canReload(next: FenceConfig): string | undefined {
    if (JSON.stringify(next.agents) !== JSON.stringify(this.cfg.agents)) return 'changing fence.agents needs a restart (vigil restart)';
    if (JSON.stringify(next.watchdog) !== JSON.stringify(this.cfg.watchdog)) return 'changing fence.watchdog needs a restart (vigil restart)';
    return undefined;
  }

  /** Apply timings, actions, dry_run and interfaces. */
  reload(next: FenceConfig): void {
    this.cfg = next;
    if (next.interfaces && next.interfaces.length > 0) this.interfaces = [...next.interfaces];
  }

  /** For `vigil status`. */
  status(): Record<string, unknown> {
    const s = this.state;
    return {
      phase: s.phase, verdict: s.lastVerdict ?? 'starting', fenceCount: s.count, confirmCycles: this.cfg.confirmCycles,
      seenServers: s.seenServers, cycles: s.cycles, dryRun: this.cfg.dryRun, wouldFence: s.wouldFence, interfaces: this.interfaces,
      agents: this.agents.map((a) => ({ name: a.cfg.name, url: a.cfg.url, state: a.last ?? { kind: 'not polled yet' }, knownServerAddrs: a.servers, ...(a.supervised ? { process: a.supervised.info() } : {}) })),
      ...(s.lastNetwork ? { lastNetwork: s.lastNetwork } : {}),
    };
  }

  private scheduleCycle(afterMs: number): void {
    if (this.stopped) return;
    if (this.cycleTimer) clearTimeout(this.cycleTimer);
    this.cycleTimer = setTimeout(() => { void this.cycle(); }, afterMs);
  }

  private async cycle(): Promise<void> {
    const agents = await Promise.all(this.agents.map((a) => this.observe(a)));
    this.feed({ type: 'observed', nowMs: performance.now(), agents });
  }

  private async observe(a: AgentRt): Promise<AgentObservation> {
    let obs: AgentObservation;
    try {
      const self = await a.client.self();
      if (self.server) obs = { name: a.cfg.name, kind: 'server' };
      else if (self.knownServers === undefined) obs = { name: a.cfg.name, kind: 'unknown', reason: 'client without Stats.consul.known_servers' };
      else obs = { name: a.cfg.name, kind: 'client', knownServers: self.knownServers, ...(self.serfMembers !== undefined ? { serfMembers: self.serfMembers } : {}), ...(self.serfFailed !== undefined ? { serfFailed: self.serfFailed } : {}) };
    } catch (e) {
      obs = { name: a.cfg.name, kind: 'unknown', reason: errorMessage(e) };
      // (Re)start only when nothing listens on the agent's port: a hung or slow
      // agent, adopted or ours, is left alone (a second one would duplicate it).
      // ensureRunning() also refuses while our own child is alive (still
      // starting up) and applies the backoff.
      if (a.supervised && !this.leaving && nothingListens(e) && a.supervised.ensureRunning()) {
        this.log.warn({ agent: a.cfg.name, reason: obs.reason }, 'agent refuses connections and no process of ours runs: (re)started');
      }
    }
    if (obs.kind !== 'unknown') a.supervised?.resetBackoff();
    if (obs.kind === 'client' && obs.knownServers > 0) {
      // While healthy, remember the servers: the addresses to rejoin and to probe later.
      a.membersAgeCycles++;
      if (a.membersAgeCycles >= MEMBERS_REFRESH_CYCLES || a.servers.length === 0) {
        a.membersAgeCycles = 0;
        try {
          const members: ConsulMember[] = await a.client.members();
          const servers = members.filter((m) => m.role === 'consul' && m.status === 1 && parseCidr(m.addr)).map((m) => m.addr);
          if (servers.length > 0) a.servers = servers;
        } catch (e) {
          this.log.debug({ agent: a.cfg.name, err: errorMessage(e) }, 'members not read');
        }
      }
    }
    a.last = obs;
    return obs;
  }

  private feed(ev: FenceEvent): void {
    const step = fenceTransition(this.state, ev, { confirmCycles: this.cfg.confirmCycles, dryRun: this.cfg.dryRun });
    this.state = step.state;
    setRoleState('fence', fenceMetricState(step.state));
    this.lastProgressMs = performance.now();
    for (const eff of step.effects) this.execute(eff);
  }

  private execute(eff: FenceEffect): void {
    switch (eff.type) {
      case 'scheduleCycle': this.scheduleCycle(this.cfg.checkIntervalMs); return;
      case 'petWatchdog':
        if (this.watchdogFd !== undefined && this.watchdog) {
          try { this.watchdog.pet(this.watchdogFd); } catch (e) { this.log.error({ err: errorMessage(e) }, 'watchdog pet failed'); }
        }
        return;
      case 'checkNetwork':
        void this.checkNetwork().then((interfaces) => this.feed({ type: 'networkChecked', nowMs: performance.now(), interfaces }));
        return;
      case 'rejoin': void this.rejoin(); return;
      case 'fence': void this.fence(); return;
      case 'log': this.log[eff.level](eff.data ?? {}, eff.msg); return;
      case 'exit': this.shutdown(); this.exitResolve?.(eff.code); return;
    }
  }

  /** Is this host's own network alive? Carrier, then a neighbour answering ARP. */
  private async checkNetwork(): Promise<InterfaceObservation[]> {
    const serverAddrs = [...new Set(this.agents.flatMap((a) => [...(a.cfg.join ?? []), ...a.servers]))];
    // One address read per interface, shared by the routed test below and the link checks.
    const subnets = this.interfaces.map((i) => this.net.addresses(i));
    const subnetsByIface = await Promise.all(subnets.map((p) => p.catch(() => [])));
    // Servers behind a router cannot answer ARP; an ICMP echo tells whether the path to them works.
    // All of them: a cluster has a handful of servers, and each is a better witness than any neighbour.
    const routed = serverAddrs.filter((ip) => !subnetsByIface.some((subs) => subs.some((s) => inSubnet(ip, s))));
    const links = this.checkInterfaces(serverAddrs, subnets);
    if (routed.length === 0) return links;
    const pings = await Promise.all(routed.map(async (ip) => {
      const r = await this.net.ping(ip, this.cfg.neighbourProbeTimeoutMs).catch((e: unknown): PingOutcome => ({ status: 'error', error: errorMessage(e) }));
      return { ip, r: r.status === 'error' && noPath(r.error) ? { status: 'silent' } as PingOutcome : r };
    }));
    const iface = 'routed (ICMP)';
    const first = pings.find((p) => p.r.status === 'answered');
    const errors = pings.filter((p) => p.r.status === 'error');
    let routedObs: InterfaceObservation;
    if (first?.r.status === 'answered') routedObs = { iface, carrier: true, probed: routed, answeredBy: { ip: first.ip, mac: '', rttMs: first.r.rttMs } };
    else {
      routedObs = { iface, carrier: true, probed: routed, reason: `none of ${routed.length} routed server addresses answered an ICMP echo within ${this.cfg.neighbourProbeTimeoutMs} ms` };
      if (errors.length > 0) routedObs.error = `${errors.length} of ${routed.length} pings could not be sent: ${errorsOf(errors)}`;
    }
    return [...(await links), routedObs];
  }

  private checkInterfaces(serverAddrs: string[], subnetsOf: Promise<{ address: string; prefix: number }[]>[]): Promise<InterfaceObservation[]> {
    return Promise.all(this.interfaces.map(async (iface, idx): Promise<InterfaceObservation> => {
      try {
        let carrier: boolean | undefined;
        try {
          carrier = await this.net.carrier(iface);
        } catch (e) {
          // A carrier we could not read is not a carrier that is down.
          return { iface, carrier: false, probed: [], reason: 'carrier not read', error: `carrier read failed: ${errorMessage(e)}` };
        }
        // Netlink positively saying "no such link" or "no carrier" is evidence.
        if (carrier === undefined) return { iface, carrier: false, probed: [], reason: 'no such interface' };
        if (!carrier) return { iface, carrier: false, probed: [], reason: 'no carrier' };
        // What could not be read only matters if nothing answers in the end.
        const problems: string[] = [];
        const subnets = await subnetsOf[idx]!.catch((e: unknown) => { problems.push(`addresses not read: ${errorMessage(e)}`); return []; });
        const neigh = await this.net.neighbours(iface).catch((e: unknown) => { problems.push(`neighbours not read: ${errorMessage(e)}`); return [] as NeighbourEntry[]; });
        const own = new Set(subnets.map((s) => s.address));
        const candidates = candidatesFor(serverAddrs.filter((ip) => subnets.some((s) => inSubnet(ip, s))), neigh, own);
        const withProblems = (o: InterfaceObservation): InterfaceObservation => (problems.length > 0 ? { ...o, error: problems.join('; ') } : o);
        if (candidates.length === 0) return withProblems({ iface, carrier: true, probed: [], reason: 'no neighbour or server address to probe' });
        // All at once: the first answer is enough (a non-empty ARP cache alone is not, K-46).
        const answers = await Promise.all(candidates.map(async (ip) => ({
          ip, r: await this.net.probe(iface, ip, this.cfg.neighbourProbeTimeoutMs).catch((e: unknown): ProbeOutcome => ({ status: 'error', error: errorMessage(e) })),
        })));
        const first = answers.find((x) => x.r.status === 'answered');
        if (first?.r.status === 'answered') return { iface, carrier: true, probed: candidates, answeredBy: { ip: first.ip, mac: first.r.mac, rttMs: first.r.rttMs } };
        const errors = answers.filter((x) => x.r.status === 'error');
        if (errors.length > 0) problems.push(`${errors.length} of ${candidates.length} ARP probes could not be made: ${errorsOf(errors)}`);
        return withProblems({ iface, carrier: true, probed: candidates, reason: `none of ${candidates.length} candidates answered ARP within ${this.cfg.neighbourProbeTimeoutMs} ms` });
      } catch (e) {
        return { iface, carrier: false, probed: [], reason: 'check failed', error: `check failed: ${errorMessage(e)}` };
      }
    }));
  }

  /**
   * PUT /v1/agent/join for every address of the configured join list, else of
   * the servers last seen: all of them, in parallel (each bounded by
   * request_timeout), as one accepted join may reach a single partition only.
   */
  private async rejoin(): Promise<void> {
    await Promise.all(this.agents.map(async (a) => {
      const targets = a.cfg.join && a.cfg.join.length > 0 ? [...a.cfg.join] : [...a.servers];
      if (targets.length === 0) {
        this.log.warn({ agent: a.cfg.name }, 'no join list and no server seen: cannot rejoin');
        return;
      }
      await Promise.all(targets.map(async (addr) => {
        try {
          await a.client.join(addr);
          this.log.info({ agent: a.cfg.name, addr }, 'rejoin: join accepted');
        } catch (e) {
          this.log.warn({ agent: a.cfg.name, addr, err: errorMessage(e) }, 'rejoin: join failed');
        }
      }));
    }));
  }

  /** Run the fence actions in order; a failing one does not stop the next. */
  private async fence(): Promise<void> {
    flushLog(); // the evidence is on disk before anything is done to the host
    const results: { action: string; ok: boolean; detail: string }[] = [];
    for (const action of this.cfg.actions) {
      const r = await runCommand(action, { timeoutMs: this.cfg.actionTimeoutMs, name: 'fence.actions' });
      const detail = r.spawnError ? `could not start: ${r.spawnError}` : r.timedOut ? 'timed out' : `exit ${r.code}`;
      results.push({ action: describeCommand(action), ok: r.ok, detail });
      this.log.error({ action: describeCommand(action), ok: r.ok, detail, stdout: r.stdout.trim() || undefined, stderr: r.stderr.trim() || undefined }, 'fence action run');
      flushLog();
    }
    this.feed({ type: 'fenceDone', nowMs: performance.now(), results });
  }

  private shutdown(): void {
    this.stopped = true;
    if (this.cycleTimer) clearTimeout(this.cycleTimer);
    if (this.watchdogFd !== undefined && this.watchdog) {
      try {
        this.watchdog.close(this.watchdogFd, true);
        this.log.info('hardware watchdog disarmed (magic close)');
      } catch (e) {
        this.log.error({ err: errorMessage(e) }, 'watchdog close failed');
      }
      this.watchdogFd = undefined;
    }
    this.net.close();
  }
}
