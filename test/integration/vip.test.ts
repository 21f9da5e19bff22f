// The HA IP role end to end: real daemons in lab hosts, a client probing
// the HA IP over real ARP, faults made with real link cuts and signals.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { skipUnlessRoot, type LabHost } from '../support/lab';
import {
  testLab, scratchDir, writeConfig, startDaemon, daemonStatus, waitFor, runCli, sleep, expectedOf, vipTiming, takeoverWindowMs, takeoverBoundMs,
  oneMasterBoundMs, releaseBoundMs, stepDownBoundMs, masterCheckBoundMs, ipFileBoundMs, START_MS, SLACK_MS, type Daemon,
} from '../support/vigil';
import { ArpProber } from '../../src/net/arp/prober';

if (skipUnlessRoot(t)) process.exit(0);

/** Aggressive timings keep the suite fast; the logic is the same as the defaults. */
const TIMING = {
  check_interval: '200ms', failure_check_interval: '100ms', take_over_after: 3, probe_timeout: '100ms',
  master_check_interval: '400ms', ip_file_check_interval: '1s', announce: { count: 2, interval: '200ms' }, command_timeout: '5s',
};
const V = vipTiming(TIMING);
/** The client probes every CLIENT_MS: a new holder answers its next probe. */
const CLIENT_MS = 50;
/** By when the client has heard the new holder after a takeover: its announcements, the client's next probe; plus slack. */
const CLIENT_SEES_MS = V.announce.count * V.announce.intervalMs + CLIENT_MS + SLACK_MS;

interface Node { host: LabHost; config: string; pidfile: string; marker: string; daemon?: Daemon }

function makeNode(dir: string, host: LabHost, haIp: string, extra: Record<string, unknown> = {}): Node {
  const pidfile = path.join(dir, host.name, 'vigil.pid');
  const marker = path.join(dir, host.name, 'events');
  fs.mkdirSync(path.join(dir, host.name), { recursive: true, mode: 0o755 });
  const config = writeConfig(dir, host.name, {
    node: `node-${host.name}`, pidfile, state_dir: path.join(dir, host.name, 'state'),
    log: { level: 'debug' },
    vip: {
      interface: host.ifname, address: `${haIp}/24`, ...TIMING,
      on_master: `echo master >> ${marker}`, on_slave: `echo slave >> ${marker}`, ...extra,
    },
  });
  return { host, config, pidfile, marker };
}

const role = async (n: Node) => (await daemonStatus(n.pidfile))?.roles?.vip?.role as string | undefined;
const holds = async (n: Node, ip: string) => (await n.host.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', n.host.ifname])).stdout.includes(` ${ip}/`);
const events = (n: Node) => (fs.existsSync(n.marker) ? fs.readFileSync(n.marker, 'utf8').trim().split('\n').filter(Boolean) : []);

/** A client in its own host probing the HA IP every `everyMs`, recording who answered. */
function startClient(host: LabHost, ip: string, everyMs = CLIENT_MS) {
  const prober = host.inNetns(() => ArpProber.open(host.ifname));
  const answers: { at: number; mac: string }[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const started = Date.now();
      // untilTimeout: every answerer within the period is recorded, so a split brain
      // (two MACs answering) shows, not just whichever answered first.
      const r = await prober.probe(ip, { timeoutMs: everyMs, acceptConflict: false, untilTimeout: true });
      if (r.status === 'answered') for (const rep of r.replies) answers.push({ at: Date.now(), mac: rep.mac });
      const wait = everyMs - (Date.now() - started);
      if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    }
  })();
  return {
    answers,
    macsSince: (at: number) => new Set(answers.filter((a) => a.at >= at).map((a) => a.mac)),
    /** Longest time without any answer between `from` and `to`. */
    maxGap(from: number, to: number) {
      const times = answers.filter((a) => a.at >= from && a.at <= to).map((a) => a.at);
      let gap = 0;
      let prev = from;
      for (const x of [...times, to]) { gap = Math.max(gap, x - prev); prev = x; }
      return gap;
    },
    async stop() { stopped = true; await loop; prober.close(); },
  };
}

