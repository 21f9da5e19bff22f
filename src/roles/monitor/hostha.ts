/**
 * Layer: pure. `vigil config import hostha FILE`'s translation: hostha.conf
 * (oslo.config INI, seed inventory §5.1) → the equivalent `monitor:` YAML.
 *
 * hostha eval()s its list-valued options (`consul_servers`,
 * `consul_ports`; K-3: arbitrary Python from the config file). Here they
 * are read by a small literal parser that knows lists, tuples, quoted
 * strings and integers and nothing else, so nothing in the file ever runs.
 * Secrets (keystone_authtoken's password, the database URL) are never
 * copied: the output names a root-only password file instead.
 */
import { isUnicastIPv4 } from '../../config/kinds';

/** A value in hostha.conf that cannot be imported; the CLI prints it as one line and exits 2. */
export class HosthaImportError extends Error {
  readonly code = 'EIMPORT';
}

type Ini = Map<string, Map<string, string>>;

/** oslo.config's INI: `[section]`, `key = value` or `key: value`, `#`/`;` comment lines, indented continuation lines. */
export function parseIni(text: string): Ini {
  const out: Ini = new Map();
  let section: Map<string, string> | undefined;
  let lastKey: string | undefined;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/\s+$/, '');
    if (line.trim() === '' || /^\s*[#;]/.test(line)) return;
    if (/^\s/.test(line) && section && lastKey !== undefined) {
      section.set(lastKey, `${section.get(lastKey)!} ${line.trim()}`);
      return;
    }
    const sec = /^\[([^\]]+)\]$/.exec(line);
    if (sec) {
      const name = sec[1]!.trim();
      section = out.get(name) ?? new Map();
      out.set(name, section);
      lastKey = undefined;
      return;
    }
    const kv = /^([A-Za-z0-9_.-]+)\s*[=:]\s*(.*)$/.exec(line);
    if (!kv || !section) throw new HosthaImportError(`line ${i + 1}: ${JSON.stringify(line.slice(0, 60))} is not an option line (expected key = value inside a [section])`);
    lastKey = kv[1]!;
    section.set(lastKey, kv[2]!);
  });
  return out;
}

/** Drop a trailing `# comment` outside quotes (Python's eval ignored it in hostha; the seed's consul_ports has one). */
function stripComment(v: string): string {
  let q: string | undefined;
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    if (q) { if (c === q) q = undefined; continue; }
    if (c === '"' || c === "'") q = c;
    else if (c === '#') return v.slice(0, i).trim();
  }
  return v.trim();
}

export type PyLiteral = string | number | PyLiteral[];

/** Parse a Python list/tuple/string/integer literal, and nothing else (never evaluated). */
export function parsePyLiteral(src: string, what: string): PyLiteral {
  let i = 0;
  const fail = (): never => {
    throw new HosthaImportError(`${what}: ${JSON.stringify(src.length > 60 ? `${src.slice(0, 57)}...` : src)} is not a list literal (expected lists of quoted strings or integers, like [['10.0.0.1', '10.0.1.1']]; it is read as data, never evaluated)`);
  };
  const ws = () => { while (i < src.length && /\s/.test(src[i]!)) i++; };
  const value = (depth: number): PyLiteral => {
    ws();
    const c = src[i];
    if (c === '[' || c === '(') {
      if (depth > 4) fail();
      const close = c === '[' ? ']' : ')';
      i++;
      const items: PyLiteral[] = [];
      ws();
      while (src[i] !== close) {
        items.push(value(depth + 1));
        ws();
        if (src[i] === ',') { i++; ws(); } else if (src[i] !== close) fail();
      }
      i++;
      return items;
    }
    if (c === '"' || c === "'") {
      const end = src.indexOf(c, i + 1);
      if (end < 0) fail();
      const s = src.slice(i + 1, end);
      if (s.includes('\\')) fail();
      i = end + 1;
      return s;
    }
    const m = /^[0-9]{1,6}/.exec(src.slice(i));
    if (!m) return fail();
    i += m[0].length;
    return Number(m[0]);
  };
  const v = value(0);
  ws();
  if (i !== src.length) fail();
  return v;
}

const NETWORKS = ['mgmt', 'tenant', 'storage'] as const;

/** hostha's defaults (§5.1), used when an option is absent. */
const DEFAULTS = { consul_ports: [8500, 8900, 9300], host_check_interval: 10, host_check_retry: 3, max_evacuation: 3, interval_to_check_powerstate: 3, retry_to_check_powerstate: 20, evacuate_retry_count: 3, wait_for_evacuation: 60 };

