// Unit: the role registry and its contract. Every registered role has the
// pieces src/roles/README.md names; a role lacking them is caught; and a
// throw-away role from the test tree (test/fixtures/roles/dummy/), added
// with one registerRole line, gets config loading, status, health and a
// verb without any other file knowing it.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../../src/errors';
import { configRoles, parseConfigText } from '../../../src/config/load';
import { buildConfigSchema, builtinConfigSchema } from '../../../src/config/schema';
import { createRoles } from '../../../src/daemon/roles';
import { formatStatus } from '../../../src/cli/lifecycle';
import { dispatch, usage } from '../../../src/cli/main';
import { registerRole, roles } from '../../../src/roles';
import { defineRole } from '../../../src/roles/role';
import { leaf, section } from '../../../src/config/kinds';
import type { Notifier } from '../../../src/daemon/notify';
import { moduleLog } from '../../../src/log';
import { capture } from '../../support/capture';
import { contractProblems } from './contract';
import dummy from '../../fixtures/roles/dummy';

const FILE = '/etc/vigil/test.yml';
const notifier: Notifier = { ready() {}, reloading() {}, stopping() {}, status() {}, watchdog() {}, watchdogIntervalMs: undefined } as unknown as Notifier;

function errorsOf(text: string): string[] {
  try { parseConfigText(text, FILE); } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.detail?.errors as string[];
  }
  return [];
}

t.test('every registered role meets the contract', async (t) => {
  t.same(roles().map((r) => r.name), ['vip', 'fence', 'fence-event', 'monitor', 'group', 'promote', 'runtime'], 'the built-in roles, in order');
  for (const def of roles()) t.same(await contractProblems(def), [], `${def.name}: nothing missing`);
  // The example config is the roles' samples put together (telegraf's sample.conf).
  const example = readFileSync(join(__dirname, '../../../etc/vigil.example.yml'), 'utf8');
  for (const def of roles()) t.ok(example.includes(readFileSync(join(def.dir, 'sample.yml'), 'utf8')), `etc/vigil.example.yml holds ${def.name}/sample.yml verbatim`);
});

t.test('a role without the pieces the contract names is caught', async (t) => {
  const bare = defineRole({
    name: 'bare',
    summary: 'a role that skipped the checklist',
    dir: __dirname,
    section: {
      key: 'bare', configKey: 'bare', nullable: [[]],
      schema: { type: 'object', additionalProperties: false, properties: { level: leaf({ kind: 'int', min: 1, max: 9 }, 5), raw: {} } },
      normalize: (v) => v,
    },
    daemon: { logRole: '', healthRule: '', load: async () => { throw new Error('no runner'); }, formatStatus: undefined as never },
    verbs: [{ name: 'poke', summary: '', load: async () => async () => 0 }],
  });
  const off = registerRole(bare);
  t.teardown(off);
  const problems = await contractProblems(bare);
  for (const want of [
    /dir .* is not a folder named after the role/,
    /bare: a mapping or list without a description/,
    /bare\.raw: a leaf without a kind/,
    /no sample\.yml/,
    /no README\.md/,
    /daemon: no status formatter/,
    /daemon: no health rule/,
    /verb poke: no summary/,
    /vigil bare poke --help: exit 0, no 'usage: vigil' line/,
  ]) t.ok(problems.some((p) => want.test(p)), `reported: ${want}`, { problems });
});

