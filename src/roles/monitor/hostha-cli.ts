/**
 * Layer: CLI. `vigil config import hostha FILE [--controller IP]`: print
 * the `monitor:` section equivalent to a hostha.conf (hostha.ts). YAML on
 * stdout, the points to review on stderr. Exit 0 on success, 2 when the
 * file cannot be read or a value cannot be imported (one line).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { errorMessage } from '../../errors';
import { importHostha } from './hostha';

const USAGE = `usage: vigil config import hostha FILE [--controller IP]

Print the monitor: section equivalent to hostha.conf's [compute_ha] (the
Consul networks from consul_servers and consul_ports, the sampling, the
mass-failure guard, the fence timing) and its Nova evacuation from
[keystone_authtoken] (the password is never copied). The list-valued
options are read as data; nothing in the file is evaluated.

  --controller IP   use the consul_servers entry holding IP (hostha picked
                    the entry holding its own address); default: the first
  -h, --help        this help

Exit status: 0 on success, 2 when FILE cannot be read or a value is invalid.
`;

/** Run the importer with the arguments after `import hostha`. */
export async function run(rest: string[]): Promise<number> {
  let positionals: string[];
  let values: { controller?: string; help?: boolean };
  try {
    ({ positionals, values } = parseArgs({ args: rest, options: { controller: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true }));
  } catch (e) {
    process.stderr.write(`vigil: config import hostha: ${errorMessage(e)}\n${USAGE}`);
    return 2;
  }
  if (values.help) { process.stdout.write(USAGE); return 0; }
  if (positionals.length !== 1) { process.stderr.write(`vigil: config import hostha: expected exactly one FILE\n${USAGE}`); return 2; }
  const file = positionals[0]!;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    process.stderr.write(`vigil: config import hostha: ${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? errorMessage(e)})\n`);
    return 2;
  }
  try {
    const { yaml, warnings } = importHostha(text, { ...(values.controller !== undefined ? { controller: values.controller } : {}) });
    process.stdout.write(yaml);
    for (const w of warnings) process.stderr.write(`vigil: config import hostha: review: ${w}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`vigil: config import hostha: ${errorMessage(e)}\n`);
    return 2;
  }
}
