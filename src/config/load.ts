/**
 * Layer: config. YAML text → validated, normalized {@link VigilConfig}.
 *
 * Order: parse one YAML document (duplicate keys, unresolved tags and
 * several documents are errors) → treat bare `section:` as `{}` → validate
 * against {@link CONFIG_SCHEMA} with ajv (defaults filled in, unknown keys
 * refused) → cross-field rules → normalize (durations to ms, addresses to
 * Cidr, commands kept as string or argv). Every problem becomes one line
 * `file:line: key.path: <value> <problem> (expected …)`; all of them are
 * collected, sorted by line, and thrown as one {@link ConfigError} whose
 * message is the first line (plus a count) and whose `detail.errors` holds
 * them all.
 *
 * Cross-field rules (each reported on the first key named):
 * - `vip.failure_check_interval` must not exceed `vip.check_interval` (the
 *   retry after a failed probe is the fast path);
 * - `vip.probe_timeout` must not exceed `vip.failure_check_interval` nor
 *   `vip.master_check_interval` (a probe must end before the next is due);
 * - `vip.track.timeout` (default: the track interval) must not exceed
 *   `vip.track.interval`;
 * - `vip.container` is required with `backend: vzctl` and refused with
 *   `backend: netlink`;
 * - `fence.request_timeout` + `fence.neighbour_probe_timeout` must not
 *   exceed `fence.check_interval` (a cycle must end before the next);
 * - `fence.watchdog.timeout` must be whole seconds (the kernel's unit) and
 *   at least twice `fence.check_interval` (it is petted once per cycle);
 * - `fence.agents[].name` and `.url` must be unique;
 * - at least one role: `vip`, `fence` with agents, or `fence_handler`.
 *   `fence` with `agents: []` (or none) runs no self-fencing loop; it only
 *   supplies `actions` to the handler. A `fence_handler` without a `fence`
 *   section gets a `fence` section of defaults (its actions).
 */
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import Ajv from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { LineCounter, isCollection, isMap, isScalar, isSeq, parseAllDocuments, visit } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import { ConfigError } from '../errors';
import { levelFromVzhaipd } from '../log';
import type { LogLevel } from '../log';
import type { Command } from '../actions/commands';
import { formatDurationMs, parseDurationMs } from '../util/duration';
import { parseCidr } from '../util/ip';
import { CONFIG_SCHEMA, NULLABLE_SECTIONS, checkLeaf, parseAgentUrl } from './schema';
import type { LeafSpec } from './schema';
import { checkReferencedFiles, readSecureFile } from './permissions';
import type { AgentConfig, FenceConfig, FenceHandlerConfig, TrackConfig, VigilConfig, VipConfig } from './types';

/** Options for {@link loadConfig}. */
export interface LoadOptions {
  /**
   * Check the config file (and the key, token and IP files it names) for
   * owner and mode before trusting them. Default true; tests and
   * `import-vzhaipd` round trips turn it off.
   */
  checkPermissions?: boolean;
}

/** The roles a config switches on, named as in the YAML. */
export type RoleName = 'vip' | 'fence' | 'fence_handler';

/** Largest config file accepted. */
const MAX_CONFIG_BYTES = 1024 * 1024;
/** Aliases expand; a few are handy, thousands are a billion-laughs file. */
const MAX_ALIAS_COUNT = 100;

type Path = (string | number)[];
interface Problem { path: Path; line: number; text: string }