t.test('two nodes and a client', async (t) => {
  const { lab, dir } = await testLab(t, ['a', 'b', 'client'], 'vip');
  const haIp = lab.freeIp(0);
  const a = makeNode(dir, lab.host('a'), haIp);
  const b = makeNode(dir, lab.host('b'), haIp);
  const client = startClient(lab.host('client'), haIp);
  t.teardown(() => client.stop());
  a.daemon = startDaemon(a.host, a.config, a.pidfile);
  b.daemon = startDaemon(b.host, b.config, b.pidfile);
  const ds = { a: a.daemon, b: b.daemon };
  const both = () => ({ a: a.daemon, b: b.daemon }); // read again after a restart

  const oneMaster = async () => {
    const roles = [await role(a), await role(b)];
    return roles.filter((r) => r === 'master').length === 1 && roles.filter((r) => r === 'slave').length === 1 ? roles : undefined;
  };
  await waitFor(oneMaster, START_MS + oneMasterBoundMs(V), expectedOf('exactly one master (start, a takeover, a start-up conflict settled)', START_MS + oneMasterBoundMs(V), ds));
  // Settle: any start-up conflict resolved (it takes a master check), then it must stay exactly one.
  await sleep(4 * V.masterCheckIntervalMs); // four master checks
  t.ok(await oneMaster(), 'exactly one master after start');
  let master = (await role(a)) === 'master' ? a : b;
  let slave = master === a ? b : a;
  t.ok(await holds(master, haIp), 'the master holds the HA IP');
  t.notOk(await holds(slave, haIp), 'the slave does not');
  await waitFor(() => client.macsSince(Date.now() - 500).has(master.host.mac), CLIENT_SEES_MS, expectedOf('client sees the master MAC', CLIENT_SEES_MS, ds));
  t.same([...client.macsSince(Date.now() - 500)], [master.host.mac], 'the client gets answers from the master only');
  // (A start-up conflict, both taking over in the same instant, may add a master/slave pair.)
  t.equal(events(slave)[0], 'slave', 'on_slave ran at start on the slave, before anything else');

  await t.test('the slave link cut: it holds (silence through a dead link is not evidence)', async (t) => {
    await slave.host.cutLink();
    await sleep(2.5 * takeoverWindowMs(V)); // two and a half takeover windows: a takeover had time to happen twice
    const st = (await daemonStatus(slave.pidfile))?.roles?.vip;
    t.equal(st?.role, 'slave', 'the isolated slave did not take over');
    t.equal(st?.failures, 0, 'its probes were unknown, not failures');
    t.match(st?.lastProbe?.error ?? '', /no carrier/);
    await slave.host.restoreLink();
    await sleep(2 * V.masterCheckIntervalMs + 2 * V.checkIntervalMs); // two master checks and two slave probes over the healed link
    t.equal(await role(master), 'master', 'the master was never disturbed');
    t.equal((await daemonStatus(master.pidfile))?.roles?.vip?.stepDowns, 0);
  });

  await t.test('the master link cut: the other takes over', async (t) => {
    const cutAt = Date.now();
    await master.host.cutLink();
    await waitFor(async () => (await role(slave)) === 'master', takeoverBoundMs(V), expectedOf(`${slave.host.name} takes over`, takeoverBoundMs(V), both()));
    await waitFor(() => client.macsSince(cutAt).has(slave.host.mac), CLIENT_SEES_MS, expectedOf('client answered by the new MAC', CLIENT_SEES_MS, both()));
    t.pass(`client answered by the new master ${Date.now() - cutAt} ms after the cut`);
    t.ok(events(slave).includes('master'), 'on_master ran on the new master');
  });

  await t.test('the cut master releases the IP (fault); link restored: no split brain', async (t) => {
    // Counted from here, after the takeover: the link went down before it, so this is generous.
    await waitFor(async () => (await role(master)) === 'slave', releaseBoundMs(V), expectedOf(`the isolated master ${master.host.name} releases the HA IP`, releaseBoundMs(V), both()));
    t.notOk(await holds(master, haIp), 'its address is gone while the link is down');
    t.ok(events(master).at(-1) === 'slave', 'it ran on_slave');
    // (A simultaneous start may already have settled one conflict: count from here.)
    const stepDownsBefore = [(await daemonStatus(slave.pidfile))?.roles?.vip?.stepDowns, (await daemonStatus(master.pidfile))?.roles?.vip?.stepDowns];
    const healAt = Date.now();
    await master.host.restoreLink();
    await sleep(5 * V.masterCheckIntervalMs); // five master checks: a conflict had time to show and settle
    t.equal(await role(slave), 'master', 'the new master keeps the IP: no failback');
    t.equal(await role(master), 'slave');
    const stepDownsAfter = [(await daemonStatus(slave.pidfile))?.roles?.vip?.stepDowns, (await daemonStatus(master.pidfile))?.roles?.vip?.stepDowns];
    t.same(stepDownsAfter, stepDownsBefore, 'no conflict to settle after the heal');
    const gap = client.maxGap(healAt, Date.now());
    t.ok(gap <= 500, `longest client gap after the heal: ${gap} ms`);
    [master, slave] = [slave, master];
  });

  await t.test('kill -9 of the master daemon and a restart: no failover', async (t) => {
    const before = (await daemonStatus(slave.pidfile))?.roles?.vip?.takeovers;
    const eventsBefore = events(master).length;
    master.daemon!.proc.kill('SIGKILL');
    await master.daemon!.exited;
    t.ok(await holds(master, haIp), 'the kernel keeps the address after kill -9');
    master.daemon = startDaemon(master.host, master.config, master.pidfile);
    await waitFor(async () => (await role(master)) === 'master', START_MS, expectedOf('restarted daemon resumes as master (at start: it holds the HA IP)', START_MS, both()));
    await sleep(2 * takeoverWindowMs(V)); // two takeover windows: the slave had time to take over twice
    t.equal((await daemonStatus(slave.pidfile))?.roles?.vip?.takeovers, before, 'the slave never took over');
    t.equal(await role(slave), 'slave');
    t.equal(events(master).length, eventsBefore, 'neither on_slave nor on_master ran on the restart');
  });

  await t.test('an IP file edit reaches the master interface', async (t) => {
    // The IP file is not configured for these nodes: use a reload to add one.
    const ipFile = path.join(dir, 'ha-ips');
    const extra1 = lab.freeIp(1);
    const extra2 = lab.freeIp(2);
    fs.writeFileSync(ipFile, `# extra addresses\n${extra1}\nnot-an-ip\n`, { mode: 0o644 });
    for (const n of [a, b]) {
      const cfg = fs.readFileSync(n.config, 'utf8').replace(/\nvip:\n/, `\nvip:\n  ip_file: ${ipFile}\n`);
      fs.writeFileSync(n.config, cfg, { mode: 0o600 });
      const r = await runCli(['reload', '-c', n.config]);
      t.equal(r.code, 0, `reload of ${n.host.name}: ${r.stderr}`);
    }
    // The reload reads the file at once; the master's reconcile adds it (a master check at most).
    await waitFor(() => holds(master, extra1), masterCheckBoundMs(V), expectedOf('extra address added', masterCheckBoundMs(V), both()));
    fs.writeFileSync(ipFile, `${extra2}\n`, { mode: 0o644 });
    await waitFor(async () => (await holds(master, extra2)) && !(await holds(master, extra1)), ipFileBoundMs(V), expectedOf('edit applied: added and dropped (an IP file check)', ipFileBoundMs(V), both()));
    t.pass('added and dropped addresses follow the file');
    t.notOk(await holds(slave, extra2), 'the slave holds none of them');
  });

  await t.test('a second instance is refused', async (t) => {
    const r = await runCli(['run', '-c', master.config], master.host);
    t.equal(r.code, 1, 'exit 1: refused (another instance), not bad input');
    t.match(r.stderr, /another vigil \(pid \d+\) holds/);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  });

  await t.test('vigil stop on the master: on_slave, addresses removed, the other takes over', async (t) => {
    const stopAt = Date.now();
    const r = await runCli(['stop', '-c', master.config]);
    t.equal(r.code, 0, r.stderr);
    t.equal(events(master).at(-1), 'slave', 'on_slave ran');
    t.notOk(await holds(master, haIp), 'addresses removed');
    t.notOk(fs.existsSync(master.pidfile), 'PID file removed');
    await waitFor(async () => (await role(slave)) === 'master', takeoverBoundMs(V), expectedOf(`${slave.host.name} takes over`, takeoverBoundMs(V), both()));
    await waitFor(() => client.macsSince(stopAt).has(slave.host.mac), CLIENT_SEES_MS, expectedOf('client sees the new master', CLIENT_SEES_MS, both()));
    t.pass(`takeover seen by the client ${Date.now() - stopAt} ms after the stop began`);
  });

  await runCli(['stop', '-c', slave.config]);
});

