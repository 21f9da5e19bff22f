/**
 * Layer: roles. The registry: every role vigil knows, one line each, in the
 * order the config file's keys, `vigil --help` and `vigil status` list
 * them. A new role is a folder under src/roles/ and one line here (see
 * src/roles/README.md); nothing else names it.
 */
import type { RoleDefinition, SectionConfig } from './role';
import vip from './vip';
import fence from './fence';
import fenceEvent from './fence-event';
import monitor from './monitor';
import group from './group';
import promote from './promote';
import runtime from './runtime';

const BUILTIN = [
  vip,
  fence,
  fenceEvent,
  monitor,
  group,
  promote,
  runtime,
] as const;

/** The normalized sections a loaded config may hold, derived from the registry. */
export type RoleConfigs = { [D in (typeof BUILTIN)[number] as D['section']['configKey']]?: SectionConfig<D> };

let current: readonly RoleDefinition[] = BUILTIN;

/** The registered roles, in order. The array is replaced (never changed) on registration. */
export function roles(): readonly RoleDefinition[] {
  return current;
}

/**
 * Register one more role (tests: a throw-away role from the test tree).
 * Returns the function that takes it out again.
 */
export function registerRole(def: RoleDefinition): () => void {
  if (current.some((r) => r.name === def.name || r.section.key === def.section.key || r.section.configKey === def.section.configKey)) {
    throw new Error(`role ${def.name}: its name or section key is taken`);
  }
  current = [...current, def];
  return () => { current = current.filter((r) => r !== def); };
}
