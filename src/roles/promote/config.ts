/**
 * Layer: config, pure. The `promote:` section (issue 17): its schema with
 * the documented defaults (src/roles/promote/sample.yml), its type, and
 * its normalisation with the cross-key timing rules.
 *
 * Cross-key rules (each reported on the first key it names, one line):
 * - `renew_interval × (retries + 1) + demote_timeout < ttl`: the holder
 *   notices a lost lease and finishes demoting before its own deadline
 *   (booth's `timeout*(retries+1) < renewal`, Patroni's
 *   `loop_wait + 2*retry_timeout <= ttl`);
 * - `lock_delay` ≥ 15 s (and ≤ 60 s, Consul's maximum): after an
 *   invalidation nobody may acquire before the old holder has demoted;
 * - `mode: auto` needs `witness_sites` ≥ 3 unless
 *   `accept_split_brain_risk: true` (two sites cannot tell a partition from
 *   a dead peer: Patroni's ha_multi_dc.rst, booth's manual tickets);
 * - `failback: auto` needs `healthy_for` ≥ `check_interval ×
 *   (healthy_checks - 1)` to be reachable at all (an impossible rule is a typo).
 */
import { resolve } from 'node:path';
import { duration, int, leaf, list, path, section, type Schema } from '../../config/kinds';
import { formatValue, ms, type AddProblem } from '../../config/normalize';
import { formatDurationMs } from '../../util/duration';

/** Consul's own bounds on a session's lock-delay (spec/consul-api.md §3f). */
export const LOCK_DELAY_FLOOR_MS = 15_000;
export const LOCK_DELAY_MAX_MS = 60_000;

/** One tri-state probe with a timeout: `up | down | unknown`. */
export type ProbeConfig =
  | { kind: 'icmp'; host: string; timeoutMs: number }
  | { kind: 'arp'; host: string; interface: string; timeoutMs: number }
  | { kind: 'tcp'; host: string; port: number; timeoutMs: number }
  | { kind: 'http'; url: string; timeoutMs: number };

/** One promote or demote step: argv with its own timeout. */
export interface StepConfig {
  name: string;
  command: readonly string[];
  timeoutMs: number;
  /** Argv that says (exit 0) whether the step took effect; run after a crash in `started`. */
  verify?: readonly string[];
  /** The step's stdout must be JSON; when it is not, the step fails. */
  json: boolean;
}

/** The fence of the old primary before the promote steps. */
export type FenceConfig =
  | { kind: 'none' }
  | { kind: 'wait'; waitMs: number }
  | { kind: 'command'; command: readonly string[]; timeoutMs: number }
  | { kind: 'bmc'; host: string; user?: string; passwordFile?: string; driver: 'ipmitool' | 'redfish'; timeoutMs: number };

/** The `promote:` section, normalized. */
export interface PromoteConfig {
  name: string;
  site: string;
  peer: string;
  mode: 'auto' | 'manual';
  witnessSites: number;
  acceptSplitBrainRisk: boolean;
  autoPromote: boolean;
  consul: { url: string; tokenFile?: string; timeoutMs: number };
  ttlMs: number;
  lockDelayMs: number;
  acquireAfterMs: number;
  renewIntervalMs: number;
  retries: number;
  demoteTimeoutMs: number;
  checkIntervalMs: number;
  journalDir: string;
  peerProbes: readonly ProbeConfig[];
  ready: readonly ProbeConfig[];
  prereq?: { key: string; equals: string };
  fence: FenceConfig;
  promoteSteps: readonly StepConfig[];
  demoteSteps: readonly StepConfig[];
  failback: { mode: 'none' | 'manual' | 'auto'; healthyChecks: number; healthyForMs: number };
}

/** The lock key of a promotion name. */
export const leaderKey = (name: string): string => `vigil/promote/${name}/leader`;

const argv = (): Schema => leaf({ kind: 'argv' });

const PROBE_SCHEMA: Schema = section('a probe: kind (icmp, arp, tcp or http) and its target (host; port for tcp; interface for arp; url for http), timeout', {
  kind: leaf({ kind: 'enum', values: ['icmp', 'arp', 'tcp', 'http'] }),
  host: leaf({ kind: 'ipv4' }),
  port: int(1, 65535),
  interface: leaf({ kind: 'ifname' }),
  url: leaf({ kind: 'httpUrl' }),
  timeout: duration('1s', 10, 60_000),
}, { required: ['kind'] });

const STEP_SCHEMA: Schema = section('a step: name and command (required, argv), timeout, verify (argv), json', {
  name: leaf({ kind: 'name' }),
  command: argv(),
  timeout: duration('60s', 100),
  verify: argv(),
  json: leaf({ kind: 'bool' }, false),
}, { required: ['name', 'command'] });

