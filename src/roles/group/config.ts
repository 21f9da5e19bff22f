/**
 * Layer: config, pure. The `group:` section (issue 16): its JSON schema with
 * the documented defaults, and {@link normalizeGroups}, which validates a raw
 * section (ajv with the central leaf kinds of `config/schema.ts`), applies
 * the cross-key rules and returns typed {@link GroupConfig}s. Every problem
 * names its key: `group.db.members[2].start: … (expected …)`.
 *
 * `group` is a list of groups (each with `name`) or a map name → group.
 */
import Ajv from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { ConfigError } from '../../errors';
import { checkLeaf, MAX_DURATION_MS } from '../../config/kinds';
import type { LeafSpec } from '../../config/kinds';
import { formatKeyPath, formatValue } from '../../config/normalize';
import { parseDurationMs } from '../../util/duration';
import { parseCidr } from '../../util/ip';
import type { Command } from '../../actions/commands';
import type { GroupConfig, MemberConfig, HookName } from './types';

type Schema = Record<string, unknown>;
type Path = (string | number)[];
type Problem = (path: Path, text: string) => void;

const leaf = (spec: LeafSpec, dflt?: unknown): Schema => (dflt === undefined ? { vigil: spec } : { vigil: spec, default: dflt });
const duration = (dflt?: string, minMs = 10): Schema => leaf({ kind: 'duration', minMs, maxMs: MAX_DURATION_MS }, dflt);
const obj = (description: string, properties: Record<string, Schema>, required: string[] = [], dflt?: unknown): Schema => ({
  type: 'object', description, additionalProperties: false, properties,
  ...(required.length ? { required } : {}), ...(dflt !== undefined ? { default: dflt } : {}),
});
const list = (description: string, items: Schema, extra: Schema = {}): Schema => ({ type: 'array', description, items, maxItems: 64, ...extra });

/** Documented defaults (README: "group"). */
export const GROUP_DEFAULTS = {
  state_dir: '/var/lib/vigil/group',
  on_stop_failure: 'block',
  autostart: false,
  monitor_interval: '10s',
  migration_threshold: 3,
  failure_timeout: '60s',
  lock_timeout: '60s',
  hook_timeout: '30s',
  probe: { count: 3, interval: '100ms', timeout: '200ms' },
  arp: { count: 5, interval: '200ms' },
  command: { timeout: '30s', stop_timeout: '30s', kill_grace: '5s' },
  unit: { backend: 'auto', systemctl: 'systemctl', timeout: '90s' },
  symlink: { backup_suffix: '.vigilbak' },
  owner_lock: { lock_delay: '15s' },
  hostname: { hosts_file: '/etc/hosts', hostname_file: '/proc/sys/kernel/hostname', set_command: ['hostname'] },
} as const;

const D = GROUP_DEFAULTS;
const common = { type: leaf({ kind: 'enum', values: ['address', 'unit', 'symlink', 'hostname', 'command'] }), name: leaf({ kind: 'name' }), monitor_interval: duration(undefined, 100) };

