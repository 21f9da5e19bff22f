// The kernel filter on the HA IP role's ARP socket: a lab host floods the
// master with 10,000 ARP frames that concern neither the HA IP nor its
// neighbours (requests and replies for other IPs, other hosts' gratuitous
// ARP, probes for other IPs); not one reaches JavaScript (the `delivered`
// counter of `vigil status --json`), and a real conflict is still seen.
import t from 'tap';
import { skipUnlessRoot } from '../support/lab';
import { testLab, startDaemon, daemonStatus, waitFor, runCli, vipNode, type Daemon } from '../support/vigil';
import { ArpSocket } from '../../src/net/arp/socket';
import { buildAnnounceReply, buildAnnounceRequest, buildProbe, buildRequest, encodeArp } from '../../src/net/arp/codec';

if (skipUnlessRoot(t, ['ip'])) process.exit(0);

const TIMING = {
  check_interval: '1s', failure_check_interval: '300ms', take_over_after: 3, probe_timeout: '200ms',
  master_check_interval: '1s', announce: { count: 1, interval: '100ms' }, command_timeout: '5s', neighbours: [] as string[],
};
const tail = (d: Daemon) => () => d.logs().split('\n').slice(-15).join('\n');

t.test('10,000 unrelated ARP frames: none delivered to JavaScript; a real conflict still seen', async (t) => {
  const { lab, dir, daemons } = await testLab(t, ['a', 'c'], 'vipflt');
  const haIp = lab.freeIp(0);
  const c = lab.host('c');
  const a = vipNode(dir, lab.host('a'), haIp, TIMING);
  const da = startDaemon(a.h, a.config, a.pidfile);
  daemons.push(da);
  await waitFor(async () => (await a.role()) === 'master', 20_000, () => `a master within 20 s; last log lines:\n${tail(da)()}`);
  // Let the takeover's own traffic settle (announcements, c learning a's MAC).
  await new Promise((r) => setTimeout(r, 1500));
  const before = (await daemonStatus(a.pidfile))?.roles?.vip?.arp?.delivered as number | undefined;
  t.type(before, 'number', 'status --json has the delivered counter');

  const sock = c.inNetns(() => ArpSocket.open(c.ifname));
  t.teardown(() => sock.close());
  const other = (i: number) => lab.freeIp(10 + (i % 40));
  const mac = (i: number) => `02:aa:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
  const frames = (i: number): Buffer => {
    switch (i % 5) {
      case 0: return buildRequest({ senderMac: sock.macBytes, senderIp: c.ip, targetIp: other(i) });
      case 1: return buildAnnounceRequest({ mac: mac(i), ip: other(i) });
      case 2: return buildAnnounceReply({ mac: mac(i), ip: other(i) });
      case 3: return buildProbe({ senderMac: mac(i), targetIp: other(i) });
      default: return encodeArp({ op: 2, ethDst: 'ff:ff:ff:ff:ff:ff', ethSrc: mac(i), senderMac: mac(i), senderIp: other(i), targetMac: '00:00:00:00:00:00', targetIp: a.h.ip });
    }
  };
  let sent = 0;
  for (let i = 0; i < 10_000; i++) {
    for (let tries = 0; ; tries++) {
      try { sock.send(frames(i)); sent++; break; } catch (e) {
        if (tries > 50) throw e;
        await new Promise((r) => setTimeout(r, 2));
      }
    }
    if (i % 200 === 199) await new Promise((r) => setImmediate(r));
  }
  t.equal(sent, 10_000, '10,000 frames sent');
  // Give the master three master checks to have received whatever got through.
  await new Promise((r) => setTimeout(r, 3000));
  const json = await runCli(['status', '--json', '-c', a.config]);
  t.equal(json.code, 0, json.stderr);
  const after = JSON.parse(json.stdout)?.roles?.vip?.arp?.delivered as number;
  t.equal(after, before, `expected no frame of the flood delivered to JavaScript (delivered ${before} before, ${after} after)`);

  // A real conflict: c takes the HA IP and announces it; the master must see it.
  await c.exec(['ip', 'addr', 'add', `${haIp}/32`, 'dev', c.ifname]);
  sock.send(buildAnnounceRequest({ mac: sock.macBytes, ip: haIp }));
  await waitFor(async () => (await daemonStatus(a.pidfile))?.roles?.vip?.lastConflict?.mac === c.mac, 15_000,
    () => `a saw c (${c.mac}) answer for the HA IP within 15 s; last log lines:\n${tail(da)()}`);
  t.pass('the conflict was seen');
});
