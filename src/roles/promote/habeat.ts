/**
 * Layer: config, pure. habeat.yml (spec/seed-inventory.md §2) → the
 * `promote:` section. The file is read as data; every value that ends up
 * in a command (the VM name, the thread count) is validated first (H-14,
 * H-28), shell strings from the proxy lists become argv when they are plain
 * words and are otherwise kept behind `/bin/sh -c` with a warning, and the
 * `deativate` typo (H-12) is accepted beside `deactivate`.
 *
 * What changes on purpose: the witness is a Consul lock, not the local
 * gossip view (H-27), so the import writes `mode: manual` until the
 * operator confirms the Consul servers span three sites; the marker files
 * (H-34) are replaced by the journal; the inline token (never sent, H-11)
 * must move to a root-only file.
 */
import { parse, stringify } from 'yaml';
import { ConfigError } from '../../errors';
import { isUnicastIPv4 } from '../../config/kinds';

/** The import's result: the YAML and what the operator must review. */
export interface HabeatImport { yaml: string; warnings: string[] }

const HOST_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/;
const SITE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const PLAIN_WORDS = /^[A-Za-z0-9_./=:,@%+-]+( +[A-Za-z0-9_./=:,@%+-]+)*$/;
const CARBONIO = '/opt/zextras/bin/carbonio';
const ZMPROV = '/opt/zextras/bin/zmprov';

type Obj = Record<string, any>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function toArgv(cmd: string, where: string, warnings: string[]): string[] {
  const c = cmd.trim();
  if (PLAIN_WORDS.test(c)) return c.split(/ +/);
  warnings.push(`${where}: ${JSON.stringify(c)} needs a shell; kept as ["/bin/sh", "-c", …]: review it, or move it into a script`);
  return ['/bin/sh', '-c', c];
}

function commandList(v: unknown, where: string, warnings: string[]): string[][] {
  if (v === null || v === undefined || v === '') return [];
  if (!Array.isArray(v)) throw new ConfigError(`${where}: expected a list of commands`);
  return v.filter((c) => c !== null && c !== '').map((c, i) => {
    if (typeof c !== 'string') throw new ConfigError(`${where}[${i}]: expected a command string`);
    return toArgv(c, `${where}[${i}]`, warnings);
  });
}

