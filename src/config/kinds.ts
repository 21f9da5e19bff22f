/**
 * Layer: config, pure. The value kinds every config section is built from
 * (durations, IPs, paths, commands, argv, names…), the leaf checks that
 * turn a bad value into a sentence, and the schema builders a role's
 * section uses.
 *
 * Each leaf carries one custom keyword, `vigil: {kind, …}`, checked by
 * {@link checkLeaf}; the same function writes the message, so what is
 * validated and what is said about it cannot drift apart. Object and list
 * nodes carry a `description` that error messages quote as the expectation.
 */
import { isAbsolute } from 'node:path';
import { DURATION_FORMS, parseDurationMs } from '../util/duration';
import { isIPv4, parseCidr } from '../util/ip';
import { ipv6HaProblem, isIPv6, parseAnyCidr } from '../util/ip6';

/** What a leaf value must be. Stored under the `vigil` keyword of a leaf schema. */
export type LeafSpec =
  | { kind: 'duration'; minMs: number; maxMs: number }
  | { kind: 'int'; min: number; max: number }
  | { kind: 'bool' }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'logLevel' }
  | { kind: 'node' }
  | { kind: 'ifname' }
  /** `ipv6`: IPv6 accepted too (default prefix /128), by the HA address rules of util/ip6. */
  | { kind: 'cidr'; defaultPrefix: number; ipv6?: boolean }
  | { kind: 'ipv4' }
  /** A unicast IPv6 neighbour (a router), link-local allowed: an address to send to, not one to hold. */
  | { kind: 'ipv6Neighbour' }
  | { kind: 'path' }
  | { kind: 'url' }
  | { kind: 'command' }
  | { kind: 'argv' }
  | { kind: 'program' }
  | { kind: 'ctid' }
  | { kind: 'event' }
  | { kind: 'name' }
  | { kind: 'fraction' }
  | { kind: 'kvprefix' }
  | { kind: 'httpUrl' }
  | { kind: 'kvKey' }
  | { kind: 'text'; maxLength: number }
  | { kind: 'listen' };

/** The outcome of a failed leaf check: `<value> <problem> (expected <expected>)`. */
export interface LeafProblem { problem: string; expected: string }

/** pino's level names, accepted by `log.level`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The longest a duration may be: setTimeout fires at once above 2^31-1 ms, so cap well below it. */
export const MAX_DURATION_MS = 24 * 3_600_000;

const NODE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const CTID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
// Consul event names end up in a URL path (/v1/event/fire/:name) and a watch's -name flag.
const EVENT_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
// A Consul KV prefix: name segments joined by '/', no leading or trailing '/', no '..' games.
const KVPREFIX_RE = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;
// KV keys end up in a URL path (/v1/kv/:key) and txn bodies.
const KV_KEY_RE = /^[A-Za-z0-9_.-][A-Za-z0-9_./-]{0,255}$/;
// A program is looked up on PATH or given absolutely; it is argv[0], never a shell word.
const PROGRAM_RE = /^(\/[^\0]*|[A-Za-z0-9_][A-Za-z0-9._+-]*)$/;

/** Human text for a duration range. */
function durationRange(minMs: number, maxMs: number): string {
  const fmt = (ms: number) => (ms % 3_600_000 === 0 && ms > 0 ? `${ms / 3_600_000}h` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);
  return `${DURATION_FORMS}, from ${fmt(minMs)} to ${fmt(maxMs)}`;
}

/**
 * A Linux interface name as the kernel accepts it (dev_valid_name): 1–15
 * bytes, not `.` or `..`, no `/`, `:` or whitespace. `eth0:0` is an address
 * label, not an interface.
 */
export function isIfName(s: string): boolean {
  return s.length >= 1 && Buffer.byteLength(s) <= 15 && s !== '.' && s !== '..' && !/[/:\s\0]/.test(s);
}

/** True for an address that can be a host's own unicast IPv4 (not 0/8, loopback, multicast, broadcast). */
export function isUnicastIPv4(s: string): boolean {
  if (!isIPv4(s)) return false;
  const first = Number(s.split('.')[0]);
  return first !== 0 && first !== 127 && first < 224;
}

