// The CLI verbs that manage a daemon from outside (start, stop, restart,
// status, reload), against real daemons in a lab host: what an operator or a
// container hook does, including the awkward cases (a TERM right after the
// start, a config broken or its PID file changed while the daemon runs, a
// daemon started with a relative -c, a hung daemon).
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createLab, skipUnlessRoot, type Lab, type LabHost } from '../support/lab';
import { scratchDir, writeConfig, daemonStatus, waitFor, runCli, BIN, expectedOf, witness, START_MS } from '../support/vigil';
import { isRunning, findVigilFor } from '../../src/daemon/pidfile';

if (skipUnlessRoot(t)) process.exit(0);

let lab: Lab;
let host: LabHost;
let dir: string;
t.before(async () => {
  lab = await createLab({ hosts: ['a'] });
  host = lab.host('a');
  dir = scratchDir('life');
});
t.teardown(async () => { await lab?.destroy(); if (dir) fs.rmSync(dir, { recursive: true, force: true }); });

let n = 0;
/** A fresh config (its own PID file and state dir) for one case. */
function config(over: Record<string, unknown> = {}, vip: Record<string, unknown> = {}) {
  const name = `c${++n}`;
  const pidfile = path.join(dir, name, 'run', 'vigil.pid');
  const cfg = {
    node: name, pidfile, state_dir: path.join(dir, name, 'state'), log: { level: 'info' },
    vip: { interface: host.ifname, address: `${lab.freeIp(n)}/24`, check_interval: '200ms', failure_check_interval: '100ms', probe_timeout: '100ms', ...vip },
    ...over,
  };
  return { name, pidfile, cfg, file: writeConfig(dir, name, cfg) };
}

const cli = (args: string[]) => runCli(args, host);
const pidOf = (pidfile: string) => { try { return Number(fs.readFileSync(pidfile, 'utf8').trim()) || undefined; } catch { return undefined; } };
// A detached daemon's parent is gone: on a machine whose PID 1 does not reap, it
// lingers as a zombie after exiting, so "alive" means running, not signalable.
const alive = (pid: number | undefined) => pid !== undefined && isRunning(pid);

t.test('start fails with a non-zero exit every time the daemon cannot start (not once the PID file exists)', async (t) => {
  const c = config({}, { interface: 'vgnosuchif0' });
  const codes: (number | null)[] = [];
  for (let i = 0; i < 5; i++) codes.push((await cli(['start', '-c', c.file])).code);
  t.same(codes, [2, 2, 2, 2, 2], 'exit 2 (bad input: no such interface) on each of 5 tries');
  t.notOk(fs.existsSync(c.pidfile), 'no PID file left behind');
});

t.test('start returns once the daemon answers; stop stops it', async (t) => {
  const c = config();
  const r = await cli(['start', '-c', c.file]);
  t.equal(r.code, 0, r.stderr);
  t.ok(await daemonStatus(c.pidfile), 'the control socket answers as soon as start returned');
  const s = await cli(['stop', '-c', c.file]);
  t.equal(s.code, 0, s.stderr);
  t.notOk(fs.existsSync(c.pidfile), 'PID file removed');
});

t.test('stop right after a start that is still under way waits for it and stops its daemon (mount hook, then umount hook)', async (t) => {
  const c = config();
  for (let i = 0; i < 3; i++) {
    const starting = cli(['start', '-c', c.file]);
    const s = await cli(['stop', '-c', c.file]);
    t.equal(s.code, 0, `try ${i + 1}: stop exit 0 (${s.stdout.trim()})`);
    await starting;
    t.equal(findVigilFor(c.file), undefined, `try ${i + 1}: no daemon left running`);
    t.notOk(fs.existsSync(c.pidfile), `try ${i + 1}: no PID file left`);
  }
});

