/**
 * Layer: bench support. The environment the shipped systemd unit gives the
 * daemon (`Environment=NODE_OPTIONS=…`, `Environment=VIGIL_V8_FLAGS=…` in
 * etc/systemd/vigil.service), so that a bench measures vigil as it runs in
 * production, read from the unit itself (one source of truth).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from '../../test/support/vigil';

/** The value of `Environment=NAME=…` in the unit, or '' when it sets none. */
export function unitEnv(name: string, unit = path.join(ROOT, 'etc', 'systemd', 'vigil.service')): string {
  const m = new RegExp(`^Environment=("?)${name}=(.*)\\1$`, 'm').exec(fs.readFileSync(unit, 'utf8'));
  return m ? m[2]!.trim() : '';
}

/**
 * Give this process's children (the daemons a bench starts inherit its
 * environment) the unit's NODE_OPTIONS and VIGIL_V8_FLAGS. Returns what was
 * set, for the results file. keepalived ignores both.
 */
export function useUnitEnvironment(): { NODE_OPTIONS: string; VIGIL_V8_FLAGS: string } {
  const env = { NODE_OPTIONS: unitEnv('NODE_OPTIONS'), VIGIL_V8_FLAGS: unitEnv('VIGIL_V8_FLAGS') };
  for (const [k, v] of Object.entries(env)) {
    if (v) process.env[k] = v;
    else delete process.env[k];
  }
  inUse = env;
  return env;
}

let inUse: { NODE_OPTIONS: string; VIGIL_V8_FLAGS: string } | undefined;

/** For a results file: what the daemons were started with. */
export function vigilEnvironment(): { NODE_OPTIONS: string; VIGIL_V8_FLAGS: string } | string {
  return inUse ?? 'the bench process\'s own (not the unit\'s)';
}
