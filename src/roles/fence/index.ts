/**
 * Layer: roles. The self-fencing role (`fence:`), hostha consuldaemon's
 * successor: supervise the local Consul agents; when every agent has lost
 * every server and the host's own network is dead, fence this host. Its
 * registry entry; the runner and its I/O load on use.
 */
import { defineRole } from '../role';
import { FENCE_SCHEMA, fenceIdle, normalizeFence } from './config';
import { formatFenceStatus } from './status';

export default defineRole({
  name: 'fence',
  summary: 'supervise the local Consul agents; fence this host when it is cut off',
  dir: __dirname,
  section: {
    key: 'fence',
    configKey: 'fence',
    schema: FENCE_SCHEMA,
    nullable: [[], ['watchdog']],
    normalize: (v, ctx) => normalizeFence(v, ctx.add),
    // Without agents the section only lends its actions to the fence event handler.
    active: (c) => c.agents.length > 0,
    idle: fenceIdle,
  },
  secretFiles: (c) => c.agents.flatMap((a) => (a.tokenFile !== undefined ? [{ path: a.tokenFile, kind: 'key' as const, label: `token file (agent ${a.name})` }] : [])),
  daemon: {
    logRole: 'fence',
    healthRule: 'progress within 3 × check_interval + request_timeout + confirm_cycles × neighbour_probe_timeout + action_timeout × (number of actions) + 5s',
    load: async () => (await import('./daemon')).createFenceRunner,
    formatStatus: formatFenceStatus,
  },
});
