/**
 * Layer: config, pure. The `monitor:` section: raw YAML data → a typed,
 * checked {@link MonitorConfig}. Order: refuse inline passwords (before the
 * schema, so the message says why) → ajv with defaults (MONITOR_SCHEMA) →
 * cross-key rules. Every problem is collected with a code and the key path
 * and thrown as one ConfigError (`detail.errors`: the lines,
 * `detail.problems`: the structured list).
 *
 * Cross-key rules:
 * - network names are node-like names; at most 3 networks (hostha's);
 * - `matrix` rows cover every combination, only known actions, evacuate
 *   after a fence (matrix.ts); without `matrix` the networks must be hostha's
 *   (mgmt, tenant[, storage]) so the K-19/K-20 default applies;
 * - a host's `nodes` and `kv_network` name only configured networks (the
 *   default `kv_network` is the first network); host names are unique;
 * - `inventory.source: config` needs hosts, each with a `bmc` (a fence is
 *   always confirmed by the BMC); `source: kv` takes hosts from KV and
 *   refuses `hosts`;
 * - os_nova's default credentials (`test` / `Test123.`, N-18) are refused;
 *   a password is never inline, always `password_file` (the runner checks
 *   the file's mode and content with {@link checkPasswordText});
 * - `bmc.protocol` agrees with `bmc.method` ipmi/redfish; `fence.command`
 *   is required when any host fences by `command`;
 * - `fence.power_wait` < `fence.power_timeout`;
 * - `lock_delay` from 15 s (a dead claimer's lock must not be re-taken
 *   before its fence could have finished, N-19) to 60 s (Consul clamps);
 * - `session_ttl` at least twice `interval` (renewed once per round).
 */
import Ajv from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { ConfigError } from '../../errors';
import { checkLeaf, fractionOf } from '../../config/kinds';
import type { LeafSpec } from '../../config/kinds';
import { formatKeyPath, formatValue } from '../../config/normalize';
import { formatDurationMs, parseDurationMs } from '../../util/duration';
import { buildMatrix, defaultMatrix, type Matrix, type MatrixRowSpec } from './matrix';
import type { GuardConfig } from './guards';
import { OS_NOVA_DEFAULT_PASSWORD, OS_NOVA_DEFAULT_USER } from './kvschema';
import { MONITOR_DEFAULTS, MONITOR_SCHEMA, type BMC_PROTOCOLS, type FENCE_METHODS } from './schema';
import { normalizeRecovery, type RecoveryConfig } from './recovery/config';

/** A fence method. */
export type FenceMethod = (typeof FENCE_METHODS)[number];
/** A BMC protocol. */
export type BmcProtocol = (typeof BMC_PROTOCOLS)[number];

/** One network's agent. */
export interface MonitorNetwork { name: string; url: string; tokenFile?: string; caFile?: string; checks: readonly string[] }

/** A host's BMC. The password stays in its file until the executor reads it. */
export interface BmcConfig { method: FenceMethod; protocol: BmcProtocol; ip: string; port?: number; user: string; passwordFile: string; system?: string; cipherSuite?: number; caFile?: string }

/** A monitored host from the config. */
export interface MonitorHost {
  name: string;
  /** Consul node name per network (every network present). */
  nodes: Readonly<Record<string, string>>;
  bmc?: BmcConfig;
  maintenance: boolean;
}

/** The normalized `monitor:` section. */
export interface MonitorConfig {
  networks: readonly MonitorNetwork[];
  inventory: { source: 'config' | 'kv'; hosts: readonly MonitorHost[] };
  /** The network whose Consul holds the KV tree, sessions and incident locks (each network is its own Consul cluster). */
  kvNetwork: string;
  kvPrefix: string;
  intervalMs: number;
  confirm: number;
  matrix: Matrix;
  guards: GuardConfig;
  fence: { method: FenceMethod; powerTimeoutMs: number; powerWaitMs: number; silenceCheck: boolean; event: string; command?: readonly string[]; ipmitool: string };
  lockDelayMs: number;
  sessionTtlMs: number;
  /** Part 2: recovery after a confirmed fence; absent: none. */
  recovery?: RecoveryConfig;
  /** Clear a latched host after this many consecutive all-up samples; absent: only `vigil monitor reset` does. */
  autoClearAfter?: number;
}

