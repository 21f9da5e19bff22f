/**
 * Layer: roles. The promote role (`promote:`), habeat's successor: promote
 * a site only while it holds a witness lease in Consul, give it up before
 * anyone else can take it, and keep a step journal so a crash never
 * promotes twice. Its registry entry; the runner, its I/O and the verbs
 * load on use.
 */
import { defineRole } from '../role';
import { PROMOTE_SCHEMA, normalizePromote } from './config';
import { formatPromoteStatus } from './status';

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
  daemon: {
    logRole: 'promote',
    healthRule: 'a check within 2 × max(check_interval, renew_interval) + the longest probe timeout + 3 × consul.timeout + 5s',
    load: async () => (await import('./daemon')).createPromoteRunner,
    formatStatus: formatPromoteStatus,
  },
  importers: [
    { name: 'habeat', summary: 'print the promote section of a habeat.yml', load: async () => (await import('./habeat-cli')).run },
  ],
  verbs: [
    { name: 'run-once', summary: 'one promote check for timer setups; exit 3 when another scheduler runs', load: async () => (await import('./verbs')).runOnce },
    { name: 'status', summary: 'the promote journal, and whether the operator is needed', load: async () => (await import('./verbs')).status },
    { name: 'grant', summary: 'manual mode: let this site take the lease (--force: type the peer\'s name)', load: async () => (await import('./verbs')).grant },
    { name: 'revoke', summary: 'manual mode: take the grant back; a holder demotes', load: async () => (await import('./verbs')).revoke },
  ],
});
