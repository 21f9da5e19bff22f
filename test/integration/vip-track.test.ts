// vip.track: ARP presence is not liveness. A master whose service check fails
// steps down; a node whose check fails never takes over.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { skipUnlessRoot, type LabHost } from '../support/lab';
import {
  testLab, writeConfig, startDaemon, daemonStatus, waitFor, runCli, logsMatching, sleep, expectedOf, vipTiming, takeoverWindowMs, takeoverBoundMs,
  oneMasterBoundMs, trackBoundMs, START_MS,
} from '../support/vigil';

if (skipUnlessRoot(t)) process.exit(0);

const TIMING = {
  check_interval: '200ms', failure_check_interval: '100ms', probe_timeout: '100ms', master_check_interval: '400ms', announce: { count: 1, interval: '100ms' },
};
const TRACK = { interval: '200ms', fall: 3, rise: 2 };
const V = vipTiming({ ...TIMING, track: TRACK });

t.test('track: the failing master steps down, the failing node never takes over', async (t) => {
  const { lab, dir } = await testLab(t, ['a', 'b'], 'track');
  const haIp = lab.freeIp(0);
  const nodes = ['a', 'b'].map((name) => {
    const host: LabHost = lab.host(name);
    const healthy = path.join(dir, `${name}.healthy`);
    fs.writeFileSync(healthy, '');
    const pidfile = path.join(dir, name, 'vigil.pid');
    fs.mkdirSync(path.dirname(pidfile), { recursive: true, mode: 0o755 });
    const config = writeConfig(dir, name, {
      pidfile, state_dir: path.join(dir, name, 'st'), log: { level: 'debug' },
      vip: { interface: host.ifname, address: `${haIp}/24`, ...TIMING, track: { command: ['test', '-f', healthy], ...TRACK } },
    });
    return { name, host, healthy, pidfile, config, daemon: startDaemon(host, config, pidfile) };
  });
  const role = async (n: (typeof nodes)[number]) => (await daemonStatus(n.pidfile))?.roles?.vip?.role as string | undefined;
  const ds = Object.fromEntries(nodes.map((n) => [n.name, n.daemon]));
  // Eligible once the check passed `rise` times, then a takeover (and maybe a start-up conflict).
  const oneMasterMs = START_MS + trackBoundMs(V, V.track!.rise) + oneMasterBoundMs(V);
  await waitFor(async () => {
    const r = await Promise.all(nodes.map(role));
    return r.includes('master') && r.includes('slave');
  }, oneMasterMs, expectedOf('one master (start, rise passing checks, a takeover)', oneMasterMs, ds));
  const master = (await role(nodes[0]!)) === 'master' ? nodes[0]! : nodes[1]!;
  const other = master === nodes[0] ? nodes[1]! : nodes[0]!;
  fs.rmSync(master.healthy);
  // `fall` failing checks, the step-down (on_slave, removal), then the other's takeover.
  const swapMs = trackBoundMs(V, V.track!.fall) + takeoverBoundMs(V);
  await waitFor(async () => (await role(other)) === 'master' && (await role(master)) === 'slave', swapMs, expectedOf(`${master.name} steps down (track fall), ${other.name} takes over`, swapMs, ds));
  t.pass('the master whose check failed stepped down and the healthy node took over');
  t.match(await logsMatching(master.daemon.logs, /track check failed 3 times/), /track check failed 3 times/);
  // Now the healthy master goes away; the failing node must not take over.
  const r = await runCli(['stop', '-c', other.config]);
  t.equal(r.code, 0, r.stderr);
  await sleep(2.5 * takeoverWindowMs(V)); // two and a half takeover windows: a takeover had time to happen twice
  t.equal(await role(master), 'slave', 'a node whose check fails never takes over');
  t.match(await logsMatching(master.daemon.logs, /track check is failing: not taking over/), /track check is failing: not taking over/);
  // Its check passes `rise` times: it takes over.
  fs.writeFileSync(master.healthy, '');
  // `rise` passing checks; its failure count already stands at take_over_after: the next silent probe takes over.
  const riseMs = trackBoundMs(V, V.track!.rise) + takeoverBoundMs(V);
  await waitFor(async () => (await role(master)) === 'master', riseMs, expectedOf('takeover once the check passes rise times', riseMs, ds));
  t.pass('takes over once the check passes rise times');
});