/** Format a value the way messages quote it: `'5x'`, `0`, `null`, `["a"]`. */
export function formatValue(v: unknown): string {
  let s: string;
  if (v === undefined) s = 'nothing';
  else if (typeof v === 'string') s = /^[^'\\\x00-\x1f\x7f]*$/.test(v) ? `'${v}'` : JSON.stringify(v);
  else if (typeof v === 'number' || typeof v === 'boolean' || v === null) s = String(v);
  else {
    try { s = JSON.stringify(v) ?? String(v); } catch { s = String(v); }
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** `vip.check_interval`, `fence.agents[0].url`. */
export function formatKeyPath(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out === '' ? '(top level)' : out;
}

let validator: ValidateFunction | undefined;

function getValidator(): ValidateFunction {
  if (validator) return validator;
  const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true });
  ajv.addKeyword({
    keyword: 'vigil',
    schemaType: 'object',
    errors: false,
    validate: (spec: LeafSpec, data: unknown) => checkLeaf(spec, data) === undefined,
  });
  validator = ajv.compile(CONFIG_SCHEMA);
  return validator;
}

function pointerToPath(ptr: string): Path {
  if (ptr === '') return [];
  return ptr.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')).map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}

/** What a schema node expects, in words. */
function expectationOf(schema: Record<string, unknown> | undefined): string {
  if (!schema) return 'a valid value';
  if (schema.vigil) return checkLeaf(schema.vigil as LeafSpec, undefined)?.expected ?? 'a valid value';
  return (schema.description as string | undefined) ?? 'a valid value';
}

/** One ajv error as `[path, text]`, or undefined for errors another one already explains. */
function describeAjvError(e: ErrorObject): [Path, string] | undefined {
  const path = pointerToPath(e.instancePath);
  const parent = e.parentSchema as Record<string, unknown> | undefined;
  switch (e.keyword) {
    case 'vigil': {
      const p = checkLeaf(e.schema as LeafSpec, e.data);
      return p ? [path, `${formatValue(e.data)} ${p.problem} (expected ${p.expected})`] : undefined;
    }
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys((parent?.properties as Record<string, unknown>) ?? {});
      // Short keys are a typo away from everything; allow one edit there, two for longer keys.
      const near = known.filter((k) => editDistance(k, key) <= (key.length >= 5 ? 2 : 1)).sort((a, b) => editDistance(a, key) - editDistance(b, key))[0];
      const hint = near ? `did you mean '${near}'? ` : '';
      return [[...path, key], `unknown key (${hint}expected one of: ${known.join(', ')})`];
    }
    case 'required': {
      const key = (e.params as { missingProperty: string }).missingProperty;
      const child = (parent?.properties as Record<string, Record<string, unknown>> | undefined)?.[key];
      return [[...path, key], `is required but missing (expected ${expectationOf(child)})`];
    }
    case 'type': {
      const what = (e.params as { type: string }).type === 'array' ? 'a list' : 'a mapping';
      return [path, `${formatValue(e.data)} is not ${what} (expected ${expectationOf(parent)})`];
    }
    case 'minItems': {
      const limit = (e.params as { limit: number }).limit;
      return [path, `${formatValue(e.data)} ${limit === 1 ? 'is empty' : `has fewer than ${limit} entries`} (expected ${expectationOf(parent)})`];
    }
    case 'maxItems': {
      const limit = (e.params as { limit: number }).limit;
      return [path, `has ${(e.data as unknown[]).length} entries, more than ${limit} (expected ${expectationOf(parent)} of at most ${limit})`];
    }
    case 'uniqueItems': {
      // ajv reports the later duplicate as i, the earlier as j.
      const { i } = e.params as { i: number; j: number };
      return [[...path, i], `${formatValue((e.data as unknown[])[i])} is listed twice (expected ${expectationOf(parent)} without repeats)`];
    }
    default:
      return [path, `${formatValue(e.data)}: ${e.message ?? 'is not valid'}`];
  }
}

/** Line (1-based) of the key at `path` in the document, or of the deepest node found. */
function lineOf(doc: Document, lc: LineCounter, path: Path): number {
  let node: unknown = doc.contents;
  let offset = (doc.contents as YamlNode | null)?.range?.[0] ?? 0;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
      if (!pair) break;
      const keyRange = (pair.key as YamlNode | null)?.range;
      if (keyRange) offset = keyRange[0];
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as YamlNode | undefined;
      if (!item) break;
      if (item.range) offset = item.range[0];
      node = item;
    } else break;
  }
  return lc.linePos(offset).line;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(file: string, problems: Problem[]): never {
  // An unknown key first: it is usually the typo behind a "missing" error
  // elsewhere ('adress:' → address missing), and it carries the did-you-mean.
  const rank = (p: Problem) => (p.text.startsWith('unknown key') ? 0 : 1);
  problems.sort((a, b) => rank(a) - rank(b) || a.line - b.line);
  const lines = [...new Set(problems.map((p) => `${file}:${p.line}: ${p.path.length > 0 ? `${formatKeyPath(p.path)}: ` : ''}${p.text}`))];
  const more = lines.length > 1 ? ` (and ${lines.length - 1} more error${lines.length > 2 ? 's' : ''})` : '';
  throw new ConfigError(`${lines[0]}${more}`, { file, errors: lines });
}

function failText(file: string, line: number, text: string): never {
  const msg = `${file}:${line}: ${text}`;
  throw new ConfigError(msg, { file, errors: [msg] });
}