t.test('bad config and bad files are refused with exit 2 and one line', async (t) => {
  const dir = scratchDir('badcfg');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const bad = writeConfig(dir, 'bad', { vip: { interface: 'eth0', address: '10.0.0.300/24' } });
  let r = await runCli(['run', '-c', bad]);
  t.equal(r.code, 2);
  t.match(r.stderr, /vip\.address/);
  t.equal(r.stderr.trim().split('\n').length, 1);
  const open = writeConfig(dir, 'open', { vip: { interface: 'eth0', address: '10.0.0.3/24' } });
  fs.chmodSync(open, 0o666);
  r = await runCli(['run', '-c', open]);
  t.equal(r.code, 2);
  t.match(r.stderr, /0666/);
  t.equal(r.stderr.trim().split('\n').length, 1);
  r = await runCli(['run', '-c', path.join(dir, 'missing.yml')]);
  t.equal(r.code, 2);
  t.equal(r.stderr.trim().split('\n').length, 1);
  // A PID file directory that is world-writable.
  const wdir = path.join(dir, 'world');
  fs.mkdirSync(wdir, { mode: 0o777 });
  fs.chmodSync(wdir, 0o777);
  const pw = writeConfig(dir, 'pw', { pidfile: path.join(wdir, 'v.pid'), state_dir: dir, vip: { interface: 'lo', address: '10.0.0.3/24' } });
  r = await runCli(['run', '-c', pw]);
  t.equal(r.code, 2);
  t.match(r.stderr, /world-writable/);
  t.equal(r.stderr.trim().split('\n').length, 1);
});

