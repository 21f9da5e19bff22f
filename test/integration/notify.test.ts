// systemd notification from the real daemon, through the native sd_notify,
// to a notify socket the test binds (test/support/notify-listen.py, since
// Node cannot bind unix datagram sockets): READY once the sockets are open,
// WATCHDOG at half WATCHDOG_USEC, RELOADING then READY around a reload,
// STOPPING on TERM, in that order; for a path socket and an abstract one;
// no WATCHDOG while a role loop is stuck.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { skipUnlessRoot, type LabHost } from '../support/lab';
import { testLab, BIN, ROOT, writeConfig, runCli, waitFor, daemonStatus, sleep, expectedOf, durationMs, START_MS, SLACK_MS } from '../support/vigil';
import { CONTAINER_POLL_MS } from '../../src/actions/container';

if (skipUnlessRoot(t)) process.exit(0);
// python3 binds the notify socket (.ci/run installs it): required, never skipped.
if (spawnSync('python3', ['-c', 'import socket; socket.AF_UNIX'], { stdio: 'ignore' }).status !== 0) {
  throw new Error('python3 is needed to bind the notify socket (.ci/run installs it)');
}

const LISTENER = path.join(ROOT, 'test', 'support', 'notify-listen.py');
const FAKE = path.join(ROOT, 'test', 'support', 'fake-vz');
const WATCHDOG_USEC = 400_000; // pings expected every 200 ms
/** The ping period: half WATCHDOG_USEC (sd_watchdog_enabled(3); src/daemon/notify.ts). */
const PING_MS = WATCHDOG_USEC / 2000;
/** A TERM's kill grace before KILL for a command that ignores it (src/actions/commands.ts). */
const KILL_GRACE_MS = 2000;
/** Python's start and bind: no setting governs it. */
const LISTENER_START_MS = START_MS;

interface Msg { t: number; msg: string; fields: Record<string, string> }

/** Bind the notify socket in `host` (abstract names are per network namespace) and collect datagrams. */
async function listen(host: LabHost, name: string) {
  const proc: ChildProcess = host.spawn(['python3', LISTENER, name]);
  const msgs: Msg[] = [];
  let ready!: () => void;
  const isReady = new Promise<void>((r) => { ready = r; });
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    const j = JSON.parse(line) as { ready?: boolean; t: number; msg: string };
    if (j.ready) { ready(); return; }
    const fields = Object.fromEntries(j.msg.split('\n').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    msgs.push({ t: j.t, msg: j.msg, fields });
  });
  await Promise.race([isReady, new Promise((_, rej) => setTimeout(() => rej(new Error(`notify listener did not start within ${LISTENER_START_MS} ms: ${err}`)), LISTENER_START_MS))]);
  return { msgs, stop: () => { proc.kill('SIGTERM'); } };
}

function startDaemon(host: LabHost, config: string, env: Record<string, string>) {
  const proc = host.spawn([process.execPath, BIN, 'run', '-c', config], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  proc.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  proc.stdout!.on('data', (c: Buffer) => { stdout += c.toString(); });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, exited, stderr: () => stderr, logs: () => stdout, config };
}
type NotifyDaemon = ReturnType<typeof startDaemon>;
/** What a wait expected by when, with the daemon's last lines (stdout and stderr) and the notifications so far. */
const expected = (d: NotifyDaemon, msgs: Msg[], what: string, ms: number) => {
  const tails = expectedOf(what, ms, { 'the daemon (stdout)': d, 'the daemon (stderr)': { proc: d.proc, logs: d.stderr } });
  return () => `${tails()}\n  notifications: ${JSON.stringify(msgs.slice(-12).map((m) => m.msg.trim().replace(/\n/g, ' ')))}`;
};

