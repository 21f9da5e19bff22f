// A daemon restarted after the IP file changed while it was down: the
// addresses it put on the interface in its earlier run carry its label, so
// the ones no longer wanted are removed (by the resumed master's reconcile, or
// the new slave's cleanup), and nobody else's addresses are touched.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { skipUnlessRoot, type LabHost } from '../support/lab';
import { testLab, writeConfig, startDaemon, daemonStatus, waitFor, expectedOf, vipTiming, takeoverBoundMs, masterCheckBoundMs, START_MS, SLACK_MS } from '../support/vigil';

if (skipUnlessRoot(t)) process.exit(0);

const TIMING = {
  check_interval: '200ms', failure_check_interval: '100ms', take_over_after: 3, probe_timeout: '100ms',
  master_check_interval: '400ms', ip_file_check_interval: '1s', announce: { count: 1, interval: '100ms' }, command_timeout: '5s',
};

const V = vipTiming(TIMING);
/** A takeover alone on the segment, counted from the daemon's start. */
const ALONE_MS = START_MS + takeoverBoundMs(V);
/** A resumed master's first reconcile: at start (its first master check is due at once). */
const RESUME_MS = START_MS + masterCheckBoundMs(V);
const addrs = async (h: LabHost) => (await h.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', h.ifname])).stdout;
const has = async (h: LabHost, ip: string) => (await addrs(h)).includes(` ${ip}/`);

t.test('addresses dropped from the IP file while the daemon was down are removed on restart', async (t) => {
  const { lab, dir } = await testLab(t, ['a'], 'viprestart');
  const a = lab.host('a');
  const [haIp, x, y, foreign] = [0, 1, 2, 3].map((i) => lab.freeIp(i)) as [string, string, string, string];
  const pidfile = path.join(dir, 'a', 'vigil.pid');
  fs.mkdirSync(path.dirname(pidfile), { recursive: true, mode: 0o755 });
  const ipFile = path.join(dir, 'ips');
  fs.writeFileSync(ipFile, `${x}\n${y}\n`, { mode: 0o644 });
  const config = writeConfig(dir, 'a', {
    node: 'a', pidfile, state_dir: path.join(dir, 'a', 'state'), log: { level: 'debug' },
    vip: { interface: a.ifname, address: `${haIp}/24`, ip_file: ipFile, ...TIMING },
  });
  const role = async () => (await daemonStatus(pidfile))?.roles?.vip?.role as string | undefined;
  // Someone else's address on the same interface, without vigil's label: never ours.
  await a.exec(['ip', 'addr', 'add', `${foreign}/32`, 'dev', a.ifname]);

  let d = startDaemon(a, config, pidfile);
  t.teardown(() => { d.proc.kill('SIGKILL'); });
  await waitFor(async () => (await role()) === 'master', ALONE_MS, expectedOf('a master (alone: a takeover after start)', ALONE_MS, [d]));
  // The takeover adds every wanted address at once.
  await waitFor(() => has(a, y), SLACK_MS, expectedOf('y added (with the takeover)', SLACK_MS, [d]));
  t.match(await addrs(a), new RegExp(` ${y.replace(/\./g, '\\.')}/32 .*${a.ifname}:vg`), 'vigil labels its addresses');

  await t.test('as master: the resumed master reconciles the dropped address away', async (t) => {
    d.proc.kill('SIGKILL');
    await d.exited;
    fs.writeFileSync(ipFile, `${x}\n`); // y dropped while the daemon is down
    t.ok(await has(a, y), 'y is still there after kill -9');
    d = startDaemon(a, config, pidfile);
    await waitFor(async () => (await role()) === 'master', START_MS, expectedOf('resumed as master (at start: it holds the HA IP)', START_MS, [d]));
    await waitFor(async () => !(await has(a, y)), RESUME_MS, expectedOf('y removed (the first reconcile)', RESUME_MS, [d]));
    t.pass('y, dropped from the IP file while vigil was down, is gone');
    t.ok(await has(a, x), 'x (still in the file) kept');
    t.ok(await has(a, haIp), 'HA IP kept: a restart is not a failover');
    t.ok(await has(a, foreign), 'an unlabelled address is not vigil\'s: untouched');
    t.same((await daemonStatus(pidfile))?.roles?.vip?.held, [`${haIp}/24`, `${x}/32`], 'held: exactly what is wanted');
  });

  await t.test('as slave: the initial cleanup removes it too', async (t) => {
    d.proc.kill('SIGKILL');
    await d.exited;
    fs.writeFileSync(ipFile, ''); // x dropped too
    // Without the HA IP on the interface the daemon starts as slave.
    await a.exec(['ip', 'addr', 'del', `${haIp}/24`, 'dev', a.ifname]);
    t.ok(await has(a, x), 'x is still there');
    d = startDaemon(a, config, pidfile);
    await waitFor(async () => !(await has(a, x)), START_MS, expectedOf('x removed (the new slave\'s initial cleanup, at start)', START_MS, [d]));
    t.pass('x, dropped while vigil was down, is gone');
    // Alone on the segment, it takes over again: with the HA IP only.
    await waitFor(async () => (await role()) === 'master', takeoverBoundMs(V), expectedOf('takes over (alone)', takeoverBoundMs(V), [d]));
    t.notOk(await has(a, x), 'x not added back');
    t.ok(await has(a, foreign), 'the unlabelled address untouched');
  });

  await t.test('graceful stop leaves none of vigil\'s addresses', async (t) => {
    d.proc.kill('SIGTERM');
    t.equal(await d.exited, 0, 'exit 0');
    const left = await addrs(a);
    t.notMatch(left, /:vg/, 'no labelled address left');
    t.notOk(left.includes(` ${haIp}/`), 'HA IP removed');
    t.ok(left.includes(` ${foreign}/`), 'the unlabelled address untouched');
  });
});