t.test('split brain: both start holding the HA IP; the lower MAC keeps it, the IP never goes silent', async (t) => {
  const { lab, dir } = await testLab(t, ['a', 'b', 'client'], 'vipsb');
  const haIp = lab.freeIp(0);
  const nodes = [makeNode(dir, lab.host('a'), haIp), makeNode(dir, lab.host('b'), haIp)];
  for (const n of nodes) await n.host.exec(['ip', 'addr', 'add', `${haIp}/24`, 'dev', n.host.ifname]);
  const client = startClient(lab.host('client'), haIp, 20);
  t.teardown(() => client.stop());
  for (const n of nodes) t.ok(await holds(n, haIp), `node ${n.host.name} holds the HA IP before vigil runs`);
  await waitFor(() => client.answers.length > 0, 20 + SLACK_MS, 'the HA IP answering (the client probes every 20 ms; no daemon yet)');
  const startAt = Date.now();
  for (const n of nodes) n.daemon = startDaemon(n.host, n.config, n.pidfile);
  // Both resume as master (they hold the HA IP), check at once and settle it: a step-down.
  const settleMs = START_MS + stepDownBoundMs(V);
  await waitFor(async () => {
    const r = [await role(nodes[0]!), await role(nodes[1]!)];
    return r.includes('master') && r.includes('slave');
  }, settleMs, expectedOf('one master', settleMs, nodes.map((n) => n.daemon)));
  await sleep(3 * V.masterCheckIntervalMs); // three more master checks: it stays settled
  const lower = [...nodes].sort((x, y) => (BigInt('0x' + x.host.mac.replace(/:/g, '')) < BigInt('0x' + y.host.mac.replace(/:/g, '')) ? -1 : 1))[0]!;
  const higher = nodes.find((n) => n !== lower)!;
  t.equal(await role(lower), 'master', 'the lower MAC kept the HA IP');
  t.equal(await role(higher), 'slave');
  t.notOk(await holds(higher, haIp), 'the other removed it');
  t.same(events(higher), ['slave'], 'on_slave ran on the loser (before its addresses went)');
  t.same(events(lower), [], 'nothing ran on the keeper (it resumed as master)');
  const gap = client.maxGap(startAt, Date.now());
  // A real gap (both stepping down, one re-taking) lasts a takeover window
  // (≥ 200 + 3×100 ms here); 400 leaves room for a loaded machine's jitter.
  t.ok(gap <= 400, `the client was never without an answer for more than ${gap} ms`);
  t.same([...client.macsSince(Date.now() - 500)], [lower.host.mac], 'only the keeper answers afterwards');
  for (const n of nodes) await runCli(['stop', '-c', n.config]);
});