const index = (msgs: Msg[], pred: (m: Msg) => boolean, from = 0) => { for (let i = from; i < msgs.length; i++) if (pred(msgs[i]!)) return i; return -1; };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (const variant of ['path', 'abstract'] as const) {
  t.test(`notify over a ${variant} socket: READY, WATCHDOG, RELOADING/READY, STOPPING in order`, async (t) => {
    const { lab, dir } = await testLab(t, ['a'], 'notify');
    const a = lab.host('a');
    const sock = variant === 'path' ? path.join(dir, 'notify.sock') : `@${lab.prefix}-notify`;
    const listener = await listen(a, sock);
    t.teardown(listener.stop);
    const pidfile = path.join(dir, 'vigil.pid');
    const config = writeConfig(dir, 'vigil', {
      node: 'notify-a', pidfile, state_dir: path.join(dir, 'state'), log: { level: 'info' },
      vip: { interface: a.ifname, address: `${lab.freeIp(0)}/24`, check_interval: '200ms', failure_check_interval: '100ms', probe_timeout: '100ms', master_check_interval: '400ms' },
    });
    const d = startDaemon(a, config, { NOTIFY_SOCKET: sock, WATCHDOG_USEC: String(WATCHDOG_USEC) });
    await waitFor(() => listener.msgs.some((m) => m.fields.READY === '1'), START_MS, expected(d, listener.msgs, 'READY=1 (start-up)', START_MS));
    const readyIdx = index(listener.msgs, (m) => m.fields.READY === '1');
    t.equal(readyIdx, 0, 'READY=1 is the first message');
    t.equal(listener.msgs[0]!.fields.MAINPID, String((await daemonStatus(pidfile))?.pid), 'with MAINPID= the daemon\'s pid');
    t.ok(await daemonStatus(pidfile), 'the control socket answers once READY is sent');

    await sleep(10 * PING_MS); // ten ping periods
    const pings = listener.msgs.filter((m) => m.fields.WATCHDOG === '1');
    t.ok(pings.length >= 5, `${pings.length} WATCHDOG=1 pings in ~${10 * PING_MS} ms (10 periods)`);
    const gaps = pings.slice(1).map((p, i) => p.t - pings[i]!.t);
    const med = median(gaps);
    t.ok(med >= 120 && med <= 300, `median gap between pings ${Math.round(med)} ms (half of WATCHDOG_USEC = 200 ms)`);
    t.ok(index(listener.msgs, (m) => m.fields.WATCHDOG === '1') > readyIdx, 'no WATCHDOG before READY');

    const rel = await runCli(['reload', '-c', config], a);
    t.equal(rel.code, 0, `vigil reload: ${rel.stdout.trim()}${rel.stderr.trim()}`);
    // `vigil reload` returns once the daemon applied the config: READY follows at once.
    await waitFor(() => index(listener.msgs, (m) => m.fields.READY === '1', readyIdx + 1) > 0, SLACK_MS, expected(d, listener.msgs, 'READY after the reload', SLACK_MS));
    const relIdx = index(listener.msgs, (m) => m.fields.RELOADING === '1');
    t.ok(relIdx > readyIdx, 'RELOADING=1 after the first READY');
    t.match(listener.msgs[relIdx]!.fields.MONOTONIC_USEC, /^\d+$/, 'RELOADING carries MONOTONIC_USEC');
    const ready2 = index(listener.msgs, (m) => m.fields.READY === '1', relIdx + 1);
    t.ok(ready2 > relIdx, 'READY=1 again after RELOADING');

    d.proc.kill('SIGTERM');
    t.equal(await d.exited, 0, 'TERM: exit 0');
    // Sent before the exit: only the datagram's way through the listener is left.
    await waitFor(() => listener.msgs.some((m) => m.fields.STOPPING === '1'), SLACK_MS, expected(d, listener.msgs, 'STOPPING=1', SLACK_MS));
    const stopIdx = index(listener.msgs, (m) => m.fields.STOPPING === '1');
    t.ok(stopIdx > ready2, 'STOPPING=1 after the last READY');
    t.equal(index(listener.msgs, (m) => m.fields.READY === '1', stopIdx), -1, 'no READY after STOPPING');
    const kinds = listener.msgs.map((m) => Object.keys(m.fields).find((k) => ['READY', 'RELOADING', 'STOPPING'].includes(k))).filter(Boolean);
    t.same(kinds, ['READY', 'RELOADING', 'READY', 'STOPPING'], 'the life cycle in order');
  });
}

t.test('WATCHDOG_PID for another process: no pings (sd_watchdog_enabled(3))', async (t) => {
  const { lab, dir } = await testLab(t, ['a'], 'notify');
  const a = lab.host('a');
  const sock = path.join(dir, 'notify.sock');
  const listener = await listen(a, sock);
  t.teardown(listener.stop);
  const config = writeConfig(dir, 'vigil', {
    node: 'notify-b', pidfile: path.join(dir, 'vigil.pid'), state_dir: path.join(dir, 'state'),
    vip: { interface: a.ifname, address: `${lab.freeIp(0)}/24` },
  });
  const d = startDaemon(a, config, { NOTIFY_SOCKET: sock, WATCHDOG_USEC: String(WATCHDOG_USEC), WATCHDOG_PID: '1' });
  await waitFor(() => listener.msgs.some((m) => m.fields.READY === '1'), START_MS, expected(d, listener.msgs, 'READY=1 (start-up)', START_MS));
  await sleep(5 * PING_MS); // five ping periods
  t.equal(listener.msgs.filter((m) => m.fields.WATCHDOG === '1').length, 0, 'no WATCHDOG=1 when the watchdog is meant for another pid');
  d.proc.kill('SIGTERM');
  t.equal(await d.exited, 0);
});