t.test('a TERM right after the PID file appears is a graceful stop, not a kill', async (t) => {
  const c = config();
  for (let i = 0; i < 5; i++) {
    const proc = host.spawn([process.execPath, BIN, 'run', '-c', c.file]);
    const w = witness(proc, c.file);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.on('exit', (code, signal) => r({ code, signal })));
    await waitFor(() => pidOf(c.pidfile) === proc.pid, START_MS, expectedOf('the PID file (start-up)', START_MS, [w]), 1);
    proc.kill('SIGTERM');
    const e = await exited;
    t.same(e, { code: 0, signal: null }, `try ${i + 1}: exit 0, not killed by the signal`);
    t.notOk(fs.existsSync(c.pidfile), `try ${i + 1}: PID file removed`);
  }
});

t.test('a TERM while a role is still starting waits for the start, then stops gracefully', async (t) => {
  // The fence role's start asks its supervised agent first; an address nobody
  // holds keeps it waiting request_timeout: a wide window for the TERM.
  const c = config({
    vip: undefined,
    fence: {
      agents: [{ name: 'm', url: `http://${lab.freeIp(50)}:8500`, command: ['true'] }], interfaces: [host.ifname],
      check_interval: '5s', request_timeout: '1500ms', neighbour_probe_timeout: '100ms', actions: [['true']], dry_run: true,
    },
  });
  const proc = host.spawn([process.execPath, BIN, 'run', '-c', c.file]);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); }); proc.stderr!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.on('close', (code, signal) => r({ code, signal })));
  await waitFor(() => pidOf(c.pidfile) === proc.pid, START_MS, expectedOf('the PID file (start-up)', START_MS, { [c.name]: { proc, logs: () => out } }), 1);
  proc.kill('SIGTERM');
  t.same(await exited, { code: 0, signal: null }, 'exit 0, not killed by the signal');
  t.match(out, /stop requested during start: stopping/);
  t.notOk(fs.existsSync(c.pidfile), 'PID file removed');
});

t.test('stop, status and reload still find the daemon after its config was broken', async (t) => {
  const c = config();
  t.equal((await cli(['start', '-c', c.file])).code, 0);
  const pid = pidOf(c.pidfile);
  fs.writeFileSync(c.file, fs.readFileSync(c.file, 'utf8').replace(/check_interval: 200ms/, 'check_interval: 5x'));
  const st = await cli(['status', '-c', c.file]);
  t.equal(st.code, 0, 'status: running');
  t.match(st.stderr, /warning: .*check_interval.*'5x'.*looking for the running daemon through/);
  const rl = await cli(['reload', '-c', c.file]);
  t.equal(rl.code, 1, 'reload: refused by the daemon (exit 1), which says why');
  t.match(rl.stderr, /reload refused, keeping the running config: .*'5x'/);
  const s = await cli(['stop', '-c', c.file]);
  t.equal(s.code, 0, s.stderr);
  t.notOk(alive(pid), 'the daemon is gone');
});

t.test('a config whose pidfile was changed while the daemon runs: start refuses a second daemon, stop finds the first', async (t) => {
  const c = config();
  t.equal((await cli(['start', '-c', c.file])).code, 0);
  const pid = pidOf(c.pidfile);
  const moved = path.join(path.dirname(c.pidfile), 'other.pid');
  writeConfig(dir, c.name, { ...c.cfg, pidfile: moved });
  const st = await cli(['start', '-c', c.file]);
  t.equal(st.code, 1, 'start refuses');
  t.match(st.stderr, new RegExp(`vigil \\(pid ${pid}\\) already runs .* with another PID file`));
  const status = await cli(['status', '-c', c.file]);
  t.equal(status.code, 1, 'status says where the daemon is');
  t.match(status.stderr, /not with PID file .*other\.pid/);
  const s = await cli(['stop', '-c', c.file]);
  t.equal(s.code, 0, s.stderr);
  t.notOk(alive(pid), 'the first daemon stopped');
  t.notOk(fs.existsSync(moved), 'and no second one was ever started');
});

t.test('a daemon started with a relative -c is found from another directory', async (t) => {
  const c = config();
  const proc = host.spawn([process.execPath, BIN, 'run', '-c', path.basename(c.file)], { cwd: dir });
  const w = witness(proc, c.file);
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  await waitFor(async () => (await daemonStatus(c.pidfile))?.pid === proc.pid, START_MS, expectedOf('daemon up (start-up)', START_MS, [w]));
  const s = await cli(['stop', '-c', c.file]);
  t.equal(s.code, 0, s.stderr);
  t.match(s.stdout, new RegExp(`vigil stopped \\(pid ${proc.pid}\\)`));
  t.equal(await exited, 0);
});

