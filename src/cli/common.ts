/**
 * Layer: CLI. Small helpers every verb shares: flag parsing with one-line
 * errors, the default config path, and the exit-code convention
 * (0 ok, 1 the thing asked about is not so / the action failed, 2 bad input).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** The config file used when `-c` is not given. */
export const DEFAULT_CONFIG = '/etc/vigil/vigil.yml';

/** Exit codes. */
export const EXIT = { OK: 0, FAIL: 1, USAGE: 2, NOT_RUNNING: 3 } as const;

/** Print `vigil <verb>: message` on stderr and return the usage exit code. */
export function usageError(verb: string, message: string): number {
  process.stderr.write(`vigil ${verb}: ${message}\n`);
  return EXIT.USAGE;
}

/** parseArgs that turns its exceptions into a one-line error (undefined result). */
export function parseFlags(verb: string, args: string[], options: ParseArgsConfig['options'], allowPositionals = false):
  { values: Record<string, string | boolean | undefined>; positionals: string[] } | undefined {
  try {
    const r = parseArgs({ args, options, allowPositionals, strict: true });
    return { values: r.values as Record<string, string | boolean | undefined>, positionals: r.positionals };
  } catch (e) {
    usageError(verb, (e as Error).message.replace(/\s+/g, ' '));
    return undefined;
  }
}

/** The `-c/--config` and `-h/--help` options most verbs take. */
export const CONFIG_OPTS = {
  config: { type: 'string', short: 'c', default: DEFAULT_CONFIG },
  help: { type: 'boolean', short: 'h' },
} as const;
