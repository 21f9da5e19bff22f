/**
 * Layer: codec (pure). os_nova_ha_monitor's Consul KV layout, read and
 * written compatibly (spec/seed-inventory.md §4.2), plus the few keys vigil
 * adds beside it, and the `/v1/txn` operations that write it
 * (spec/consul-api.md §3g).
 *
 * Layout under `<prefix>/compute_nodes/<host>/` (N-4; prefix `ha_cluster`):
 *   general, status/failed, status/recovered, internal/number_fails,
 *   internal/runtime_config, config/bmc/{ip,user,password},
 *   config/ssh/{user,password}
 * and under `<prefix>/ha_nodes/<ha>/` (N-5): general, status/in_use,
 * config/os_cloud, config/nova_mountpoint.
 *
 * Values as os_nova writes them (N-7): booleans `True`/`False` (read back
 * like `str2bool`: yes/true/t/1, case-insensitive; vigil also accepts
 * no/false/f/0 and refuses anything else, naming the key, where os_nova
 * silently read False), `number_fails` a decimal integer, `runtime_config`
 * JSON (written with sorted keys and a 4-space indent, like
 * `json.dumps(sort_keys=True, indent=4)`).
 *
 * vigil's own keys, beside os_nova's (os_nova ignores unknown keys; the
 * host name is still the 3rd path segment, N-8):
 *   incident                      the session lock of an open incident; its
 *                                 value is the incident journal (JSON)
 *   internal/number_fails_by_network  per-network consecutive down counts
 *                                 (JSON); number_fails holds their maximum
 *   status/maintenance            True while an operator keeps vigil off it
 */

/** The default KV prefix (os_nova's). */
export const DEFAULT_KV_PREFIX = 'ha_cluster';

/** Sub-keys of a compute node (N-4) and vigil's additions. */
export const COMPUTE_KEYS = {
  general: 'general',
  failed: 'status/failed',
  recovered: 'status/recovered',
  numberFails: 'internal/number_fails',
  runtimeConfig: 'internal/runtime_config',
  bmcIp: 'config/bmc/ip',
  bmcUser: 'config/bmc/user',
  bmcPassword: 'config/bmc/password',
  sshUser: 'config/ssh/user',
  sshPassword: 'config/ssh/password',
  // vigil's:
  incident: 'incident',
  failsByNetwork: 'internal/number_fails_by_network',
  maintenance: 'status/maintenance',
} as const;

/** Sub-keys of an HA (spare) node (N-5). */
export const HA_KEYS = {
  general: 'general',
  inUse: 'status/in_use',
  osCloud: 'config/os_cloud',
  novaMountpoint: 'config/nova_mountpoint',
} as const;

/** os_nova's default credentials, written for every node (N-4, N-18). */
export const OS_NOVA_DEFAULT_USER = 'test';
/** os_nova's default password (N-4, N-18). */
export const OS_NOVA_DEFAULT_PASSWORD = 'Test123.';

/** `<prefix>/compute_nodes/<host>/<sub>`. */
export function computeKey(prefix: string, host: string, sub: string): string {
  return `${prefix}/compute_nodes/${host}/${sub}`;
}

/** `<prefix>/ha_nodes/<ha>/<sub>`. */
export function haKey(prefix: string, ha: string, sub: string): string {
  return `${prefix}/ha_nodes/${ha}/${sub}`;
}

/**
 * A secret read from KV or a file. It prints as `[redacted]` in JSON, in
 * `util.inspect` and in template strings, so a log line cannot carry it by
 * accident; `reveal()` is the one way out (for the BMC client's env).
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) { this.#value = value; }
  /** The secret itself. Only the executor that hands it to a BMC calls this. */
  reveal(): string { return this.#value; }
  toJSON(): string { return '[redacted]'; }
  toString(): string { return '[redacted]'; }
  [Symbol.for('nodejs.util.inspect.custom')](): string { return '[redacted]'; }
}

/** True for os_nova's default user or password (N-18). */
export function isDefaultCredential(user: string | undefined, password: string | undefined): boolean {
  return user === OS_NOVA_DEFAULT_USER || password === OS_NOVA_DEFAULT_PASSWORD;
}

// ---- values ----

/** Encode a boolean as os_nova does (`str(True)`, N-7). */
export function encodeBool(b: boolean): string {
  return b ? 'True' : 'False';
}

