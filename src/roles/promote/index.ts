/**
 * Layer: roles. The promote role (`promote:`), habeat's successor: promote
 * a site only while it holds a witness lease in Consul, give it up before
 * anyone else can take it, and keep a step journal so a crash never
 * promotes twice. Its registry entry; the runner, its I/O and the verbs
 * load on use.
 */
import { defineRole } from '../role';
import { PROMOTE_SCHEMA, normalizePromote } from './config';

export default defineRole({
  name: 'promote',
  summary: 'promote this site only while it holds a witness lease in Consul; demote before anyone else can take it',
  dir: __dirname,
  section: {
    key: 'promote',
    configKey: 'promote',
    schema: PROMOTE_SCHEMA,
    nullable: [['consul'], ['fence'], ['failback']],
    normalize: (v, ctx) => normalizePromote(v, ctx.add),
  },
  secretFiles: (c) => [
    ...(c.consul.tokenFile !== undefined ? [{ path: c.consul.tokenFile, kind: 'key' as const, label: 'token file (promote)' }] : []),
    ...(c.fence.kind === 'bmc' && c.fence.passwordFile !== undefined ? [{ path: c.fence.passwordFile, kind: 'key' as const, label: 'BMC password file (promote)' }] : []),
  ],
});