/** The schema of `promote:`. */
export const PROMOTE_SCHEMA: Schema = section('a mapping with the promotion settings (name, site and peer are required)', {
  name: leaf({ kind: 'name' }),
  site: leaf({ kind: 'node' }),
  peer: leaf({ kind: 'node' }),
  mode: leaf({ kind: 'enum', values: ['auto', 'manual'] }, 'manual'),
  witness_sites: int(1, 99, 3),
  accept_split_brain_risk: leaf({ kind: 'bool' }, false),
  auto_promote: leaf({ kind: 'bool' }, true),
  consul: section('a mapping with the keys url, token_file and timeout', {
    url: leaf({ kind: 'url' }, 'http://127.0.0.1:8500'),
    token_file: path(),
    timeout: duration('2s', 100, 60_000),
  }, { default: {} }),
  ttl: duration('15s', 10_000, 86_400_000),
  lock_delay: duration('15s', 0, 600_000),
  acquire_after: duration('0s', 0),
  renew_interval: duration('3s', 100),
  retries: int(0, 100, 2),
  demote_timeout: duration('5s', 100),
  check_interval: duration('5s', 100),
  journal_dir: path('/var/lib/vigil/promote'),
  peer_probes: list('a list of probes of the peer site (they only gate attempts)', PROBE_SCHEMA, { maxItems: 16, default: [] }),
  ready: list('a list of local readiness probes', PROBE_SCHEMA, { maxItems: 16, default: [] }),
  prereq: section('a mapping with the keys key and equals (both required)', {
    key: leaf({ kind: 'kvKey' }),
    equals: leaf({ kind: 'text', maxLength: 1024 }),
  }, { required: ['key', 'equals'] }),
  fence: section('a mapping with the key kind (none, wait, command or bmc) and its settings', {
    kind: leaf({ kind: 'enum', values: ['none', 'wait', 'command', 'bmc'] }, 'none'),
    wait: duration(undefined, 0),
    command: argv(),
    host: leaf({ kind: 'ipv4' }),
    user: leaf({ kind: 'name' }),
    password_file: path(),
    driver: leaf({ kind: 'enum', values: ['ipmitool', 'redfish'] }, 'ipmitool'),
    timeout: duration('60s', 100),
  }, { default: {} }),
  promote_steps: list('a list of promote steps (name, command, timeout, verify, json)', STEP_SCHEMA, { minItems: 1, maxItems: 32 }),
  demote_steps: list('a list of demote steps (name, command, timeout, verify, json)', STEP_SCHEMA, { maxItems: 32, default: [] }),
  failback: section('a mapping with the keys mode (none, manual or auto), healthy_checks and healthy_for', {
    mode: leaf({ kind: 'enum', values: ['none', 'manual', 'auto'] }, 'none'),
    healthy_checks: int(1, 1000, 5),
    healthy_for: duration('5m', 0),
  }, { default: {} }),
}, { required: ['name', 'site', 'peer', 'promote_steps'] });

function probe(p: Record<string, any>, at: (string | number)[], add: AddProblem): ProbeConfig | undefined {
  const timeoutMs = ms(p.timeout);
  const need = (key: string) => {
    if (p[key] === undefined) { add([...at, key], `is required but missing with kind ${p.kind} (expected ${key === 'host' ? 'an IPv4 address' : key === 'port' ? 'a TCP port' : key === 'interface' ? 'an interface name' : 'an http(s) URL'})`); return false; }
    return true;
  };
  switch (p.kind) {
    case 'icmp': return need('host') ? { kind: 'icmp', host: p.host, timeoutMs } : undefined;
    case 'arp': return need('host') && need('interface') ? { kind: 'arp', host: p.host, interface: p.interface, timeoutMs } : undefined;
    case 'tcp': return need('host') && need('port') ? { kind: 'tcp', host: p.host, port: p.port, timeoutMs } : undefined;
    default: return need('url') ? { kind: 'http', url: p.url, timeoutMs } : undefined;
  }
}

function step(s: Record<string, any>): StepConfig {
  return { name: s.name, command: [...s.command], timeoutMs: ms(s.timeout), ...(s.verify ? { verify: [...s.verify] } : {}), json: s.json };
}

function uniqueNames(steps: StepConfig[], key: string, add: AddProblem): void {
  const seen = new Set<string>();
  steps.forEach((s, i) => {
    if (seen.has(s.name)) add(['promote', key, i, 'name'], `${formatValue(s.name)} is used twice (expected a unique step name: the journal records steps by name)`);
    seen.add(s.name);
  });
}

