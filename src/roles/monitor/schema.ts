/**
 * Layer: config, pure. The JSON schema of the `monitor:` section, with its
 * documented defaults. Leaves use the central value kinds (`vigil: {kind}`
 * checked by `checkLeaf` of src/config/schema.ts), so a duration, a URL, a
 * path or a node name is validated and worded exactly as everywhere else.
 * Cross-key rules (matrix coverage, credentials, lock-delay…) are in
 * config.ts.
 *
 * ```yaml
 * monitor:
 *   networks:                      # one Consul agent per network (hostha: mgmt, tenant, storage)
 *     mgmt:    {url: http://127.0.0.1:8500, token_file: /etc/vigil/mgmt.token}
 *     tenant:  {url: http://127.0.0.1:8501, checks: [tenant-ping]}
 *   inventory:
 *     source: config               # or kv: hosts from <kv_prefix>/compute_nodes/
 *     hosts:
 *       - name: cmp-01
 *         nodes: {tenant: cmp-01-t}           # node name per network (default: name)
 *         bmc: {ip: 192.0.2.101, user: admin, password_file: /etc/vigil/bmc/cmp-01}
 *   kv_network: mgmt              # whose Consul holds KV, sessions, incident locks (default: first network)
 *   kv_prefix: ha_cluster
 *   interval: 10s
 *   confirm: 3
 *   guards: {max_down_fraction: 1/3, max_concurrent_recoveries: 1}
 *   fence: {method: ipmi, power_timeout: 20s, power_wait: 2s, silence_check: false}
 *   lock_delay: 15s
 *   session_ttl: 30s
 * ```
 */
import type { LeafSpec } from '../../config/kinds';
import { MAX_DURATION_MS } from '../../config/kinds';
import { RECOVERY_SCHEMA } from './recovery/config';

type Schema = Record<string, unknown>;

/** How a host is powered off. Every method is confirmed by reading the power state from the BMC. */
export const FENCE_METHODS = ['ipmi', 'redfish', 'event', 'command'] as const;
/** How a BMC is spoken to (power state, and power-off for the ipmi/redfish methods). */
export const BMC_PROTOCOLS = ['ipmi', 'redfish'] as const;

/** Documented defaults of the section (durations as written in YAML). */
export const MONITOR_DEFAULTS = {
  kv_prefix: 'ha_cluster',
  interval: '10s',
  confirm: 3,
  guards: { max_down_fraction: '1/3', max_concurrent_recoveries: 1 },
  fence: { method: 'ipmi', power_timeout: '20s', power_wait: '2s', silence_check: false, event: 'fence', ipmitool: '/usr/bin/ipmitool' },
  lock_delay: '15s',
  session_ttl: '30s',
  inventory: { source: 'config' },
} as const;

const leaf = (spec: LeafSpec, dflt?: unknown): Schema => (dflt === undefined ? { vigil: spec } : { vigil: spec, default: dflt });
const duration = (dflt: string | undefined, minMs: number, maxMs = MAX_DURATION_MS): Schema => leaf({ kind: 'duration', minMs, maxMs }, dflt);
const int = (min: number, max: number, dflt?: number): Schema => leaf({ kind: 'int', min, max }, dflt);

function section(description: string, properties: Record<string, Schema>, opts: { required?: string[]; default?: unknown } = {}): Schema {
  return {
    type: 'object', description, additionalProperties: false, properties,
    ...(opts.required ? { required: opts.required } : {}),
    ...(opts.default !== undefined ? { default: opts.default } : {}),
  };
}

function list(description: string, items: Schema, opts: { minItems?: number; maxItems?: number } = {}): Schema {
  return { type: 'array', description, items, ...(opts.minItems !== undefined ? { minItems: opts.minItems } : {}), maxItems: opts.maxItems ?? 1024 };
}

/** A mapping from a name (network, node) to a value; names are checked by normalize (ajv names no key in propertyNames errors). */
function mapOf(description: string, value: Schema, opts: { minProperties?: number } = {}): Schema {
  return { type: 'object', description, additionalProperties: value, ...(opts.minProperties !== undefined ? { minProperties: opts.minProperties } : {}) };
}

const BMC = section('a mapping with the keys method, protocol, ip, port, user, password_file, system, cipher_suite and ca_file', {
  method: leaf({ kind: 'enum', values: FENCE_METHODS }),
  protocol: leaf({ kind: 'enum', values: BMC_PROTOCOLS }),
  ip: leaf({ kind: 'ipv4' }),
  port: int(1, 65535),
  user: leaf({ kind: 'name' }),
  // The password is never inline: a root-only file (the runner checks owner and mode).
  password_file: leaf({ kind: 'path' }),
  // Redfish system id (`/redfish/v1/Systems/<system>`); the first member when absent.
  system: leaf({ kind: 'name' }),
  // ipmitool -C: 17 (the BMC module's default) needs IPMI 2.0 with SHA-256; ipmi_sim and older BMCs speak 3.
  cipher_suite: int(0, 17),
  // Redfish over HTTPS: the CA that signed the BMC's certificate (pinned).
  ca_file: leaf({ kind: 'path' }),
}, { required: ['ip', 'user', 'password_file'] });

