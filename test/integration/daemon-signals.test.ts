// The running daemon's operator interface, end to end: USR1 dumps the full
// state into the log, HUP reopens the log file (logrotate's `create` scheme:
// the file is renamed away, the daemon must write to a fresh one at the
// configured path), and `vigil status` (the CLI, human and --json) shows the
// role as the control socket sees it.
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { skipUnlessRoot } from '../support/lab';
import { testLab, writeConfig, daemonStatus, waitFor, runCli, vipNode, startDaemon, expectedOf, vipTiming, takeoverBoundMs, START_MS, SLACK_MS } from '../support/vigil';

if (skipUnlessRoot(t)) process.exit(0);

const FAST = { check_interval: '200ms', failure_check_interval: '100ms', probe_timeout: '100ms', master_check_interval: '400ms' };
/** Alone on the segment a node is master after its start and one takeover. */
const MASTER_ALONE_MS = START_MS + takeoverBoundMs(vipTiming(FAST));
/** A signal's effect (a log line, a reopened file) is handled at once: only scheduling is left. */
const SIGNAL_MS = SLACK_MS;

/** The JSON lines of a log text. */
const jsonLines = (text: string) => text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);

/** One node alone in a lab, running until it is master. */
async function masterAlone(t: Test) {
  const { lab, dir } = await testLab(t, ['a'], 'signals');
  const a = lab.host('a');
  const haIp = lab.freeIp(0);
  const n = vipNode(dir, a, haIp, FAST);
  const d = startDaemon(a, n.config, n.pidfile);
  await waitFor(async () => (await n.role()) === 'master', MASTER_ALONE_MS, expectedOf('master (alone: start, a takeover)', MASTER_ALONE_MS, [d]));
  return { a, haIp, n, d };
}

t.test('USR1: the full state in one log line', async (t) => {
  const { a, haIp, n, d } = await masterAlone(t);
  const live = (await daemonStatus(n.pidfile))!;
  t.notMatch(d.logs(), /state dump \(SIGUSR1\)/, 'no dump before the signal');
  process.kill(live.pid as number, 'SIGUSR1');
  await waitFor(() => /state dump \(SIGUSR1\)/.test(d.logs()), SIGNAL_MS, expectedOf('the dump line', SIGNAL_MS, [d]));
  const dump = jsonLines(d.logs()).find((l) => l.msg === 'state dump (SIGUSR1)')!;
  t.equal(dump.level, 'info');
  t.type(dump.state, 'object', 'the line carries the state');
  const state = (dump.state ?? {}) as Record<string, any>;
  t.equal(state.pid, live.pid, 'the daemon\'s pid');
  t.equal(state.node, 'a');
  t.equal(state.config, n.config);
  const vip = state.roles?.vip as Record<string, any>;
  t.equal(vip?.role, 'master', 'the role\'s status: master');
  t.equal(vip?.haIp, `${haIp}/24`, 'its HA IP');
  t.equal(vip?.interface, a.ifname);
  t.same(vip?.held, [`${haIp}/24`], 'what it holds');
  t.ok(vip?.lastProbe?.at, 'its last probe');
  t.ok(await daemonStatus(n.pidfile), 'still running after USR1 (not the default action, which kills)');
  d.proc.kill('SIGTERM');
  t.equal(await d.exited, 0);
});

t.test('HUP reopens the log file: after a rename, new lines go to a fresh file at the configured path', async (t) => {
  const { lab, dir } = await testLab(t, ['a'], 'signals');
  const a = lab.host('a');
  const logFile = path.join(dir, 'log', 'vigil.log');
  const pidfile = path.join(dir, 'run', 'vigil.pid');
  fs.mkdirSync(path.dirname(pidfile), { recursive: true, mode: 0o755 });
  const config = writeConfig(dir, 'vigil', {
    node: 'hup', pidfile, state_dir: path.join(dir, 'st'), log: { level: 'info', file: logFile },
    vip: { interface: a.ifname, address: `${lab.freeIp(0)}/24`, ...FAST },
  });
  const d = startDaemon(a, config, pidfile);
  // Its log goes to the file: a failed wait shows the file's last lines.
  const fileTail = { proc: d.proc, logs: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '') };
  const witnesses = { 'the log file': fileTail, 'its stdout and stderr': d };
  await waitFor(async () => (await daemonStatus(pidfile))?.roles?.vip?.role === 'master', MASTER_ALONE_MS, expectedOf('master (alone: start, a takeover)', MASTER_ALONE_MS, witnesses));
  await waitFor(() => fs.existsSync(logFile) && /vigil started/.test(fs.readFileSync(logFile, 'utf8')), SLACK_MS, expectedOf('the start logged to the file (before it was master)', SLACK_MS, witnesses));
  t.notMatch(d.logs(), /vigil started/, 'log lines go to the file, not stdout');
  const pid = (await daemonStatus(pidfile))!.pid as number;

  // logrotate without copytruncate: rename, then HUP.
  const rotated = `${logFile}.1`;
  fs.renameSync(logFile, rotated);
  t.notOk(fs.existsSync(logFile), 'renamed away');
  process.kill(pid, 'SIGHUP');
  await waitFor(() => fs.existsSync(logFile) && /config reloaded/.test(fs.readFileSync(logFile, 'utf8')), SIGNAL_MS, expectedOf('a fresh log file with the reload line', SIGNAL_MS, witnesses));
  t.pass('a fresh file at the configured path');
  // A line logged well after the HUP (the USR1 dump) lands in the fresh file only.
  process.kill(pid, 'SIGUSR1');
  await waitFor(() => /state dump \(SIGUSR1\)/.test(fs.readFileSync(logFile, 'utf8')), SIGNAL_MS, expectedOf('the dump in the fresh file', SIGNAL_MS, witnesses));
  const fresh = fs.readFileSync(logFile, 'utf8');
  const old = fs.readFileSync(rotated, 'utf8');
  t.match(old, /vigil started/, 'the rotated file keeps the old lines');
  t.notMatch(old, /config reloaded|state dump/, 'and gets nothing after the HUP');
  t.notMatch(fresh, /vigil started/, 'the fresh file starts after the rotation');
  t.ok(jsonLines(fresh).every((l) => l.node === 'hup'), 'the fresh file holds the daemon\'s JSON lines');
  t.equal((fs.statSync(logFile).mode & 0o777).toString(8), '600', 'the fresh file is 0600 like the first');
  t.equal(fs.statSync(logFile).ino !== fs.statSync(rotated).ino, true, 'a new file, not the renamed one');
  d.proc.kill('SIGTERM');
  t.equal(await d.exited, 0);
  t.match(fs.readFileSync(logFile, 'utf8'), /vigil stopped/, 'the last lines go to the fresh file too');
});

