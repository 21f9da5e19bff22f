/**
 * Build step (`npm run build`, `prepare`, after tsc): write the validators
 * of vigil.yml's built-in schemas (the common keys, each role's section) as
 * ajv standalone code to `validators.gen/<name>.js` next to the compiled
 * `config/validator.js`, which loads it instead of compiling them with ajv
 * at run time (see src/config/validator.ts: a validator is used only for
 * the very schema it was generated from).
 *
 *   node dist/scripts/gen-validators.js
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { buildConfigSchema } from '../src/config/schema';
import { GENERATED_DIR, generatedSource } from '../src/config/validator';
import { builtinRoles } from '../src/roles';
import type { Schema } from '../src/config/kinds';

/** The built-in schemas, by the name the loader asks for (`file`, then each section key). */
export function builtinSchemas(): Record<string, Schema> {
  const defs = builtinRoles();
  return { file: buildConfigSchema(defs, new Set()), ...Object.fromEntries(defs.map((d) => [d.section.key, d.section.schema])) };
}

function main(): void {
  const target = require.resolve('../src/config/validator');
  if (!target.endsWith('.js')) throw new Error(`gen-validators: run the compiled script (node dist/scripts/gen-validators.js), not ${__filename}`);
  const out = join(dirname(target), GENERATED_DIR);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out);
  const schemas = builtinSchemas();
  for (const [name, schema] of Object.entries(schemas)) writeFileSync(join(out, `${name}.js`), generatedSource(schema));
  process.stdout.write(`gen-validators: wrote ${out}/{${Object.keys(schemas).join(',')}}.js\n`);
}

if (require.main === module) main();
