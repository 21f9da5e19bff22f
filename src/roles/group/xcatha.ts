/**
 * Layer: config importer, pure. xcatha.py's activate/deactivate
 * (shared/spec/seed-inventory.md §3, X-9…X-22) as one `group:` section:
 *
 *   address  the VIP on the NIC (an alias `eth0:0` becomes `eth0`: vigil
 *            labels its own addresses; X-22 cannot happen)
 *   hostname the VIP's name (`-n`) with the hosts line and `nameserver VIP`
 *            in resolv.conf (X-13/X-14), both removed again on stop
 *   symlink  each shared directory → `<path><dir>`, the local one kept as
 *            `<dir>.xcatbak` as xcatha's setup did (X-24)
 *   unit     the database (postgresql / mariadb; none for sqlite), xcatd
 *   command  named (`makedns -n`), dhcpd (`makedhcp -n`, `makedhcp -a`)
 *   unit     ntpd
 *   command  the console xcatha's deactivate recorded in console.lock (X-15)
 *
 * Started in this order (xcatha's: VIP → hostname → DB → xcatd → named →
 * dhcpd → ntpd → console), stopped in reverse. The file system is read
 * (cfgloc, console.lock) by the caller and passed in: this module is text
 * in, text out, so it is golden-file tested.
 */

/** xcatha's database types (`-t`). */
export const DB_TYPES = ['postgresql', 'mariadb', 'sqlite'] as const;
export type DbType = (typeof DB_TYPES)[number];

/** What the importer needs: the options and what the shared storage holds. */
export interface XcathaInput {
  path: string;
  vip: string;
  nic: string;
  hostname?: string;
  /** Dotted netmask (xcatha's `-m`, default 255.255.255.0). */
  mask: string;
  /** `-t`, when given. */
  dbType?: DbType;
  /** The first bytes of `<path>/etc/xcat/cfgloc`, or undefined when there is none. */
  cfgloc?: string;
  /** The content of `<path>/etc/xcat/console.lock`, or undefined when there is none. */
  consoleLock?: string;
}

/** A problem with the input, naming the option. */
export class XcathaImportError extends Error {}

const XCAT_SBIN = '/opt/xcat/sbin';

/** Dotted netmask → prefix length; undefined when not a contiguous mask. */
export function maskToPrefix(mask: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(mask);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  const bits = parts.map((p) => p.toString(2).padStart(8, '0')).join('');
  if (!/^1*0*$/.test(bits)) return undefined;
  const prefix = bits.indexOf('0') === -1 ? 32 : bits.indexOf('0');
  return prefix === 0 ? undefined : prefix;
}

/** The database type: `-t` wins; else cfgloc as xcatha's setup reads it (X-23). */
export function dbTypeOf(input: Pick<XcathaInput, 'dbType' | 'cfgloc'>): { db: DbType; why: string } {
  if (input.dbType) return { db: input.dbType, why: '-t' };
  if (input.cfgloc === undefined) return { db: 'sqlite', why: 'no <path>/etc/xcat/cfgloc' };
  if (input.cfgloc.startsWith('my')) return { db: 'mariadb', why: "cfgloc starts with 'my'" };
  if (input.cfgloc.startsWith('Pg')) return { db: 'postgresql', why: "cfgloc starts with 'Pg'" };
  return { db: 'postgresql', why: 'cfgloc names neither my nor Pg (xcatha: postgresql)' };
}