/** Parse an http(s) URL of a Consul agent; undefined when it is not one. */
export function parseAgentUrl(s: string): URL | undefined {
  let u: URL;
  try { u = new URL(s); } catch { return undefined; }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
  // Credentials in a URL end up in logs; the token has its own file.
  if (u.username || u.password || !u.hostname) return undefined;
  if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) return undefined;
  return u;
}

/** An http(s) URL a health probe GETs: path and query allowed, credentials not (they end up in logs). */
function isHealthUrl(s: string): boolean {
  let u: URL;
  try { u = new URL(s); } catch { return false; }
  return (u.protocol === 'http:' || u.protocol === 'https:') && !u.username && !u.password && u.hostname !== '' && !u.hash;
}

/** A command in the config: a shell string, or a non-empty argv list of strings. */
function commandProblem(v: unknown): LeafProblem | undefined {
  const expected = "a command: a string run by /bin/sh -c, or a non-empty list of strings run as argv, like [\"systemctl\", \"start\", \"haproxy\"]";
  if (typeof v === 'string') {
    if (v.trim() === '') return { problem: 'is an empty command', expected };
    if (v.includes('\0')) return { problem: 'contains a NUL byte', expected };
    return undefined;
  }
  return argvProblem(v, expected);
}

function argvProblem(v: unknown, expected: string): LeafProblem | undefined {
  if (!Array.isArray(v)) return { problem: 'is not a command', expected };
  if (v.length === 0) return { problem: 'is an empty command', expected };
  if (!v.every((a) => typeof a === 'string' && !a.includes('\0'))) return { problem: 'is not a list of strings', expected };
  if (v[0] === '') return { problem: 'has an empty program name', expected };
  return undefined;
}