t.test('a throw-away role: one registry line, and it has config, status, health and a verb', async (t) => {
  const off = registerRole(dummy);
  t.teardown(off);
  t.same(await contractProblems(dummy), [], 'the fixture meets the contract');

  // Config: its section joins the file's schema, with defaults, messages and the role list.
  const cfg = parseConfigText('node: web-a\ndummy:\n', FILE);
  t.same((cfg as unknown as Record<string, unknown>).dummy, { greeting: 'hello', tickMs: 100 });
  t.same(configRoles(cfg), ['dummy']);
  t.same(errorsOf('node: web-a\ndummy:\n  tick: 5x\n'),
    [`${FILE}:3: dummy.tick: '5x' is not a duration (expected a duration such as '200ms', '1s', '2m' or a number of seconds, from 10ms to 24h)`]);
  t.same(errorsOf('node: web-a\ndummy:\n  greeting: fence\n'), [`${FILE}:3: dummy.greeting: 'fence' is a word for another role (expected a friendly greeting)`], 'its own cross-key rule');
  t.match(errorsOf('node: web-a\ndummy:\n  bogus: 1\n')[0], /dummy\.bogus: unknown key \(expected one of: greeting, tick\)/);
  t.same(errorsOf('node: web-a\n'), [`${FILE}:1: no role configured (expected at least one of the sections vip, fence, fence_handler, monitor, group, promote, runtime_publish or dummy)`]);
  t.ok(((buildConfigSchema().properties as Record<string, unknown>).dummy), 'in the schema built from the registry');
  t.notOk(((builtinConfigSchema().properties as Record<string, unknown>).dummy), 'not in the built-in schema');

  // Daemon: started from the registry, with status and health.
  const runners = await createRoles(cfg, moduleLog('test'), notifier);
  t.same(runners.map((r) => r.name), ['dummy']);
  const r = runners[0]!;
  await r.start();
  await new Promise((res) => setTimeout(res, 350));
  const st = r.status() as { greeting: string; ticks: number };
  t.equal(st.greeting, 'hello');
  t.ok(st.ticks >= 2, `ticked (${st.ticks})`);
  t.ok(r.healthy(performance.now()), 'healthy while it ticks');
  t.notOk(r.healthy(performance.now() + 1000), 'unhealthy when it stops ticking');
  t.equal(r.canReload(parseConfigText('node: web-a\ndummy: { tick: 1s }\n', FILE)), 'changing dummy.tick needs a restart (vigil restart)');
  r.stop();
  t.equal(await r.done, 0);
  t.equal(formatStatus({ pid: 1, node: 'web-a', config: FILE, startedAt: 'then', roles: { dummy: st } }),
    `vigil running: pid 1, node web-a, config ${FILE}, since then\ndummy: hello, ${st.ticks} ticks\n`);

  // CLI: its verb, under its role and its older name, and in vigil --help.
  t.match(usage(), /\n {2}dummy +greet: vigil dummy --help\n/);
  t.match(usage(), /\n {2}dummy-greet +same as vigil dummy greet\n/);
  const dir = t.testdir({ 'c.yml': 'node: web-a\ndummy: { greeting: hi }\n' });
  const greet = await capture(() => dispatch(['dummy', 'greet', '-c', `${dir}/c.yml`]));
  t.same(greet, { code: 0, stdout: 'hi\n', stderr: '' });
  t.equal((await capture(() => dispatch(['dummy-greet', '-c', `${dir}/c.yml`]))).stdout, 'hi\n');
  const none = await capture(() => dispatch(['dummy', 'wave']));
  t.same(none, { code: 2, stdout: '', stderr: "vigil: unknown verb 'dummy wave' (vigil dummy --help lists them)\n" });
});

t.test('registration refuses a clash and is undone', async (t) => {
  const clash = defineRole({ ...dummy, name: 'vip2', section: { ...dummy.section, key: 'vip', configKey: 'vip' } });
  t.throws(() => registerRole(clash), /role vip2: its name or section key is taken/);
  const off = registerRole(dummy);
  off();
  t.same(roles().map((r) => r.name), ['vip', 'fence', 'fence-event', 'monitor', 'group', 'promote', 'runtime']);
  t.match(errorsOf('dummy:\n')[0], /dummy: unknown key/);
});

t.test('a config section schema has no role but its own', async (t) => {
  t.same(Object.keys(builtinConfigSchema().properties as object), ['node', 'pidfile', 'state_dir', 'log', 'metrics', 'vip', 'fence', 'fence_handler', 'monitor', 'group', 'promote', 'runtime_publish']);
  t.ok(usage().includes('fence-event'));
  t.equal(section('x', {}).additionalProperties, false);
});
