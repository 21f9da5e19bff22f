/**
 * Layer: config, pure. The `fence:` section: its schema with the documented
 * defaults (src/roles/fence/sample.yml), its type, and its normalisation.
 *
 * Cross-key rules (each reported on the first key named):
 * - `fence.request_timeout` + `fence.neighbour_probe_timeout` must not
 *   exceed `fence.check_interval` (a cycle must end before the next);
 * - `fence.watchdog.timeout` must be whole seconds (the kernel's unit) and
 *   at least twice `fence.check_interval` (it is petted once per cycle);
 * - `fence.agents[].name` and `.url` must be unique.
 *
 * `fence` with `agents: []` (or none) runs no self-fencing loop; it only
 * supplies `actions` to the fence event handler (`fence_handler:`).
 */
import { resolve } from 'node:path';
import type { Command } from '../../actions/commands';
import { formatDurationMs } from '../../util/duration';
import { clone, command, duration, int, leaf, list, parseAgentUrl, path, section, type Schema } from '../../config/kinds';
import { formatValue, ms, orList, toCommand, type AddProblem, type KeyPath } from '../../config/normalize';

/** One local Consul agent supervised by the fence role. */
export interface AgentConfig {
  name: string;
  url: string;
  tokenFile?: string;
  command?: readonly string[];
  join?: readonly string[];
}

/** The self-fencing role (`fence:`); `actions` are shared with the handler. */
export interface FenceConfig {
  agents: readonly AgentConfig[];
  interfaces?: readonly string[];
  checkIntervalMs: number;
  confirmCycles: number;
  requestTimeoutMs: number;
  neighbourProbeTimeoutMs: number;
  actions: readonly Command[];
  actionTimeoutMs: number;
  dryRun: boolean;
  watchdog?: { device: string; timeoutMs: number };
}

/** Default fence actions: stop nova-compute, then power off (hostha's fence). */
export const DEFAULT_FENCE_ACTIONS: readonly (readonly string[])[] = [
  ['systemctl', 'stop', 'openstack-nova-compute'],
  ['systemctl', 'poweroff', '--force'],
];

/** The schema of `fence:`. */
export const FENCE_SCHEMA: Schema = section('a mapping with the self-fencing settings', {
  agents: list('a list of agents, each a mapping with name, url and optionally token_file, command and join', section(
    'a mapping with the keys name, url (required), token_file, command and join', {
      name: leaf({ kind: 'name' }),
      url: leaf({ kind: 'url' }),
      token_file: path(),
      command: leaf({ kind: 'argv' }),
      join: list('a list of IPv4 addresses', leaf({ kind: 'ipv4' }), { minItems: 1, uniqueItems: true }),
    }, { required: ['name', 'url'] },
  ), { default: [], maxItems: 16 }),
  interfaces: list('a non-empty list of interface names', leaf({ kind: 'ifname' }), { minItems: 1, uniqueItems: true, maxItems: 64 }),
  check_interval: duration('5s', 100),
  confirm_cycles: int(1, 1000, 2),
  request_timeout: duration('2s'),
  neighbour_probe_timeout: duration('500ms'),
  actions: list('a non-empty list of commands', command(), { minItems: 1, maxItems: 32, default: clone(DEFAULT_FENCE_ACTIONS) }),
  action_timeout: duration('60s', 100),
  dry_run: leaf({ kind: 'bool' }, false),
  watchdog: section('a mapping with the keys device and timeout', {
    device: path('/dev/watchdog'),
    timeout: duration('30s', 1000, 3_600_000),
  }),
});

/** The validated `fence:` mapping → {@link FenceConfig}, with the cross-key rules. */
export function normalizeFence(f: Record<string, any>, add: AddProblem): FenceConfig {
  const agents: AgentConfig[] = [];
  const names = new Set<string>();
  const urls = new Set<string>();
  (f.agents as Record<string, any>[]).forEach((a, i) => {
    const url = parseAgentUrl(a.url)!.origin;
    if (names.has(a.name)) add(['fence', 'agents', i, 'name'], `${formatValue(a.name)} is used by an earlier agent (expected a unique name)`);
    if (urls.has(url)) add(['fence', 'agents', i, 'url'], `${formatValue(a.url)} is used by an earlier agent (expected one agent per URL)`);
    names.add(a.name);
    urls.add(url);
    agents.push({
      name: a.name,
      url,
      ...(a.token_file !== undefined ? { tokenFile: resolve(a.token_file) } : {}),
      ...(a.command !== undefined ? { command: [...(a.command as string[])] } : {}),
      ...(a.join !== undefined ? { join: [...(a.join as string[])] } : {}),
    });
  });
  const out: FenceConfig = {
    agents,
    ...(f.interfaces !== undefined ? { interfaces: [...(f.interfaces as string[])] } : {}),
    checkIntervalMs: ms(f.check_interval),
    confirmCycles: f.confirm_cycles,
    requestTimeoutMs: ms(f.request_timeout),
    neighbourProbeTimeoutMs: ms(f.neighbour_probe_timeout),
    actions: (f.actions as unknown[]).map(toCommand),
    actionTimeoutMs: ms(f.action_timeout),
    dryRun: f.dry_run,
  };
  const cycle = out.requestTimeoutMs + out.neighbourProbeTimeoutMs;
  if (cycle > out.checkIntervalMs) {
    add(['fence', 'request_timeout'], `${formatValue(formatDurationMs(out.requestTimeoutMs))} plus fence.neighbour_probe_timeout (${formatDurationMs(out.neighbourProbeTimeoutMs)}) is longer than fence.check_interval (${formatDurationMs(out.checkIntervalMs)}) (expected the two together at most ${formatDurationMs(out.checkIntervalMs)}: a cycle must end before the next is due)`);
  }
  if (f.watchdog) {
    const timeoutMs = ms(f.watchdog.timeout);
    if (timeoutMs % 1000 !== 0) {
      add(['fence', 'watchdog', 'timeout'], `${formatValue(f.watchdog.timeout)} is not whole seconds (expected a whole number of seconds: the watchdog driver counts in seconds)`);
    } else if (timeoutMs < 2 * out.checkIntervalMs) {
      add(['fence', 'watchdog', 'timeout'], `${formatValue(f.watchdog.timeout)} is shorter than twice fence.check_interval (${formatDurationMs(out.checkIntervalMs)}) (expected at least ${formatDurationMs(2 * out.checkIntervalMs)}: it is petted once per cycle)`);
    }
    out.watchdog = { device: resolve(f.watchdog.device), timeoutMs };
  }
  return out;
}

/** Why a `fence:` without agents is no role when nothing else is configured. */
export function fenceIdle(f: Record<string, any>, others: readonly string[]): [KeyPath, string] {
  const alt = orList(others);
  return [['fence', 'agents'], `${formatValue(f.agents)} is empty and there is no ${alt} section, so no role is configured (expected agents to supervise, or a ${alt} section)`];
}
