/**
 * Layer: CLI. `vigil check-config -c FILE`: validate a config without
 * running anything (keepalived's `--config-test`).
 *
 * Loads the file exactly as the daemon does, permission checks included
 * (the config, the key, token and IP files it names, the PID file's
 * directory and state_dir when they exist). Prints
 * `config OK: <file> (roles: …)` and exits 0, or prints one line
 * `vigil: <message>` on stderr and exits 2 (`--all` prints every error).
 */
import { parseArgs } from 'node:util';
import { ConfigError, errorMessage } from '../errors';
import { configRoles, loadConfig } from '../config/load';
import { checkReferencedFiles } from '../config/permissions';
import { DEFAULT_CONFIG_FILE } from '../config/schema';

const USAGE = `usage: vigil check-config [-c FILE] [--all]

Validate a vigil config file without running anything: YAML syntax, every key
and value, cross-key rules, and the owner and mode of the file and of the key,
token and IP files it names.

  -c, --config FILE   the config file (default ${DEFAULT_CONFIG_FILE})
      --all           print every error, not only the first
  -h, --help          show this help

Exit status: 0 when the config is valid, 2 when it is not.
`;

/** Run `check-config`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  let values: { config?: string; all?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        config: { type: 'string', short: 'c' },
        all: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`vigil: check-config: ${errorMessage(e)}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const file = values.config ?? DEFAULT_CONFIG_FILE;
  try {
    const cfg = loadConfig(file);
    checkReferencedFiles(cfg, { dirs: true });
    process.stdout.write(`config OK: ${cfg.file} (roles: ${configRoles(cfg).join(', ')})\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof ConfigError)) {
      process.stderr.write(`vigil: check-config: internal error: ${errorMessage(e)}\n`);
      return 1;
    }
    const all = (e.detail?.errors as string[] | undefined) ?? [e.message];
    const lines = values.all ? all : [e.message];
    for (const l of lines) process.stderr.write(`vigil: ${l}\n`);
    return 2;
  }
}
