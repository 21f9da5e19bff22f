/**
 * Layer: CLI. `vigil config import vzhaipd FILE [--ctid CTID]` (and the
 * older `vigil config import-vzhaipd`): print the vigil YAML equivalent of a
 * legacy vzhaipd.conf. `src/cli/config.ts` dispatches here through the
 * registry.
 *
 * The file is read as data (see `vzhaipd.ts`): lines that are
 * not `KEY=VALUE` are reported on stderr with their line number and never
 * run. The YAML goes to stdout, warnings to stderr. Exit 0 on success, 2
 * when the file cannot be read or a value cannot be imported.
 */
import { readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, errorMessage } from '../../errors';
import { importVzhaipd } from './vzhaipd';

const USAGE = `usage: vigil config import-vzhaipd FILE [--ctid CTID]

Print the vigil YAML equivalent of a vzhaipd.conf. The file is parsed as
KEY=VALUE data and never run; other lines are reported and skipped. Keys the
file does not set get vzhaipd's defaults.

      --ctid CTID   the container (vzhaipd's $VEID): imports backend: vzctl
                    and the defaults that name the container
  -h, --help        show this help

Exit status: 0 on success, 2 when FILE cannot be read or a value is invalid.
`;

/** Largest file read: a vzhaipd.conf is a few lines. */
const MAX_BYTES = 1024 * 1024;

/** Usage of the importer; `vigil config --help` prints it too. */
export { USAGE };

/** Run the importer with the arguments after `import-vzhaipd`; returns the exit code. */
export async function run(rest: string[]): Promise<number> {
  let values: { ctid?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: rest,
      options: { ctid: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`vigil: config import-vzhaipd: ${errorMessage(e)}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    process.stderr.write(`vigil: config import-vzhaipd: expected exactly one FILE\n${USAGE}`);
    return 2;
  }
  const file = positionals[0]!;
  let text: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'not a regular file' });
    if (st.size > MAX_BYTES) throw Object.assign(new Error('too large'), { code: `larger than ${MAX_BYTES} bytes` });
    text = readFileSync(file, 'utf8');
  } catch (e) {
    process.stderr.write(`vigil: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}\n`);
    return 2;
  }
  try {
    const r = importVzhaipd(text, { source: file, ...(values.ctid !== undefined ? { ctid: values.ctid } : {}) });
    for (const w of r.warnings) process.stderr.write(`vigil: warning: ${w}\n`);
    process.stdout.write(r.yaml);
    return 0;
  } catch (e) {
    if (!(e instanceof ConfigError)) {
      process.stderr.write(`vigil: config import-vzhaipd: internal error: ${errorMessage(e)}\n`);
      return 1;
    }
    for (const w of (e.detail?.warnings as string[] | undefined) ?? []) process.stderr.write(`vigil: warning: ${w}\n`);
    const all = (e.detail?.errors as string[] | undefined) ?? [e.message];
    for (const l of all) process.stderr.write(`vigil: ${l}\n`);
    return 2;
  }
}
