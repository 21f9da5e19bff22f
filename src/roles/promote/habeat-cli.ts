/**
 * Layer: CLI. `vigil config import habeat FILE`: print the `promote:`
 * section equivalent of a habeat.yml (habeat.ts). YAML on stdout, the
 * points to review on stderr. Exit 0 on success, 2 when the file cannot be
 * read or a value cannot be imported.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { errorMessage } from '../../errors';
import { importHabeat } from './habeat';

const USAGE = `usage: vigil config import habeat FILE

Print the promote: section equivalent of a habeat.yml (whoami, dc_check, the
IPs, the Carbonio commands, the flags and the proxy lists; the 'deativate'
spelling is accepted). The file is read as data; nothing in it runs.

Exit status: 0 on success, 2 when FILE cannot be read or a value is invalid.
`;

/** Run the importer with the arguments after `import habeat`. */
export async function run(rest: string[]): Promise<number> {
  let positionals: string[];
  let help: boolean | undefined;
  try {
    const r = parseArgs({ args: rest, options: { help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    positionals = r.positionals;
    help = r.values.help;
  } catch (e) {
    process.stderr.write(`vigil: config import habeat: ${errorMessage(e)}\n${USAGE}`);
    return 2;
  }
  if (help) { process.stdout.write(USAGE); return 0; }
  if (positionals.length !== 1) { process.stderr.write(`vigil: config import habeat: expected exactly one FILE\n${USAGE}`); return 2; }
  try {
    const { yaml, warnings } = importHabeat(readFileSync(positionals[0]!, 'utf8'));
    process.stdout.write(yaml);
    for (const w of warnings) process.stderr.write(`vigil: config import habeat: review: ${w}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`vigil: config import habeat: ${errorMessage(e)}\n`);
    return 2;
  }
}