const MEMBER_SCHEMAS: Record<MemberConfig['type'], Schema> = {
  address: obj('an address member: type, address and interface (required), name, arp', {
    ...common,
    address: leaf({ kind: 'cidr', defaultPrefix: 32 }),
    interface: leaf({ kind: 'ifname' }),
    arp: obj('a mapping with the keys count, interval and unicast', {
      count: leaf({ kind: 'int', min: 0, max: 100 }, D.arp.count),
      interval: duration(D.arp.interval, 0),
      unicast: list('a list of IPv4 neighbours (the gateway) to announce to by unicast', leaf({ kind: 'ipv4' }), { uniqueItems: true }),
    }, [], {}),
  }, ['type', 'address', 'interface']),
  unit: obj('a unit member: type and unit (required), name, backend, systemctl, timeout', {
    ...common,
    unit: leaf({ kind: 'name' }),
    backend: leaf({ kind: 'enum', values: ['auto', 'dbus', 'systemctl'] }, D.unit.backend),
    systemctl: leaf({ kind: 'program' }, D.unit.systemctl),
    timeout: duration(D.unit.timeout, 100),
  }, ['type', 'unit']),
  symlink: obj('a symlink member: type, link and target (required), name, backup_suffix', {
    ...common,
    link: leaf({ kind: 'path' }),
    target: leaf({ kind: 'path' }),
    backup_suffix: { type: 'string', pattern: '^\\.[A-Za-z0-9._-]{1,32}$', default: D.symlink.backup_suffix, description: "a suffix like '.vigilbak'" },
  }, ['type', 'link', 'target']),
  hostname: obj('a hostname member: type and hostname (required), name, address, aliases, hosts_file, resolv_conf, nameservers, hostname_file, set_command', {
    ...common,
    hostname: leaf({ kind: 'node' }),
    address: leaf({ kind: 'ipv4' }),
    aliases: list('a list of host names', leaf({ kind: 'node' }), { uniqueItems: true }),
    hosts_file: leaf({ kind: 'path' }, D.hostname.hosts_file),
    resolv_conf: leaf({ kind: 'path' }),
    nameservers: list('a list of IPv4 name servers', leaf({ kind: 'ipv4' }), { uniqueItems: true, minItems: 1 }),
    hostname_file: leaf({ kind: 'path' }, D.hostname.hostname_file),
    set_command: { ...leaf({ kind: 'argv' }), default: [...D.hostname.set_command] },
  }, ['type', 'hostname']),
  command: obj('a command member: type and start (required), name, stop, monitor, timeout, stop_timeout, kill_grace', {
    ...common,
    start: leaf({ kind: 'command' }),
    stop: leaf({ kind: 'command' }),
    monitor: leaf({ kind: 'command' }),
    timeout: duration(D.command.timeout, 100),
    stop_timeout: duration(D.command.stop_timeout, 100),
    kill_grace: duration(D.command.kill_grace, 10),
  }, ['type', 'start']),
};

const HOOKS: HookName[] = ['before_start', 'after_start', 'before_stop', 'after_stop'];

const GROUP_PROPS: Record<string, Schema> = {
  name: leaf({ kind: 'name' }),
  members: list('a non-empty ordered list of members, each a mapping with a type', { type: 'object', description: 'a member mapping with a type' }, { minItems: 1 }),
  hooks: obj('a mapping with the keys before_start, after_start, before_stop, after_stop', Object.fromEntries(HOOKS.map((h) => [h, leaf({ kind: 'command' })])), [], {}),
  hook_timeout: duration(D.hook_timeout, 100),
  on_stop_failure: leaf({ kind: 'enum', values: ['block', 'continue'] }, D.on_stop_failure),
  autostart: leaf({ kind: 'bool' }, D.autostart),
  monitor_interval: duration(D.monitor_interval, 100),
  migration_threshold: leaf({ kind: 'int', min: 0, max: 100 }, D.migration_threshold),
  failure_timeout: duration(D.failure_timeout, 1000),
  state_dir: leaf({ kind: 'path' }, D.state_dir),
  lock_timeout: duration(D.lock_timeout, 0),
  owner_lock: obj('a mapping with the keys consul (required), key, node, lock_delay and ttl (the Consul owner lock)', {
    consul: obj('a mapping with the keys url (required) and token_file', {
      url: leaf({ kind: 'url' }),
      token_file: leaf({ kind: 'path' }),
    }, ['url']),
    key: { type: 'string', pattern: '^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$', maxLength: 256, description: "a Consul KV key like 'vigil/group/xcat/owner' (default: vigil/group/NAME/owner)" },
    node: leaf({ kind: 'node' }),
    lock_delay: leaf({ kind: 'duration', minMs: 15_000, maxMs: 60_000 }, D.owner_lock.lock_delay),
    // Unset: no TTL (the session lives until deactivate or the node's serfHealth fails). Consul's own floor is its session_ttl_min (10s by default).
    ttl: leaf({ kind: 'duration', minMs: 1000, maxMs: 86_400_000 }),
  }, ['consul']),
  probe: obj('a mapping with the keys count, interval and timeout (the duplicate-address probe)', {
    count: leaf({ kind: 'int', min: 1, max: 10 }, D.probe.count),
    interval: duration(D.probe.interval, 10),
    timeout: duration(D.probe.timeout, 10),
  }, [], {}),
};

/** The JSON schema of one group (members are checked per type by {@link normalizeGroups}). */
export const GROUP_SCHEMA: Schema = obj('a group mapping with members (required), hooks, hook_timeout, on_stop_failure, autostart, monitor_interval, migration_threshold, failure_timeout, state_dir, lock_timeout, owner_lock, probe', GROUP_PROPS, ['members']);

