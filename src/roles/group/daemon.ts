/**
 * Layer: roles. The `group` role as the daemon drives it (runner.ts):
 * loaded only when a config runs the role.
 */
import { performance } from 'node:perf_hooks';
import type { VigilConfig } from '../../config/types';
import { moduleLog } from '../../log';
import type { RoleContext, RoleRunner } from '../role';
import { RealAddressIo } from './io';
import { GroupRunner } from './runner';
import type { GroupConfig } from './types';
import { wireGroup } from './wire';

/** The runner factory of the registry entry. */
export function createGroupRunner(cfg: VigilConfig, _ctx: RoleContext): RoleRunner {
  const groups = [...((cfg as unknown as { group?: Map<string, GroupConfig> }).group?.values() ?? [])];
  const io = new RealAddressIo();
  const runner = new GroupRunner({
    groups, io, log: moduleLog('group', { role: 'group' }),
    wire: (g) => wireGroup(g, { io, node: cfg.node, dry: false, withLock: true }),
  });
  return {
    name: 'group',
    done: runner.done,
    start: () => runner.start(),
    stop: () => runner.stop(),
    // Groups are activated once at start; a changed group needs a restart of the daemon (the members may be running).
    canReload: (next) => (JSON.stringify([...((next as unknown as { group?: Map<string, GroupConfig> }).group?.entries() ?? [])]) === JSON.stringify([...(cfg as unknown as { group?: Map<string, GroupConfig> }).group?.entries() ?? []])
      ? undefined : 'the group section changed (restart vigil to apply it)'),
    reload: () => undefined,
    status: () => runner.status(),
    healthy: (nowMs = performance.now()) => nowMs - runner.lastProgressMs < runner.progressBoundMs() + 5000 || runner.progressBoundMs() === 0,
  };
}
