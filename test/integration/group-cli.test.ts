// `vigil group` as a process (bin/vigil group …) over members
// that need no network: symlink and hostname in a temp root, commands that
// leave marker files. Exit codes, the exact dry run, idempotence, resume
// after kill -9, roll-back, stop escalation, the turn lock and hook order.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { scratchDir, writeConfig, waitFor } from '../support/vigil';
import { groupArgv, runGroup, spawnGroup, treeFingerprint } from '../support/group';

interface Env { dir: string; root: string; state: string; marks: string; config(group: Record<string, unknown>, name?: string): string; count(m: string): number; lines(f: string): string[] }

function env(t: { teardown(fn: () => unknown): void }, tag: string): Env {
  const dir = scratchDir(tag);
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const root = path.join(dir, 'root');
  const state = path.join(dir, 'state');
  const marks = path.join(dir, 'marks');
  for (const d of [root, path.join(root, 'etc'), marks]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(root, 'etc', 'hosts'), '127.0.0.1 localhost\n');
  fs.writeFileSync(path.join(root, 'etc', 'resolv.conf'), 'nameserver 192.0.2.53\n');
  fs.writeFileSync(path.join(root, 'hostname'), 'node-a\n');
  fs.writeFileSync(path.join(root, 'install'), 'local data\n');
  fs.writeFileSync(path.join(dir, 'sethost'), `#!/bin/sh\necho "$1" > ${root}/hostname\n`, { mode: 0o755 });
  return {
    dir, root, state, marks,
    config: (group, name = 'g') => writeConfig(dir, 'vigil', { group: { [name]: { state_dir: state, lock_timeout: '20s', ...group } } }),
    count: (m) => (fs.existsSync(path.join(marks, m)) ? fs.readFileSync(path.join(marks, m), 'utf8').split('\n').filter(Boolean).length : 0),
    lines: (f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter(Boolean) : []),
  };
}

/** A command member that counts its starts/stops in marker files and is monitored by its flag file. */
const cmd = (e: Env, name: string, extra: Record<string, unknown> = {}) => ({
  type: 'command', name,
  start: `echo start >> ${e.marks}/${name}.start; touch ${e.marks}/${name}.up`,
  stop: `echo stop >> ${e.marks}/${name}.stop; rm -f ${e.marks}/${name}.up`,
  monitor: `test -f ${e.marks}/${name}.up`, ...extra,
});
const fileMembers = (e: Env) => [
  { type: 'symlink', name: 'data', link: path.join(e.root, 'install'), target: '/HA/install' },
  { type: 'hostname', name: 'name', hostname: 'mn', address: '192.0.2.100', hosts_file: path.join(e.root, 'etc', 'hosts'),
    resolv_conf: path.join(e.root, 'etc', 'resolv.conf'), nameservers: ['192.0.2.100'], hostname_file: path.join(e.root, 'hostname'), set_command: [path.join(e.dir, 'sethost')] },
];

t.test('arguments and config errors exit 2', async (t) => {
  const e = env(t, 'grp-args');
  const c = e.config({ members: [cmd(e, 'a')] });
  t.match(await runGroup(['frobnicate', 'g', '-c', c]), { code: 2, stderr: /unknown verb 'group frobnicate'/ });
  t.match(await runGroup(['activate', '-c', c]), { code: 2, stderr: /activate needs a group NAME/ });
  t.match(await runGroup(['activate', 'nope', '-c', c]), { code: 2, stderr: /no group 'nope'.*groups: g/ });
  t.match(await runGroup(['status', 'g', '--dry-run', '-c', c]), { code: 2 });
  t.match(await runGroup(['check-config', '-c', c]), { code: 0, stdout: /config OK: .* \(groups: g \[a\]\)/ });
  const bad = writeConfig(e.dir, 'bad', { group: { g: { members: [{ type: 'command', start: 'x', timeout: 'soon' }] } } });
  t.match(await runGroup(['check-config', '-c', bad]), { code: 2, stderr: /group\.g\.members\[0\]\.timeout: 'soon' is not a duration/ });
});

