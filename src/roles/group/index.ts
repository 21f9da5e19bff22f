/**
 * Layer: roles. The `group` role (issue 16, xcatha.py's successor, seed
 * inventory §3): ordered resource groups with operator verbs. Its registry
 * entry; the engine, its I/O and the CLI load on use.
 */
import { defineRole, type VerbDefinition } from '../role';
import { groupRegistrySchema, normalizeGroups } from './config';
import type { GroupConfig } from './types';

const verb = (name: string, summary: string): VerbDefinition => ({
  name, summary,
  load: async () => { const { groupMain } = await import('./cli'); return (args: string[]) => groupMain([name, ...args]); },
});

export default defineRole({
  name: 'group',
  summary: 'ordered resource groups (address, symlink, hostname, unit, command) started in order, stopped in reverse',
  dir: __dirname,
  section: {
    key: 'group',
    configKey: 'group',
    schema: groupRegistrySchema(),
    nullable: [],
    normalize: (v, ctx): Map<string, GroupConfig> => normalizeGroups(v, ctx.add),
  },
  secretFiles: (c) => [...c.values()].flatMap((g) => (g.ownerLock?.tokenFile !== undefined
    ? [{ path: g.ownerLock.tokenFile, kind: 'key' as const, label: `token file (group ${g.name} owner_lock)` }] : [])),
  daemon: {
    logRole: 'group',
    healthRule: 'a monitor round or step within 3 × the longest monitor_interval + every member\'s timeouts + 2 × hook_timeout + 10s (always healthy without autostart groups)',
    load: async () => (await import('./daemon')).createGroupRunner,
    formatStatus: (st) => Object.entries((st.groups ?? {}) as Record<string, { phase: string; restarts: number; last?: string }>)
      .map(([n, g]) => `group ${n}: ${g.phase}, ${g.restarts} restarts${g.last ? `; last: ${g.last}` : ''}`),
  },
  importers: [
    { name: 'xcatha', summary: 'print the vigil group equivalent to xcatha.py -a/-d with the same options', load: async () => (await import('./xcatha-cli')).run },
  ],
  verbs: [
    verb('activate', 'preflight, then start a group\'s members in order (roll back on failure)'),
    verb('deactivate', 'stop a group\'s members in reverse order'),
    verb('status', 'each member\'s state read from the world: active n/n, partial k/n, inactive'),
    verb('plan', 'the effects activate would carry out, with the preflight results; changes nothing'),
    verb('check-config', 'validate the group section without running anything'),
  ],
});
