/**
 * Layer: config, pure. Import a legacy vzhaipd.conf as data.
 *
 * vzhaipd `source`d its config as root, so any shell code in it ran on the
 * host (seed inventory V-11, V-32, V-40). Here the file is only read: a
 * line is a comment, a blank, or `KEY=VALUE` / `KEY="VALUE"` /
 * `KEY='VALUE'` (an optional trailing `# comment`); every other line is
 * skipped and reported with its number, never run. `$NAME` and `${NAME}` in
 * unquoted or double-quoted values are replaced from keys assigned earlier
 * in the file and from CONTAINER_ID/VEID (the `--ctid` option); anything
 * else that would make the shell do work (`$(…)`, backquotes, backslashes,
 * `;`, `|`, unknown variables) makes the line skipped.
 *
 * The mapped keys become vigil YAML with a comment naming each source key;
 * keys the file does not set get vzhaipd's defaults (inventory §1.2), except
 * where that default is unsafe in vigil's model (the log file inside the
 * container root, V-40) or clashes with it (the PID file path), which the
 * output says. The result is validated with {@link parseConfigText}.
 */
import { ConfigError } from '../../errors';
import { parseShellAssignments, type ShellAssignment, type ShellParse, type SkippedLine } from '../../config/legacy';
import { levelFromVzhaipd } from '../../log';
import { formatDurationMs, parseDurationMs } from '../../util/duration';
import { parseConfigText } from '../../config/load';
import { checkLeaf } from '../../config/kinds';
import type { LeafSpec } from '../../config/kinds';
import type { VigilConfig } from '../../config/types';

/** One `KEY=VALUE` read from the file. */
export type VzhaipdAssignment = ShellAssignment;
/** The file as data: assignments in order (a later one wins) and the lines skipped. */
export type VzhaipdParse = ShellParse;
export type { SkippedLine };

/** Options for {@link importVzhaipd}. */
export interface VzhaipdImportOptions {
  /** The container ID (vzhaipd's $VEID); enables the vzctl backend and the $CTID defaults. */
  ctid?: string;
  /** Name of the source file, for comments and messages. */
  source?: string;
}

/** What the import produced. */
export interface VzhaipdImport {
  /** The vigil YAML, commented. */
  yaml: string;
  /** One line each: skipped lines, unknown keys, values needing a look. */
  warnings: string[];
  /** The YAML parsed back (proof that it is valid). */
  config: VigilConfig;
}

/**
 * Read a vzhaipd.conf as data (see `config/legacy.ts`). Never executes
 * anything; `initial` seeds the variables `$NAME` may refer to
 * (CONTAINER_ID, VEID).
 */
export function parseVzhaipdConf(text: string, initial: ReadonlyMap<string, string> = new Map()): VzhaipdParse {
  return parseShellAssignments(text, initial, { unsetHint: 'pass --ctid for $CONTAINER_ID/$VEID' });
}

/** vzhaipd's defaults (inventory §1.2) for the keys vigil maps. */
export const VZHAIPD_DEFAULTS = {
  HA_CLUSTER_IP: '172.24.224.1',
  HA_INTERFACE: 'bond0',
  HA_IP_FILE: '/vz/root/$CTID/etc/vzhaipd.cips',
  START_CMD: 'vzctl exec $CTID svc -u /service/protobalance',
  STOP_CMD: 'vzctl exec $CTID svc -d /service/protobalance',
  LOG_LEVEL: '99',
  LOG_FILE: '/vz/root/$CTID/var/log/vzhaipd.$CTID.log',
  DAEMON_PIDFILE: '/var/run/vzhaipd.$CTID.pid',
  HA_CLUSTER_IP_CHECK_INTERVAL: '15',
  HA_IP_FILE_CHECK_INTERVAL: '300',
  ON_FAILURE_CHECK_INTERVAL: '3',
  ON_FAILURE_TAKE_OVER_AFTER: '5',
  MASTER_FRESHNESS_CHECK_INTERVAL: '120',
  CMD_VZCTL: 'vzctl',
  CMD_VZLIST: 'vzlist',
} as const;

type MappedKey = keyof typeof VZHAIPD_DEFAULTS;

/** Keys vzhaipd knew that have no vigil equivalent, and why. */
const UNMAPPED: Record<string, string> = {
  VZHAIPD_CONFIG: 'the path of this file itself',
  USE_ACCURATE_TIME: 'vigil timestamps every log line itself',
  FILE_UMASK: 'vigil creates its files 0600 and checks its config owner and mode itself',
  FILE_PERMISSIONS: 'vigil creates its files 0600 and checks its config owner and mode itself',
  PID_CONSISTENCY_CHECK_INTERVAL: 'vigil holds a lock on its PID file and re-checks it on its own schedule',
  CMD_ARPSEND: 'vigil sends and reads ARP itself, without arpsend',
  VEID: 'use --ctid',
};

