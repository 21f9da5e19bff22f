// Integration: the real AF_PACKET ARP socket and prober in a lab of network
// namespaces (hosts a and b on a bridge). Probes run in-process with the
// main thread switched into host a's namespace while the socket opens.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createLab, skipUnlessRoot } from '../support/lab';
import type { Lab, LabHost } from '../support/lab';
import type { Test } from 'tap';
import { waitFor, SLACK_MS } from '../support/vigil';
import { ArpProber, announce, probe, sharedSocketCount } from '../../src/net/arp/prober';
import type { ProbeResult } from '../../src/net/arp/prober';
import { ArpSocket } from '../../src/net/arp/socket';
import { buildProbe, isProbe } from '../../src/net/arp/codec';
import { Netlink } from '../../src/net/netlink';
import { native } from '../../src/native';
import { setLogLevel } from '../../src/log';

setLogLevel('silent');

const ROOT = path.resolve(__dirname, '..', '..');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const fdCount = (): number => fs.readdirSync('/proc/self/fd').length;

if (!skipUnlessRoot(t)) {
  let lab: Lab;
  let a: LabHost;
  let b: LabHost;

  t.before(async () => {
    lab = await createLab({ hosts: ['a', 'b'] });
    a = lab.host('a');
    b = lab.host('b');
  });
  t.teardown(async () => {
    await lab?.destroy();
  });

  /** After a restore: a's eth0 up with carrier again (no setting governs it: slack). */
  const carrierBack = () => waitFor(() => a.carrierUp(), SLACK_MS, `a's eth0 up with carrier (LOWER_UP) within ${SLACK_MS} ms of the restore`);

  /** Probe from host a: the socket opens inside a's namespace, the wait happens outside. */
  const probeFromA = (ip: string, opts: Parameters<typeof probe>[2] = {}): Promise<ProbeResult> =>
    a.inNetns(() => probe(ip, a.ifname, opts));

  t.test('a present IP answers with the right MAC', async (t) => {
    const r = await probeFromA(b.ip, { timeoutMs: 1000 });
    t.equal(r.status, 'answered');
    if (r.status !== 'answered') return;
    t.equal(r.mac, b.mac, "b's MAC");
    t.equal(r.replies[0]!.kind, 'reply');
    t.ok(r.rttMs > 0 && r.rttMs < 1000, `rtt ${r.rttMs.toFixed(3)} ms`);
    // Linux answers an RFC 5227 probe unicast to the prober, target IP 0.0.0.0.
    t.equal(r.replies[0]!.packet.targetIp, '0.0.0.0');
    t.equal(r.replies[0]!.packet.ethDst, a.mac);
  });

  t.test('an ordinary request from the interface address is answered too', async (t) => {
    const r = await probeFromA(b.ip, { source: 'request', timeoutMs: 1000 });
    t.equal(r.status, 'answered');
    t.equal(r.status === 'answered' && r.mac, b.mac);
    t.equal(r.status === 'answered' && r.replies[0]!.packet.targetIp, a.ip, 'the reply is addressed to our IP');
  });

  t.test('a secondary address answers with its holder\'s MAC', async (t) => {
    const vip = lab.freeIp(0);
    const before = await probeFromA(vip, { timeoutMs: 200 });
    t.equal(before.status, 'silent', 'not held yet');
    const add = await b.exec(['ip', 'addr', 'add', `${vip}/24`, 'dev', 'eth0']);
    t.equal(add.code, 0, add.stderr);
    const after = await probeFromA(vip, { timeoutMs: 1000 });
    t.equal(after.status, 'answered');
    t.equal(after.status === 'answered' && after.mac, b.mac);
    await b.exec(['ip', 'addr', 'del', `${vip}/24`, 'dev', 'eth0']);
  });

  t.test('an absent IP reports no answer at its timeout (not before, not much after)', async (t) => {
    for (const [timeoutMs, count, intervalMs] of [[300, 1, 0], [250, 3, 100]] as const) {
      const expected = timeoutMs + (count - 1) * intervalMs;
      const t0 = performance.now();
      const r = await probeFromA(lab.freeIp(1), { timeoutMs, count, intervalMs });
      const took = performance.now() - t0;
      t.equal(r.status, 'silent', `count ${count}: silent`);
      t.equal(r.sent, count);
      // Never early; late only by scheduling (generous for a loaded CI machine).
      t.ok(took >= expected - 5 && took <= expected + 250, `count ${count}: took ${took.toFixed(1)} ms, expected ${expected}`);
    }
  });

  t.test('concurrent probes share one socket and are matched', async (t) => {
    const ips = [b.ip, lab.freeIp(2), b.ip, lab.freeIp(3), a.ip];
    const results = await a.inNetns(() => {
      const ps = ips.map((ip) => probe(ip, a.ifname, { timeoutMs: 300 }));
      t.equal(sharedSocketCount(), 1, 'five probes in flight, one socket');
      return Promise.all(ps);
    });
    t.same(results.map((r) => r.status), ['answered', 'silent', 'answered', 'silent', 'silent'],
      "b answers; free IPs and a's own address (the kernel does not answer its own probe) are silent");
    t.equal(sharedSocketCount(), 0, 'closed after the last');
  });

  t.test('1000 probes leak no file descriptor', async (t) => {
    await probeFromA(b.ip, { timeoutMs: 500 }); // warm up: addon loaded, loggers created
    const before = fdCount();
    let answered = 0;
    for (let i = 0; i < 1000; i++) {
      // Alternate present and absent IPs; absent ones time out quickly.
      const r = await probeFromA(i % 10 === 0 ? lab.freeIp(4) : b.ip, { timeoutMs: i % 10 === 0 ? 5 : 500 });
      if (r.status === 'answered') answered++;
    }
    // And a burst of concurrent ones on a long-lived prober.
    const prober = a.inNetns(() => ArpProber.open(a.ifname));
    const burst = await Promise.all(Array.from({ length: 200 }, () => prober.probe(b.ip, { timeoutMs: 1000 })));
    prober.close();
    const after = fdCount();
    t.equal(answered, 900, 'every probe of the present IP answered');
    t.ok(burst.every((r) => r.status === 'answered'), 'burst answered');
    t.equal(after, before, `fds before ${before}, after ${after}`);
    t.equal(sharedSocketCount(), 0);
  });

  t.test('the long-lived prober rides out a link cut', async (t) => {
    const prober = a.inNetns(() => ArpProber.open(a.ifname));
    t.equal((await prober.probe(b.ip, { timeoutMs: 500 })).status, 'answered');
    await a.cutLink();
    // Carrier lost on a's side: nothing comes back; the result must not be an answer.
    const cut = await prober.probe(b.ip, { timeoutMs: 200 });
    t.not(cut.status, 'answered', `while cut: ${cut.status}`);
    await a.restoreLink();
    await sleep(100); // kept from before: a moment for the bridge port to forward
    await carrierBack();
    const back = await prober.probe(b.ip, { timeoutMs: 1000 });
    t.equal(back.status, 'answered', 'answers again after restore, same socket');
    prober.close();
  });

  t.test('a deleted interface is an error result, not silence; the prober reopens only in its namespace', async (t) => {
    const prober = a.inNetns(() => ArpProber.open(a.ifname));
    await a.deleteLink();
    try {
      // From outside a's namespace: the socket is gone, and it must not be
      // reopened here (that would be the machine's own eth0).
      const outside = await prober.probe(b.ip, { timeoutMs: 200 });
      t.equal(outside.status, 'error', `outside: ${outside.status}`);
      if (outside.status === 'error') t.match(outside.error.code, /^(ENETNS|ENXIO|ENETDOWN)$/, `outside: ${outside.error.code} ${outside.error.message}`);
      // From inside, while eth0 does not exist: reopening fails with ENODEV.
      const inside = await a.inNetns(() => prober.probe(b.ip, { timeoutMs: 200 }));
      t.equal(inside.status, 'error');
      t.equal(inside.status === 'error' && inside.error.code, 'ENODEV');
      t.equal(inside.status === 'error' && inside.error.message, "no such interface 'eth0'");
      const fresh = await probeFromA(b.ip, { timeoutMs: 200 });
      t.equal(fresh.status === 'error' && fresh.error.code, 'ENODEV', 'a one-shot probe too');
      await a.restoreLink();
      await sleep(100); // kept from before: a moment for the bridge port to forward
      await carrierBack();
      const back = await a.inNetns(() => prober.probe(b.ip, { timeoutMs: 1000 }));
      t.equal(back.status, 'answered', 'reopened on the recreated eth0');
    } finally {
      prober.close();
      await a.restoreLink().catch(() => undefined);
    }
  });

  t.test('admin down is an error, admin up works again', async (t) => {
    const prober = a.inNetns(() => ArpProber.open(a.ifname));
    try {
      t.equal((await a.exec(['ip', 'link', 'set', 'eth0', 'down'])).code, 0);
      await sleep(50);
      const down = await a.inNetns(() => prober.probe(b.ip, { timeoutMs: 200 }));
      t.equal(down.status, 'error', `down: ${down.status}`);
      if (down.status === 'error') t.equal(down.error.code, 'ENETDOWN', down.error.message);
    } finally {
      await a.exec(['ip', 'link', 'set', 'eth0', 'up']);
    }
    await sleep(100); // as before
    await carrierBack();
    const up = await a.inNetns(() => prober.probe(b.ip, { timeoutMs: 1000 }));
    t.equal(up.status, 'answered');
    prober.close();
  });

  /** b's neighbour entry for `ip`, read through netlink inside b's namespace. */
  async function neighbourOnB(ip: string): Promise<{ mac?: string; state: string[] } | undefined> {
    const nl = b.inNetns(() => Netlink.openSync());
    try {
      return (await nl.neighbours('eth0')).find((n) => n.address === ip);
    } finally {
      nl.close();
    }
  }

  /**
   * b's entry for `ip` once it points at `mac`, or what it is after `ms`: the
   * announce that changes it has been sent when this is called, so the bound
   * is the kernel's processing of a frame: slack.
   */
  async function waitNeighbour(ip: string, mac: string, ms = SLACK_MS): Promise<{ mac?: string; state: string[] } | undefined> {
    const end = performance.now() + ms;
    let n = await neighbourOnB(ip);
    while (n?.mac !== mac && performance.now() < end) {
      await sleep(20);
      n = await neighbourOnB(ip);
    }
    return n;
  }

  t.test('an announce updates an existing neighbour entry on the peer', async (t) => {
    for (const form of ['request', 'reply'] as const) {
      const ip = lab.freeIp(form === 'request' ? 5 : 6);
      const r = await b.exec(['ip', 'neigh', 'replace', ip, 'lladdr', '02:de:ad:be:ef:01', 'dev', 'eth0', 'nud', 'stale']);
      t.equal(r.code, 0, r.stderr);
      const pre = await neighbourOnB(ip);
      t.equal(pre?.mac, '02:de:ad:be:ef:01', `${form}: b starts with another MAC`);
      const sent = await a.inNetns(() => announce(ip, a.ifname, { count: 2, intervalMs: 50, form }));
      t.equal(sent.sent, 2);
      const post = await waitNeighbour(ip, a.mac);
      t.equal(post?.mac, a.mac, `${form}: b's entry now points at a (${post?.state.join(',')})`);
    }
  });

  t.test('with arp_accept=1 an announce creates the entry', async (t) => {
    const ip = lab.freeIp(7);
    const sysctl = await b.exec(['sysctl', '-w', 'net.ipv4.conf.eth0.arp_accept=1']);
    t.equal(sysctl.code, 0, sysctl.stderr);
    t.equal(await neighbourOnB(ip), undefined, 'no entry before');
    await a.inNetns(() => announce(ip, a.ifname, { count: 1 }));
    const post = await waitNeighbour(ip, a.mac);
    t.equal(post?.mac, a.mac, 'entry created with the announcing MAC');
    await b.exec(['sysctl', '-w', 'net.ipv4.conf.eth0.arp_accept=0']);
  });

  t.test('announcing another MAC', async (t) => {
    const ip = lab.freeIp(8);
    await b.exec(['ip', 'neigh', 'replace', ip, 'lladdr', a.mac, 'dev', 'eth0', 'nud', 'stale']);
    await a.inNetns(() => announce(ip, a.ifname, { count: 1, mac: '02:00:5e:00:01:01' }));
    t.equal((await waitNeighbour(ip, '02:00:5e:00:01:01'))?.mac, '02:00:5e:00:01:01');
  });

  /**
   * Host b sends an RFC 5227 probe for `ip` (with `send`) while a probes
   * for it; a's prober must call it a conflict from b's MAC, and a plain
   * socket on a must see the frame too. The plain socket is read in its own
   * poll callback, which may run after the prober's answer has resumed this
   * test (a native callback drains microtasks), so the test waits for it,
   * bounded by the probe's own timeout, instead of reading it at once.
   */
  async function conflictFrom(t: Test, ip: string, send: () => Promise<void>): Promise<void> {
    const timeoutMs = 1500;
    const seen: string[] = [];
    const sock = a.inNetns(() => ArpSocket.open(a.ifname));
    t.teardown(() => sock.close());
    sock.on('frame', (p) => { if (isProbe(p) && p.targetIp === ip) seen.push(p.senderMac); });
    const pending = a.inNetns(() => probe(ip, a.ifname, { timeoutMs }));
    await send();
    const r = await pending;
    await waitFor(() => seen.length > 0, timeoutMs, () => `a's socket to see b's probe within the probe timeout (${timeoutMs} ms); saw ${JSON.stringify(seen)}, probe ${r.status}`);
    t.same(seen, [b.mac], "a's socket saw b's probe, once");
    t.equal(r.status, 'answered', `the probe is answered (got ${r.status}${r.status === 'error' ? `: ${r.error.message}` : ''})`);
    t.equal(r.status === 'answered' && r.replies[0]!.kind, 'conflict');
    t.equal(r.status === 'answered' && r.mac, b.mac);
  }

  t.test('a probe from another vigil socket for the same IP is a conflict (what two vigil nodes send each other)', async (t) => {
    const ip = lab.freeIp(9);
    const sendFromB = async () => {
      const bs = b.inNetns(() => ArpSocket.open(b.ifname));
      bs.send(buildProbe({ senderMac: bs.macBytes, targetIp: ip }));
      bs.close();
    };
    await conflictFrom(t, ip, sendFromB);
    const ignored = a.inNetns(() => probe(ip, a.ifname, { timeoutMs: 300, acceptConflict: false }));
    await sendFromB();
    t.equal((await ignored).status, 'silent', 'not counted with acceptConflict: false');
  });

  t.test('a probe from iputils arping -D (an independent implementation) is a conflict', async (t) => {
    // Required, not optional: .ci/run installs arping (Debian package arping
    // provides /usr/sbin/arping; iputils-arping is the other spelling).
    const arping = ['/usr/sbin/arping', '/usr/bin/arping'].find((p) => fs.existsSync(p));
    if (!t.ok(arping, 'arping is installed (.ci/run installs it)')) return;
    const ip = lab.freeIp(12);
    await conflictFrom(t, ip, async () => {
      const r = await b.exec([arping!, '-D', '-c', '1', '-w', '1', '-I', 'eth0', ip], { timeoutMs: 5000 });
      t.not(r.code, null, `arping ran (${r.stderr.trim()})`);
    });
  });

  t.test('release notices: heard from another host, not from a plain probe, not from ourselves; stop on unsubscribe', async (t) => {
    const ip = lab.freeIp(10);
    const pa = a.inNetns(() => ArpProber.open(a.ifname));
    const pb = b.inNetns(() => ArpProber.open(b.ifname));
    t.teardown(() => { pa.close(); pb.close(); });
    const heard: string[] = [];
    const stop = pa.onRelease(ip, (mac) => heard.push(mac));
    const ownHeard: string[] = [];
    pb.onRelease(ip, (mac) => ownHeard.push(mac));
    // A plain RFC 5227 probe for the same IP (what a master's conflict probe is) is not a release.
    const bs = b.inNetns(() => ArpSocket.open(b.ifname));
    bs.send(buildProbe({ senderMac: bs.macBytes, targetIp: ip }));
    bs.close();
    t.equal(pb.sendRelease(ip), 2, 'two frames sent');
    t.equal(pb.sendRelease(lab.freeIp(11)), 2, 'one for another IP');
    // Sent already: hearing them is a frame's way over the bridge and a socket's callback.
    await waitFor(() => heard.length >= 2, SLACK_MS, () => `a hearing b's two notices within ${SLACK_MS} ms; heard ${JSON.stringify(heard)}`, 10).catch(() => undefined);
    await sleep(100); // a moment for any extra notice (there must be none)
    t.same(heard, [b.mac, b.mac], "a heard b's two notices for this IP only");
    t.same(ownHeard, [], 'b does not hear itself');
    stop();
    pb.sendRelease(ip);
    await sleep(200);
    t.equal(heard.length, 2, 'nothing after unsubscribing');
  });

  t.test('arp-probe CLI in a lab host', async (t) => {
    const loader = require.resolve('@isaacs/ts-node-temp-fork-for-pr-2009/register/transpile-only');
    const cli = path.join(ROOT, 'src', 'cli', 'arp-probe.ts');
    const script = `require(${JSON.stringify(cli)}).run(process.argv.slice(1)).then((c) => { process.exitCode = c; })`;
    // A clean environment: tap's process-info hook puts itself into every
    // child's NODE_OPTIONS, and an unprivileged child cannot write its report.
    const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };
    const node = ['env', '-u', 'NODE_OPTIONS', process.execPath, '-r', loader, '-e', script, '--'];
    const run = (host: LabHost, args: string[]) => host.exec([...node, ...args], { timeoutMs: 30_000, env });

    const ok = await run(a, ['-I', 'eth0', '--count', '3', '--interval', '100ms', '--timeout', '1s', b.ip]);
    t.equal(ok.code, 0, `present: exit 0 (${ok.stderr.trim()})`);
    const lines = ok.stdout.trim().split('\n');
    t.equal(lines.length, 3, 'one line per reply');
    const re = new RegExp(`^reply from ${b.ip.replace(/\./g, '\\.')} \\[${b.mac}\\] \\d+\\.\\d{3} ms$`);
    for (const l of lines) t.match(l, re, l);

    const t0 = performance.now();
    const silent = await run(a, ['-I', 'eth0', '--timeout', '300ms', lab.freeIp(10)]);
    t.equal(silent.code, 1, 'absent: exit 1');
    t.match(silent.stdout, /^no reply from \S+ on eth0/);
    t.equal(silent.stderr, '');
    t.comment(`absent IP run took ${(performance.now() - t0).toFixed(0)} ms including node start`);

    const noIf = await run(a, ['-I', 'eth9', b.ip]);
    t.equal(noIf.code, 2, 'unknown interface: exit 2');
    t.equal(noIf.stderr, "vigil arp-probe: no such interface 'eth9'\n");
    t.equal(noIf.stdout, '');

    const badIp = await run(a, ['-I', 'eth0', '10.0.0.300']);
    t.equal(badIp.code, 2);
    t.equal(badIp.stderr, "vigil arp-probe: invalid IPv4 address '10.0.0.300'\n");

    const badDur = await run(a, ['-I', 'eth0', '--timeout', 'soon', b.ip]);
    t.equal(badDur.code, 2);
    t.match(badDur.stderr, /^vigil arp-probe: --timeout: invalid duration 'soon'/);

    // Without CAP_NET_RAW: still root (so the child reads the clone wherever
    // it sits, even under a 0700 directory), with CAP_NET_RAW dropped from
    // the bounding set by setpriv (util-linux, which .ci/run makes sure of).
    const unpriv = await a.exec(['setpriv', '--bounding-set=-net_raw', '--inh-caps=-net_raw', ...node, '-I', 'eth0', b.ip], { timeoutMs: 30_000, env });
    t.equal(unpriv.code, 2, `without CAP_NET_RAW: exit 2 (${unpriv.stderr.trim()})`);
    t.match(unpriv.stderr, /^vigil arp-probe: .*needs CAP_NET_RAW.*\n$/);
    t.equal(unpriv.stderr.split('\n').length, 2, 'one line');
  });

  t.test('native receive timestamps are on the monotonic clock', async (t) => {
    const r = await probeFromA(b.ip);
    t.equal(r.status, 'answered');
    if (r.status !== 'answered') return;
    const now = native().monotonicNs();
    const age = Number(now - r.replies[0]!.receivedAtNs) / 1e6;
    t.ok(age >= 0 && age < 1000, `reply received ${age.toFixed(3)} ms ago`);
  });
}