t.test('plan and --dry-run change nothing and list the effects in order; activate, status, idempotence, deactivate restores the bytes', async (t) => {
  const e = env(t, 'grp-dry');
  const c = e.config({ members: [...fileMembers(e), cmd(e, 'svc')], hooks: { before_start: `echo before_start >> ${e.marks}/hooks` } });
  const before = treeFingerprint(e.dir);
  const rootBefore = treeFingerprint(e.root);
  const plan = await runGroup(['plan', 'g', '-c', c, '--json']);
  t.equal(plan.code, 0, plan.stderr);
  const r = JSON.parse(plan.stdout);
  t.same(r.effects.map((x: any) => `${x.member} ${x.op}`), ['(hook) before_start', 'data symlink', 'data verify', 'name writeFile', 'name writeFile', 'name runCommand', 'name verify', 'svc runCommand', 'svc verify']);
  const dry = await runGroup(['activate', 'g', '--dry-run', '-c', c]);
  t.equal(dry.code, 0);
  t.match(dry.stdout, /activate would carry out 9 effects/);
  t.same(treeFingerprint(e.dir), before, 'nothing written anywhere under the scratch dir (root, state dir, markers)');
  t.notOk(fs.existsSync(e.state), 'no state dir created');

  const act = await runGroup(['activate', 'g', '-c', c]);
  t.equal(act.code, 0, act.stdout + act.stderr);
  t.match((await runGroup(['status', 'g', '-c', c])).stdout, /group g: active 3\/3/);
  const again = await runGroup(['activate', 'g', '-c', c]);
  t.match(again, { code: 0, stdout: /already active/ });
  t.equal(e.count('svc.start'), 1, 'second activate ran no member command');
  t.equal(e.count('hooks'), 1, 'nor a hook');
  const deact = await runGroup(['deactivate', 'g', '-c', c]);
  t.equal(deact.code, 0, deact.stdout);
  const rootAfter = treeFingerprint(e.root);
  fs.rmSync(e.state, { recursive: true });
  t.same(rootAfter, rootBefore, 'the temp root is byte-identical to before');
  t.match((await runGroup(['status', 'g', '-c', c])).stdout, /inactive 0\/3/);
});

t.test('member 3 of 5 fails: 2 and 1 stopped in reverse, exit 4 naming the step and its output', async (t) => {
  const e = env(t, 'grp-fail');
  const order = path.join(e.marks, 'order');
  const step = (n: string, fail = false) => ({
    type: 'command', name: n,
    start: fail ? `echo start ${n} >> ${order}; echo "disk on fire" >&2; exit 1` : `echo start ${n} >> ${order}; touch ${e.marks}/${n}`,
    stop: `echo stop ${n} >> ${order}; rm -f ${e.marks}/${n}`, monitor: `test -f ${e.marks}/${n}`,
  });
  const c = e.config({ members: [step('m1'), step('m2'), step('m3', true), step('m4'), step('m5')] });
  const r = await runGroup(['activate', 'g', '-c', c]);
  t.equal(r.code, 4, r.stdout + r.stderr);
  t.match(r.stdout, /step 3\/5 \(m3\) failed: start .*exit 1; output: disk on fire; rolled back/);
  t.same(e.lines(order), ['start m1', 'start m2', 'start m3', 'stop m2', 'stop m1']);
});

t.test('kill -9 in the middle of an activation, then activate completes without repeating finished members', async (t) => {
  const e = env(t, 'grp-kill');
  const release = path.join(e.marks, 'release');
  const blocker = {
    ...cmd(e, 'slow'),
    // Blocks (its shell's PID recorded, so the test can end it) until the release file exists.
    start: `echo start >> ${e.marks}/slow.start; echo $$ > ${e.marks}/slow.pid; while [ ! -f ${release} ]; do sleep 0.05; done; touch ${e.marks}/slow.up`,
  };
  const c = e.config({ members: [...fileMembers(e), blocker, cmd(e, 'last')] });
  const run = spawnGroup(['activate', 'g', '-c', c]);
  await waitFor(() => fs.existsSync(path.join(e.marks, 'slow.pid')), 10_000, 'the third member to start (slow.pid written)');
  run.proc.kill('SIGKILL');
  await run.done;
  const slowPid = Number(fs.readFileSync(path.join(e.marks, 'slow.pid'), 'utf8'));
  try { process.kill(-slowPid, 'SIGKILL'); } catch { /* gone */ }
  const st = await runGroup(['status', 'g', '-c', c]);
  t.match(st.stdout, /partial 2\/4/, 'status rebuilds the state from the world');
  fs.writeFileSync(release, '');
  const r = await runGroup(['activate', 'g', '-c', c]);
  t.equal(r.code, 0, r.stdout + r.stderr);
  t.match(r.stdout, /skip data: ok already running/);
  t.match(r.stdout, /skip name: ok already running/);
  t.equal(e.count('slow.start'), 2, 'the interrupted member started again');
  t.equal(e.count('last.start'), 1);
  t.match((await runGroup(['status', 'g', '-c', c])).stdout, /active 4\/4/);
});

t.test('a stop ignoring TERM is killed after stop_timeout; with block the earlier members stay, exit 5', async (t) => {
  const e = env(t, 'grp-stop');
  const stubborn = { ...cmd(e, 'stubborn'), stop: `trap '' TERM; echo $$ > ${e.marks}/stop.pid; while :; do sleep 0.05; done`, stop_timeout: '500ms', kill_grace: '300ms' };
  const c = e.config({ members: [...fileMembers(e), stubborn] });
  t.equal((await runGroup(['activate', 'g', '-c', c])).code, 0);
  const r = await runGroup(['deactivate', 'g', '-c', c]);
  t.equal(r.code, 5, r.stdout);
  t.match(r.stdout, /stop of stubborn: stop .*timed out after 500 ms.*blocked: data, name kept/);
  const pid = Number(fs.readFileSync(path.join(e.marks, 'stop.pid'), 'utf8'));
  t.throws(() => process.kill(pid, 0), 'the TERM-ignoring stop was KILLed');
  t.equal(fs.readlinkSync(path.join(e.root, 'install')), '/HA/install', 'the symlink before it stays');
  t.equal(fs.readFileSync(path.join(e.root, 'hostname'), 'utf8').trim(), 'mn', 'and the hostname');
});