/** Parse the YAML into plain data, refusing what a config file should never be. */
function parseYaml(text: string, file: string): { data: unknown; doc: Document; lc: LineCounter } {
  if (text.length > MAX_CONFIG_BYTES) failText(file, 1, `the file is larger than ${MAX_CONFIG_BYTES} bytes (expected a config file)`);
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, uniqueKeys: true, strict: true, prettyErrors: false, version: '1.2' });
  if (docs.length === 0) failText(file, 1, 'the file is empty (expected a mapping with at least one of vip, fence, fence_handler)');
  if (docs.length > 1) {
    const second = docs[1]!;
    failText(file, lc.linePos(second.range[0]).line, 'the file holds several YAML documents (expected exactly one)');
  }
  const doc = docs[0]! as Document;
  const bad = [...doc.errors, ...doc.warnings];
  if (bad.length > 0) {
    const problems = bad.map((e) => ({ path: [] as Path, line: lc.linePos(e.pos[0]).line, text: `YAML: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}` }));
    // An unknown key first: it is usually the typo behind a "missing" error
  // elsewhere ('adress:' → address missing), and it carries the did-you-mean.
  const rank = (p: Problem) => (p.text.startsWith('unknown key') ? 0 : 1);
  problems.sort((a, b) => rank(a) - rank(b) || a.line - b.line);
    const lines = problems.map((p) => `${file}:${p.line}: ${p.text}`);
    throw new ConfigError(`${lines[0]}${lines.length > 1 ? ` (and ${lines.length - 1} more)` : ''}`, { file, errors: lines });
  }
  // A mapping or list used as a key would be stringified by toJS (with a process warning); refuse it here.
  let complexKey: number | undefined;
  visit(doc, { Pair(_, pair) { if (complexKey === undefined && isCollection(pair.key)) complexKey = (pair.key as YamlNode).range?.[0] ?? 0; } });
  if (complexKey !== undefined) failText(file, lc.linePos(complexKey).line, 'YAML: a mapping or list is used as a key (expected plain keys)');
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    failText(file, 1, `YAML: ${(e as Error).message.split('\n')[0]} (expected at most ${MAX_ALIAS_COUNT} alias expansions)`);
  }
  return { data, doc, lc };
}

const ms = (v: unknown): number => parseDurationMs(v)!;

function toCommand(v: unknown): Command {
  return typeof v === 'string' ? v : [...(v as string[])];
}

/** Parse and validate config text; no file-system checks. Throws {@link ConfigError}. */
export function parseConfigText(text: string, file: string): VigilConfig {
  const absFile = resolve(file);
  const { data, doc, lc } = parseYaml(text, absFile);
  if (!isPlainObject(data)) {
    failText(absFile, lc.linePos((doc.contents as YamlNode | null)?.range?.[0] ?? 0).line,
      `${formatValue(data)} is not a mapping (expected a mapping with at least one of vip, fence, fence_handler)`);
  }
  const raw = structuredClone(data);
  for (const p of NULLABLE_SECTIONS) {
    const parent = p.slice(0, -1).reduce<unknown>((o, k) => (isPlainObject(o) ? o[k] : undefined), raw);
    const key = p[p.length - 1]!;
    if (isPlainObject(parent) && key in parent && parent[key] === null) parent[key] = {};
  }
  // The handler runs fence.actions; without a fence section those are the defaults.
  if (isPlainObject(raw.fence_handler) && raw.fence === undefined) raw.fence = {};

  const problems: Problem[] = [];
  const add = (path: Path, text: string) => problems.push({ path, line: lineOf(doc, lc, path), text });
  const validate = getValidator();
  if (!validate(raw)) {
    for (const e of validate.errors ?? []) {
      const d = describeAjvError(e);
      if (d) add(d[0], d[1]);
    }
    fail(absFile, problems);
  }

  // The schema above guarantees the shape; read it untyped rather than restate it.
  const r = raw as Record<string, any>;
  let node = r.node as string | undefined;
  if (node === undefined) {
    node = hostname();
    const p = checkLeaf({ kind: 'node' }, node);
    if (p) add(['node'], `${formatValue(node)} (the hostname, used by default) ${p.problem} (expected ${p.expected}; set node explicitly)`);
  }

  const vip = r.vip ? normalizeVip(r.vip, add) : undefined;
  const fence = r.fence ? normalizeFence(r.fence, add) : undefined;
  const fenceHandler: FenceHandlerConfig | undefined = r.fence_handler ? {
    event: r.fence_handler.event,
    maxAgeMs: ms(r.fence_handler.max_age),
    maxSkewMs: ms(r.fence_handler.max_skew),
    ...(r.fence_handler.key_file !== undefined ? { keyFile: resolve(r.fence_handler.key_file) } : {}),
    onEnable: (r.fence_handler.on_enable as unknown[]).map(toCommand),
  } : undefined;

  if (!vip && !fenceHandler && !(fence && fence.agents.length > 0)) {
    add(fence ? ['fence', 'agents'] : [], fence
      ? `${formatValue(r.fence.agents)} is empty and there is no vip or fence_handler section, so no role is configured (expected agents to supervise, or a vip or fence_handler section)`
      : 'no role configured (expected at least one of the sections vip, fence or fence_handler)');
  }
  if (problems.length > 0) fail(absFile, problems);

  const level: LogLevel = typeof r.log.level === 'number' ? levelFromVzhaipd(r.log.level) : r.log.level;
  return {
    file: absFile,
    node,
    pidfile: resolve(r.pidfile),
    stateDir: resolve(r.state_dir),
    log: { level, ...(r.log.file !== undefined ? { file: resolve(r.log.file) } : {}) },
    ...(vip ? { vip } : {}),
    ...(fence ? { fence } : {}),
    ...(fenceHandler ? { fenceHandler } : {}),
  };
}