/** Problem codes. */
export type MonitorConfigCode =
  | 'ESCHEMA' | 'EINLINEPASSWORD' | 'EDEFAULTCRED' | 'EMATRIX' | 'ENOMATRIX' | 'EUNKNOWNNETWORK'
  | 'EDUPLICATE' | 'ENOHOSTS' | 'ENOBMC' | 'ELOCKDELAY' | 'ERANGE' | 'ECONFLICT';

/** One problem: a code, where (the key path from `monitor`), and the sentence. */
export interface MonitorConfigProblem { code: MonitorConfigCode; path: (string | number)[]; text: string }

/** Minimum lock-delay (N-19; Consul's own default). */
export const MIN_LOCK_DELAY_MS = 15_000;
/** Consul clamps lock-delay at 60 s (spec/consul-api.md §3i). */
export const MAX_LOCK_DELAY_MS = 60_000;

const NET_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;

let validator: ValidateFunction | undefined;
function getValidator(): ValidateFunction {
  if (validator) return validator;
  const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true, allowUnionTypes: true });
  ajv.addKeyword({ keyword: 'vigil', schemaType: 'object', errors: false, validate: (spec: LeafSpec, data: unknown) => checkLeaf(spec, data) === undefined });
  validator = ajv.compile(MONITOR_SCHEMA);
  return validator;
}

function expectation(schema: Record<string, unknown> | undefined): string {
  if (!schema) return 'a valid value';
  if (schema.vigil) return checkLeaf(schema.vigil as LeafSpec, undefined)?.expected ?? 'a valid value';
  return (schema.description as string | undefined) ?? 'a valid value';
}

function describe(e: ErrorObject): MonitorConfigProblem | undefined {
  const path = e.instancePath === '' ? [] : e.instancePath.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')).map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  const parent = e.parentSchema as Record<string, unknown> | undefined;
  const p = (path2: (string | number)[], text: string): MonitorConfigProblem => ({ code: 'ESCHEMA', path: path2, text });
  switch (e.keyword) {
    case 'vigil': {
      const lp = checkLeaf(e.schema as LeafSpec, e.data);
      return lp ? p(path, `${formatValue(e.data)} ${lp.problem} (expected ${lp.expected})`) : undefined;
    }
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      return p([...path, key], `unknown key (expected one of: ${Object.keys((parent?.properties as object) ?? {}).join(', ')})`);
    }
    case 'required': {
      const key = (e.params as { missingProperty: string }).missingProperty;
      return p([...path, key], `is required but missing (expected ${expectation((parent?.properties as Record<string, Record<string, unknown>> | undefined)?.[key])})`);
    }
    case 'type':
      return p(path, `${formatValue(e.data)} is not ${(e.params as { type: string }).type === 'array' ? 'a list' : 'a mapping'} (expected ${expectation(parent)})`);
    case 'minItems':
    case 'minProperties':
      return p(path, `${formatValue(e.data)} is empty (expected ${expectation(parent)})`);
    default:
      return p(path, `${formatValue(e.data)} ${e.message ?? 'is not valid'} (expected ${expectation(parent)})`);
  }
}

