// Unit: the registry is cheap to load. `vigil fence-handler` (Consul runs it
// for every event) reaches its verb through the registry and loads a config
// with every role's section, yet loads no role's runner or I/O and not the
// ARP layer: those sit behind the definitions' `load` thunks.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { dispatch } from '../../../src/cli/main';
import { parseConfigText } from '../../../src/config/load';
import { capture } from '../../support/capture';

t.test('the handler path loads no runner, no I/O of another role, no ARP', async (t) => {
  const help = await capture(() => dispatch(['fence-handler', '--help']));
  t.equal(help.code, 0);
  t.match(help.stdout, /^usage: vigil fence-handler/);
  parseConfigText('node: cmp-01\nfence_handler:\nvip: { interface: eth0, address: 10.0.0.1 }\nfence: { agents: [ { name: a, url: "http://127.0.0.1:8500" } ] }\n', '/etc/vigil/x.yml');
  const src = join(__dirname, '../../../src');
  const loaded = Object.keys(require.cache).filter((p) => p.startsWith(src)).map((p) => p.slice(src.length + 1));
  t.ok(loaded.includes('roles/fence-event/handler.ts'), 'the handler itself was loaded');
  const heavy = /^net\/|^native|^actions\/(addresses|vzctl|container|supervisor)|^roles\/(vip|fence)\/(daemon|runner|io|net|machine|ipfile|vzhaipd)/;
  t.same(loaded.filter((p) => heavy.test(p)), [], 'no runner, role I/O, ARP or native code', { loaded });
});

t.test('a vip-only config: the loader, the permission checks and the daemon load no other role', async (t) => {
  // A fresh process on the built tree (dist/, as the daemon runs): this
  // process has loaded every role already.
  const dist = join(__dirname, '../../../dist/src');
  const script = `const { parseConfigText, configRoles } = require(${JSON.stringify(join(dist, 'config/load.js'))});
const { checkReferencedFiles } = require(${JSON.stringify(join(dist, 'config/permissions.js'))});
const { runnableRoles } = require(${JSON.stringify(join(dist, 'daemon/roles.js'))});
const cfg = parseConfigText('node: n1\\nvip: { interface: eth0, address: 10.0.0.1/24 }\\n', '/etc/vigil/v.yml');
checkReferencedFiles(cfg);
const run = runnableRoles(cfg).map((d) => d.name);
process.stdout.write(JSON.stringify({ roles: configRoles(cfg), run, loaded: Object.keys(require.cache) }));`;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as { roles: string[]; run: string[]; loaded: string[] };
  t.same(out.roles, ['vip']);
  t.same(out.run, ['vip'], 'the daemon runs the vip role');
  const folders = [...new Set(out.loaded.filter((p) => p.startsWith(join(dist, 'roles') + '/')).map((p) => p.slice(dist.length + 1).split('/')[1]!))];
  t.same(folders.filter((f) => !f.endsWith('.js')), ['vip'], 'of the role folders, only vip/ was loaded', { loaded: out.loaded });
});
