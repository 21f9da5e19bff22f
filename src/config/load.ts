/**
 * Layer: config. YAML text → validated, normalized {@link VigilConfig}.
 *
 * Order: parse one YAML document (duplicate keys, unresolved tags and
 * several documents are errors) → treat bare `section:` as `{}` → validate
 * against the schema (`buildConfigSchema`) with ajv's validators (validator.ts) (defaults filled in, unknown keys
 * refused) → cross-field rules → normalize (durations to ms, addresses to
 * Cidr, commands kept as string or argv). Every problem becomes one line
 * `file:line: key.path: <value> <problem> (expected …)`; all of them are
 * collected, sorted by line, and thrown as one {@link ConfigError} whose
 * message is the first line (plus a count) and whose `detail.errors` holds
 * them all.
 *
 * Each role's section (schema, normalisation, cross-key rules) comes from
 * its folder through the registry (`src/roles/index.ts`); see there for a
 * section's own rules. Rules across roles: at least one role must be on
 * (a section present and not idle), else the first idle section says why,
 * or the file is told which sections it may have.
 */
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import type { ErrorObject } from 'ajv';
import type { Document, LineCounter, Node as YamlNode } from 'yaml';
import { ConfigError } from '../errors';
import { levelFromVzhaipd } from '../log';
import type { LogLevel } from '../log';
import { buildConfigSchema, checkLeaf, isLoopbackListen, nullableSections, parseListen, sectionKeys } from './schema';
import type { LeafSpec } from './schema';
import { compiledNames, validatorFor } from './validator';
import { formatKeyPath, formatValue, orList, type KeyPath } from './normalize';
import { checkReferencedFiles, readSecureFile } from './permissions';
import type { CommonConfig, VigilConfig } from './types';
import { roles as registeredRoles } from '../roles';
import { isActive, type RoleDefinition } from '../roles/role';

export { formatKeyPath, formatValue } from './normalize';

/** Options for {@link loadConfig}. */
export interface LoadOptions {
  /**
   * Check the config file (and the key, token and IP files it names) for
   * owner and mode before trusting them. Default true; tests and
   * `import-vzhaipd` round trips turn it off.
   */
  checkPermissions?: boolean;
  /** The roles the file may configure (default: the registry). */
  roles?: readonly RoleDefinition[];
  /**
   * Drop the YAML library from memory once the file is read (the daemon:
   * it reads a file again only on reload, and then loads it again).
   */
  releaseParser?: boolean;
}

/** A role a config switches on, named by its section key as in the YAML. */
export type RoleName = string;

/** Largest config file accepted. */
const MAX_CONFIG_BYTES = 1024 * 1024;
/** Aliases expand; a few are handy, thousands are a billion-laughs file. */
const MAX_ALIAS_COUNT = 100;

type Yaml = typeof import('yaml');
let yamlLib: Yaml | undefined;

/** The YAML library, loaded on first use. */
function yaml(): Yaml {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return (yamlLib ??= require('yaml') as Yaml);
}

/**
 * Forget the YAML library so the garbage collector can take it (its 70
 * modules, 0.7 MiB of a vip daemon's RSS at rest, bench/memory.ts): out of
 * the module cache and this module's children. The next load requires it
 * again. Not when another module required it too (it would stay, and a
 * second copy would come with the next load).
 */
export function releaseParser(): void {
  if (yamlLib === undefined) return;
  const dir = dirname(dirname(require.resolve('yaml'))) + sep;
  const inYaml = (m: NodeModule) => m.id.startsWith(dir);
  const mods = Object.values(require.cache).filter((m): m is NodeModule => m !== undefined);
  if (mods.some((m) => m !== module && !inYaml(m) && m.children.some(inYaml))) return;
  yamlLib = undefined;
  for (const m of mods) if (inYaml(m)) delete require.cache[m.id];
  module.children = module.children.filter((c) => !inYaml(c));
}

type Path = KeyPath;
interface Problem { path: Path; line: number; text: string }

/**
 * Validate the raw file: its common keys (the role sections as `{}`), then
 * each section it holds with that section's validator, in registry order:
 * the errors one validator for the whole file would give, in its order
 * (ajv checks an object's properties in schema order, the sections last),
 * with each section's paths under its key. Validators come from the build
 * or are compiled once (validator.ts): a daemon never builds another role's.
 */
function validateFile(defs: readonly RoleDefinition[], raw: Record<string, unknown>): ErrorObject[] {
  const validateCommon = validatorFor('file', buildConfigSchema(defs, new Set()));
  const errors = validateCommon(raw) ? [] : [...(validateCommon.errors ?? [])];
  for (const d of defs) {
    const key = d.section.key;
    if (!(key in raw)) continue;
    const validate = validatorFor(key, d.section.schema);
    if (!validate(raw[key])) errors.push(...(validate.errors ?? []).map((e) => ({ ...e, instancePath: `/${key}${e.instancePath}` })));
  }
  return errors;
}