/** Options hostha registers that vigil does not carry over, and why (a comment in the output). */
const DROPPED: Record<string, string> = {
  wait_for_evacuation: 'not needed: evacuation starts only after the BMC confirmed the power-off',
  multiple_recovery: 'vigil has no controller/compute classification; keep controllers out of the inventory',
  host_ipmi_enabled: 'a BMC is always required (fencing is always confirmed)',
  use_ipmitool: 'fence.ipmitool names the program; power reads are always done',
  ipmi_check_interval: 'BMC reachability is read during an incident, not sampled',
  host_check_method: 'not a registered hostha option (K-1)',
};

export interface HosthaImportOptions {
  /** This controller's address: the consul_servers entry that contains it is used (hostha's K-2). Default: the first entry. */
  controller?: string;
}

export interface HosthaImport { yaml: string; warnings: string[] }

function int(sec: Map<string, string> | undefined, key: keyof typeof DEFAULTS, min: number, max: number): number {
  const raw = sec?.get(key);
  if (raw === undefined) return DEFAULTS[key] as number;
  const v = stripComment(raw);
  if (!/^[0-9]+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new HosthaImportError(`compute_ha.${key}: ${JSON.stringify(v)} is not an integer from ${min} to ${max}`);
  }
  return Number(v);
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$/;

/** hostha.conf text → the `monitor:` section (YAML text) and the points to review. */
export function importHostha(text: string, opts: HosthaImportOptions = {}): HosthaImport {
  const ini = parseIni(text);
  const ha = ini.get('compute_ha');
  if (!ha) throw new HosthaImportError('[compute_ha] is missing (expected hostha.conf with its [compute_ha] section)');
  const warnings: string[] = [];

  // consul_servers: per-controller [mgmt, tenant(, storage)] IPs.
  const rawServers = ha.get('consul_servers');
  if (rawServers === undefined) throw new HosthaImportError('compute_ha.consul_servers is missing (it is required by hostha too)');
  const servers = parsePyLiteral(stripComment(rawServers), 'compute_ha.consul_servers');
  if (!Array.isArray(servers) || servers.length === 0) throw new HosthaImportError('compute_ha.consul_servers is not a non-empty list of per-controller lists');
  servers.forEach((s, i) => {
    if (!Array.isArray(s) || s.length < 2 || s.length > 3 || !s.every((ip) => typeof ip === 'string' && isUnicastIPv4(ip))) {
      throw new HosthaImportError(`compute_ha.consul_servers[${i}]: ${JSON.stringify(s)} is not a list of 2 or 3 IPv4 addresses (expected [mgmt, tenant] or [mgmt, tenant, storage])`);
    }
  });
  const rawPorts = ha.get('consul_ports');
  const ports = rawPorts === undefined ? DEFAULTS.consul_ports : parsePyLiteral(stripComment(rawPorts), 'compute_ha.consul_ports');
  if (!Array.isArray(ports) || ports.length < 2 || ports.length > 3 || !ports.every((p) => typeof p === 'number' && p >= 1 && p <= 65535)) {
    throw new HosthaImportError(`compute_ha.consul_ports: ${JSON.stringify(ports)} is not a list of 2 or 3 ports from 1 to 65535`);
  }
  let chosen: string[];
  if (opts.controller !== undefined) {
    const hit = (servers as string[][]).find((s) => s.includes(opts.controller!));
    if (!hit) throw new HosthaImportError(`--controller ${JSON.stringify(opts.controller)} is in no compute_ha.consul_servers entry (expected one of ${(servers as string[][]).map((s) => s[0]).join(', ')})`);
    chosen = hit;
  } else {
    chosen = servers[0] as string[];
    if (servers.length > 1) warnings.push(`consul_servers has ${servers.length} entries; the first (${chosen[0]}) is used; give --controller IP on each controller`);
  }
  if (chosen.length > ports.length) throw new HosthaImportError(`compute_ha.consul_ports: ${ports.length} ports for ${chosen.length} networks (expected one port per network)`);

  const interval = int(ha, 'host_check_interval', 1, 3600);
  const retry = int(ha, 'host_check_retry', 1, 100);
  const maxEvac = int(ha, 'max_evacuation', 0, 100_000);
  const powerWait = int(ha, 'interval_to_check_powerstate', 1, 60);
  const powerTries = int(ha, 'retry_to_check_powerstate', 1, 600);
  const evacRetries = int(ha, 'evacuate_retry_count', 1, 11);
  int(ha, 'wait_for_evacuation', 0, 86_400);

  const L: string[] = [];
  L.push('# Imported by vigil config import hostha from hostha.conf\'s [compute_ha] and [keystone_authtoken].');
  L.push('# Read as data; consul_servers and consul_ports were parsed, never evaluated.');
  L.push('monitor:');
  L.push('  networks:                        # consul_servers entry × consul_ports');
  chosen.forEach((ip, i) => {
    L.push(`    ${NETWORKS[i]}:`);
    L.push(`      url: http://${ip}:${ports[i] as number}`);
  });
  L.push('  inventory:');
  L.push('    source: kv                     # hostha kept hosts in MySQL (ha_host): register them under ha_cluster/compute_nodes/');
  L.push('  kv_prefix: ha_cluster');
  L.push(`${`  interval: ${interval}s`.padEnd(35)}# host_check_interval`);
  L.push(`${`  confirm: ${retry}`.padEnd(35)}# host_check_retry (vigil: down in ${retry} consecutive samples)`);
  L.push('  guards:');
  L.push(`${`    max_down: ${maxEvac}`.padEnd(35)}# max_evacuation: act on none when more hosts are down`);
  L.push('  fence:');
  L.push(`${'    method: event'.padEnd(35)}# hostha's consul-fence: the user event, confirmed by the BMC's power state`);
  L.push('    event: fence');
  L.push(`${`    power_timeout: ${powerWait * powerTries}s`.padEnd(35)}# interval_to_check_powerstate × retry_to_check_powerstate`);
  L.push(`${`    power_wait: ${powerWait}s`.padEnd(35)}# interval_to_check_powerstate`);

  // Keystone for Nova evacuation: hostha's [keystone_authtoken], without its password.
  const ks = ini.get('keystone_authtoken');
  const ksGet = (k: string) => { const v = ks?.get(k); return v === undefined ? undefined : stripComment(v); };
  const authBase = ksGet('auth_url') ?? ksGet('auth_uri') ?? ksGet('www_authenticate_uri');
  const user = ksGet('username');
  const project = ksGet('project_name');
  if (authBase === undefined || user === undefined || project === undefined) {
    warnings.push('[keystone_authtoken] lacks auth_url, username or project_name: no recovery section; add monitor.recovery.evacuate by hand');
  } else {
    let url: URL;
    try { url = new URL(authBase); } catch { throw new HosthaImportError(`keystone_authtoken.auth_url: ${JSON.stringify(authBase)} is not a URL (expected http(s)://host:port)`); }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password) throw new HosthaImportError(`keystone_authtoken.auth_url: ${JSON.stringify(authBase)} is not an http(s) URL without credentials`);
    const path = url.pathname.replace(/\/+$/, '');
    const authUrl = `${url.origin}${/\/v3$/.test(path) ? path : `${path}/v3`}`;
    const names: [string, string | undefined][] = [['username', user], ['project_name', project], ['user_domain_name', ksGet('user_domain_name')], ['project_domain_name', ksGet('project_domain_name')]];
    for (const [k, v] of names) {
      if (v !== undefined && !NAME_RE.test(v)) throw new HosthaImportError(`keystone_authtoken.${k}: ${JSON.stringify(v)} is not a name (expected letters, digits, ".", "_", "-", "@")`);
    }
    const region = ksGet('region_name') ?? (ini.get('DEFAULT')?.get('region') !== undefined ? stripComment(ini.get('DEFAULT')!.get('region')!) : undefined);
    L.push('  recovery:');
    L.push(`${'    method: auto'.padEnd(35)}# hostha evacuated through Nova`);
    L.push('    evacuate:');
    L.push(`      auth_url: ${authUrl}`);
    L.push(`      user: ${user}`);
    L.push(`      user_domain: ${ksGet('user_domain_name') ?? 'Default'}`);
    L.push(`      project: ${project}`);
    L.push(`      project_domain: ${ksGet('project_domain_name') ?? 'Default'}`);
    L.push(`      password_file: /etc/vigil/nova.pw  # root-owned, mode 0600: keystone_authtoken's password (not copied)`);
    if (region !== undefined && NAME_RE.test(region)) L.push(`      region: ${region}`);
    L.push(`${`      evacuate_retries: ${evacRetries - 1}`.padEnd(35)}# evacuate_retry_count ${evacRetries} = 1 try + ${evacRetries - 1} retries`);
    warnings.push('write keystone_authtoken\'s password into /etc/vigil/nova.pw (root-owned, mode 0600)');
  }
  const dropped = Object.keys(DROPPED).filter((k) => ha.has(k));
  const unknown = [...ha.keys()].filter((k) => !(k in DEFAULTS) && !(k in DROPPED) && k !== 'consul_servers');
  if (dropped.length || unknown.length) {
    L.push('  # Not carried over:');
    for (const k of dropped) L.push(`  #   ${k} = ${stripComment(ha.get(k)!)}: ${DROPPED[k]}`);
    for (const k of unknown) L.push(`  #   ${k}: not a hostha option`);
  }
  return { yaml: `${L.join('\n')}\n`, warnings };
}