type Add = (path: Path, text: string) => void;

function notLonger(add: Add, path: Path, valueMs: number, otherKey: string, otherMs: number, why: string): void {
  if (valueMs > otherMs) {
    add(path, `${formatValue(formatDurationMs(valueMs))} is longer than ${otherKey} (${formatDurationMs(otherMs)}) (expected at most ${formatDurationMs(otherMs)}: ${why})`);
  }
}

function normalizeVip(v: Record<string, any>, add: Add): VipConfig {
  const out: VipConfig = {
    interface: v.interface,
    address: parseCidr(v.address, 32)!,
    ...(v.ip_file !== undefined ? { ipFile: resolve(v.ip_file) } : {}),
    checkIntervalMs: ms(v.check_interval),
    failureCheckIntervalMs: ms(v.failure_check_interval),
    takeOverAfter: v.take_over_after,
    probeTimeoutMs: ms(v.probe_timeout),
    masterCheckIntervalMs: ms(v.master_check_interval),
    ipFileCheckIntervalMs: ms(v.ip_file_check_interval),
    announce: { count: v.announce.count, intervalMs: ms(v.announce.interval) },
    ...(v.on_master !== undefined ? { onMaster: toCommand(v.on_master) } : {}),
    ...(v.on_slave !== undefined ? { onSlave: toCommand(v.on_slave) } : {}),
    commandTimeoutMs: ms(v.command_timeout),
    backend: v.backend,
    ...(v.container !== undefined ? { container: String(v.container) } : {}),
    vzctl: v.vzctl,
    vzlist: v.vzlist,
    containerSettleMs: ms(v.container_settle),
  };
  if (v.track) {
    const interval = ms(v.track.interval);
    const track: TrackConfig = {
      command: toCommand(v.track.command),
      intervalMs: interval,
      fall: v.track.fall,
      rise: v.track.rise,
      timeoutMs: v.track.timeout === undefined ? interval : ms(v.track.timeout),
    };
    notLonger(add, ['vip', 'track', 'timeout'], track.timeoutMs, 'vip.track.interval', interval, 'a check must end before the next is due');
    out.track = track;
  }
  notLonger(add, ['vip', 'failure_check_interval'], out.failureCheckIntervalMs, 'vip.check_interval', out.checkIntervalMs,
    'the retry after a failed probe is the fast path');
  notLonger(add, ['vip', 'probe_timeout'], out.probeTimeoutMs, 'vip.failure_check_interval', out.failureCheckIntervalMs,
    'a probe must end before the next one is due');
  notLonger(add, ['vip', 'probe_timeout'], out.probeTimeoutMs, 'vip.master_check_interval', out.masterCheckIntervalMs,
    'a probe must end before the next one is due');
  if (out.backend === 'vzctl' && out.container === undefined) {
    add(['vip', 'container'], 'is required but missing with backend vzctl (expected the CTID of the container that gets the addresses)');
  }
  if (out.backend === 'netlink' && out.container !== undefined) {
    add(['vip', 'container'], `${formatValue(v.container)} is set but backend is netlink (expected no container, or backend: vzctl)`);
  }
  return out;
}

