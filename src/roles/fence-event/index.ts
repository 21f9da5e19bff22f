/**
 * Layer: roles. The fence-event role (`fence_handler:`), hostha
 * /usr/bin/fence's successor: the Consul watch handler that acts on
 * authenticated, fresh `fence` / `enable` events addressed to this node,
 * and the sender. No daemon part: Consul runs the handler per delivery,
 * so its entry is kept light and the verbs load on use.
 */
import { defineRole } from '../role';
import { FENCE_HANDLER_SCHEMA, normalizeFenceHandler } from './config';

export default defineRole({
  name: 'fence-event',
  summary: 'act on authenticated fence / enable events from Consul, and send them',
  dir: __dirname,
  section: {
    key: 'fence_handler',
    configKey: 'fenceHandler',
    schema: FENCE_HANDLER_SCHEMA,
    nullable: [[]],
    // The handler runs fence.actions; without a fence section those are the defaults.
    prepare: (file) => { if (isMapping(file.fence_handler) && file.fence === undefined) file.fence = {}; },
    normalize: (v) => normalizeFenceHandler(v),
  },
  secretFiles: (c) => (c.keyFile !== undefined ? [{ path: c.keyFile, kind: 'key' }] : []),
  verbs: [
    { name: 'handle', aliases: ['fence-handler'], summary: 'Consul watch handler for fence events (stdin)', load: async () => (await import('./handler')).run },
    { name: 'send', aliases: ['fence-send'], summary: 'fire a (signed) fence event through Consul', load: async () => (await import('./send')).run },
  ],
});

function isMapping(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