const ms = (v: unknown) => parseDurationMs(v)!;
const isObj = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parse `0.25` or `'1/3'` into a fraction in (0, 1); undefined otherwise (the config kind's own parser). */
export const parseFraction = fractionOf;

/**
 * Check the content of a BMC password file (the runner reads it after the
 * permission check). Refuses os_nova's default password (N-18) and an
 * empty file. Never quotes the content.
 */
export function checkPasswordText(text: string, file: string): string | undefined {
  const pw = text.replace(/\r?\n$/, '');
  if (pw === '') return `${file} is empty (expected the BMC password)`;
  if (pw === OS_NOVA_DEFAULT_PASSWORD) return `${file} holds os_nova's default password (expected a real BMC password)`;
  return undefined;
}

/** Raw data of the section → {@link MonitorConfig}. Throws ConfigError listing every problem. */
export function normalizeMonitor(input: unknown): MonitorConfig {
  const problems: MonitorConfigProblem[] = [];
  const add = (code: MonitorConfigCode, path: (string | number)[], text: string) => problems.push({ code, path, text });
  const raw: unknown = structuredClone(input ?? {});
  // Before the schema: a password written in the YAML gets its own message, not "unknown key".
  if (isObj(raw) && isObj(raw.inventory) && Array.isArray(raw.inventory.hosts)) {
    (raw.inventory.hosts as unknown[]).forEach((h, i) => {
      if (isObj(h) && isObj(h.bmc) && 'password' in h.bmc) {
        add('EINLINEPASSWORD', ['inventory', 'hosts', i, 'bmc', 'password'], 'a password is never written in the config (expected password_file: a root-only file holding it)');
        delete h.bmc.password;
      }
    });
  }
  const validate = getValidator();
  if (!validate(raw)) {
    for (const e of validate.errors ?? []) { const d = describe(e); if (d) problems.push(d); }
    throwProblems(problems);
  }
  const r = raw as Record<string, any>;

  const networks: MonitorNetwork[] = [];
  const netNames = Object.keys(r.networks);
  if (netNames.length > 3) add('ERANGE', ['networks'], `has ${netNames.length} networks (expected one to three, like hostha's mgmt, tenant and storage)`);
  for (const n of netNames) {
    if (!NET_RE.test(n)) add('ESCHEMA', ['networks', n], `${formatValue(n)} is not a network name (expected 1 to 32 letters, digits, '.', '_' or '-')`);
    const a = r.networks[n];
    networks.push({ name: n, url: new URL(a.url).origin, ...(a.token_file ? { tokenFile: a.token_file } : {}), ...(a.ca_file ? { caFile: a.ca_file } : {}), checks: [...(a.checks ?? [])] });
  }

  const kvNetwork = (r.kv_network as string | undefined) ?? netNames[0]!;
  if (!netNames.includes(kvNetwork)) add('EUNKNOWNNETWORK', ['kv_network'], `${formatValue(kvNetwork)} is not a configured network (expected one of ${netNames.join(', ')})`);

  let matrix: Matrix | undefined;
  if (r.matrix) {
    const built = buildMatrix(netNames, r.matrix as MatrixRowSpec[]);
    for (const p of built.problems) add('EMATRIX', ['matrix', ...p.path], p.text);
    matrix = built.matrix;
  } else {
    matrix = defaultMatrix(netNames);
    if (!matrix) add('ENOMATRIX', ['matrix'], `is required for the networks ${netNames.join(', ')} (expected a matrix, or networks named mgmt, tenant and optionally storage for hostha's default)`);
  }

  const fence = {
    method: r.fence.method as FenceMethod,
    powerTimeoutMs: ms(r.fence.power_timeout),
    powerWaitMs: ms(r.fence.power_wait),
    silenceCheck: r.fence.silence_check as boolean,
    event: r.fence.event as string,
    ipmitool: r.fence.ipmitool as string,
    ...(r.fence.command ? { command: [...(r.fence.command as string[])] } : {}),
  };
  if (fence.powerWaitMs >= fence.powerTimeoutMs) {
    add('ECONFLICT', ['fence', 'power_wait'], `${formatValue(r.fence.power_wait)} is not shorter than fence.power_timeout (${formatDurationMs(fence.powerTimeoutMs)}) (expected a poll interval below the timeout)`);
  }

  const hosts = normalizeHosts(r, netNames, fence.method, add);
  if (fence.command === undefined && (fence.method === 'command' || hosts.some((h) => h.bmc?.method === 'command'))) {
    add('ECONFLICT', ['fence', 'command'], 'is required but missing with method command (expected the argv of the fence command)');
  }

  const fraction = parseFraction(r.guards.max_down_fraction);
  if (fraction === undefined) add('ERANGE', ['guards', 'max_down_fraction'], `${formatValue(r.guards.max_down_fraction)} is not a fraction (expected a number above 0 and below 1, like 0.25 or '1/3')`);

  const lockDelayMs = ms(r.lock_delay);
  if (lockDelayMs < MIN_LOCK_DELAY_MS || lockDelayMs > MAX_LOCK_DELAY_MS) {
    add('ELOCKDELAY', ['lock_delay'], `${formatValue(r.lock_delay)} is out of range (expected from 15s to 60s: below 15s a dead claimer's incident could be re-taken while its fence still runs; Consul clamps at 60s)`);
  }
  const intervalMs = ms(r.interval);
  const sessionTtlMs = ms(r.session_ttl);
  if (sessionTtlMs < 2 * intervalMs) {
    add('ECONFLICT', ['session_ttl'], `${formatValue(r.session_ttl)} is shorter than twice interval (${formatDurationMs(intervalMs)}) (expected at least ${formatDurationMs(2 * intervalMs)}: the session is renewed once per round)`);
  }
  const recovery = normalizeRecovery(r.recovery, add);
  throwProblems(problems);

  return {
    networks,
    inventory: { source: r.inventory.source, hosts },
    kvNetwork,
    kvPrefix: r.kv_prefix,
    intervalMs,
    confirm: r.confirm,
    matrix: matrix!,
    guards: { maxDownFraction: fraction!, ...(r.guards.max_down !== undefined ? { maxDown: r.guards.max_down } : {}), maxConcurrentRecoveries: r.guards.max_concurrent_recoveries },
    fence,
    lockDelayMs,
    sessionTtlMs,
    ...(recovery ? { recovery } : {}),
    ...(r.auto_clear_after !== undefined ? { autoClearAfter: r.auto_clear_after } : {}),
  };
}

function normalizeHosts(r: Record<string, any>, netNames: string[], defaultMethod: FenceMethod, add: (c: MonitorConfigCode, p: (string | number)[], t: string) => void): MonitorHost[] {
  const source = r.inventory.source as 'config' | 'kv';
  const rawHosts = (r.inventory.hosts ?? []) as Record<string, any>[];
  if (source === 'kv') {
    if (rawHosts.length > 0) add('ECONFLICT', ['inventory', 'hosts'], 'is given but inventory.source is kv (expected hosts only with source config; with kv they come from <kv_prefix>/compute_nodes/)');
    return [];
  }
  if (rawHosts.length === 0) add('ENOHOSTS', ['inventory', 'hosts'], 'is required but missing with inventory.source config (expected a list of hosts)');
  const seen = new Set<string>();
  return rawHosts.map((h, i) => {
    const at = ['inventory', 'hosts', i];
    if (seen.has(h.name)) add('EDUPLICATE', [...at, 'name'], `${formatValue(h.name)} is listed twice (expected each host once)`);
    seen.add(h.name);
    const nodes: Record<string, string> = {};
    for (const n of netNames) nodes[n] = h.nodes?.[n] ?? h.name;
    for (const n of Object.keys(h.nodes ?? {})) {
      if (!netNames.includes(n)) add('EUNKNOWNNETWORK', [...at, 'nodes', n], `${formatValue(n)} is not a configured network (expected one of ${netNames.join(', ')})`);
    }
    let bmc: BmcConfig | undefined;
    if (!h.bmc) add('ENOBMC', [...at, 'bmc'], 'is required but missing (expected the BMC that confirms a fence: ip, user, password_file)');
    else {
      const method = (h.bmc.method ?? defaultMethod) as FenceMethod;
      const protocol = (h.bmc.protocol ?? (method === 'redfish' ? 'redfish' : 'ipmi')) as BmcProtocol;
      if ((method === 'ipmi' || method === 'redfish') && protocol !== method) {
        add('ECONFLICT', [...at, 'bmc', 'protocol'], `${formatValue(protocol)} disagrees with method ${method} (expected protocol ${method}, or no protocol)`);
      }
      if (h.bmc.user === OS_NOVA_DEFAULT_USER) add('EDEFAULTCRED', [...at, 'bmc', 'user'], `'test' is os_nova's default BMC user (expected a real BMC account)`);
      bmc = { method, protocol, ip: h.bmc.ip, user: h.bmc.user, passwordFile: h.bmc.password_file, ...(h.bmc.port ? { port: h.bmc.port } : {}), ...(h.bmc.system ? { system: h.bmc.system } : {}), ...(h.bmc.cipher_suite !== undefined ? { cipherSuite: h.bmc.cipher_suite } : {}), ...(h.bmc.ca_file ? { caFile: h.bmc.ca_file } : {}) };
    }
    return { name: h.name, nodes, ...(bmc ? { bmc } : {}), maintenance: h.maintenance };
  });
}

function throwProblems(problems: MonitorConfigProblem[]): void {
  if (problems.length === 0) return;
  const lines = problems.map((p) => `${formatKeyPath(['monitor', ...p.path])}: ${p.text} [${p.code}]`);
  const more = lines.length > 1 ? ` (and ${lines.length - 1} more error${lines.length > 2 ? 's' : ''})` : '';
  throw new ConfigError(`${lines[0]}${more}`, { errors: lines, problems });
}

/**
 * The section as the role registry registers it: key, schema, defaults and
 * the normalizer (the integrator wires it into `src/roles/index.ts`).
 */
export const monitorSection = {
  key: 'monitor',
  schema: MONITOR_SCHEMA,
  defaults: MONITOR_DEFAULTS,
  normalize: normalizeMonitor,
} as const;
