/**
 * Layer: roles. The `monitor` role (`monitor:`), successor of
 * os_nova_ha_monitor and the hostha controller: watch compute hosts per
 * network through Consul, confirm failures with CAS counters in KV, claim
 * each incident with a session lock and fence with a BMC-confirmed
 * power-off. Its registry entry; the runner, its I/O and the verbs load on
 * use.
 */
import { defineRole } from '../role';
import type { SecretFile } from '../role';
import { MONITOR_SECTION_SCHEMA, normalizeMonitorSection } from './section';
import { formatMonitorStatus } from './status';

export default defineRole({
  name: 'monitor',
  summary: 'watch compute hosts through Consul, decide safely, fence with BMC confirmation',
  dir: __dirname,
  section: {
    key: 'monitor',
    configKey: 'monitor',
    schema: MONITOR_SECTION_SCHEMA,
    nullable: [],
    normalize: (v, ctx) => normalizeMonitorSection(v, ctx.add),
  },
  secretFiles: (c) => [
    ...c.networks.flatMap((n): SecretFile[] => (n.tokenFile !== undefined ? [{ path: n.tokenFile, kind: 'key', label: `token file (network ${n.name})` }] : [])),
    ...c.inventory.hosts.flatMap((h): SecretFile[] => (h.bmc ? [{ path: h.bmc.passwordFile, kind: 'key', label: `BMC password file (host ${h.name})` }] : [])),
    ...(c.recovery?.evacuate ? [{ path: c.recovery.evacuate.passwordFile, kind: 'key' as const, label: 'Nova password file' }] : []),
  ],
  daemon: {
    logRole: 'monitor',
    healthRule: 'a sampling round completed within 3 × interval + 10s (an incident\'s fence runs beside the rounds)',
    load: async () => (await import('./daemon')).createMonitorRunner,
    formatStatus: formatMonitorStatus,
  },
  importers: [
    { name: 'hostha', summary: "print the monitor section equivalent to a hostha.conf's [compute_ha] (read as data, never evaluated)", load: async () => (await import('./hostha-cli')).run },
  ],
  verbs: [
    { name: 'status', summary: 'hosts, counters, incidents, guards and BMC reachability from the running daemon', load: async () => (await import('./cli')).runStatus },
    { name: 'reset', summary: "clear a host's latches and counters in KV", load: async () => (await import('./cli')).runReset },
    { name: 'maintenance', summary: 'keep vigil off a host (on) or release it (off), in KV', load: async () => (await import('./cli')).runMaintenance },
    { name: 'release-spare', summary: 'free a spare HA node (in_use := False) after its takeover was undone by hand', load: async () => (await import('./recovery/verbs')).runReleaseSpare },
    { name: 'publish-runtime', summary: "write this compute host's runtime_config JSON to KV (newer copies win)", load: async () => (await import('./recovery/verbs')).runPublishRuntime },
  ],
});