/** The JSON schema of the section: a list of named groups or a map name → group. */
export const GROUP_SECTION_SCHEMA: Schema = {
  description: 'a list of groups (each with a name) or a mapping from group name to group',
  oneOf: [{ type: 'array', items: GROUP_SCHEMA }, { type: 'object', additionalProperties: GROUP_SCHEMA }],
};

let compiled: { group: ValidateFunction; members: Record<string, ValidateFunction> } | undefined;
function validators() {
  if (compiled) return compiled;
  const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true });
  ajv.addKeyword({ keyword: 'vigil', schemaType: 'object', errors: false, validate: (s: LeafSpec, d: unknown) => checkLeaf(s, d) === undefined });
  compiled = {
    group: ajv.compile(GROUP_SCHEMA),
    members: Object.fromEntries(Object.entries(MEMBER_SCHEMAS).map(([k, s]) => [k, ajv.compile(s)])),
  };
  return compiled;
}

function describe(e: ErrorObject, base: Path): [Path, string] {
  const path = [...base, ...e.instancePath.slice(1).split('/').filter(Boolean).map((s) => (/^\d+$/.test(s) ? Number(s) : s))];
  const parent = e.parentSchema as Schema | undefined;
  switch (e.keyword) {
    case 'vigil': {
      const p = checkLeaf(e.schema as LeafSpec, e.data);
      return [path, `${formatValue(e.data)} ${p?.problem ?? 'is not valid'} (expected ${p?.expected ?? 'a valid value'})`];
    }
    case 'additionalProperties': {
      const k = (e.params as { additionalProperty: string }).additionalProperty;
      return [[...path, k], `unknown key (expected one of: ${Object.keys((parent?.properties as Schema) ?? {}).join(', ')})`];
    }
    case 'required': {
      const k = (e.params as { missingProperty: string }).missingProperty;
      const child = (parent?.properties as Record<string, Schema>)[k];
      const exp = child?.vigil ? checkLeaf(child.vigil as LeafSpec, undefined)?.expected : child?.description;
      return [[...path, k], `is required but missing (expected ${String(exp ?? 'a value')})`];
    }
    default:
      return [path, `${formatValue(e.data)} ${e.message ?? 'is not valid'} (expected ${String(parent?.description ?? 'a valid value')})`];
  }
}

const ms = (v: unknown): number => parseDurationMs(v)!;
const cmd = (v: unknown): Command => (typeof v === 'string' ? v : [...(v as string[])]);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function normalizeMember(m: Record<string, unknown>, index: number): MemberConfig {
  const base = normalizeMemberOwn(m, index);
  return m.monitor_interval === undefined ? base : { ...base, monitorIntervalMs: ms(m.monitor_interval) };
}

function normalizeMemberOwn(m: Record<string, unknown>, index: number): MemberConfig {
  const name = typeof m.name === 'string' ? m.name : `${String(m.type)}${index + 1}`;
  switch (m.type as MemberConfig['type']) {
    case 'address': {
      const arp = m.arp as Record<string, unknown>;
      return { type: 'address', name, cidr: parseCidr(m.address as string, 32)!, interface: m.interface as string,
        arp: { count: arp.count as number, intervalMs: ms(arp.interval), unicast: (arp.unicast as string[] | undefined) ?? [] } };
    }
    case 'unit':
      return { type: 'unit', name, unit: m.unit as string, backend: m.backend as 'auto' | 'dbus' | 'systemctl', systemctl: m.systemctl as string, timeoutMs: ms(m.timeout) };
    case 'symlink':
      return { type: 'symlink', name, link: m.link as string, target: m.target as string, backupSuffix: m.backup_suffix as string };
    case 'hostname':
      return { type: 'hostname', name, hostname: m.hostname as string, address: m.address as string | undefined,
        aliases: (m.aliases as string[] | undefined) ?? [], hostsFile: m.hosts_file as string, resolvConf: m.resolv_conf as string | undefined,
        nameservers: (m.nameservers as string[] | undefined) ?? [], hostnameFile: m.hostname_file as string, setCommand: [...(m.set_command as string[])] };
    case 'command':
      return { type: 'command', name, start: cmd(m.start), stop: m.stop === undefined ? undefined : cmd(m.stop),
        monitor: m.monitor === undefined ? undefined : cmd(m.monitor), timeoutMs: ms(m.timeout), stopTimeoutMs: ms(m.stop_timeout), killGraceMs: ms(m.kill_grace) };
  }
}

