/**
 * Layer: roles. The HA IP role (`vip:`), vzhaipd's successor: keep an HA IP
 * (plus the IPs of a hot-reloaded file) on exactly one of N nodes, decided
 * by ARP probes. Its registry entry; the runner, its I/O and the vzhaipd
 * importer load on use.
 */
import { defineRole } from '../role';
import { VIP_SCHEMA, normalizeVip } from './config';
import { formatVipStatus } from './status';

export default defineRole({
  name: 'vip',
  summary: 'keep an HA IP (and the IPs of a file) on exactly one of N nodes, decided by ARP probes',
  dir: __dirname,
  section: {
    key: 'vip',
    configKey: 'vip',
    schema: VIP_SCHEMA,
    nullable: [[], ['announce'], ['track']],
    normalize: (v, ctx) => normalizeVip(v, ctx.add, ctx.file),
  },
  // A missing IP file means "the HA IP only"; one that exists must be root's.
  secretFiles: (c) => (c.ipFile !== undefined ? [{ path: c.ipFile, kind: 'ip-file', ifExists: true }] : []),
  daemon: {
    logRole: 'inactive',
    healthRule: 'progress within 3 × max(check_interval, master_check_interval) + 2 × probe_timeout + command_timeout + 5s; while waiting for its container, the container wait polls',
    load: async () => (await import('./daemon')).createVipRunner,
    formatStatus: formatVipStatus,
  },
  importers: [
    { name: 'vzhaipd', summary: 'print the vigil YAML of a legacy vzhaipd.conf', load: async () => (await import('./vzhaipd-cli')).run },
  ],
});