/** Decode an os_nova boolean; undefined when it is neither (N-7's str2bool, plus an explicit false list). */
export function decodeBool(s: string): boolean | undefined {
  const v = s.trim().toLowerCase();
  if (['yes', 'true', 't', '1'].includes(v)) return true;
  if (['no', 'false', 'f', '0', ''].includes(v)) return false;
  return undefined;
}

/** Decode `number_fails`: a non-negative decimal integer (os_nova's `int()`, N-7). */
export function decodeCount(s: string): number | undefined {
  const v = s.trim();
  if (!/^\d{1,9}$/.test(v)) return undefined;
  return Number(v);
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (typeof v === 'object' && v !== null) {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  }
  return v;
}

/** Encode JSON like `json.dumps(v, sort_keys=True, indent=4)` (N-7). */
export function encodeJson(v: unknown): string {
  return JSON.stringify(sortKeys(v), null, 4);
}

// ---- reading a recursive listing ----

/** One entry of `GET /v1/kv/<prefix>/?recurse`, as Consul sends it (Value base64 or null). */
export interface RawKvEntry {
  Key: string;
  Value?: string | null;
  ModifyIndex: number;
  CreateIndex?: number;
  LockIndex?: number;
  Flags?: number;
  Session?: string;
}

/** A decoded value with the ModifyIndex a CAS write must quote (0 when the key is absent). */
export interface Versioned<T> { value: T; modifyIndex: number }

/** The open incident of a host: who holds the lock, and the journal it wrote. */
export interface IncidentRecord {
  session?: string;
  journal?: Record<string, unknown>;
  modifyIndex: number;
}

/** What vigil knows of one compute node from KV. Absent keys are undefined. */
export interface ComputeNodeRecord {
  name: string;
  failed?: Versioned<boolean>;
  recovered?: Versioned<boolean>;
  numberFails?: Versioned<number>;
  failsByNetwork?: Versioned<Record<string, number>>;
  runtimeConfig?: Versioned<Record<string, unknown>>;
  maintenance?: Versioned<boolean>;
  incident?: IncidentRecord;
  bmc: { ip?: string; user?: string; password?: Secret };
  ssh: { user?: string; password?: Secret };
}

/** One HA (spare) node from KV. */
export interface HaNodeRecord {
  name: string;
  inUse?: Versioned<boolean>;
  inUseSession?: string;
  osCloud?: string;
  novaMountpoint?: string;
}

/** A key that did not parse. The message names the key, the value (never a secret's) and what was expected. */
export interface KvProblem {
  code: 'EKVPARSE' | 'EKVDEFAULTCRED';
  key: string;
  host: string;
  message: string;
}

/** The decoded tree. Hosts with a problem are left out of `computeNodes` (the caller keeps their last good record). */
export interface KvInventory {
  computeNodes: Record<string, ComputeNodeRecord>;
  haNodes: Record<string, HaNodeRecord>;
  problems: KvProblem[];
}

const SEGMENT_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

function decodeValue(e: RawKvEntry): string | undefined {
  if (e.Value === null || e.Value === undefined) return '';
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(e.Value)) return undefined;
  return Buffer.from(e.Value, 'base64').toString('utf8');
}

const quote = (s: string) => (s.length > 40 ? JSON.stringify(`${s.slice(0, 37)}...`) : JSON.stringify(s));

/**
 * Decode a recursive listing of `<prefix>/` into compute and HA nodes. Keys
 * vigil does not know are ignored (os_nova's `general`, future keys). A key
 * that does not parse is a {@link KvProblem} naming it, and its host is
 * left out of the result so the caller keeps that host's last good record
 * ({@link mergeInventory}); other hosts are unaffected.
 */