/**
 * Validate and normalise a raw `group:` section (defaults filled in).
 * Throws one {@link ConfigError} whose message is the first problem and
 * whose `detail.errors` lists all of them, each naming its key.
 */
export function normalizeGroups(raw: unknown, add?: (path: Path, text: string) => void): Map<string, GroupConfig> {
  const problems: string[] = [];
  const problem: Problem = (p, text) => { if (add) add(p, text); problems.push(`${formatKeyPath(p)}: ${text}`); };
  const entries: [Path, Record<string, unknown>, string | undefined][] = [];
  if (Array.isArray(raw)) raw.forEach((g, i) => entries.push([['group', i], g as Record<string, unknown>, undefined]));
  else if (isObj(raw)) for (const [k, g] of Object.entries(raw)) entries.push([['group', k], (g ?? {}) as Record<string, unknown>, k]);
  else throw new ConfigError(`group: ${formatValue(raw)} is not a list or a mapping (expected ${String(GROUP_SECTION_SCHEMA.description)})`, { errors: [] });
  const v = validators();
  const out = new Map<string, GroupConfig>();
  for (const [path, g, key] of entries) {
    if (!isObj(g)) { problem(path, `${formatValue(g)} is not a mapping (expected a group mapping)`); continue; }
    if (!v.group(g)) { (v.group.errors ?? []).forEach((e) => problem(...describe(e, path))); continue; }
    const name = key ?? (g.name as string | undefined);
    if (name === undefined) { problem([...path, 'name'], `is required in a list of groups (expected a group name)`); continue; }
    if (key !== undefined && g.name !== undefined && g.name !== key) problem([...path, 'name'], `'${String(g.name)}' differs from the key '${key}' (expected the same name or none)`);
    if (checkLeaf({ kind: 'name' }, name)) problem(path, `${formatValue(name)} is not a valid group name`);
    if (out.has(name)) problem([...path, 'name'], `group '${name}' is defined twice (expected unique names)`);
    const members: MemberConfig[] = [];
    (g.members as unknown[]).forEach((m, i) => {
      const mp = [...path, 'members', i];
      if (!isObj(m)) { problem(mp, `${formatValue(m)} is not a mapping (expected a member mapping with a type)`); return; }
      const check = v.members[String(m.type)];
      if (!check) { problem([...mp, 'type'], `${formatValue(m.type)} is not a member type (expected one of ${Object.keys(MEMBER_SCHEMAS).join(', ')})`); return; }
      if (!check(m)) { (check.errors ?? []).forEach((e) => problem(...describe(e, mp))); return; }
      members.push(normalizeMember(m, i));
    });
    if (members.length !== (g.members as unknown[]).length) continue;
    crossChecks(path, g, members, problem);
    const hooks = g.hooks as Record<string, unknown>;
    const probe = g.probe as Record<string, unknown>;
    const lock = g.owner_lock as Record<string, any> | undefined;
    out.set(name, {
      ...(lock ? { ownerLock: {
        url: lock.consul.url as string, ...(lock.consul.token_file !== undefined ? { tokenFile: lock.consul.token_file as string } : {}),
        key: (lock.key as string | undefined) ?? `vigil/group/${name}/owner`, ...(lock.node !== undefined ? { node: lock.node as string } : {}),
        lockDelayMs: ms(lock.lock_delay), ...(lock.ttl !== undefined ? { ttlMs: ms(lock.ttl) } : {}),
      } } : {}),
      name, members, onStopFailure: g.on_stop_failure as 'block' | 'continue', stateDir: g.state_dir as string,
      lockTimeoutMs: ms(g.lock_timeout), hookTimeoutMs: ms(g.hook_timeout),
      autostart: g.autostart as boolean, monitorIntervalMs: ms(g.monitor_interval),
      migrationThreshold: g.migration_threshold as number, failureTimeoutMs: ms(g.failure_timeout),
      hooks: Object.fromEntries(HOOKS.filter((h) => hooks[h] !== undefined).map((h) => [h, cmd(hooks[h])])),
      probe: { count: probe.count as number, intervalMs: ms(probe.interval), timeoutMs: ms(probe.timeout) },
    });
  }
  if (problems.length && !add) throw new ConfigError(`${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`, { errors: problems });
  return out;
}