/** Check one leaf value; undefined when it is acceptable. */
export function checkLeaf(spec: LeafSpec, v: unknown): LeafProblem | undefined {
  switch (spec.kind) {
    case 'duration': {
      const expected = durationRange(spec.minMs, spec.maxMs);
      const ms = parseDurationMs(v);
      if (ms === undefined || typeof v === 'boolean') return { problem: 'is not a duration', expected };
      if (ms < spec.minMs || ms > spec.maxMs) return { problem: 'is out of range', expected };
      return undefined;
    }
    case 'int': {
      const expected = `an integer from ${spec.min} to ${spec.max}`;
      if (typeof v !== 'number' || !Number.isInteger(v)) return { problem: 'is not an integer', expected };
      if (v < spec.min || v > spec.max) return { problem: 'is out of range', expected };
      return undefined;
    }
    case 'bool':
      // YAML 1.2: yes/no/on/off are strings, so they land here rather than being guessed.
      return typeof v === 'boolean' ? undefined : { problem: 'is not a boolean', expected: 'true or false' };
    case 'enum':
      return typeof v === 'string' && spec.values.includes(v) ? undefined
        : { problem: 'is not a valid choice', expected: `one of ${spec.values.join(', ')}` };
    case 'logLevel': {
      const expected = `one of ${LOG_LEVELS.join(', ')}, or a vzhaipd level from 0 to 900`;
      if (typeof v === 'string' && (LOG_LEVELS as readonly string[]).includes(v)) return undefined;
      if (typeof v === 'number' && Number.isInteger(v)) return v >= 0 && v <= 900 ? undefined : { problem: 'is out of range', expected };
      return { problem: 'is not a log level', expected };
    }
    case 'node':
      return typeof v === 'string' && NODE_RE.test(v) ? undefined
        : { problem: 'is not a node name', expected: 'a name of 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit' };
    case 'ifname':
      return typeof v === 'string' && isIfName(v) ? undefined
        : { problem: 'is not an interface name', expected: "a Linux interface name of 1 to 15 bytes without '/', ':' or whitespace, like eth0 or bond0" };
    case 'cidr': {
      if (spec.ipv6 && typeof v === 'string' && v.includes(':')) {
        const expected6 = 'a global or unique-local IPv6 address with an optional /prefix (default /128), like fd00::100/64, or an IPv4 address';
        const c6 = parseAnyCidr(v, spec.defaultPrefix);
        if (!c6) return { problem: 'is not an IPv6 address or IPv6/prefix', expected: expected6 };
        const p6 = ipv6HaProblem(c6.address);
        return p6 ? { problem: p6, expected: expected6 } : undefined;
      }
      const expected = `a unicast IPv4 address with an optional /prefix (default /${spec.defaultPrefix}), like 10.0.0.100/24${spec.ipv6 ? ', or an IPv6 address like fd00::100/64' : ''}`;
      if (typeof v !== 'string') return { problem: 'is not an IPv4 address', expected };
      const c = parseCidr(v, spec.defaultPrefix);
      if (!c) return { problem: 'is not an IPv4 address', expected };
      if (!isUnicastIPv4(c.address)) return { problem: 'is not a unicast address', expected };
      if (c.prefix <= 30 && isNetworkOrBroadcast(c.address, c.prefix)) return { problem: 'is the network or broadcast address of its prefix', expected };
      return undefined;
    }
    case 'ipv6Neighbour': {
      const expected = 'a unicast IPv6 address of a neighbour on the link, like fe80::1 or fd00::1';
      if (typeof v !== 'string' || !isIPv6(v)) return { problem: 'is not an IPv6 address', expected };
      const p6 = ipv6HaProblem(v);
      return p6 && !/link-local/.test(p6) ? { problem: p6, expected } : undefined;
    }
    case 'ipv4': {
      const expected = 'a unicast IPv4 address in dotted-quad form, like 10.0.0.5';
      return typeof v === 'string' && isUnicastIPv4(v) ? undefined : { problem: 'is not an IPv4 address', expected };
    }
    case 'path':
      return typeof v === 'string' && isAbsolute(v) && !v.includes('\0') && !v.endsWith('/') ? undefined
        : { problem: 'is not an absolute file path', expected: 'an absolute path like /etc/vigil/file' };
    case 'url':
      return typeof v === 'string' && parseAgentUrl(v) ? undefined
        : { problem: 'is not an agent URL', expected: 'an http(s) URL without credentials or path, like http://127.0.0.1:8500' };
    case 'command':
      return commandProblem(v);
    case 'argv':
      return argvProblem(v, 'a non-empty list of strings run as argv, like ["consul", "agent", "-config-dir", "/etc/consul.d"]');
    case 'program':
      return typeof v === 'string' && PROGRAM_RE.test(v) ? undefined
        : { problem: 'is not a program name', expected: 'a program name found on PATH or an absolute path, with no arguments' };
    case 'ctid':
      return typeof v === 'string' && CTID_RE.test(v) || typeof v === 'number' && Number.isInteger(v) && v >= 0 ? undefined
        : { problem: 'is not a container ID', expected: 'a numeric CTID or a name of letters, digits, ".", "_" or "-", starting with a letter or digit' };
    case 'event':
      return typeof v === 'string' && EVENT_RE.test(v) ? undefined
        : { problem: 'is not a Consul event name', expected: 'a name of 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit' };
    case 'name':
      return typeof v === 'string' && NAME_RE.test(v) ? undefined
        : { problem: 'is not a valid name', expected: 'a name of 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit' };
    case 'fraction':
      return fractionOf(v) !== undefined ? undefined
        : { problem: 'is not a fraction', expected: "a number above 0 and below 1, like 0.25 or '1/3'" };
    case 'kvprefix':
      return typeof v === 'string' && v.length <= 256 && KVPREFIX_RE.test(v) ? undefined
        : { problem: 'is not a KV prefix', expected: "a KV path of letters, digits, '.', '_' or '-' segments joined by '/', like ha_cluster" };
    case 'httpUrl':
      return typeof v === 'string' && isHealthUrl(v) ? undefined
        : { problem: 'is not a health URL', expected: 'an http(s) URL without credentials, like http://10.0.1.10:8080/health' };
    case 'kvKey':
      return typeof v === 'string' && KV_KEY_RE.test(v) ? undefined
        : { problem: 'is not a Consul KV key', expected: 'a key of 1 to 256 letters, digits, ".", "_", "-" or "/", not starting with "/", like vigil/promote/mail/replication' };
    case 'listen':
      return parseListen(v) !== undefined ? undefined
        : { problem: 'is not a listen address', expected: 'an IPv4 address and port like 127.0.0.1:9469, [::1]:9469, or an absolute unix socket path' };
    case 'text':
      return typeof v === 'string' && v.length <= spec.maxLength && !/[\0\n\r]/.test(v) ? undefined
        : { problem: 'is not a one-line string', expected: `a string of at most ${spec.maxLength} characters on one line` };
  }
}