export function decodeInventory(entries: readonly RawKvEntry[], prefix = DEFAULT_KV_PREFIX): KvInventory {
  const compute: Record<string, ComputeNodeRecord> = {};
  const ha: Record<string, HaNodeRecord> = {};
  const problems: KvProblem[] = [];
  const bad = new Set<string>();
  const problem = (code: KvProblem['code'], key: string, host: string, message: string) => { problems.push({ code, key, host, message }); bad.add(host); };
  const base = `${prefix}/`;
  for (const e of entries) {
    if (!e.Key.startsWith(base)) continue;
    const parts = e.Key.slice(base.length).split('/');
    const [kind, host, ...rest] = parts;
    if ((kind !== 'compute_nodes' && kind !== 'ha_nodes') || !host || rest.length === 0) continue;
    const sub = rest.join('/');
    if (!SEGMENT_RE.test(host)) { problem('EKVPARSE', e.Key, host, `${e.Key}: ${quote(host)} is not a host name (expected letters, digits, '.', '_' or '-')`); continue; }
    const text = decodeValue(e);
    const secret = sub.endsWith('/password');
    if (text === undefined) { problem('EKVPARSE', e.Key, host, `${e.Key}: the Value is not base64`); continue; }
    const fail = (expected: string) => problem('EKVPARSE', e.Key, host, `${e.Key}: ${secret ? 'the value' : quote(text)} does not parse (expected ${expected})`);
    const idx = e.ModifyIndex;
    if (kind === 'ha_nodes') {
      const r = (ha[host] ??= { name: host });
      if (sub === HA_KEYS.inUse) {
        const b = decodeBool(text);
        if (b === undefined) fail('True or False');
        else { r.inUse = { value: b, modifyIndex: idx }; if (e.Session) r.inUseSession = e.Session; }
      } else if (sub === HA_KEYS.osCloud) r.osCloud = text;
      else if (sub === HA_KEYS.novaMountpoint) r.novaMountpoint = text;
      continue;
    }
    const r = (compute[host] ??= { name: host, bmc: {}, ssh: {} });
    switch (sub) {
      case COMPUTE_KEYS.failed:
      case COMPUTE_KEYS.recovered:
      case COMPUTE_KEYS.maintenance: {
        const b = decodeBool(text);
        if (b === undefined) { fail('True or False'); break; }
        const field = sub === COMPUTE_KEYS.failed ? 'failed' : sub === COMPUTE_KEYS.recovered ? 'recovered' : 'maintenance';
        r[field] = { value: b, modifyIndex: idx };
        break;
      }
      case COMPUTE_KEYS.numberFails: {
        const n = decodeCount(text);
        if (n === undefined) fail('a non-negative integer');
        else r.numberFails = { value: n, modifyIndex: idx };
        break;
      }
      case COMPUTE_KEYS.failsByNetwork:
      case COMPUTE_KEYS.runtimeConfig:
      case COMPUTE_KEYS.incident: {
        let v: unknown;
        // The incident key may be empty (a bare lock); runtime_config '' is os_nova's "unset".
        if (text.trim() === '' && sub !== COMPUTE_KEYS.failsByNetwork) v = {};
        else { try { v = JSON.parse(text); } catch { v = undefined; } }
        if (typeof v !== 'object' || v === null || Array.isArray(v)) { fail('a JSON object'); break; }
        if (sub === COMPUTE_KEYS.runtimeConfig) r.runtimeConfig = { value: v as Record<string, unknown>, modifyIndex: idx };
        else if (sub === COMPUTE_KEYS.incident) r.incident = { journal: v as Record<string, unknown>, modifyIndex: idx, ...(e.Session ? { session: e.Session } : {}) };
        else {
          const counts = v as Record<string, unknown>;
          if (!Object.values(counts).every((c) => typeof c === 'number' && Number.isInteger(c) && c >= 0)) { fail('a JSON object of network → non-negative integer'); break; }
          r.failsByNetwork = { value: counts as Record<string, number>, modifyIndex: idx };
        }
        break;
      }
      case COMPUTE_KEYS.bmcIp: r.bmc.ip = text.trim(); break;
      case COMPUTE_KEYS.bmcUser: r.bmc.user = text; break;
      case COMPUTE_KEYS.bmcPassword: r.bmc.password = new Secret(text); break;
      case COMPUTE_KEYS.sshUser: r.ssh.user = text; break;
      case COMPUTE_KEYS.sshPassword: r.ssh.password = new Secret(text); break;
      default: break;
    }
  }
  // os_nova writes test/Test123. for every node (N-4): refuse them, naming the key.
  for (const r of Object.values(compute)) {
    for (const which of ['bmc', 'ssh'] as const) {
      const c = r[which];
      if (c.user === OS_NOVA_DEFAULT_USER) problem('EKVDEFAULTCRED', computeKey(prefix, r.name, `config/${which}/user`), r.name, `${computeKey(prefix, r.name, `config/${which}/user`)}: 'test' is os_nova's default user (expected a real ${which} account)`);
      if (c.password?.reveal() === OS_NOVA_DEFAULT_PASSWORD) problem('EKVDEFAULTCRED', computeKey(prefix, r.name, `config/${which}/password`), r.name, `${computeKey(prefix, r.name, `config/${which}/password`)}: the value is os_nova's default password (expected a real ${which} password)`);
    }
  }
  for (const h of bad) delete compute[h];
  return { computeNodes: compute, haNodes: ha, problems };
}