t.test('container mode: READY while waiting for the container, STATUS says so, watchdog fed', async (t) => {
  const { lab, dir } = await testLab(t, ['a'], 'notify');
  const a = lab.host('a');
  const vzDir = path.join(dir, 'vz');
  fs.mkdirSync(path.join(vzDir, 'ct', '4501'), { recursive: true });
  fs.writeFileSync(path.join(vzDir, 'ct', '4501', 'status'), 'mounted\n');
  const sock = path.join(dir, 'notify.sock');
  const listener = await listen(a, sock);
  t.teardown(listener.stop);
  const pidfile = path.join(dir, 'vigil.pid');
  const config = writeConfig(dir, 'vigil', {
    node: 'notify-ct', pidfile, state_dir: path.join(dir, 'state'),
    vip: { interface: a.ifname, address: `${lab.freeIp(0)}/24`, backend: 'vzctl', container: '4501', vzctl: path.join(FAKE, 'vzctl'), vzlist: path.join(FAKE, 'vzlist') },
  });
  const d = startDaemon(a, config, { NOTIFY_SOCKET: sock, WATCHDOG_USEC: String(WATCHDOG_USEC), FAKE_VZ_DIR: vzDir });
  await waitFor(() => listener.msgs.some((m) => m.fields.READY === '1'), START_MS, expected(d, listener.msgs, 'READY=1 (start-up)', START_MS));
  t.pass('READY=1 sent while the container is not running (the daemon\'s sockets are open; the wait is its STATUS)');
  const lastStatus = () => listener.msgs.filter((m) => m.fields.STATUS !== undefined).pop()?.fields.STATUS ?? '';
  // The container is polled every CONTAINER_POLL_MS.
  const statusMs = CONTAINER_POLL_MS + SLACK_MS;
  await waitFor(() => /^vip: waiting for container 4501 to be running \(it is mounted\)$/.test(lastStatus()), statusMs, expected(d, listener.msgs, 'STATUS=vip: waiting…', statusMs));
  t.pass(`the STATUS systemd shows: "${lastStatus()}"`);
  const before = listener.msgs.filter((m) => m.fields.WATCHDOG === '1').length;
  await sleep(7.5 * PING_MS); // seven and a half ping periods
  const during = listener.msgs.filter((m) => m.fields.WATCHDOG === '1').length - before;
  t.ok(during >= 4, `${during} WATCHDOG pings in ${7.5 * PING_MS} ms of waiting: a wait is healthy`);
  t.equal((await daemonStatus(pidfile))?.roles?.vip?.phase, 'waiting for container');
  const at = Date.now();
  d.proc.kill('SIGTERM');
  t.equal(await d.exited, 0, 'TERM during the wait: exit 0');
  t.ok(Date.now() - at < 3000, `stopped in ${Date.now() - at} ms`);
  t.ok(listener.msgs.some((m) => m.fields.STOPPING === '1'), 'STOPPING=1');
});

// sd_notify(3)'s unset_environment: the operator's commands must not inherit
// NOTIFY_SOCKET/WATCHDOG_*, or they can talk to systemd as if they were the
// service (systemctl run as on_master sends "ERRNO=…" when it fails; with
// NotifyAccess=main systemd ignores it, but nothing else should see it either).
t.test('commands do not inherit NOTIFY_SOCKET or WATCHDOG_USEC', async (t) => {
  const { lab, dir } = await testLab(t, ['a'], 'notify');
  const a = lab.host('a');
  const sock = path.join(dir, 'notify.sock');
  const listener = await listen(a, sock);
  t.teardown(listener.stop);
  const marker = path.join(dir, 'env');
  const config = writeConfig(dir, 'vigil', {
    node: 'notify-env', pidfile: path.join(dir, 'vigil.pid'), state_dir: path.join(dir, 'state'),
    vip: { interface: a.ifname, address: `${lab.freeIp(0)}/24`, on_slave: ['sh', '-c', `echo "NOTIFY_SOCKET=\${NOTIFY_SOCKET:-} WATCHDOG_USEC=\${WATCHDOG_USEC:-}" > ${marker}`] },
  });
  const d = startDaemon(a, config, { NOTIFY_SOCKET: sock, WATCHDOG_USEC: String(WATCHDOG_USEC) });
  // on_slave runs as the role starts (a slave: the HA IP is not on the interface).
  await waitFor(() => fs.existsSync(marker) && fs.readFileSync(marker, 'utf8').includes('\n'), START_MS, expected(d, listener.msgs, 'on_slave ran (start-up)', START_MS));
  t.equal(fs.readFileSync(marker, 'utf8').trim(), 'NOTIFY_SOCKET= WATCHDOG_USEC=', 'on_slave saw neither variable');
  await waitFor(() => listener.msgs.some((m) => m.fields.WATCHDOG === '1'), PING_MS + SLACK_MS, expected(d, listener.msgs, 'a WATCHDOG ping (one period)', PING_MS + SLACK_MS));
  t.pass('while the daemon itself still pings');
  d.proc.kill('SIGTERM');
  t.equal(await d.exited, 0);
});

