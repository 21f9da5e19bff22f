/** Layer: CLI. `vigil run -c FILE`: the daemon in the foreground. */
import * as path from 'node:path';
import { runDaemon } from '../daemon/daemon';
import { CONFIG_OPTS, parseFlags, EXIT } from './common';

export const HELP = `usage: vigil run [-c FILE]

Run the daemon in the foreground (what systemd starts). Logs go to stdout
unless log.file is set. Stops gracefully on TERM/INT, reloads on HUP, logs
its state on USR1.

  -c, --config FILE   config file (default /etc/vigil/vigil.yml)
`;

/** Entry point of the verb. */
export async function run(args: string[]): Promise<number> {
  const f = parseFlags('run', args, CONFIG_OPTS);
  if (!f) return EXIT.USAGE;
  if (f.values.help) { process.stdout.write(HELP); return EXIT.OK; }
  return runDaemon(path.resolve(String(f.values.config)));
}