/** habeat.yml text → the promote section (throws ConfigError naming the habeat key). */
export function importHabeat(text: string): HabeatImport {
  let doc: unknown;
  try { doc = parse(text); } catch (e) { throw new ConfigError(`habeat.yml is not YAML: ${(e as Error).message.split('\n')[0]}`); }
  if (!isObj(doc) || !isObj(doc.local)) throw new ConfigError('habeat.yml: local: expected a mapping (whoami, dc_check, …)');
  const local = doc.local;
  const warnings: string[] = [];
  const whoami = String(local.whoami ?? '');
  const dcCheck = String(local.dc_check ?? '');
  if (!SITE_RE.test(whoami)) throw new ConfigError(`habeat.yml: local.whoami: ${JSON.stringify(local.whoami)} is not a site name (expected primary or secondary)`);
  if (!SITE_RE.test(dcCheck) || dcCheck === whoami) throw new ConfigError(`habeat.yml: local.dc_check: ${JSON.stringify(local.dc_check)} is not the other site's section`);
  const peer = doc[dcCheck];
  if (!isObj(peer)) throw new ConfigError(`habeat.yml: ${dcCheck}: expected the section local.dc_check names`);
  const own: Obj = isObj(doc[whoami]) ? doc[whoami] : {};
  if (local.role !== undefined && local.role !== 'appserver') warnings.push(`local.role: ${JSON.stringify(local.role)} is not imported (only appserver; consulserver and proxyserver were removed from habeat)`);

  const vm = String(peer.appserver_vmname ?? '');
  if (!HOST_RE.test(vm)) throw new ConfigError(`habeat.yml: ${dcCheck}.appserver_vmname: ${JSON.stringify(peer.appserver_vmname)} is not a host name (it goes into the promote command)`);
  const threads = local.threads ?? 5;
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) throw new ConfigError(`habeat.yml: local.threads: ${JSON.stringify(threads)} is not an integer from 1 to 256`);

  const probes: Obj[] = [];
  for (const key of ['appserver_ip', 'proxy_ip']) {
    const ip = peer[key];
    if (ip === null || ip === undefined || ip === '') continue;
    if (typeof ip === 'string' && isUnicastIPv4(ip)) probes.push({ kind: 'icmp', host: ip, timeout: '1s' });
    else warnings.push(`${dcCheck}.${key}: ${JSON.stringify(ip)} is not an IPv4 address; no probe imported for it`);
  }
  if (probes.length === 0) warnings.push(`${dcCheck}: no usable appserver_ip or proxy_ip: no peer probe (the witness alone gates attempts)`);

  const steps: Obj[] = [{ name: 'promote-accounts', command: [CARBONIO, '--sync', 'ha', 'promoteAccounts', 'source_mail_host', vm, 'threads', String(threads)], timeout: '30m' }];
  if (local.flush_cache === true) {
    steps.push({ name: 'flush-cache', command: [ZMPROV, 'flushCache', ...(local.flush_arguments_a === true ? ['-a'] : []), 'account'], timeout: '5m' });
  }
  if (local.restart_replica === true) warnings.push('local.restart_replica: per-account pauseReplicas/restartReplicas loops are not imported: write them as one script and add it as a step');

  const bgp = isObj(own.proxy_switch) && isObj(own.proxy_switch.bgp) ? own.proxy_switch.bgp : undefined;
  const demote: Obj[] = [];
  if (bgp) {
    const activate = commandList(bgp.activate, `${whoami}.proxy_switch.bgp.activate`, warnings);
    const deactivate = commandList(bgp.deactivate ?? bgp.deativate, `${whoami}.proxy_switch.bgp.${bgp.deactivate !== undefined ? 'deactivate' : 'deativate'}`, warnings);
    if (activate.length > 0 && local.proxy_enable_activate !== true) warnings.push('local.proxy_enable_activate is false (habeat\'s dry run): the activate commands are imported as steps; remove them to keep the dry run');
    if (deactivate.length > 0 && local.proxy_enable_deactivate !== true) warnings.push('local.proxy_enable_deactivate is false (habeat\'s dry run): the deactivate commands are imported as demote steps; remove them to keep the dry run');
    activate.forEach((c, i) => steps.push({ name: `proxy-activate-${i + 1}`, command: c, timeout: '60s' }));
    deactivate.forEach((c, i) => demote.push({ name: `proxy-deactivate-${i + 1}`, command: c, timeout: '10s' }));
  }
  const consul: Obj = isObj(doc.consul) ? doc.consul : {};
  const host = String(consul.hostname ?? '127.0.0.1');
  const port = Number(consul.port ?? 8500);
  if (!(HOST_RE.test(host) || isUnicastIPv4(host) || host === '127.0.0.1') || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConfigError(`habeat.yml: consul.hostname/port: ${host}:${consul.port} is not a host and port`);
  }
  const tokenLine = consul.token ? '    # token_file: /etc/vigil/consul-token   # habeat had consul.token inline (and never sent it, H-11): put it in this root-owned 0600 file\n' : '';
  if (consul.token) warnings.push('consul.token: not imported; write it to a root-owned 0600 file and set promote.consul.token_file');

  const section: Obj = {
    name: 'carbonio', site: whoami, peer: dcCheck, mode: 'manual', witness_sites: 3,
    auto_promote: whoami !== 'primary',
    consul: { url: `http://${host}:${port}` },
    peer_probes: probes, promote_steps: steps, demote_steps: demote,
  };
  const body = stringify({ promote: section }, { lineWidth: 0 }).replace(/^  consul:\n(    url: .*\n)/m, (m) => `${m}${tokenLine}`);
  const header = [
    '# Imported from habeat.yml by `vigil config import habeat`. Review before use:',
    '# - mode: manual until the Consul servers of promote.consul span three sites; then mode: auto',
    '#   (habeat trusted the local gossip view, which sits on the same side of a partition, H-27).',
    `# - auto_promote: ${whoami !== 'primary'} (whoami: ${whoami}; habeat never promoted on the primary, H-24).`,
    '# - habeat\'s marker files (checkDownFile, checkPromotionFile, checkRestartReplicaFile) are replaced',
    '#   by the step journal under promote.journal_dir (H-34).',
    ...warnings.map((w) => `# - ${w}`),
  ].join('\n');
  return { yaml: `${header}\n${body}`, warnings };
}