/** The console service recorded by xcatha's deactivate (X-15, X-19). */
export function consoleOf(lock: string | undefined): { kind: 'goconserver' | 'conserver' | 'none'; why: string } {
  if (lock === undefined) return { kind: 'none', why: 'no <path>/etc/xcat/console.lock' };
  const first = lock.split('\n')[0] ?? '';
  if (first.trim() === '') return { kind: 'none', why: 'console.lock is empty (xcatha would start both: X-15)' };
  return first.includes('goconserver') ? { kind: 'goconserver', why: 'console.lock names goconserver' } : { kind: 'conserver', why: 'console.lock names no goconserver' };
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const q = (s: string) => JSON.stringify(s);
const argv = (a: string[]) => `[${a.map(q).join(', ')}]`;

/** The `group:` YAML for an xcatha setup. Throws {@link XcathaImportError} naming the option. */
export function importXcatha(input: XcathaInput): string {
  if (!IPV4.test(input.vip)) throw new XcathaImportError(`-v ${q(input.vip)} is not an IPv4 address (expected the VIP, like 10.0.0.100)`);
  const prefix = maskToPrefix(input.mask);
  if (prefix === undefined) throw new XcathaImportError(`-m ${q(input.mask)} is not a netmask (expected a dotted netmask like 255.255.255.0)`);
  const nic = input.nic.split(':')[0]!;
  if (!/^[A-Za-z0-9_.-]{1,12}$/.test(nic)) throw new XcathaImportError(`-i ${q(input.nic)} is not an interface name of at most 12 bytes (expected like eth0 or eth0:0)`);
  if (!input.path.startsWith('/')) throw new XcathaImportError(`-p ${q(input.path)} is not an absolute path (expected the shared data path, like /HA)`);
  const root = input.path.replace(/\/+$/, '');
  const { db, why: dbWhy } = dbTypeOf(input);
  const cons = consoleOf(input.consoleLock);
  const shared = ['/install', '/etc/xcat', '/root/.xcat', ...(db === 'postgresql' ? ['/var/lib/pgsql'] : db === 'mariadb' ? ['/var/lib/mysql'] : []), '/tftpboot'];
  const out: string[] = [];
  const p = (s = '') => out.push(s);
  p(`# Imported from xcatha.py: -p ${input.path} -v ${input.vip} -i ${input.nic}${input.hostname ? ` -n ${input.hostname}` : ''} -m ${input.mask}${input.dbType ? ` -t ${input.dbType}` : ''}`);
  p('# vigil group activate xcat / deactivate xcat replace xcatha -a / -d. Differences:');
  p('# - the VIP is checked by an ARP probe (a holder that drops ICMP is found), not a 10 s ping;');
  p('# - a failure rolls back what was started and exits 4 (xcatha exited 0); a failed stop exits 5;');
  p("# - the VIP is removed only as vigil's own address; the NIC's other addresses are never touched;");
  p('# - the hosts and resolv.conf lines are removed on deactivate (xcatha left nameserver VIP);');
  p('# - the shared directories are linked on activate and restored on deactivate (xcatha: once, at setup);');
  p('# - services are started and stopped, not enabled or disabled.');
  p(`# database: ${db} (${dbWhy}); console: ${cons.kind} (${cons.why})`);
  if (input.nic.includes(':')) p(`# -i ${input.nic}: vigil adds the VIP to ${nic} with its own label '${nic}:vg' instead of the alias`);
  p('group:');
  p('  xcat:');
  p('    on_stop_failure: block            # a service that does not stop keeps the VIP: the standby stays out');
  p('    members:');
  p('      - type: address');
  p('        name: vip');
  p(`        address: ${input.vip}/${prefix}`);
  p(`        interface: ${nic}`);
  if (input.hostname) {
    const short = input.hostname.split('.')[0]!;
    p('      - type: hostname');
    p('        name: hostname');
    p(`        hostname: ${short}`);
    p(`        address: ${input.vip}`);
    if (short !== input.hostname) p(`        aliases: [${input.hostname}]`);
    p('        resolv_conf: /etc/resolv.conf');
    p(`        nameservers: [${input.vip}]`);
  } else {
    p('      # no -n: xcatha looked the name up with getent on activate; add a hostname member to manage it');
  }
  for (const dir of shared) {
    p('      - type: symlink');
    p(`        name: ${dir.replace(/^\//, '').replace(/[/.]+/g, '-')}`);
    p(`        link: ${dir}`);
    p(`        target: ${root}${dir}`);
    p('        backup_suffix: .xcatbak         # where xcatha setup kept the local copy');
  }
  if (db === 'sqlite') p('      # database: sqlite lives in /etc/xcat (shared): no service');
  else {
    p('      - type: unit');
    p('        name: db');
    p(`        unit: ${db}.service`);
  }
  p('      - type: unit');
  p('        name: xcatd');
  p('        unit: xcatd.service');
  const svc = (name: string, start: string[] | string, unit: string) => {
    p('      - type: command');
    p(`        name: ${name}`);
    p(`        start: ${typeof start === 'string' ? q(start) : argv(start)}`);
    p(`        stop: ${argv(['systemctl', 'stop', unit])}`);
    p(`        monitor: ${argv(['systemctl', 'is-active', '--quiet', unit])}`);
  };
  svc('named', [`${XCAT_SBIN}/makedns`, '-n'], 'named');
  svc('dhcpd', `${XCAT_SBIN}/makedhcp -n && ${XCAT_SBIN}/makedhcp -a`, 'dhcpd');
  p('      - type: unit');
  p('        name: ntpd');
  p('        unit: ntpd.service');
  if (cons.kind === 'goconserver') svc('console', `${XCAT_SBIN}/makegocons && systemctl start goconserver`, 'goconserver');
  else if (cons.kind === 'conserver') svc('console', `${XCAT_SBIN}/makeconservercf && systemctl start conserver`, 'conserver');
  else p('      # no console member: see "console:" above');
  return `${out.join('\n')}\n`;
}