t.test('a held lock refuses with exit 3 after lock_timeout', async (t) => {
  const e = env(t, 'grp-lock');
  const c = writeConfig(e.dir, 'vigil', { group: { g: { state_dir: e.state, lock_timeout: '300ms', members: [cmd(e, 'a')] } } });
  // The holder's start outlasts the second invocation by far (a Node.js start takes seconds on a loaded machine); the teardown kills it.
  const holder = spawnGroup(['activate', 'g', '-c', writeConfig(e.dir, 'slow', { group: { g: { state_dir: e.state, members: [{ ...cmd(e, 'a'), start: 'sleep 30' }] } } })]);
  t.teardown(() => { try { process.kill(-holder.proc.pid!, 'SIGKILL'); } catch { /* gone */ } });
  await waitFor(() => fs.existsSync(path.join(e.state, 'g.queue')) && fs.readdirSync(path.join(e.state, 'g.queue')).some((f) => /^\d+$/.test(f)), 10_000, 'the first invocation to take its ticket');
  const r = await runGroup(['activate', 'g', '-c', c]);
  t.equal(r.code, 3, r.stdout + r.stderr);
  t.match(r.stdout, /refused: group 'g' is busy: pid \d+ holds its lock \(waited 300 ms\)/);
  t.equal(e.count('a.start'), 0);
});

t.test('hooks run in exact event order, never concurrently, under activate/deactivate/activate in quick succession', async (t) => {
  const e = env(t, 'grp-hooks');
  const log = path.join(e.marks, 'hooks');
  // Each hook logs its begin and end around a sleep: an overlap would interleave the lines.
  const hook = `echo "begin $VIGIL_HOOK" >> ${log}; sleep 0.2; echo "end $VIGIL_HOOK" >> ${log}`;
  const c = e.config({ members: [cmd(e, 'svc')], hooks: { before_start: hook, after_start: hook, before_stop: hook, after_stop: hook } });
  const queue = path.join(e.state, 'g.queue');
  const tickets = () => (fs.existsSync(queue) ? fs.readdirSync(queue).filter((f) => /^\d+$/.test(f)).length : 0);
  const runs: ReturnType<typeof spawnGroup>[] = [];
  for (const verb of ['activate', 'deactivate', 'activate']) {
    const seen = tickets();
    runs.push(spawnGroup([verb, 'g', '-c', c]));
    // The next one is started once this one has its ticket (or is already done): that is the event order.
    await waitFor(async () => tickets() > seen || (await Promise.race([runs.at(-1)!.done.then(() => true), new Promise((r) => setTimeout(() => r(false), 10))])), 10_000, `${verb} to take its ticket`, 5);
  }
  const codes = (await Promise.all(runs.map((r) => r.done))).map((r) => r.code);
  t.same(codes, [0, 0, 0]);
  const expected = ['before_start', 'after_start', 'before_stop', 'after_stop', 'before_start', 'after_start'].flatMap((h) => [`begin ${h}`, `end ${h}`]);
  t.same(e.lines(log), expected);
});

t.test('a world-writable state_dir is refused with exit 2 before anything runs', async (t) => {
  const e = env(t, 'grp-perm');
  fs.mkdirSync(e.state, { mode: 0o777 });
  fs.chmodSync(e.state, 0o777);
  const c = e.config({ members: [cmd(e, 'a')] });
  const r = await runGroup(['activate', 'g', '-c', c]);
  t.equal(r.code, 2, r.stdout + r.stderr);
  t.match(r.stderr, /group state_dir .* has mode 0777 \(group\/world-writable\)/);
  t.equal(e.count('a.start'), 0);
});

t.test('hostname member with the real hostname(1) inside a private UTS namespace', async (t) => {
  const e = env(t, 'grp-uts');
  const hosts = path.join(e.root, 'etc', 'hosts');
  const before = fs.readFileSync(hosts);
  const c = e.config({ members: [{ type: 'hostname', name: 'name', hostname: 'vigil-mn', address: '192.0.2.100', hosts_file: hosts }] });
  // One shell in one new UTS namespace: activate, read the name, deactivate, read it again.
  const argv = (verb: string) => groupArgv([verb, 'g', '-c', c]).map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const script = `hostname before-test; ${argv('activate')} >/dev/null || exit 10; hostname; grep -c vigil-mn ${hosts}; ${argv('deactivate')} >/dev/null || exit 11; hostname`;
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync('unshare', ['--uts', 'sh', '-c', script], { encoding: 'utf8', timeout: 30_000 });
  t.equal(r.status, 0, r.stderr);
  t.same(r.stdout.trim().split('\n'), ['vigil-mn', '1', 'before-test']);
  t.same(fs.readFileSync(hosts), before, 'hosts byte-identical afterwards');
});