const HOST = section('a mapping with the keys name (required), nodes, bmc and maintenance', {
  name: leaf({ kind: 'node' }),
  nodes: mapOf('a mapping of network name → Consul node name', leaf({ kind: 'node' })),
  bmc: BMC,
  maintenance: leaf({ kind: 'bool' }, false),
}, { required: ['name'] });

const NETWORK = section('a mapping with the keys url (required), token_file, ca_file and checks', {
  url: leaf({ kind: 'url' }),
  token_file: leaf({ kind: 'path' }),
  ca_file: leaf({ kind: 'path' }),
  // Check names (CheckID or Name) that make a host down on this network when critical, besides serfHealth.
  checks: list('a list of check names', leaf({ kind: 'name' }), { maxItems: 32 }),
}, { required: ['url'] });

const MATRIX_ROW = section('a mapping with the keys when (network → up|down) and actions', {
  when: mapOf('a mapping of network name → up or down', leaf({ kind: 'enum', values: ['up', 'down'] }), { minProperties: 1 }),
  actions: list('a list of actions', leaf({ kind: 'enum', values: ['email', 'fence', 'ipmi', 'evacuate', 'disabled', 'migrate'] }), { maxItems: 6 }),
}, { required: ['when', 'actions'] });

/** The schema of the `monitor:` section. */
export const MONITOR_SCHEMA: Schema = section(
  'a mapping with the monitor settings (networks and inventory are required)',
  {
    networks: mapOf('a mapping of network name → agent settings, one to three networks', NETWORK, { minProperties: 1 }),
    inventory: section('a mapping with the keys source and hosts', {
      source: leaf({ kind: 'enum', values: ['config', 'kv'] }, MONITOR_DEFAULTS.inventory.source),
      hosts: list('a list of hosts', HOST, { minItems: 1 }),
    }),
    // The network whose Consul holds the KV tree, the sessions and the incident locks (default: the first network).
    kv_network: leaf({ kind: 'name' }),
    kv_prefix: { type: 'string', description: 'a KV path prefix like ha_cluster', pattern: '^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$', default: MONITOR_DEFAULTS.kv_prefix },
    interval: duration(MONITOR_DEFAULTS.interval, 1000),
    confirm: int(1, 100, MONITOR_DEFAULTS.confirm),
    matrix: list('a list of matrix rows', MATRIX_ROW, { minItems: 1, maxItems: 8 }),
    guards: section('a mapping with the keys max_down_fraction, max_down and max_concurrent_recoveries', {
      // A number (0.25) or a fraction ('1/3'); checked by normalize.
      max_down_fraction: { type: ['number', 'string'], description: "a fraction above 0 and below 1, like 0.25 or '1/3'", default: MONITOR_DEFAULTS.guards.max_down_fraction },
      max_down: int(0, 100_000),
      max_concurrent_recoveries: int(1, 1000, MONITOR_DEFAULTS.guards.max_concurrent_recoveries),
    }, { default: {} }),
    fence: section('a mapping with the keys method, power_timeout, power_wait, silence_check, event, command and ipmitool', {
      method: leaf({ kind: 'enum', values: FENCE_METHODS }, MONITOR_DEFAULTS.fence.method),
      power_timeout: duration(MONITOR_DEFAULTS.fence.power_timeout, 1000, 600_000),
      power_wait: duration(MONITOR_DEFAULTS.fence.power_wait, 100, 60_000),
      silence_check: leaf({ kind: 'bool' }, MONITOR_DEFAULTS.fence.silence_check),
      event: leaf({ kind: 'event' }, MONITOR_DEFAULTS.fence.event),
      command: leaf({ kind: 'argv' }),
      // The ipmitool program (ipmi method and IPMI power reads); run only during an incident.
      ipmitool: leaf({ kind: 'path' }, MONITOR_DEFAULTS.fence.ipmitool),
    }, { default: {} }),
    // Off when absent: a latched host is cleared only by `vigil monitor reset` (os_nova's N-9).
    auto_clear_after: int(1, 10_000),
    // Range checked by normalize with its reason (N-19, Consul's 60 s clamp).
    lock_delay: duration(MONITOR_DEFAULTS.lock_delay, 0, 3_600_000),
    // Consul accepts session TTLs from 10 s to 24 h (spec/consul-api.md §3i).
    session_ttl: duration(MONITOR_DEFAULTS.session_ttl, 10_000, 86_400_000),
    // Part 2: what happens after a confirmed fence (absent: nothing, as in part 1).
    recovery: RECOVERY_SCHEMA,
  },
  { required: ['networks', 'inventory'] },
);
