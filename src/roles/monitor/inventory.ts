/**
 * Layer: policy glue (pure). Who is monitored, and with what: the hosts
 * from the config or from KV (os_nova's `compute_nodes/`), each turned into
 * the per-host machine's configuration; and the fleet view the guards need
 * from all machines at once. The runner calls these once per round.
 */
import type { MonitorConfig, MonitorHost, BmcConfig } from './config';
import type { KvInventory } from './kvschema';
import type { GuardInput, SelfView } from './guards';
import type { HostMachineConfig, HostState, Phase } from './machine';

/** A monitored host, whatever its source. KV BMC passwords stay in the KV record (a Secret). */
export interface MonitoredHost {
  name: string;
  nodes: Readonly<Record<string, string>>;
  /** Undefined when the host has no usable BMC: it is watched, never fenced. */
  bmc?: Omit<BmcConfig, 'passwordFile'> & { passwordFile?: string; passwordFrom: 'file' | 'kv' };
  maintenance: boolean;
  source: 'config' | 'kv';
}

/** A host the inventory cannot fence, and why (logged and shown by status). */
export interface InventoryProblem { host: string; text: string }

/** Hosts from the config (inventory.source: config). */
export function hostsFromConfig(cfg: MonitorConfig): MonitoredHost[] {
  return cfg.inventory.hosts.map((h: MonitorHost) => ({
    name: h.name,
    nodes: h.nodes,
    ...(h.bmc ? { bmc: { ...h.bmc, passwordFrom: 'file' as const } } : {}),
    maintenance: h.maintenance,
    source: 'config',
  }));
}

/**
 * Hosts from KV (inventory.source: kv): every decoded compute node, its
 * node name the host name on every network (os_nova has one name), its BMC
 * from `config/bmc/{ip,user,password}` with the configured fence method,
 * its maintenance from vigil's `status/maintenance`. A host without a BMC
 * address, user or password is watched but never fenced.
 */
export function hostsFromKv(cfg: MonitorConfig, inv: KvInventory): { hosts: MonitoredHost[]; problems: InventoryProblem[] } {
  const problems: InventoryProblem[] = [];
  const hosts = Object.values(inv.computeNodes).sort((a, b) => a.name.localeCompare(b.name)).map((r) => {
    const nodes = Object.fromEntries(cfg.networks.map((n) => [n.name, r.name]));
    let bmc: MonitoredHost['bmc'];
    if (r.bmc.ip && r.bmc.user && r.bmc.password) {
      const method = cfg.fence.method;
      bmc = { method, protocol: method === 'redfish' ? 'redfish' : 'ipmi', ip: r.bmc.ip, user: r.bmc.user, passwordFrom: 'kv' };
    } else {
      const missing = [!r.bmc.ip && 'config/bmc/ip', !r.bmc.user && 'config/bmc/user', !r.bmc.password && 'config/bmc/password'].filter(Boolean);
      problems.push({ host: r.name, text: `no usable BMC (${missing.join(', ')} empty or absent): watched, never fenced` });
    }
    return { name: r.name, nodes, ...(bmc ? { bmc } : {}), maintenance: r.maintenance?.value ?? false, source: 'kv' as const };
  });
  return { hosts, problems };
}

/** The per-host machine configuration. */
export function hostMachineConfig(cfg: MonitorConfig, host: MonitoredHost, self: string): HostMachineConfig {
  return {
    host: host.name,
    self,
    networks: cfg.networks.map((n) => n.name),
    confirm: cfg.confirm,
    matrix: cfg.matrix,
    kvPrefix: cfg.kvPrefix,
    fenceMethod: host.bmc?.method ?? cfg.fence.method,
    bmcProtocol: host.bmc?.protocol ?? 'ipmi',
    fenceEvent: cfg.fence.event,
    powerTimeoutMs: cfg.fence.powerTimeoutMs,
    powerWaitMs: cfg.fence.powerWaitMs,
    silenceCheck: cfg.fence.silenceCheck,
    lockDelayMs: cfg.lockDelayMs,
    ...(cfg.autoClearAfter !== undefined ? { autoClearAfter: cfg.autoClearAfter } : {}),
    sessionTtlMs: cfg.sessionTtlMs,
    maintenance: host.maintenance,
  };
}

/**
 * Phases in which this monitor holds an incident open (they count against
 * max_concurrent_recoveries; incidents held by others come from KV locks).
 */
export const OPEN_INCIDENT_PHASES: readonly Phase[] = ['claiming', 'latching', 'fencing', 'checking-silence', 'fenced', 'fence-unconfirmed', 'aborted'];

/**
 * The guards' input for one target, from every machine's state. Open
 * incidents are those of this monitor's machines plus every incident lock
 * held in KV (claimed by any monitor).
 */
export function guardInputFor(target: HostState, all: readonly HostState[], self: Readonly<Record<string, SelfView>>, maintenance: ReadonlySet<string>, kvHeldIncidents: ReadonlySet<string>): GuardInput {
  const fleet: Record<string, HostState['confirmed']> = {};
  for (const h of all) fleet[h.host] = h.confirmed;
  const open = new Set<string>(kvHeldIncidents);
  for (const h of all) if (OPEN_INCIDENT_PHASES.includes(h.phase)) open.add(h.host);
  const maint = new Set(maintenance);
  for (const h of all) if (h.phase === 'maintenance') maint.add(h.host);
  return { target: target.host, targetStates: target.confirmed, self, fleet, maintenance: maint, openIncidents: open };
}
