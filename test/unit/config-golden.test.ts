// Unit: the config loader answers exactly as recorded in
// test/fixtures/golden/config.json (normalized config and roles, or the
// error lines byte for byte) for the example configs, every input of the
// config tests, and the vzhaipd importer. Written before the role registry
// moved each role's section into its folder, so the move changes nothing.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { goldenAnswer, type GoldenCase } from '../fixtures/golden/answer';

const cases = JSON.parse(readFileSync(join(__dirname, '../fixtures/golden/config.json'), 'utf8')) as GoldenCase[];

t.ok(cases.length > 150, `${cases.length} recorded cases`);
for (const c of cases) {
  t.strictSame(goldenAnswer(c), c.answer, c.name);
}
