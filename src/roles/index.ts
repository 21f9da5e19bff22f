/**
 * Layer: roles. The registry: every role vigil knows, one line each, in the
 * order the config file's keys, `vigil --help` and `vigil status` list
 * them. A new role is a folder under src/roles/ and one line here (see
 * src/roles/README.md); nothing else names it.
 */
import { lazyRole, type RoleDefinition, type SectionConfig } from './role';

// Each line names the role and its section keys and loads the folder on
// first use (see lazyRole): a daemon loads the roles its config runs.
/* eslint-disable @typescript-eslint/no-var-requires */
const BUILTIN = [
  lazyRole({ name: 'vip', key: 'vip', configKey: 'vip' }, () => require('./vip') as typeof import('./vip')),
  lazyRole({ name: 'fence', key: 'fence', configKey: 'fence' }, () => require('./fence') as typeof import('./fence')),
  lazyRole({ name: 'fence-event', key: 'fence_handler', configKey: 'fenceHandler' }, () => require('./fence-event') as typeof import('./fence-event')),
  lazyRole({ name: 'monitor', key: 'monitor', configKey: 'monitor' }, () => require('./monitor') as typeof import('./monitor')),
  lazyRole({ name: 'group', key: 'group', configKey: 'group' }, () => require('./group') as typeof import('./group')),
  lazyRole({ name: 'promote', key: 'promote', configKey: 'promote' }, () => require('./promote') as typeof import('./promote')),
  lazyRole({ name: 'runtime', key: 'runtime_publish', configKey: 'runtimePublish' }, () => require('./runtime') as typeof import('./runtime')),
] as const;
/* eslint-enable @typescript-eslint/no-var-requires */

/** The normalized sections a loaded config may hold, derived from the registry. */
export type RoleConfigs = { [D in (typeof BUILTIN)[number] as D['section']['configKey']]?: SectionConfig<D> };

let current: readonly RoleDefinition[] = BUILTIN;

/** The built-in roles, without those tests register. */
export function builtinRoles(): readonly RoleDefinition[] {
  return BUILTIN;
}

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