t.test('a daemon that does not answer is reported as such, not as "not running"', async (t) => {
  const c = config();
  t.equal((await cli(['start', '-c', c.file])).code, 0);
  const pid = pidOf(c.pidfile)!;
  process.kill(pid, 'SIGSTOP');
  t.teardown(() => { try { process.kill(pid, 'SIGCONT'); process.kill(pid, 'SIGKILL'); } catch { /* gone */ } });
  const st = await cli(['status', '-c', c.file]);
  t.equal(st.code, 1);
  t.match(st.stderr, new RegExp(`vigil \\(pid ${pid}\\) is running but did not answer`));
  process.kill(pid, 'SIGCONT');
  t.equal((await cli(['stop', '-c', c.file])).code, 0);
});

t.test('start refuses a group/world-writable state_dir and never follows a symlink planted there', async (t) => {
  const c = config();
  const state = c.cfg.state_dir;
  fs.mkdirSync(state, { recursive: true });
  fs.chmodSync(state, 0o777);
  const victim = path.join(dir, 'victim');
  fs.writeFileSync(victim, 'precious\n');
  fs.symlinkSync(victim, path.join(state, 'vigil.start.err'));
  const r = await cli(['start', '-c', c.file]);
  t.equal(r.code, 2);
  t.match(r.stderr, /state_dir .* has mode 0777 \(group\/world-writable\)/);
  t.equal(fs.readFileSync(victim, 'utf8'), 'precious\n', 'the symlink target is untouched');
  t.notOk(fs.existsSync(c.pidfile), 'no daemon started');
});

t.test('restart validates --timeout', async (t) => {
  const c = config();
  const r = await cli(['restart', '-c', c.file, '--timeout', '5x']);
  t.equal(r.code, 2);
  t.match(r.stderr, /--timeout '5x' is not/);
});

t.test('leave against a daemon whose reply carries no pid (an older vigil still running after an upgrade): stopped by TERM', async (t) => {
  const c = config();
  // The older daemon, reduced to what leave talks to: its PID file, its
  // control socket (one JSON line each way) and a TERM handler that notes
  // the signal and exits 0. Named vigil.js and run with -c, as the CLI expects.
  const old = path.join(dir, c.name, 'old', 'vigil.js');
  const marker = path.join(dir, c.name, 'old', 'signals');
  fs.mkdirSync(path.dirname(old), { recursive: true });
  fs.mkdirSync(path.dirname(c.pidfile), { recursive: true, mode: 0o755 });
  fs.writeFileSync(old, `
const fs = require('node:fs'), net = require('node:net');
const sock = ${JSON.stringify(c.pidfile.replace(/\.pid$/, '.sock'))};
net.createServer((conn) => conn.once('data', () => conn.end(JSON.stringify({ ok: true, results: [] }) + '\\n'))).listen(sock, () => {
  fs.writeFileSync(${JSON.stringify(c.pidfile)}, process.pid + '\\n');
});
process.on('SIGTERM', () => { fs.appendFileSync(${JSON.stringify(marker)}, 'TERM\\n'); fs.rmSync(sock, { force: true }); process.exit(0); });
`);
  const proc = host.spawn([process.execPath, old, 'run', '-c', c.file], { stdio: 'ignore' });
  t.teardown(() => { proc.kill('SIGKILL'); });
  await waitFor(() => fs.existsSync(c.pidfile), START_MS, `the old daemon's PID file within ${START_MS} ms (start-up; its output is not kept)`);
  const r = await cli(['leave', '-c', c.file]);
  t.equal(r.code, 0, `exit 0 ${r.stderr.trim()}`);
  t.match(r.stdout, new RegExp(`^vigil stopped \\(pid ${proc.pid}\\)$`, 'm'), 'it waited for that daemon');
  t.equal(fs.readFileSync(marker, 'utf8'), 'TERM\n', 'stopped with one TERM');
});