/**
 * The new inventory with the last good record kept for every host whose
 * keys did not parse this time (and dropped for none).
 */
export function mergeInventory(last: KvInventory | undefined, next: KvInventory): KvInventory {
  if (!last) return next;
  const computeNodes = { ...next.computeNodes };
  for (const p of next.problems) {
    const prev = last.computeNodes[p.host];
    if (prev && !(p.host in computeNodes)) computeNodes[p.host] = prev;
  }
  return { ...next, computeNodes };
}

// ---- writing: /v1/txn operations ----

/** One KV operation of a `/v1/txn` body (spec/consul-api.md §3g). */
export interface TxnOp {
  KV: {
    Verb: 'set' | 'cas' | 'lock' | 'unlock' | 'get' | 'check-index' | 'check-session' | 'check-not-exists' | 'delete' | 'delete-cas';
    Key: string;
    /** base64, standard alphabet with padding. */
    Value?: string;
    Index?: number;
    Session?: string;
  };
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** `cas` with the read ModifyIndex; index 0 creates the key only if it is absent. */
export function casOp(key: string, value: string, index: number): TxnOp {
  return { KV: { Verb: 'cas', Key: key, Value: b64(value), Index: index } };
}

/** `set` (ignores locks and indexes: only after a check-* op in the same txn). */
export function setOp(key: string, value: string): TxnOp {
  return { KV: { Verb: 'set', Key: key, Value: b64(value) } };
}

/** `check-session`: the txn fails unless `session` holds the lock on `key`. */
export function checkSessionOp(key: string, session: string): TxnOp {
  return { KV: { Verb: 'check-session', Key: key, Session: session } };
}

/** `lock`: take (or, by the same session, update) the lock on `key`. */
export function lockOp(key: string, value: string, session: string): TxnOp {
  return { KV: { Verb: 'lock', Key: key, Value: b64(value), Session: session } };
}

/** `unlock`: release `key` held by `session`. */
export function unlockOp(key: string, value: string, session: string): TxnOp {
  return { KV: { Verb: 'unlock', Key: key, Value: b64(value), Session: session } };
}

/** The latches os_nova has (N-9, N-13). */
export type Latch = 'failed' | 'recovered';

/**
 * The txn that sets a latch to True: first `check-session` on the host's
 * incident key (a monitor that lost its claim cannot write), then the latch,
 * then the incident journal (updated under the same lock). Consul applies it
 * all or nothing (§3g), so the journal never runs ahead of the latch.
 */
export function latchTxn(prefix: string, host: string, latch: Latch, session: string, journal: Record<string, unknown>): TxnOp[] {
  const incident = computeKey(prefix, host, COMPUTE_KEYS.incident);
  return [
    checkSessionOp(incident, session),
    setOp(computeKey(prefix, host, latch === 'failed' ? COMPUTE_KEYS.failed : COMPUTE_KEYS.recovered), encodeBool(true)),
    lockOp(incident, encodeJson(journal), session),
  ];
}

/** A journal step, under the claim, without touching a latch. */
export function journalTxn(prefix: string, host: string, session: string, journal: Record<string, unknown>): TxnOp[] {
  const incident = computeKey(prefix, host, COMPUTE_KEYS.incident);
  return [checkSessionOp(incident, session), lockOp(incident, encodeJson(journal), session)];
}

/**
 * The operator's reset (`vigil monitor reset HOST`, N-9's "manual" reset):
 * latches to False, counters to 0. Plain `set`s: an operator overrides.
 */
export function resetTxn(prefix: string, host: string): TxnOp[] {
  return [
    setOp(computeKey(prefix, host, COMPUTE_KEYS.failed), encodeBool(false)),
    setOp(computeKey(prefix, host, COMPUTE_KEYS.recovered), encodeBool(false)),
    setOp(computeKey(prefix, host, COMPUTE_KEYS.numberFails), '0'),
    setOp(computeKey(prefix, host, COMPUTE_KEYS.failsByNetwork), encodeJson({})),
  ];
}

/** `vigil monitor maintenance on|off HOST`. */
export function maintenanceTxn(prefix: string, host: string, on: boolean): TxnOp[] {
  return [setOp(computeKey(prefix, host, COMPUTE_KEYS.maintenance), encodeBool(on))];
}
