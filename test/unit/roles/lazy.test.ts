// Unit: the registry is cheap to load. `vigil fence-handler` (Consul runs it
// for every event) reaches its verb through the registry and loads a config
// with every role's section, yet loads no role's runner or I/O and not the
// ARP layer: those sit behind the definitions' `load` thunks.
import t from 'tap';
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
