/**
 * Layer: CLI parsing (pure). The operator verbs of the monitor role,
 * parsed into a request or a usage error; carrying them out (reading the
 * status from the daemon, writing KV with resetTxn /
 * maintenanceTxn of kvschema.ts) is the runner's. Exit codes follow src/cli:
 * 0 ok, 2 bad input.
 *
 *   vigil monitor status [--json] [-c FILE]
 *   vigil monitor reset HOST [-c FILE]
 *   vigil monitor maintenance on|off HOST [-c FILE]
 */
import { parseArgs } from 'node:util';
import { checkLeaf } from '../../config/kinds';

/** Default config path (src/cli/common.ts DEFAULT_CONFIG). */
const DEFAULT_CONFIG = '/etc/vigil/vigil.yml';

/** Help texts, one per verb and one for the group. */
export const MONITOR_HELP = {
  monitor: `usage: vigil monitor <verb> [options]

verbs:
  status [--json]            hosts, counters, incidents, guards, BMC reachability
  reset HOST                 clear HOST's latches (status/failed, status/recovered) and counters
  maintenance on|off HOST    keep vigil off HOST (never counted, never fenced), or release it
  release-spare HA           free a spare HA node (in_use := False) after its takeover was undone by hand
  publish-runtime            write this compute host's runtime_config JSON to KV (newer copies win)

options:
  -c, --config FILE          config file (default ${DEFAULT_CONFIG})
  -h, --help                 show help
`,
  status: `usage: vigil monitor status [--json] [-c FILE]

Show every monitored host: phase, per-network samples and counts, the matrix
row decided, guard results, open incidents and BMC reachability.
  --json                     the status document (stable keys) instead of text
`,
  reset: `usage: vigil monitor reset HOST [-c FILE]

Clear HOST's latches (status/failed, status/recovered := False) and its
counters, and release an incident this monitor holds. Refused while a fence
step is in flight. Use after a fence-unconfirmed or aborted incident has been
dealt with by hand.
`,
  maintenance: `usage: vigil monitor maintenance on|off HOST [-c FILE]

on: HOST is never counted nor acted on (status/maintenance := True in KV, so
every monitor sees it). off: monitoring resumes, counting from zero.
`,
} as const;

/** A parsed request, or what to print. */
export type MonitorRequest =
  | { verb: 'help'; text: string }
  | { verb: 'error'; message: string; exit: 2 }
  | { verb: 'status'; json: boolean; config: string }
  | { verb: 'reset'; host: string; config: string }
  | { verb: 'maintenance'; on: boolean; host: string; config: string };

const err = (message: string): MonitorRequest => ({ verb: 'error', message, exit: 2 });

function hostProblem(h: string | undefined): string | undefined {
  if (h === undefined) return 'HOST is missing';
  const p = checkLeaf({ kind: 'node' }, h);
  return p ? `${JSON.stringify(h)} ${p.problem} (expected ${p.expected})` : undefined;
}

/** Parse `vigil monitor …` arguments (after `monitor`). Pure. */
export function parseMonitorArgs(args: readonly string[]): MonitorRequest {
  const [verb, ...rest] = args;
  if (verb === undefined || verb === '-h' || verb === '--help' || verb === 'help') return { verb: 'help', text: MONITOR_HELP.monitor };
  if (verb !== 'status' && verb !== 'reset' && verb !== 'maintenance') return err(`unknown verb ${JSON.stringify(verb)} (expected status, reset or maintenance)`);
  let values: { config?: string; help?: boolean; json?: boolean };
  let positionals: string[];
  try {
    const r = parseArgs({
      args: rest as string[],
      options: { config: { type: 'string', short: 'c', default: DEFAULT_CONFIG }, help: { type: 'boolean', short: 'h' }, ...(verb === 'status' ? { json: { type: 'boolean' } } : {}) },
      allowPositionals: verb !== 'status',
      strict: true,
    });
    values = r.values as typeof values;
    positionals = r.positionals;
  } catch (e) {
    return err(`${verb}: ${(e as Error).message.replace(/\s+/g, ' ')}`);
  }
  if (values.help) return { verb: 'help', text: MONITOR_HELP[verb] };
  const config = values.config!;
  if (verb === 'status') return { verb: 'status', json: values.json === true, config };
  if (verb === 'reset') {
    if (positionals.length > 1) return err(`reset: one HOST expected, got ${positionals.length}`);
    const p = hostProblem(positionals[0]);
    return p ? err(`reset: ${p}`) : { verb: 'reset', host: positionals[0]!, config };
  }
  const [mode, host, ...extra] = positionals;
  if (mode !== 'on' && mode !== 'off') return err(`maintenance: ${mode === undefined ? 'on or off is missing' : `${JSON.stringify(mode)} is not on or off`}`);
  if (extra.length > 0) return err(`maintenance: one HOST expected, got ${1 + extra.length}`);
  const p = hostProblem(host);
  return p ? err(`maintenance: ${p}`) : { verb: 'maintenance', on: mode === 'on', host: host!, config };
}