/** Where a listener binds: a TCP address and port, or a unix socket path. */
export type ListenAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/**
 * `127.0.0.1:9469`, `[::1]:9469` or `/run/vigil/metrics.sock` → a
 * {@link ListenAddress}; undefined otherwise. Only literal addresses: a name
 * would bind wherever the resolver says today.
 */
export function parseListen(v: unknown): ListenAddress | undefined {
  if (typeof v !== 'string' || v.includes('\0')) return undefined;
  if (v.startsWith('/')) return v.endsWith('/') || v.length > 107 ? undefined : { kind: 'unix', path: v };
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(v);
  if (!m) return undefined;
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  if (m[2] !== undefined ? !isIPv4(host) : !isIPv6(host)) return undefined;
  return { kind: 'tcp', host, port };
}

/** True when a listener on this address can only be reached from this host. */
export function isLoopbackListen(l: ListenAddress): boolean {
  if (l.kind === 'unix') return true;
  return l.host === '::1' || /^127\./.test(l.host);
}

/** `0.25` or `'1/3'` → a number in (0, 1); undefined otherwise. */
export function fractionOf(v: unknown): number | undefined {
  let f: number | undefined;
  if (typeof v === 'number') f = v;
  else if (typeof v === 'string') {
    const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(v);
    f = m ? Number(m[1]) / Number(m[2]) : /^\s*\d*\.?\d+\s*$/.test(v) ? Number(v) : undefined;
  }
  return f !== undefined && Number.isFinite(f) && f > 0 && f < 1 ? f : undefined;
}

function isNetworkOrBroadcast(addr: string, prefix: number): boolean {
  const n = addr.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const size = 2 ** (32 - prefix);
  const host = n % size;
  return host === 0 || host === size - 1;
}

// ---- schema builders: every leaf is {vigil: spec, default?} ----

/** A JSON-schema node as ajv takes it. */
export type Schema = Record<string, unknown>;

/** A leaf of one kind, with its documented default. */
export const leaf = (spec: LeafSpec, dflt?: unknown): Schema => (dflt === undefined ? { vigil: spec } : { vigil: spec, default: dflt });
/** A duration leaf (min 10 ms, max {@link MAX_DURATION_MS} unless given). */
export const duration = (dflt?: string, minMs = 10, maxMs = MAX_DURATION_MS): Schema => leaf({ kind: 'duration', minMs, maxMs }, dflt);
/** An integer leaf. */
export const int = (min: number, max: number, dflt?: number): Schema => leaf({ kind: 'int', min, max }, dflt);
/** An absolute file path leaf. */
export const path = (dflt?: string): Schema => leaf({ kind: 'path' }, dflt);
/** A command leaf (shell string or argv); commands have no default. */
export const command = (): Schema => leaf({ kind: 'command' });

/** A mapping; unknown keys are refused. `description` is what messages say is expected. */
export function section(description: string, properties: Record<string, Schema>, opts: { required?: string[]; default?: unknown } = {}): Schema {
  return {
    type: 'object',
    description,
    additionalProperties: false,
    properties,
    ...(opts.required ? { required: opts.required } : {}),
    ...(opts.default !== undefined ? { default: opts.default } : {}),
  };
}

/** A list (at most 256 items unless given). */
export function list(description: string, items: Schema, opts: { minItems?: number; maxItems?: number; uniqueItems?: boolean; default?: unknown } = {}): Schema {
  return {
    type: 'array',
    description,
    items,
    ...(opts.minItems !== undefined ? { minItems: opts.minItems } : {}),
    maxItems: opts.maxItems ?? 256,
    ...(opts.uniqueItems ? { uniqueItems: true } : {}),
    ...(opts.default !== undefined ? { default: opts.default } : {}),
  };
}

/** A deep copy, so a default in the schema is never shared with (or changed by) a loaded config. */
export const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