// The watchdog's point: no ping while a role loop is stuck. A realistic stall:
// in container mode the slave's first step removes a leftover address with
// `vzctl set --ipdel`, and a removal that fails asks `vzlist -o status`
// whether the container still runs. With both tools hung (a container stuck
// on the vz lock), each run lasts command_timeout plus the kill grace (the
// tools here ignore TERM, so they go at KILL, 2 s later): one step waits on
// two of them, ~2 x (8 + 2) s, longer than the HA IP role's health bound
// (3 x max(check_interval, master_check_interval) + 2 x probe_timeout +
// command_timeout + 5 s = 14.4 s). The ping must stop meanwhile, the reason be
// logged, and the pings come back once the step ends. (A hung vzlist while
// waiting for the container, or one hung on_slave, stays within the bound:
// each run is killed at command_timeout, and the bound counts one.)
t.test('a role loop stuck on hung tools: WATCHDOG pings withheld with the reason logged, then resumed', async (t) => {
  const { lab, dir } = await testLab(t, ['a'], 'notify');
  const a = lab.host('a');
  const ct = '4502';
  const vzDir = path.join(dir, 'vz');
  const ctDir = path.join(vzDir, 'ct', ct);
  fs.mkdirSync(ctDir, { recursive: true });
  fs.writeFileSync(path.join(ctDir, 'status'), 'running\n');
  const leftover = lab.freeIp(1);
  fs.writeFileSync(path.join(ctDir, 'ips'), `${leftover}\n`);
  const ipFile = path.join(dir, 'ips');
  fs.writeFileSync(ipFile, `${leftover}/24\n`, { mode: 0o600 });
  // Wrappers around the fake tools: TERM ignored (inherited by their sleep);
  // vzctl hangs on the fake's own `hang` file; vzlist hangs on `-o status`
  // once an --ipdel was tried, while the file `hang-vzlist` exists.
  const vzctl = path.join(dir, 'vzctl');
  const vzlist = path.join(dir, 'vzlist');
  fs.writeFileSync(vzctl, `#!/bin/sh\ntrap '' TERM\nexec ${path.join(FAKE, 'vzctl')} "$@"\n`, { mode: 0o755 });
  fs.writeFileSync(vzlist, [
    '#!/bin/sh',
    "trap '' TERM",
    `if [ -f "$FAKE_VZ_DIR/hang-vzlist" ] && [ "$3" = status ] && grep -q -- --ipdel "$FAKE_VZ_DIR/calls"; then echo "vzlist $* (hung)" >>"$FAKE_VZ_DIR/calls"; sleep 60; fi`,
    `exec ${path.join(FAKE, 'vzlist')} "$@"`,
    '',
  ].join('\n'), { mode: 0o755 });
  fs.writeFileSync(path.join(ctDir, 'hang'), '');
  fs.writeFileSync(path.join(vzDir, 'hang-vzlist'), '');
  const calls = () => (fs.existsSync(path.join(vzDir, 'calls')) ? fs.readFileSync(path.join(vzDir, 'calls'), 'utf8') : '');

  const sock = path.join(dir, 'notify.sock');
  const listener = await listen(a, sock);
  t.teardown(listener.stop);
  const pidfile = path.join(dir, 'vigil.pid');
  const vip = {
    interface: a.ifname, address: `${lab.freeIp(0)}/24`, ip_file: ipFile, backend: 'vzctl', container: ct, vzctl, vzlist,
    container_settle: '0s', command_timeout: '8s',
    check_interval: '200ms', failure_check_interval: '100ms', probe_timeout: '100ms', master_check_interval: '400ms',
  };
  const config = writeConfig(dir, 'vigil', { node: 'notify-stall', pidfile, state_dir: path.join(dir, 'state'), log: { level: 'info' }, vip });
  const d = startDaemon(a, config, { NOTIFY_SOCKET: sock, WATCHDOG_USEC: String(WATCHDOG_USEC), FAKE_VZ_DIR: vzDir });
  const pings = () => listener.msgs.filter((m) => m.fields.WATCHDOG === '1');
  const commandTimeoutMs = durationMs(vip.command_timeout);
  /** The HA IP role's health bound (src/daemon/roles.ts, or src/roles/vip/daemon.ts since the role registry). */
  const healthMs = 3 * Math.max(durationMs(vip.check_interval), durationMs(vip.master_check_interval)) + 2 * durationMs(vip.probe_timeout) + commandTimeoutMs + 5000;
  /** One hung tool run: command_timeout, then the kill grace (they ignore TERM). */
  const hungRunMs = commandTimeoutMs + KILL_GRACE_MS;
  await waitFor(() => listener.msgs.some((m) => m.fields.READY === '1'), START_MS, expected(d, listener.msgs, 'READY=1 (start-up)', START_MS));
  // The container runs (no wait, container_settle 0s): the first step is the removal.
  const ipdelMs = CONTAINER_POLL_MS + SLACK_MS;
  await waitFor(() => /--ipdel/.test(calls()), ipdelMs, expected(d, listener.msgs, 'the leftover address being removed (vzctl set --ipdel)', ipdelMs));
  t.equal((await daemonStatus(pidfile))?.roles?.vip?.phase, 'initial-remove', 'the slave\'s first step: removing the leftover');
  await waitFor(() => pings().length >= 5, 5 * PING_MS + SLACK_MS, expected(d, listener.msgs, 'pings while the step is young (five periods)', 5 * PING_MS + SLACK_MS));
  t.pass(`${pings().length} pings while the step is within the bound`);

  const WITHHELD = /a role loop made no progress: withholding the systemd watchdog ping/;
  // Counted from the --ipdel: the health bound, then the next ping due.
  const withheldMs = healthMs + PING_MS + SLACK_MS;
  await waitFor(() => WITHHELD.test(d.logs()), withheldMs, expected(d, listener.msgs, 'the withholding log line (the health bound passed)', withheldMs));
  const st = await daemonStatus(pidfile);
  t.equal(st?.roles?.vip?.phase, 'initial-remove', 'withheld while the loop is still stuck in that step');
  t.ok(st?.pid, 'the daemon itself answers: only the loop is stuck');
  t.match(calls(), /vzlist -H -o status \d+ \(hung\)/, 'the step waits on the hung vzlist after the hung vzctl');
  const line = d.logs().split('\n').find((l) => WITHHELD.test(l))!;
  t.equal(JSON.parse(line).level, 'warn', 'logged as a warning');
  // The tools work again; the calls under way still run out their timeouts.
  fs.rmSync(path.join(ctDir, 'hang'));
  fs.rmSync(path.join(vzDir, 'hang-vzlist'));

  // The step waits on two hung runs, the vzctl and the vzlist after it (counted whole, from here).
  const stepEndMs = 2 * hungRunMs + SLACK_MS;
  await waitFor(async () => (await daemonStatus(pidfile))?.roles?.vip?.phase !== 'initial-remove', stepEndMs, expected(d, listener.msgs, 'the step to end (two hung tool runs)', stepEndMs));
  const resumedFrom = pings().length;
  await waitFor(() => pings().length >= resumedFrom + 5, 5 * PING_MS + SLACK_MS, expected(d, listener.msgs, 'pings again (five periods)', 5 * PING_MS + SLACK_MS));
  t.pass('pings resume once the loop moves on');
  const all = pings();
  const gaps = all.slice(1).map((p, i) => ({ ms: p.t - all[i]!.t }));
  const longest = Math.max(...gaps.map((g) => g.ms));
  t.ok(longest >= 3000, `no ping for ${Math.round(longest)} ms (pings are due every 200 ms)`);
  t.equal(gaps.filter((g) => g.ms >= 3000).length, 1, 'one such silence: the stall (pings flow before and after it)');
  const stalls = d.logs().split('\n').filter((l) => WITHHELD.test(l)).length;
  t.ok(stalls >= 3, `the reason logged at each withheld ping (${stalls} lines)`);
  d.proc.kill('SIGTERM');
  t.equal(await d.exited, 0, 'TERM: exit 0');
});
