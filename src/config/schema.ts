/**
 * Layer: config, pure. The JSON schema of `vigil.yml`: the common keys
 * (node, pidfile, state_dir, log, metrics) plus each registered role's section, in
 * registry order.
 *
 * The schema gives the structure (mappings, lists, required keys, defaults,
 * `additionalProperties: false` at every level, so an unknown key is an
 * error); the leaves are the kinds of `kinds.ts`.
 */
import { leaf, path, section, type Schema } from './kinds';
import { builtinRoles, roles } from '../roles';
import type { RoleDefinition } from '../roles/role';

export * from './kinds';

/** Default path of the config file. */
export const DEFAULT_CONFIG_FILE = '/etc/vigil/vigil.yml';

/** Where the PID file lives when the config does not say (also the CLI's guess for a broken config). */
export const DEFAULT_PIDFILE = '/run/vigil/vigil.pid';

/** The role section keys, in registry order: `vip, fence, fence_handler`. */
export function sectionKeys(defs: readonly RoleDefinition[] = roles()): string[] {
  return defs.map((d) => d.section.key);
}

/**
 * The schema of the whole file. Defaults here are the documented ones
 * (`etc/vigil.example.yml`, and each role's `sample.yml`); `node` (the
 * hostname) and values that depend on other values are filled in by the
 * loader and the role's normalisation.
 *
 * With `only`, the sections not in it keep their key (so an unknown key is
 * still told the full list, and a typo its nearest name) but get an empty
 * schema: the loader compiles what a file holds, not every role's section
 * (a validator for all of them was 10 MiB of a vip-only daemon's peak RSS,
 * bench/memory.ts). No section has a default of its own, so a section the
 * file leaves out stays out either way.
 */
export function buildConfigSchema(defs: readonly RoleDefinition[] = roles(), only?: ReadonlySet<string>): Schema {
  return section(
    `a mapping with the keys node, pidfile, state_dir, log, metrics and at least one of ${sectionKeys(defs).join(', ')}`,
    {
      node: leaf({ kind: 'node' }),
      pidfile: path(DEFAULT_PIDFILE),
      state_dir: path('/var/lib/vigil'),
      log: section('a mapping with the keys level and file', {
        level: leaf({ kind: 'logLevel' }, 'info'),
        file: path(),
      }, { default: {} }),
      metrics: section('a mapping with the keys listen and allow_remote', {
        listen: leaf({ kind: 'listen' }),
        allow_remote: leaf({ kind: 'bool' }, false),
      }, { required: ['listen'] }),
      ...Object.fromEntries(defs.map((d) => [d.section.key, !only || only.has(d.section.key) ? d.section.schema : {}])),
    },
  );
}

let builtinSchema: Schema | undefined;

/**
 * The schema of the whole file with the built-in roles (built on first use:
 * it loads every role's section).
 */
export function builtinConfigSchema(): Schema {
  return (builtinSchema ??= buildConfigSchema(builtinRoles()));
}

/**
 * Sections that may be written as a bare `key:` (YAML null) to mean "on,
 * with the defaults"; the loader turns such a null into `{}` before
 * validation.
 */
export function nullableSections(defs: readonly RoleDefinition[] = roles(), only?: ReadonlySet<string>): string[][] {
  return [['log'], ...defs.filter((d) => !only || only.has(d.section.key)).flatMap((d) => d.section.nullable.map((p) => [d.section.key, ...p]))];
}