function normalizeFence(f: Record<string, any>, add: Add): FenceConfig {
  const agents: AgentConfig[] = [];
  const names = new Set<string>();
  const urls = new Set<string>();
  (f.agents as Record<string, any>[]).forEach((a, i) => {
    const url = parseAgentUrl(a.url)!.origin;
    if (names.has(a.name)) add(['fence', 'agents', i, 'name'], `${formatValue(a.name)} is used by an earlier agent (expected a unique name)`);
    if (urls.has(url)) add(['fence', 'agents', i, 'url'], `${formatValue(a.url)} is used by an earlier agent (expected one agent per URL)`);
    names.add(a.name);
    urls.add(url);
    agents.push({
      name: a.name,
      url,
      ...(a.token_file !== undefined ? { tokenFile: resolve(a.token_file) } : {}),
      ...(a.command !== undefined ? { command: [...(a.command as string[])] } : {}),
      ...(a.join !== undefined ? { join: [...(a.join as string[])] } : {}),
    });
  });
  const out: FenceConfig = {
    agents,
    ...(f.interfaces !== undefined ? { interfaces: [...(f.interfaces as string[])] } : {}),
    checkIntervalMs: ms(f.check_interval),
    confirmCycles: f.confirm_cycles,
    requestTimeoutMs: ms(f.request_timeout),
    neighbourProbeTimeoutMs: ms(f.neighbour_probe_timeout),
    actions: (f.actions as unknown[]).map(toCommand),
    actionTimeoutMs: ms(f.action_timeout),
    dryRun: f.dry_run,
  };
  const cycle = out.requestTimeoutMs + out.neighbourProbeTimeoutMs;
  if (cycle > out.checkIntervalMs) {
    add(['fence', 'request_timeout'], `${formatValue(formatDurationMs(out.requestTimeoutMs))} plus fence.neighbour_probe_timeout (${formatDurationMs(out.neighbourProbeTimeoutMs)}) is longer than fence.check_interval (${formatDurationMs(out.checkIntervalMs)}) (expected the two together at most ${formatDurationMs(out.checkIntervalMs)}: a cycle must end before the next is due)`);
  }
  if (f.watchdog) {
    const timeoutMs = ms(f.watchdog.timeout);
    if (timeoutMs % 1000 !== 0) {
      add(['fence', 'watchdog', 'timeout'], `${formatValue(f.watchdog.timeout)} is not whole seconds (expected a whole number of seconds: the watchdog driver counts in seconds)`);
    } else if (timeoutMs < 2 * out.checkIntervalMs) {
      add(['fence', 'watchdog', 'timeout'], `${formatValue(f.watchdog.timeout)} is shorter than twice fence.check_interval (${formatDurationMs(out.checkIntervalMs)}) (expected at least ${formatDurationMs(2 * out.checkIntervalMs)}: it is petted once per cycle)`);
    }
    out.watchdog = { device: resolve(f.watchdog.device), timeoutMs };
  }
  return out;
}

/** The roles a loaded config runs: `fence` only when it has agents to supervise. */
export function configRoles(cfg: VigilConfig): RoleName[] {
  const roles: RoleName[] = [];
  if (cfg.vip) roles.push('vip');
  if (cfg.fence && cfg.fence.agents.length > 0) roles.push('fence');
  if (cfg.fenceHandler) roles.push('fence_handler');
  return roles;
}

/**
 * Read, check and parse a config file. With `checkPermissions` (the
 * default) the file must be a root-owned regular file that is not
 * group/world-writable, and the key, token and IP files it names must pass
 * their rules too (see `permissions.ts`). Throws {@link ConfigError}.
 */
export function loadConfig(file: string, opts: LoadOptions = {}): VigilConfig {
  const abs = resolve(file);
  const check = opts.checkPermissions ?? true;
  let text: string;
  if (check) {
    text = readSecureFile(abs, 'config', { maxBytes: MAX_CONFIG_BYTES });
  } else {
    try { text = readFileSync(abs, 'utf8'); } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ConfigError(code === 'ENOENT' ? `config file ${abs} does not exist` : `config file ${abs} cannot be read: ${code ?? String(e)}`, { path: abs, code });
    }
  }
  const cfg = parseConfigText(text, abs);
  if (check) checkReferencedFiles(cfg);
  return cfg;
}
