// Unit: the daemon's loads (`releaseParser`) leave the YAML library out of
// memory between reloads (src/config/load.ts) and a reload reads the file
// again; a process where another module also required `yaml` keeps it.
// Run in a fresh process on the built loader (dist/), whose module graph
// is only what the script loads (tap's own may hold `yaml`).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const LOAD = join(__dirname, '../../dist/src/config/load.js');

function run(t: { testdir(f: object): string }, body: string): Record<string, unknown> {
  const dir = t.testdir({ 'v.yml': 'node: n1\nvip: { interface: eth0, address: 10.0.0.1/24 }\n', 'other.js': "module.exports = require('yaml');\n" });
  const script = `const { loadConfig } = require(${JSON.stringify(LOAD)});
const file = ${JSON.stringify(join(dir, 'v.yml'))};
const other = ${JSON.stringify(join(dir, 'other.js'))};
const yamlModules = () => Object.keys(require.cache).filter((m) => m.includes('/node_modules/yaml/')).length;
const out = {};
${body}
process.stdout.write(JSON.stringify(out));`;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as Record<string, unknown>;
}

t.test('released after each load; a reload loads it again and reads the file', async (t) => {
  const out = run(t, `
out.first = loadConfig(file, { checkPermissions: false, releaseParser: true }).vip.interface;
out.afterFirst = yamlModules();
out.again = loadConfig(file, { checkPermissions: false, releaseParser: true }).vip.interface;
out.afterAgain = yamlModules();
out.kept = (loadConfig(file, { checkPermissions: false }), yamlModules());`);
  t.equal(out.first, 'eth0');
  t.equal(out.afterFirst, 0, 'no yaml module cached after the load');
  t.equal(out.again, 'eth0', 'the next load (a reload) parses the file');
  t.equal(out.afterAgain, 0);
  t.ok((out.kept as number) > 10, 'a load without releaseParser keeps the library');
});

t.test('kept when another module required it too', async (t) => {
  const out = run(t, `
require(other);
loadConfig(file, { checkPermissions: false, releaseParser: true });
out.after = yamlModules();`);
  t.ok((out.after as number) > 10, 'still cached: releasing would only load a second copy');
});