t.test('vigil status (the CLI): the role line, and --json with running:true and the vip fields', async (t) => {
  const { a, haIp, n, d } = await masterAlone(t);
  const live = (await daemonStatus(n.pidfile))!;

  const human = await runCli(['status', '-c', n.config], a);
  t.equal(human.code, 0, `exit 0 ${human.stderr.trim()}`);
  const lines = human.stdout.split('\n');
  t.equal(lines[0], `vigil running: pid ${live.pid}, node a, config ${n.config}, since ${live.startedAt}`, 'the daemon line');
  t.match(human.stdout, new RegExp(`^vip: master since \\S+ on ${a.ifname}, HA IP ${haIp.replace(/\./g, '\\.')}/24$`, 'm'), 'the role line: master, interface, HA IP');
  t.match(human.stdout, new RegExp(`^  held: ${haIp.replace(/\./g, '\\.')}/24$`, 'm'), 'what it holds');
  t.match(human.stdout, /^ {2}last probe: \w+ .*at \d{4}-\d\d-\d\dT/m, 'its last probe');

  const json = await runCli(['status', '-c', n.config, '--json'], a);
  t.equal(json.code, 0, `--json: exit 0 ${json.stderr.trim()}`);
  const st = JSON.parse(json.stdout) as Record<string, any>;
  t.equal(st.running, true, 'running: true');
  t.equal(st.pid, live.pid);
  t.equal(st.node, 'a');
  const vip = st.roles?.vip as Record<string, any>;
  t.equal(vip?.role, 'master');
  t.equal(vip?.phase, 'steady');
  t.equal(vip?.interface, a.ifname);
  t.equal(vip?.haIp, `${haIp}/24`);
  t.same(vip?.held, [`${haIp}/24`]);
  t.same(vip?.desired, [`${haIp}/24`]);
  t.equal(vip?.takeovers, 1, 'one takeover (it started as slave)');
  t.type(vip?.failures, 'number');
  t.match(vip?.since, /^\d{4}-\d\d-\d\dT/, 'since: an ISO time');

  d.proc.kill('SIGTERM');
  t.equal(await d.exited, 0);
  const after = await runCli(['status', '-c', n.config, '--json'], a);
  t.not(after.code, 0, `not running: exit ${after.code}`);
  t.equal(JSON.parse(after.stdout || '{}').running, false, '--json says running: false');
});

t.test('TERM after TERM while it stops (systemd, then an operator): still a graceful stop, exit 0', async (t) => {
  const { a, haIp, n, d } = await masterAlone(t);
  const pid = (await daemonStatus(n.pidfile))!.pid as number;
  // Keep signalling until the process is gone: every moment of the stop,
  // down to the last one before exit, has a TERM pending. None may end the
  // process with the default action (killed by SIGTERM, PID file left). A
  // shell loop (kill is a builtin) outpaces anything this event loop can do.
  const spam = spawn('sh', ['-c', `n=0; while kill -TERM ${pid} 2>/dev/null; do n=$((n+1)); done; echo $n`], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  spam.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  const spamDone = new Promise((r) => spam.on('close', r));
  t.teardown(() => { spam.kill('SIGKILL'); });
  const code = await d.exited;
  await spamDone;
  const sent = Number(out.trim());
  t.equal(code, 0, `exit 0 after ${sent} TERMs`);
  t.ok(sent > 1, 'more than one TERM reached it');
  t.notOk(fs.existsSync(n.pidfile), 'PID file removed');
  t.notMatch(await a.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', a.ifname]).then((r) => r.stdout), new RegExp(`inet ${haIp.replace(/\./g, '\\.')}/`), 'HA IP released');
});
