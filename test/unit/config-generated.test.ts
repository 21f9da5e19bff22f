// Unit: the built loader (dist/, as `npm run build` or `npm test` leave it)
// validates with the validators the build generated (validators.gen/, see
// src/config/validator.ts), never with ajv's compiler, and answers every
// golden case exactly as recorded (test/fixtures/golden/config.json), as
// the sources' loader (runtime-compiled validators) does in config-golden.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { goldenAnswer, type GoldenCase, type GoldenLoader } from '../fixtures/golden/answer';
import { generatedSource } from '../../src/config/validator';
import { builtinSchemas } from '../../scripts/gen-validators';

const DIST = join(__dirname, '../../dist/src');
const GEN = join(DIST, 'config/validators.gen');
const cases = JSON.parse(readFileSync(join(__dirname, '../fixtures/golden/config.json'), 'utf8')) as GoldenCase[];

t.test('the built loader answers every golden case as recorded, without compiling a validator', async (t) => {
  /* eslint-disable @typescript-eslint/no-var-requires */
  const load = require(join(DIST, 'config/load.js')) as GoldenLoader & { compiledValidators(): readonly string[] };
  const { ConfigError } = require(join(DIST, 'errors.js')) as Pick<GoldenLoader, 'ConfigError'>;
  /* eslint-enable @typescript-eslint/no-var-requires */
  let n = 0;
  for (const c of cases) {
    if (c.importer) continue;
    t.strictSame(goldenAnswer(c, { parseConfigText: load.parseConfigText, configRoles: load.configRoles, ConfigError }), c.answer, c.name);
    n++;
  }
  t.ok(n > 150, `${n} cases`);
  t.same(load.compiledValidators(), [], 'every validator came from the build');
});

t.test('the build generated a validator for every built-in schema, from the current sources', async (t) => {
  for (const [name, schema] of Object.entries(builtinSchemas())) {
    const file = join(GEN, `${name}.js`);
    t.ok(existsSync(file), `${file} exists (npm run build)`);
    if (existsSync(file)) t.equal(readFileSync(file, 'utf8'), generatedSource(schema), `${name}.js is what the sources generate (npm run build)`);
  }
});

t.test("a vip-only file: the built loader loads neither ajv's compiler nor another role", async (t) => {
  const script = `const { parseConfigText } = require(${JSON.stringify(join(DIST, 'config/load.js'))});
parseConfigText('node: n1\\nvip: { interface: eth0, address: 10.0.0.1/24 }\\n', '/etc/vigil/v.yml');
process.stdout.write(JSON.stringify(Object.keys(require.cache)));`;
  const mods = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as string[];
  t.same(mods.filter((m) => m.includes(join('node_modules', 'ajv', 'dist', 'compile'))), [], "no module of ajv's compiler");
  t.same(mods.filter((m) => /roles[/\\](?!vip[/\\]|index|role)/.test(m)), [], 'no other role');
  t.ok(mods.some((m) => m.endsWith(join('validators.gen', 'vip.js'))), 'the generated vip validator');
});
