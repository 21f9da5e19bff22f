/**
 * Layer: config, pure. The `monitor.recovery:` sub-section: its JSON
 * schema (central leaf kinds) and its normalizer. Absent: no recovery
 * (part 1's behaviour: fence and stop). Cross-key rules: the method's
 * stages need their settings (reserved → takeover.command, auto →
 * evacuate, command → command).
 */
import type { LeafSpec } from '../../../config/kinds';
import { formatValue } from '../../../config/normalize';
import { parseDurationMs } from '../../../util/duration';
import { stagesOf, type RecoveryMethod } from './record';

type Schema = Record<string, unknown>;

export const RECOVERY_METHODS = ['reserved', 'auto', 'reserved_then_auto', 'auto_then_reserved', 'command'] as const;

export const RECOVERY_DEFAULTS = {
  method: 'auto',
  takeover: { timeout: '10m' },
  command: { timeout: '10m' },
  evacuate: { user_domain: 'Default', project_domain: 'Default', interface: 'public', concurrency: 3, evacuate_retries: 2, server_timeout: '5m', poll: '2s', request_timeout: '10s', call_retries: 3 },
} as const;

const leaf = (spec: LeafSpec, dflt?: unknown): Schema => (dflt === undefined ? { vigil: spec } : { vigil: spec, default: dflt });
const dur = (dflt: string | undefined, minMs: number, maxMs: number): Schema => leaf({ kind: 'duration', minMs, maxMs }, dflt);
const obj = (description: string, properties: Record<string, Schema>, opts: { required?: string[]; default?: unknown } = {}): Schema => ({
  type: 'object', description, additionalProperties: false, properties,
  ...(opts.required ? { required: opts.required } : {}), ...(opts.default !== undefined ? { default: opts.default } : {}),
});

/** The schema of `monitor.recovery`. */
export const RECOVERY_SCHEMA: Schema = obj('a mapping with the keys method, spares, takeover, command and evacuate', {
  method: leaf({ kind: 'enum', values: RECOVERY_METHODS }, RECOVERY_DEFAULTS.method),
  // Spare HA nodes in priority order (os_nova's ha_nodes); default: every ha_node in KV, by name.
  spares: { type: 'array', description: 'a list of spare node names', items: leaf({ kind: 'node' }), maxItems: 256 },
  takeover: obj('a mapping with the keys command and timeout', {
    command: leaf({ kind: 'argv' }),
    timeout: dur(RECOVERY_DEFAULTS.takeover.timeout, 1000, 3_600_000),
  }, { default: {} }),
  command: obj('a mapping with the keys argv and timeout', {
    argv: leaf({ kind: 'argv' }),
    timeout: dur(RECOVERY_DEFAULTS.command.timeout, 1000, 3_600_000),
  }, { default: {} }),
  evacuate: obj('a mapping with the Keystone and evacuation settings', {
    auth_url: leaf({ kind: 'httpUrl' }),
    user: leaf({ kind: 'name' }),
    user_domain: leaf({ kind: 'name' }, RECOVERY_DEFAULTS.evacuate.user_domain),
    project: leaf({ kind: 'name' }),
    project_domain: leaf({ kind: 'name' }, RECOVERY_DEFAULTS.evacuate.project_domain),
    // Root-only file; the password is never inline.
    password_file: leaf({ kind: 'path' }),
    interface: leaf({ kind: 'enum', values: ['public', 'internal', 'admin'] }, RECOVERY_DEFAULTS.evacuate.interface),
    region: leaf({ kind: 'name' }),
    concurrency: leaf({ kind: 'int', min: 1, max: 100 }, RECOVERY_DEFAULTS.evacuate.concurrency),
    evacuate_retries: leaf({ kind: 'int', min: 0, max: 10 }, RECOVERY_DEFAULTS.evacuate.evacuate_retries),
    server_timeout: dur(RECOVERY_DEFAULTS.evacuate.server_timeout, 1000, 3_600_000),
    poll: dur(RECOVERY_DEFAULTS.evacuate.poll, 50, 60_000),
    request_timeout: dur(RECOVERY_DEFAULTS.evacuate.request_timeout, 100, 120_000),
    call_retries: leaf({ kind: 'int', min: 0, max: 10 }, RECOVERY_DEFAULTS.evacuate.call_retries),
  }, { required: ['auth_url', 'user', 'project', 'password_file'] }),
});

/** The normalized `monitor.recovery`. */
export interface RecoveryConfig {
  method: RecoveryMethod;
  spares?: readonly string[];
  takeover?: { argv: readonly string[]; timeoutMs: number };
  command?: { argv: readonly string[]; timeoutMs: number };
  evacuate?: {
    authUrl: string; user: string; userDomain: string; project: string; projectDomain: string; passwordFile: string;
    interface: string; region?: string; concurrency: number; retries: number; serverTimeoutMs: number; pollMs: number; requestTimeoutMs: number; callRetries: number;
  };
}

type Add = (code: 'ECONFLICT', path: (string | number)[], text: string) => void;

/** Schema-validated raw data (defaults applied) → RecoveryConfig; cross-key problems through `add`. */
export function normalizeRecovery(r: Record<string, any> | undefined, add: Add): RecoveryConfig | undefined {
  if (!r) return undefined;
  const ms = (v: unknown) => parseDurationMs(v)!;
  const method = r.method as RecoveryMethod;
  const stages = stagesOf(method);
  const out: RecoveryConfig = { method, ...(r.spares ? { spares: [...(r.spares as string[])] } : {}) };
  if (r.takeover?.command) out.takeover = { argv: [...(r.takeover.command as string[])], timeoutMs: ms(r.takeover.timeout) };
  if (r.command?.argv) out.command = { argv: [...(r.command.argv as string[])], timeoutMs: ms(r.command.timeout) };
  const e = r.evacuate as Record<string, any> | undefined;
  if (e) {
    out.evacuate = {
      authUrl: e.auth_url, user: e.user, userDomain: e.user_domain, project: e.project, projectDomain: e.project_domain, passwordFile: e.password_file,
      interface: e.interface, ...(e.region ? { region: e.region } : {}), concurrency: e.concurrency, retries: e.evacuate_retries,
      serverTimeoutMs: ms(e.server_timeout), pollMs: ms(e.poll), requestTimeoutMs: ms(e.request_timeout), callRetries: e.call_retries,
    };
    if (out.evacuate.pollMs >= out.evacuate.serverTimeoutMs) add('ECONFLICT', ['recovery', 'evacuate', 'poll'], `${formatValue(e.poll)} is not shorter than server_timeout (expected a poll interval below the per-server timeout)`);
  }
  if (stages.includes('takeover') && !out.takeover) add('ECONFLICT', ['recovery', 'takeover', 'command'], `is required but missing with method ${method} (expected the argv of the spare's takeover command)`);
  if (stages.includes('evacuate') && !out.evacuate) add('ECONFLICT', ['recovery', 'evacuate'], `is required but missing with method ${method} (expected auth_url, user, project and password_file of a Nova admin)`);
  if (stages.includes('command') && !out.command) add('ECONFLICT', ['recovery', 'command', 'argv'], `is required but missing with method ${method} (expected the argv of the recovery command)`);
  return out;
}
