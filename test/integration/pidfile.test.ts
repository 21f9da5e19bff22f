// The PID file: re-checked periodically (vzhaipd's consistency check, without
// signalling stray PIDs). Missing → rewritten; owned by another live vigil →
// exit without touching the system (the HA IP stays where it is). Created
// 0600 whatever the umask; a symlink in its place is refused, not followed.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { skipUnlessRoot } from '../support/lab';
import { testLab, writeConfig, daemonStatus, waitFor, BIN, expectedOf, witness, sleep, vipTiming, takeoverBoundMs, START_MS, SLACK_MS } from '../support/vigil';

if (skipUnlessRoot(t)) process.exit(0);

const TIMING = { check_interval: '200ms', failure_check_interval: '100ms', probe_timeout: '100ms', master_check_interval: '400ms' };
/** The PID file re-check period the test sets (VIGIL_PID_RECHECK_MS). */
const PID_RECHECK_MS = 300;
/** By when a re-check has acted: the next one, plus slack. */
const RECHECK_BOUND_MS = PID_RECHECK_MS + SLACK_MS;

t.test('PID file re-check', async (t) => {
  const { lab, dir } = await testLab(t, ['a'], 'pid');
  const host = lab.host('a');
  const haIp = lab.freeIp(0);
  const mk = (name: string) => {
    const pidfile = path.join(dir, name, 'vigil.pid');
    fs.mkdirSync(path.dirname(pidfile), { recursive: true, mode: 0o755 });
    const config = writeConfig(dir, name, {
      pidfile, state_dir: path.join(dir, name, 'st'), log: { level: 'info' },
      vip: { interface: host.ifname, address: `${haIp}/24`, ...TIMING },
    });
    return { pidfile, config };
  };
  const a = mk('a');
  const env = { ...process.env, VIGIL_PID_RECHECK_MS: String(PID_RECHECK_MS) };
  const procA = host.spawn([process.execPath, BIN, 'run', '-c', a.config], { env });
  let logs = '';
  procA.stdout!.on('data', (c: Buffer) => { logs += c.toString(); });
  procA.stderr!.resume();
  // 'close', not 'exit': the exit log line may still be in the pipe at 'exit'.
  const exitedA = new Promise<number | null>((r) => procA.on('close', (c) => r(c)));
  const da = { a: { proc: procA, logs: () => logs } };
  const masterMs = START_MS + takeoverBoundMs(vipTiming(TIMING));
  await waitFor(async () => (await daemonStatus(a.pidfile))?.roles?.vip?.role === 'master', masterMs, expectedOf('master (alone: start, a takeover)', masterMs, da));

  fs.rmSync(a.pidfile);
  await waitFor(() => fs.existsSync(a.pidfile), RECHECK_BOUND_MS, expectedOf('PID file rewritten (a re-check)', RECHECK_BOUND_MS, da));
  t.equal(fs.readFileSync(a.pidfile, 'utf8').trim(), String(procA.pid), 'rewritten with our pid');
  // The log line follows the rewrite through a pipe: wait for it, do not race it.
  await waitFor(() => /PID file was missing or stale: rewritten/.test(logs), SLACK_MS, expectedOf('rewrite logged', SLACK_MS, da));

  // Every line names node and role once, and the current role (a duplicate
  // "role" key made JSON readers pick whichever came last).
  const lines = logs.split('\n').filter((l) => l.startsWith('{'));
  t.ok(lines.some((l) => l.includes('"module":"vip"')) && lines.some((l) => l.includes('"module":"daemon"')), 'vip and daemon lines logged');
  t.same(lines.filter((l) => (l.match(/"role":/g) ?? []).length !== 1 || (l.match(/"node":/g) ?? []).length !== 1), [], 'one node and one role key on every line');
  const promoted = lines.find((l) => l.includes('role slave -> master'));
  t.equal(promoted && JSON.parse(promoted).role, 'master', 'the transition line carries the new role');
  const rewritten = lines.find((l) => l.includes('PID file was missing or stale'));
  t.equal(rewritten && JSON.parse(rewritten).role, 'master', 'a daemon line carries the node\'s current role');

  // Another live vigil (a second config: its own PID file) now "owns" a's PID file.
  const b = mk('b');
  const procB = host.spawn([process.execPath, BIN, 'run', '-c', b.config]);
  const db = witness(procB, b.config);
  await waitFor(() => fs.existsSync(b.pidfile), START_MS, expectedOf('second daemon up (start-up)', START_MS, { ...da, b: db }));
  const tmp = `${a.pidfile}.new`;
  fs.writeFileSync(tmp, `${procB.pid}\n`, { mode: 0o600 });
  fs.renameSync(tmp, a.pidfile);
  const code = await Promise.race([exitedA, sleep(RECHECK_BOUND_MS).then(() => `still running ${RECHECK_BOUND_MS} ms later (a re-check and slack)`)]);
  t.equal(code, 1, 'the first daemon exited');
  t.match(logs, /another vigil owns the PID file: exiting without touching the system/);
  const addrs = (await host.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', host.ifname])).stdout;
  t.match(addrs, ` ${haIp}/`, 'the HA IP was left in place');
  procB.kill('SIGTERM');
});

t.test('a normal start: the PID file is 0600 and holds the daemon\'s pid', async (t) => {
  const { lab, dir } = await testLab(t, ['a'], 'pid');
  const host = lab.host('a');
  const pidfile = path.join(dir, 'run', 'vigil.pid');
  fs.mkdirSync(path.dirname(pidfile), { recursive: true, mode: 0o755 });
  const config = writeConfig(dir, 'vigil', {
    node: 'pid-mode', pidfile, state_dir: path.join(dir, 'st'), log: { level: 'info' },
    vip: { interface: host.ifname, address: `${lab.freeIp(0)}/24` },
  });
  // A permissive umask must not widen the file: its mode is set, not left to the umask.
  const proc = host.spawn(['sh', '-c', `umask 000; exec "$0" "$@"`, process.execPath, BIN, 'run', '-c', config]);
  const w = witness(proc, config);
  const exited = new Promise<number | null>((r) => proc.on('close', (c) => r(c)));
  await waitFor(async () => (await daemonStatus(pidfile))?.pid, START_MS, expectedOf('the daemon answering (start-up)', START_MS, [w]));
  const st = fs.lstatSync(pidfile);
  t.ok(st.isFile(), 'a regular file');
  t.equal((st.mode & 0o7777).toString(8), '600', 'mode 0600');
  t.equal(st.uid, 0, 'owned by root');
  t.equal(fs.readFileSync(pidfile, 'utf8'), `${(await daemonStatus(pidfile))?.pid}\n`, 'the daemon\'s pid and a newline');
  proc.kill('SIGTERM');
  t.equal(await exited, 0, 'TERM: exit 0');
  t.notOk(fs.existsSync(pidfile), 'removed on a graceful stop');
});

t.test('a symlinked PID file is refused: exit 2, one line naming it, the target untouched', async (t) => {
  const { lab, dir } = await testLab(t, ['a'], 'pid');
  const host = lab.host('a');
  const pidfile = path.join(dir, 'run', 'vigil.pid');
  fs.mkdirSync(path.dirname(pidfile), { recursive: true, mode: 0o755 });
  // What an attacker would point it at: a file the daemon must not truncate or chmod.
  const target = path.join(dir, 'precious');
  fs.writeFileSync(target, 'do not overwrite\n', { mode: 0o644 });
  fs.chmodSync(target, 0o644);
  const before = fs.statSync(target);
  fs.symlinkSync(target, pidfile);
  const config = writeConfig(dir, 'vigil', {
    node: 'pid-link', pidfile, state_dir: path.join(dir, 'st'), log: { level: 'info' },
    vip: { interface: host.ifname, address: `${lab.freeIp(0)}/24` },
  });
  // Refused at start-up: it exits by itself well within START_MS (a guard, killed past it).
  const r = await host.exec([process.execPath, BIN, 'run', '-c', config], { timeoutMs: START_MS });
  t.equal(r.code, 2, 'exit 2 (bad input)');
  const lines = r.stderr.split('\n').filter(Boolean);
  t.equal(lines.length, 1, `one line on stderr: ${JSON.stringify(r.stderr)}`);
  t.match(lines[0], `PID file ${pidfile} is a symlink`, 'it names the PID file and what is wrong');
  t.equal(fs.readFileSync(target, 'utf8'), 'do not overwrite\n', 'the target\'s content is untouched');
  const after = fs.statSync(target);
  t.equal((after.mode & 0o7777).toString(8), '644', 'the target\'s mode is untouched');
  t.equal(after.mtimeMs, before.mtimeMs, 'the target was not written');
  t.ok(fs.lstatSync(pidfile).isSymbolicLink(), 'the symlink is left as it was');
  const addrs = (await host.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', host.ifname])).stdout;
  t.notMatch(addrs, ` ${lab.freeIp(0)}/`, 'nothing was started: the HA IP is not on the interface');
});