const yamlStr = (s: string): string => JSON.stringify(s);
const yamlArgv = (a: readonly string[]): string => `[${a.map(yamlStr).join(', ')}]`;

/**
 * Turn a vzhaipd.conf into commented vigil YAML. Throws {@link ConfigError}
 * when a mapped value cannot be expressed (a bad IP, interval or path), or
 * when the result does not validate; everything else is a warning.
 */
export function importVzhaipd(text: string, opts: VzhaipdImportOptions = {}): VzhaipdImport {
  const source = opts.source ?? 'vzhaipd.conf';
  const ctid = opts.ctid;
  if (ctid !== undefined) {
    const p = checkLeaf({ kind: 'ctid' }, ctid);
    if (p) throw new ConfigError(`--ctid ${JSON.stringify(ctid)} ${p.problem} (expected ${p.expected})`);
  }
  const initial = new Map<string, string>();
  if (ctid !== undefined) { initial.set('CONTAINER_ID', ctid); initial.set('VEID', ctid); }
  const parsed = parseVzhaipdConf(text, initial);
  const warnings: string[] = [];
  const errors: string[] = [];
  const notes: string[] = [];

  for (const s of parsed.skipped) warnings.push(`${source}:${s.line}: skipped: ${s.reason}: ${s.text.trim()}`);
  // A mapped key assigned in skipped code has a value vigil cannot know; a default in its place would be wrong.
  for (const s of parsed.skipped) {
    for (const key of [...Object.keys(VZHAIPD_DEFAULTS), 'CONTAINER_ID']) {
      if (new RegExp(`(^|[^A-Za-z0-9_])${key}=`).test(s.text)) {
        errors.push(`${source}:${s.line}: ${key} is assigned on a line that was skipped (${s.reason}), so its value is unknown (expected a plain ${key}=VALUE line)`);
      }
    }
  }

  const set = new Map<string, VzhaipdAssignment>();
  for (const a of parsed.assignments) set.set(a.key, a);

  let container = ctid;
  const fileCtid = set.get('CONTAINER_ID');
  if (container === undefined && fileCtid) {
    const p = checkLeaf({ kind: 'ctid' }, fileCtid.value);
    if (p) errors.push(`${source}:${fileCtid.line}: CONTAINER_ID: ${JSON.stringify(fileCtid.value)} ${p.problem} (expected ${p.expected})`);
    else container = fileCtid.value;
  }

  for (const a of set.values()) {
    if (a.key in VZHAIPD_DEFAULTS || a.key === 'CONTAINER_ID') continue;
    const why = UNMAPPED[a.key];
    notes.push(`# not imported: ${a.key}=${a.value} (line ${a.line}: ${why ?? 'not a vzhaipd key vigil knows'})`);
    if (!why) warnings.push(`${source}:${a.line}: unknown key ${a.key} not imported`);
  }

  /** The value of a mapped key and the comment that says where it came from. */
  const get = (key: MappedKey): { value: string; from: string } | undefined => {
    const a = set.get(key);
    if (a) return { value: a.value, from: `${key}=${a.value.length > 40 ? `${a.value.slice(0, 37)}...` : a.value}` };
    const d: string = VZHAIPD_DEFAULTS[key];
    if (d.includes('$CTID')) {
      if (container === undefined) return undefined;
      return { value: d.split('$CTID').join(container), from: `${key} (vzhaipd default)` };
    }
    return { value: d, from: `${key} (vzhaipd default)` };
  };
  const lineOf = (key: MappedKey): string => (set.get(key) ? `${source}:${set.get(key)!.line}` : source);
  /** Check `value` (parsed from `raw`, the text in the file) and report the problem in the file's terms. */
  const check = (key: MappedKey, spec: LeafSpec, value: unknown, raw = String(value)): boolean => {
    const p = checkLeaf(spec, value);
    if (p) errors.push(`${lineOf(key)}: ${key}: ${JSON.stringify(raw)} ${p.problem} (expected ${p.expected})`);
    return p === undefined;
  };
  const duration = (key: MappedKey): { ms: number; from: string } | undefined => {
    const v = get(key)!;
    // vzhaipd hands these to sleep(1): seconds, or a number with s/m/h.
    const ms = parseDurationMs(v.value);
    if (ms === undefined || ms <= 0) {
      errors.push(`${lineOf(key)}: ${key}: ${JSON.stringify(v.value)} is not a positive duration (expected a number of seconds, like 15)`);
      return undefined;
    }
    return { ms, from: v.from };
  };

  const out: string[] = [];
  const emit = (indent: number, key: string, value: string, comment: string) => out.push(`${' '.repeat(indent)}${key}: ${value}  # ${comment}`);
  out.push(`# Generated by \`vigil config import-vzhaipd\` from ${source}${ctid !== undefined ? ` for container ${ctid}` : ''}.`);
  out.push('# The file was read as data; nothing in it was run. Review every value, then run');
  out.push('# `vigil check-config -c FILE` (the file must be owned by root, mode 0644 or stricter).');

  // log
  const level = get('LOG_LEVEL')!;
  const levelN = Number(level.value);
  out.push('log:');
  if (/^\d+$/.test(level.value) && levelN <= 900) emit(2, 'level', levelFromVzhaipd(levelN), `${level.from}; vzhaipd levels 0-900 mapped onto pino's`);
  else errors.push(`${lineOf('LOG_LEVEL')}: LOG_LEVEL: ${JSON.stringify(level.value)} is not a vzhaipd log level (expected a number from 0 to 900)`);
  const logFile = set.get('LOG_FILE');
  if (logFile && logFile.value !== '') {
    if (check('LOG_FILE', { kind: 'path' }, logFile.value)) emit(2, 'file', yamlStr(logFile.value), `LOG_FILE=${logFile.value}`);
  } else {
    out.push(`  # file: not set: vigil logs to stdout (the journal). ${logFile ? 'LOG_FILE was empty' : "vzhaipd's default log file lies inside the container root, where the container could redirect it (V-40)"}`);
  }

  // pidfile
  const pid = set.get('DAEMON_PIDFILE');
  if (pid) {
    if (check('DAEMON_PIDFILE', { kind: 'path' }, pid.value)) emit(0, 'pidfile', yamlStr(pid.value), `DAEMON_PIDFILE=${pid.value}`);
  } else if (container !== undefined) {
    emit(0, 'pidfile', yamlStr(`/run/vigil/ct-${container}.pid`), `vzhaipd used /var/run/vzhaipd.${container}.pid; vigil keeps one per container under /run/vigil`);
  }

  // vip
  out.push('vip:');
  const iface = get('HA_INTERFACE')!;
  if (check('HA_INTERFACE', { kind: 'ifname' }, iface.value)) emit(2, 'interface', yamlStr(iface.value), iface.from);
  const ip = get('HA_CLUSTER_IP')!;
  if (check('HA_CLUSTER_IP', { kind: 'cidr', defaultPrefix: 32 }, ip.value)) emit(2, 'address', yamlStr(ip.value), ip.from);
  const ipFile = get('HA_IP_FILE');
  if (ipFile && ipFile.value !== '') {
    if (check('HA_IP_FILE', { kind: 'path' }, ipFile.value)) {
      emit(2, 'ip_file', yamlStr(ipFile.value), `${ipFile.from}; vigil reads one address per line`);
      if (ipFile.value.startsWith('/vz/root/')) out.push('  # ip_file lies inside the container root: the container can change the HA addresses (V-40); consider /etc/vigil');
    }
  } else if (ipFile) {
    out.push('  # ip_file: not set: HA_IP_FILE was empty (the HA IP only)');
  } else {
    out.push('  # ip_file: not set: vzhaipd\'s default is inside the container root (/vz/root/$CTID/...); pass --ctid to import it');
  }

  const check15 = duration('HA_CLUSTER_IP_CHECK_INTERVAL');
  const fail3 = duration('ON_FAILURE_CHECK_INTERVAL');
  const master = duration('MASTER_FRESHNESS_CHECK_INTERVAL');
  const ipCheck = duration('HA_IP_FILE_CHECK_INTERVAL');
  if (check15) emit(2, 'check_interval', formatDurationMs(check15.ms), check15.from);
  if (fail3 && check15 && fail3.ms > check15.ms) {
    // vzhaipd took it as given (the failure re-checks then came slower than the
    // normal ones); vigil requires them to be no slower: clamp, and say so.
    warnings.push(`${lineOf('ON_FAILURE_CHECK_INTERVAL')}: ON_FAILURE_CHECK_INTERVAL (${formatDurationMs(fail3.ms)}) is longer than HA_CLUSTER_IP_CHECK_INTERVAL (${formatDurationMs(check15.ms)}): imported as ${formatDurationMs(check15.ms)}`);
    fail3.ms = check15.ms;
    emit(2, 'failure_check_interval', formatDurationMs(fail3.ms), `${fail3.from}; clamped to check_interval`);
  } else if (fail3) emit(2, 'failure_check_interval', formatDurationMs(fail3.ms), fail3.from);
  const take = get('ON_FAILURE_TAKE_OVER_AFTER')!;
  if (!/^\d+$/.test(take.value)) {
    errors.push(`${lineOf('ON_FAILURE_TAKE_OVER_AFTER')}: ON_FAILURE_TAKE_OVER_AFTER: ${JSON.stringify(take.value)} is not an integer (expected an integer from 1 to 1000)`);
  } else if (check('ON_FAILURE_TAKE_OVER_AFTER', { kind: 'int', min: 1, max: 1000 }, Number(take.value), take.value)) {
    emit(2, 'take_over_after', String(Number(take.value)), take.from);
  }
  if (check15 && fail3 && master) {
    // arpsend -w 1 waited one second; never longer than the intervals vigil requires it to fit in.
    const probe = Math.min(1000, check15.ms, fail3.ms, master.ms);
    emit(2, 'probe_timeout', formatDurationMs(probe), 'vzhaipd ran arpsend -w 1 (a 1 s wait)');
    // vzhaipd's wait was fixed; vigil would learn a shorter one from the round trip (20 ms floor).
    emit(2, 'probe_timeout_min', formatDurationMs(probe), 'the same: a fixed wait, as vzhaipd\'s (lower it to learn the timeout from the round trip)');
  }
  if (master) emit(2, 'master_check_interval', formatDurationMs(master.ms), master.from);
  if (ipCheck) emit(2, 'ip_file_check_interval', formatDurationMs(ipCheck.ms), ipCheck.from);

  for (const [key, yamlKey] of [['START_CMD', 'on_master'], ['STOP_CMD', 'on_slave']] as const) {
    const c = get(key);
    if (!c) {
      out.push(`  # ${yamlKey}: not set: vzhaipd's default ${key} names the container; pass --ctid to import it`);
      continue;
    }
    // vzhaipd ran ${START_CMD:-:} unquoted: split on whitespace, no shell. An argv list does the same.
    const argv = c.value.split(/\s+/).filter((w) => w !== '');
    if (argv.length === 0) { out.push(`  # ${yamlKey}: not set: ${key} was empty (nothing to run)`); continue; }
    if (/['"*?[]/.test(c.value)) {
      warnings.push(`${lineOf(key)}: ${key} holds quotes or glob characters; vzhaipd passed them literally and so does the imported argv: check it`);
    }
    emit(2, yamlKey, yamlArgv(argv), `${c.from}; split into words as vzhaipd did, no shell`);
  }

  if (container !== undefined) {
    emit(2, 'backend', 'vzctl', 'vzhaipd added the addresses inside the container with vzctl set --ipadd');
    emit(2, 'container', yamlStr(container), ctid !== undefined ? '--ctid (vzhaipd: $VEID)' : 'CONTAINER_ID');
    for (const [key, yamlKey] of [['CMD_VZCTL', 'vzctl'], ['CMD_VZLIST', 'vzlist']] as const) {
      const c = get(key)!;
      if (check(key, { kind: 'program' }, c.value)) emit(2, yamlKey, yamlStr(c.value), c.from);
    }
    emit(2, 'container_settle', '30s', 'vzhaipd slept 30 s after the container reached running');
  } else {
    out.push('  # backend: netlink (the addresses go on the interface). vzhaipd added them inside a container');
    out.push('  # with vzctl: pass --ctid CTID to import that as backend: vzctl');
    for (const key of ['CMD_VZCTL', 'CMD_VZLIST'] as const) {
      const a = set.get(key);
      if (a) notes.push(`# not imported: ${key}=${a.value} (line ${a.line}: only used with --ctid)`);
    }
  }

  if (notes.length > 0) out.push(...notes);
  if (parsed.skipped.length > 0) {
    out.push('# lines skipped (not KEY=VALUE data; never run):');
    for (const s of parsed.skipped) out.push(`#   line ${s.line}: ${s.text.trim().replace(/[\x00-\x1f\x7f]/g, '?')}`);
  }

  if (errors.length > 0) {
    throw new ConfigError(`${errors[0]}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}`, { errors, warnings });
  }
  const yaml = `${out.join('\n')}\n`;
  let config: VigilConfig;
  try {
    config = parseConfigText(yaml, 'the imported YAML');
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new ConfigError(`the imported config does not validate: ${msg}`, { errors: [msg], warnings });
  }
  return { yaml, warnings, config };
}