/** The validators this process compiled rather than took from the build (`file` or a section key), in order. */
export function compiledValidators(): readonly string[] {
  return compiledNames;
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
      // A name → value mapping (patternProperties): any name is a key, this one is not a name.
      if (parent?.patternProperties) return [[...path, key], `is not a valid name (expected ${(parent.description as string | undefined) ?? 'a name'}, each name of letters, digits, '.', '_' or '-', starting with a letter or digit)`];
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
    if (yaml().isMap(node)) {
      const pair = node.items.find((p) => (yaml().isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
      if (!pair) break;
      const keyRange = (pair.key as YamlNode | null)?.range;
      if (keyRange) offset = keyRange[0];
      node = pair.value;
    } else if (yaml().isSeq(node) && typeof seg === 'number') {
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
function parseYaml(text: string, file: string, keys: string): { data: unknown; doc: Document; lc: LineCounter } {
  if (text.length > MAX_CONFIG_BYTES) failText(file, 1, `the file is larger than ${MAX_CONFIG_BYTES} bytes (expected a config file)`);
  const { LineCounter, isCollection, parseAllDocuments, visit } = yaml();
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, uniqueKeys: true, strict: true, prettyErrors: false, version: '1.2' });
  if (docs.length === 0) failText(file, 1, `the file is empty (expected a mapping with at least one of ${keys})`);
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

/** Parse and validate config text; no file-system checks. Throws {@link ConfigError}. */
export function parseConfigText(text: string, file: string, opts: { roles?: readonly RoleDefinition[] } = {}): VigilConfig {
  const defs = opts.roles ?? registeredRoles();
  const keys = sectionKeys(defs);
  const absFile = resolve(file);
  const { data, doc, lc } = parseYaml(text, absFile, keys.join(', '));
  if (!isPlainObject(data)) {
    failText(absFile, lc.linePos((doc.contents as YamlNode | null)?.range?.[0] ?? 0).line,
      `${formatValue(data)} is not a mapping (expected a mapping with at least one of ${keys.join(', ')})`);
  }
  const raw = structuredClone(data);
  // Only the sections the file holds: the others' definitions stay unloaded (lazyRole).
  const held = new Set(Object.keys(raw));
  for (const p of nullableSections(defs, held)) {
    const parent = p.slice(0, -1).reduce<unknown>((o, k) => (isPlainObject(o) ? o[k] : undefined), raw);
    const key = p[p.length - 1]!;
    if (isPlainObject(parent) && key in parent && parent[key] === null) parent[key] = {};
  }
  for (const d of defs) if (held.has(d.section.key)) d.section.prepare?.(raw);

  const problems: Problem[] = [];
  const add = (path: Path, text: string) => problems.push({ path, line: lineOf(doc, lc, path), text });
  const errors = validateFile(defs, raw);
  if (errors.length > 0) {
    for (const e of errors) {
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

  const sections: Record<string, unknown> = {};
  for (const d of defs) {
    if (r[d.section.key]) sections[d.section.configKey] = d.section.normalize(r[d.section.key], { add, file: r });
  }
  const present = defs.filter((d) => sections[d.section.configKey] !== undefined);
  if (!present.some((d) => d.section.active?.(sections[d.section.configKey]) ?? true)) {
    const idle = present.find((d) => d.section.idle);
    if (idle) add(...idle.section.idle!(r[idle.section.key], keys.filter((k) => k !== idle.section.key)));
    else add([], `no role configured (expected at least one of the sections ${orList(keys)})`);
  }
  let metrics: CommonConfig['metrics'];
  if (r.metrics) {
    const listen = parseListen(r.metrics.listen)!;
    // A scrape shows the node's roles and states: not for the whole network unless asked.
    if (!isLoopbackListen(listen) && r.metrics.allow_remote !== true) {
      add(['metrics', 'listen'], `${formatValue(r.metrics.listen)} is not a loopback address (expected 127.0.0.0/8, [::1] or a unix socket path; set metrics.allow_remote: true to serve other hosts)`);
    }
    metrics = { listen, allowRemote: r.metrics.allow_remote === true };
  }
  if (problems.length > 0) fail(absFile, problems);

  const level: LogLevel = typeof r.log.level === 'number' ? levelFromVzhaipd(r.log.level) : r.log.level;
  return {
    file: absFile,
    node,
    pidfile: resolve(r.pidfile),
    stateDir: resolve(r.state_dir),
    log: { level, ...(r.log.file !== undefined ? { file: resolve(r.log.file) } : {}) },
    ...(metrics ? { metrics } : {}),
    ...sections,
  };
}

/** The roles a loaded config runs, by section key (a present but idle section is not one). */
export function configRoles(cfg: VigilConfig, defs: readonly RoleDefinition[] = registeredRoles()): RoleName[] {
  return defs.filter((d) => isActive(cfg, d)).map((d) => d.section.key);
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
  let cfg: VigilConfig;
  try {
    cfg = parseConfigText(text, abs, opts.roles ? { roles: opts.roles } : {});
  } finally {
    if (opts.releaseParser) releaseParser();
  }
  if (check) checkReferencedFiles(cfg, opts.roles ? { roles: opts.roles } : {});
  return cfg;
}
