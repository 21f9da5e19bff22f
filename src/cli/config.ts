/**
 * Layer: CLI. `vigil config import <format> FILE …` (and the older
 * `vigil config import-<format> FILE …`): the legacy config importers.
 * Each importer lives in its role's folder and is found through the
 * registry; it is loaded only when used.
 */
import { roles } from '../roles';
import type { ImporterDefinition } from '../roles/role';

function importers(): ImporterDefinition[] {
  return roles().flatMap((r) => [...(r.importers ?? [])]);
}

function usage(): string {
  const list = importers();
  const width = Math.max(0, ...list.map((i) => i.name.length));
  return [
    'usage: vigil config import <format> FILE [options]   (also: vigil config import-<format> …)',
    '',
    'Print the vigil YAML equivalent of a legacy tool\'s config file. Formats:',
    '',
    ...list.map((i) => `  ${i.name.padEnd(width)}  ${i.summary}`),
    '',
    'vigil config import <format> --help for the options of each.',
    '',
  ].join('\n');
}

/** Run `config`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    if (sub === undefined) { process.stderr.write(usage()); return 2; }
    process.stdout.write(usage());
    // Each importer's own usage, so one --help shows every option.
    for (const i of importers()) { process.stdout.write('\n'); await (await i.load())(['--help']); }
    return 0;
  }
  let name: string | undefined;
  let tail = rest;
  if (sub === 'import') [name, ...tail] = rest;
  else if (sub.startsWith('import-')) name = sub.slice('import-'.length);
  const imp = importers().find((i) => i.name === name);
  if (!imp) {
    const expected = importers().map((i) => `import-${i.name}`).join(', ');
    const what = sub === 'import' ? `format ${JSON.stringify(name ?? '')}` : `subcommand ${JSON.stringify(sub)}`;
    process.stderr.write(`vigil: config: unknown ${what} (expected ${expected})\n${usage()}`);
    return 2;
  }
  return (await imp.load())(tail);
}
