/**
 * Layer: config (pure, no file access). The `fence` section a role exposes
 * (monitor's per-host BMC, promote's optional fence of the old primary), in
 * the operator's snake_case words, turned into a {@link FenceMethod} and
 * {@link FenceOptions}. Unknown keys and wrong types are refused with a
 * message naming the key, the value and what was expected (STYLE §8).
 * Files (password_file, ca_file) are read later, when the driver is built
 * ({@link createPowerDriver}), so check-config can do both steps.
 */
import { ConfigError } from '../../errors';
import { DURATION_FORMS, parseDurationMs } from '../../util/duration';
import type { CommandMethod, FenceMethod, FenceOptions, IpmiMethod, RedfishMethod } from './fence';

/** Every key per method (besides `method`, `power_timeout`, `power_wait`). */
const KEYS: Record<FenceMethod['method'], readonly string[]> = {
  ipmi: ['ip', 'port', 'user', 'password_file', 'password_via', 'program', 'cipher_suite', 'retries', 'retry_timeout', 'command_timeout'],
  redfish: ['ip', 'port', 'user', 'password_file', 'system_id', 'ca_file', 'fingerprint', 'auth', 'request_timeout'],
  command: ['argv', 'status_argv', 'confirm', 'command_timeout'],
};
const COMMON = ['method', 'power_timeout', 'power_wait'];

type Section = Record<string, unknown>;

function str(s: Section, key: string, where: string): string | undefined {
  const v = s[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(`${where}.${key}: ${JSON.stringify(v)} is not a non-empty string`, { key });
  return v;
}
function need(s: Section, key: string, where: string): string {
  const v = str(s, key, where);
  if (v === undefined) throw new ConfigError(`${where}.${key} is missing`, { key });
  return v;
}
function int(s: Section, key: string, where: string, min: number, max: number): number | undefined {
  const v = s[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ConfigError(`${where}.${key}: ${JSON.stringify(v)} is not an integer from ${min} to ${max}`, { key });
  return v;
}
function dur(s: Section, key: string, where: string): number | undefined {
  if (s[key] === undefined) return undefined;
  const ms = parseDurationMs(s[key]);
  if (ms === undefined || ms === 0) throw new ConfigError(`${where}.${key}: ${JSON.stringify(s[key])} is not ${DURATION_FORMS} (above zero)`, { key });
  return ms;
}
function argvOf(s: Section, key: string, where: string): string[] | undefined {
  const v = s[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length === 0 || !v.every((a) => typeof a === 'string')) {
    throw new ConfigError(`${where}.${key}: expected a list of strings (argv, no shell), got ${JSON.stringify(v)}`, { key });
  }
  return v as string[];
}
function oneOf<T extends string>(s: Section, key: string, where: string, values: readonly T[]): T | undefined {
  const v = s[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !values.includes(v as T)) throw new ConfigError(`${where}.${key}: ${JSON.stringify(v)} is not one of ${values.join(', ')}`, { key });
  return v as T;
}
const def = <K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } => (v === undefined ? {} : { [k]: v }) as { [P in K]?: V };

/** Parse one method section (`confirm` of a command method is parsed recursively, without timing keys). */
function methodOf(s: Section, where: string, nested = false): FenceMethod {
  if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new ConfigError(`${where}: expected a mapping`, { key: where });
  const method = oneOf(s, 'method', where, ['ipmi', 'redfish', 'command'] as const);
  if (!method) throw new ConfigError(`${where}.method is missing; expected ipmi, redfish or command`, { key: 'method' });
  if (nested && method === 'command') throw new ConfigError(`${where}.method: a command cannot confirm a command; expected ipmi or redfish`, { key: 'method' });
  const allowed = new Set([...KEYS[method], ...(nested ? ['method'] : COMMON)]);
  for (const k of Object.keys(s)) {
    if (!allowed.has(k)) throw new ConfigError(`${where}.${k} is not a key of the ${method} method; expected one of ${[...allowed].join(', ')}`, { key: k });
  }
  if (method === 'command') {
    const confirm = s.confirm === undefined ? undefined : methodOf(s.confirm as Section, `${where}.confirm`, true) as IpmiMethod | RedfishMethod;
    const argv = argvOf(s, 'argv', where);
    if (!argv) throw new ConfigError(`${where}.argv is missing; expected the fence command as a list of strings`, { key: 'argv' });
    const m: CommandMethod = { method, argv, ...def('statusArgv', argvOf(s, 'status_argv', where)), ...def('confirm', confirm), ...def('commandTimeoutMs', dur(s, 'command_timeout', where)) };
    return m;
  }
  const common = { ip: need(s, 'ip', where), user: need(s, 'user', where), passwordFile: need(s, 'password_file', where), ...def('port', int(s, 'port', where, 1, 65535)) };
  if (method === 'ipmi') {
    return {
      method, ...common,
      ...def('passwordVia', oneOf(s, 'password_via', where, ['env', 'file'] as const)),
      ...def('program', str(s, 'program', where)),
      ...def('cipherSuite', int(s, 'cipher_suite', where, 0, 17)),
      ...def('retries', int(s, 'retries', where, 1, 10)),
      ...def('tryTimeoutS', int(s, 'retry_timeout', where, 1, 30)),
      ...def('commandTimeoutMs', dur(s, 'command_timeout', where)),
    };
  }
  return {
    method, ...common,
    ...def('systemId', str(s, 'system_id', where)),
    ...def('caFile', str(s, 'ca_file', where)),
    ...def('fingerprint', str(s, 'fingerprint', where)),
    ...def('auth', oneOf(s, 'auth', where, ['session', 'basic'] as const)),
    ...def('requestTimeoutMs', dur(s, 'request_timeout', where)),
  };
}

/**
 * Parse a role's fence section, e.g. `monitor.hosts[i].fence`:
 * `{method: ipmi, ip, user, password_file, power_timeout: 20s, power_wait: 2s, …}`.
 * `where` prefixes every message (`monitor.hosts.cmp-01.fence`).
 */
export function parseFenceSection(section: unknown, where = 'fence'): { method: FenceMethod; timing: FenceOptions } {
  const method = methodOf(section as Section, where);
  const s = section as Section;
  return { method, timing: { ...def('powerTimeoutMs', dur(s, 'power_timeout', where)), ...def('powerWaitMs', dur(s, 'power_wait', where)) } };
}
