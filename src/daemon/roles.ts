/**
 * Layer: daemon. Starts the roles a config switches on by walking the
 * registry: each role's runner code is loaded only when the config runs it.
 * The daemon drives them through one small interface (start, stop, reload,
 * status, health); it names no role.
 */
import type { VigilConfig } from '../config/types';
import type { Logger } from '../log';
import { setLogRole } from '../log';
import { roles as registeredRoles } from '../roles';
import { isActive, sectionOf, type RoleDefinition, type RoleRunner } from '../roles/role';
import type { Notifier } from './notify';

export type { RoleRunner } from '../roles/role';

/** The registered roles the daemon runs for a config (active, with a daemon part), in registry order. */
export function runnableRoles(cfg: VigilConfig, defs: readonly RoleDefinition[] = registeredRoles()): RoleDefinition[] {
  // The section first: reading `daemon` loads the role's folder (lazyRole).
  return defs.filter((d) => isActive(cfg, d) && d.daemon !== undefined);
}

/** Build the roles a config asks for. */
export async function createRoles(cfg: VigilConfig, log: Logger, notifier: Notifier, defs: readonly RoleDefinition[] = registeredRoles()): Promise<RoleRunner[]> {
  // The role lines without one of their own carry (see log.ts): the label of
  // the first role whose section the config has (the HA IP role's master or
  // slave once it runs, else the fence role's name).
  const first = defs.find((d) => sectionOf(cfg, d) !== undefined && d.daemon !== undefined);
  if (first) setLogRole(first.daemon!.logRole);
  const out: RoleRunner[] = [];
  for (const d of runnableRoles(cfg, defs)) out.push((await d.daemon!.load())(cfg, { log, notifier }));
  return out;
}