/** Rules across keys: unique member names, one owner per address / link / file, nameservers need resolv_conf. */
function crossChecks(path: Path, g: Record<string, unknown>, members: MemberConfig[], problem: Problem): void {
  const seen = new Map<string, number>();
  const claim = (what: string, i: number, key: string) => {
    const prev = seen.get(what);
    if (prev !== undefined) problem([...path, 'members', i, key], `${what} is also managed by members[${prev}] (expected each resource in one member)`);
    else seen.set(what, i);
  };
  members.forEach((m, i) => {
    claim(`member name '${m.name}'`, i, 'name');
    if (m.type === 'address') {
      claim(`address ${m.cidr.address}`, i, 'address');
      // vigil marks its addresses with the label '<if>:vg' (IFNAMSIZ, actions/addresses.ts addressLabel, not imported:
      // the registry loads this file and must not load netlink); without it nothing would be known to be ours.
      if (`${m.interface}:vg`.length > 15) problem([...path, 'members', i, 'interface'], `'${m.interface}' is too long for vigil's address label (expected at most 12 bytes)`);
    }
    if (m.type === 'symlink') claim(`link ${m.link}`, i, 'link');
    if (m.type === 'hostname') {
      claim('the hostname', i, 'hostname');
      if (m.nameservers.length && !m.resolvConf) problem([...path, 'members', i, 'nameservers'], `needs resolv_conf (expected resolv_conf: /etc/resolv.conf with nameservers)`);
      if (!m.address) problem([...path, 'members', i, 'address'], `is required for the /etc/hosts line (expected the IPv4 address the name resolves to)`);
    }
    if (m.type === 'command' && m.killGraceMs > m.stopTimeoutMs) problem([...path, 'members', i, 'kill_grace'], `is longer than stop_timeout (expected at most ${m.stopTimeoutMs} ms)`);
  });
  const lock = g.owner_lock as Record<string, unknown> | undefined;
  // The daemon finds a group activated by hand within monitor_interval and renews from then on: the session must outlive that.
  if (lock?.ttl !== undefined && ms(lock.ttl) < ms(g.monitor_interval)) {
    problem([...path, 'owner_lock', 'ttl'], `is shorter than monitor_interval (expected at least ${ms(g.monitor_interval)} ms: the daemon renews the session of a group it found active)`);
  }
  const probe = g.probe as Record<string, unknown>;
  if (ms(probe.timeout) > 10 * ms(probe.interval) && (probe.count as number) > 1) {
    problem([...path, 'probe', 'timeout'], `is more than 10 × probe.interval (expected a short wait after the last probe)`);
  }
}

/** A deep copy of a schema node without its defaults (the union below must not fill one type's defaults into another). */
function withoutDefaults(node: Schema): Schema {
  const out: Schema = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'default') continue;
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as Record<string, Schema>).map(([pk, pv]) => [pk, withoutDefaults(pv)]))
      : k === 'items' ? withoutDefaults(v as Schema) : v;
  }
  return out;
}

/**
 * The `group:` section as the config loader sees it (role registry): a
 * mapping group name → group. A member is checked there against the union
 * of every type's keys (no defaults: those depend on the type);
 * {@link normalizeGroups} then checks each member against its own type's
 * schema and fills its defaults, reporting through the loader's `add`.
 */
export function groupRegistrySchema(): Schema {
  const union: Record<string, Schema> = {};
  for (const m of Object.values(MEMBER_SCHEMAS)) {
    for (const [k, v] of Object.entries(m.properties as Record<string, Schema>)) if (!(k in union)) union[k] = withoutDefaults(v);
  }
  const member = obj(`a member mapping with a type (${Object.keys(MEMBER_SCHEMAS).join(', ')}) and that type's keys`, union, ['type']);
  const group = obj(String(GROUP_SCHEMA.description), { ...GROUP_PROPS, members: list('a non-empty ordered list of members, each a mapping with a type', member, { minItems: 1 }) }, ['members']);
  return { type: 'object', description: 'a mapping from group name to group', additionalProperties: false, patternProperties: { '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$': group } };
}

/** For the role registry: `{ key, schema, defaults, normalize }`. */
export const groupSection = { key: 'group', schema: GROUP_SECTION_SCHEMA, defaults: GROUP_DEFAULTS, normalize: normalizeGroups } as const;