/** The validated `promote:` mapping → {@link PromoteConfig}, with the cross-key rules. */
export function normalizePromote(v: Record<string, any>, add: AddProblem): PromoteConfig {
  const probes = (key: string) => (v[key] as Record<string, any>[])
    .map((p, i) => probe(p, ['promote', key, i], add)).filter((p): p is ProbeConfig => p !== undefined);
  const f = v.fence as Record<string, any>;
  let fence: FenceConfig = { kind: 'none' };
  if (f.kind === 'wait') {
    if (f.wait === undefined) add(['promote', 'fence', 'wait'], 'is required but missing with kind wait (expected a duration like 60s)');
    else fence = { kind: 'wait', waitMs: ms(f.wait) };
  } else if (f.kind === 'command') {
    if (f.command === undefined) add(['promote', 'fence', 'command'], 'is required but missing with kind command (expected argv like ["/usr/local/sbin/withdraw-bgp"])');
    else fence = { kind: 'command', command: [...f.command], timeoutMs: ms(f.timeout) };
  } else if (f.kind === 'bmc') {
    if (f.host === undefined) add(['promote', 'fence', 'host'], "is required but missing with kind bmc (expected the old primary's BMC address)");
    else {
      fence = {
        kind: 'bmc', host: f.host, driver: f.driver, timeoutMs: ms(f.timeout),
        ...(f.user !== undefined ? { user: f.user } : {}),
        ...(f.password_file !== undefined ? { passwordFile: resolve(f.password_file) } : {}),
      };
    }
  }
  const out: PromoteConfig = {
    name: v.name,
    site: v.site,
    peer: v.peer,
    mode: v.mode,
    witnessSites: v.witness_sites,
    acceptSplitBrainRisk: v.accept_split_brain_risk,
    autoPromote: v.auto_promote,
    consul: {
      url: v.consul.url,
      ...(v.consul.token_file !== undefined ? { tokenFile: resolve(v.consul.token_file) } : {}),
      timeoutMs: ms(v.consul.timeout),
    },
    ttlMs: ms(v.ttl),
    lockDelayMs: ms(v.lock_delay),
    acquireAfterMs: ms(v.acquire_after),
    renewIntervalMs: ms(v.renew_interval),
    retries: v.retries,
    demoteTimeoutMs: ms(v.demote_timeout),
    checkIntervalMs: ms(v.check_interval),
    journalDir: resolve(v.journal_dir),
    peerProbes: probes('peer_probes'),
    ready: probes('ready'),
    ...(v.prereq ? { prereq: { key: v.prereq.key, equals: v.prereq.equals } } : {}),
    fence,
    promoteSteps: (v.promote_steps as Record<string, any>[]).map(step),
    demoteSteps: (v.demote_steps as Record<string, any>[]).map(step),
    failback: { mode: v.failback.mode, healthyChecks: v.failback.healthy_checks, healthyForMs: ms(v.failback.healthy_for) },
  };
  checkTimings(out, add);
  uniqueNames(out.promoteSteps as StepConfig[], 'promote_steps', add);
  uniqueNames(out.demoteSteps as StepConfig[], 'demote_steps', add);
  if (out.site === out.peer) add(['promote', 'peer'], `${formatValue(out.peer)} is this site's own name (expected the other site's name)`);
  if (out.mode === 'auto' && out.witnessSites < 3 && !out.acceptSplitBrainRisk) {
    add(['promote', 'mode'], `'auto' with witness_sites ${out.witnessSites} (expected mode manual with fewer than 3 witness sites: two sites cannot tell a partition from a dead peer; or accept_split_brain_risk: true)`);
  }
  return out;
}

/** The timing rules that make a promotion safe; exported for the bench and the importer. */
export function checkTimings(c: PromoteConfig, add: AddProblem): void {
  const giveUp = c.renewIntervalMs * (c.retries + 1) + c.demoteTimeoutMs;
  if (giveUp >= c.ttlMs) {
    add(['promote', 'renew_interval'],
      `renew_interval × (retries + 1) + demote_timeout = ${formatDurationMs(c.renewIntervalMs)} × ${c.retries + 1} + ${formatDurationMs(c.demoteTimeoutMs)} = ${formatDurationMs(giveUp)} is not below ttl ${formatDurationMs(c.ttlMs)} (expected less: the holder must have demoted before its lease can end)`);
  }
  if (c.lockDelayMs < LOCK_DELAY_FLOOR_MS || c.lockDelayMs > LOCK_DELAY_MAX_MS) {
    add(['promote', 'lock_delay'], `${formatValue(formatDurationMs(c.lockDelayMs))} is out of range (expected from 15s to 60s: a lost holder needs the delay to finish demoting; Consul caps it at 60s)`);
  }
  if (c.failback.mode === 'auto' && c.failback.healthyForMs < c.checkIntervalMs * (c.failback.healthyChecks - 1)) {
    add(['promote', 'failback', 'healthy_for'], `${formatValue(formatDurationMs(c.failback.healthyForMs))} is shorter than check_interval × (healthy_checks - 1) = ${formatDurationMs(c.checkIntervalMs * (c.failback.healthyChecks - 1))} (expected at least that, or healthy_checks could never be met in it)`);
  }
}
