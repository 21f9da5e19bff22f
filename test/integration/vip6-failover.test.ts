// The HA IP role over IPv6, end to end: real daemons in lab hosts with IPv6
// turned on and unique-local (fd00::/8) addresses only, probing by NDP from
// vigil's packet socket, taking over with IFA_F_NODAD and announcing with
// unsolicited NAs. The client never sends anything after its first ping:
// its neighbour cache must move to the new MAC on the announcements alone.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { skipUnlessRoot, type Lab, type LabHost } from '../support/lab';
import { formatMac } from '../../src/util/ip';
import { formatIPv6, ipv6Bytes } from '../../src/util/ip6';
import { native } from '../../src/native';
import { buildDadProbe, buildNdp, buildUnsolicitedNa, ETHERTYPE_IPV6, multicastMac, solicitedNode, tryDecodeNdp, type NdpPacket } from '../../src/net/ndp/codec';
import {
  testLab, startDaemon, daemonStatus, waitFor, runCli, vipNode, expectedOf, vipTiming, takeoverBoundMs, releaseBoundMs,
  oneMasterBoundMs, ipFileBoundMs, logsMatching, START_MS, SLACK_MS, type Daemon,
} from '../support/vigil';

if (skipUnlessRoot(t, ['ping'])) process.exit(0);

const TIMING = {
  check_interval: '300ms', failure_check_interval: '100ms', take_over_after: 3, probe_timeout: '100ms',
  master_check_interval: '400ms', ip_file_check_interval: '1s', announce: { count: 2, interval: '200ms' }, command_timeout: '5s',
};
const V = vipTiming(TIMING);

/** The lab's IPv6 prefix: unique-local, random per run like its IPv4 subnet (canonical text, as `ip` prints it). */
const ula = (lab: Lab) => `fd${lab.prefix.slice(2, 4)}:${parseInt(lab.prefix.slice(4, 8), 16).toString(16)}::`;

/**
 * The lab turns IPv6 off in its namespaces (a quiet bridge); these tests
 * turn it back on in each host, and give each host a ULA of its own
 * (`nodad`: the test's own addresses are not under test). No router
 * solicitations (there is no router, and a client that keeps soliciting
 * would spoil the count of what it sends).
 */
async function enableIpv6(lab: Lab): Promise<void> {
  await Promise.all(lab.hosts.map(async (h, i) => {
    const r = await h.exec(['sh', '-c', 'for c in all default eth0; do echo 0 > /proc/sys/net/ipv6/conf/$c/router_solicitations; done; '
      + 'for c in all default eth0; do echo 0 > /proc/sys/net/ipv6/conf/$c/disable_ipv6; done']);
    if (r.code !== 0) throw new Error(`enable IPv6 in ${h.ns}: ${r.stderr}`);
    const a = await h.exec(['ip', '-6', 'addr', 'add', `${ula(lab)}${(10 + i).toString(16)}/64`, 'dev', 'eth0', 'nodad']);
    if (a.code !== 0) throw new Error(`address in ${h.ns}: ${a.stderr}`);
  }));
}

/** The `ip -6 -o addr` line of `ip` on eth0, or undefined. */
async function addrLine(h: LabHost, ip: string): Promise<string | undefined> {
  const r = await h.exec(['ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0']);
  return r.stdout.split('\n').find((l) => l.includes(` ${ip}/`));
}

/** The client's neighbour entry for `ip`: its MAC, or undefined. */
async function neighMac(h: LabHost, ip: string): Promise<string | undefined> {
  const r = await h.exec(['ip', '-6', 'neigh', 'show', ip, 'dev', 'eth0']);
  return /lladdr ([0-9a-f:]{17})/.exec(r.stdout)?.[1];
}

/** Frames eth0 of `h` has sent (the kernel's own counter). */
async function txPackets(h: LabHost): Promise<number> {
  return Number((await h.exec(['cat', '/sys/class/net/eth0/statistics/tx_packets'])).stdout.trim());
}

/** Every address event for `ip` on `h` while it runs (`ip -6 monitor address`), to catch a tentative or dadfailed moment. */
function watchAddressEvents(h: LabHost, ip: string): { lines: () => string[]; stop(): void } {
  const proc: ChildProcess = h.spawn(['ip', '-6', 'monitor', 'address']);
  let out = '';
  proc.stdout?.on('data', (c: Buffer) => { out += c.toString(); });
  proc.stderr?.resume();
  return {
    lines: () => out.split('\n').filter((l) => l.includes(` ${ip}/`)),
    stop: () => { proc.kill('SIGTERM'); },
  };
}

t.test('failover over IPv6: NDP probes, NODAD takeover, the client cache moves on the NAs alone', async (t) => {
  const { lab, dir, daemons } = await testLab(t, ['a', 'b', 'client'], 'vip6');
  await enableIpv6(lab);
  const haIp = `${ula(lab)}100`;
  const client = lab.host('client');
  // The client stands in for the router too: announce.routers names its address.
  const clientIp = `${ula(lab)}${(10 + lab.hosts.indexOf(client)).toString(16)}`;
  const announce = { ...TIMING.announce, routers: [clientIp] };
  const a = vipNode(dir, lab.host('a'), haIp, { ...TIMING, announce, address: `${haIp}/64` });
  const b = vipNode(dir, lab.host('b'), haIp, { ...TIMING, announce, address: `${haIp}/64` });
  // Every NA the client's interface receives, read on a packet socket of its own (it sends nothing).
  const nas: NdpPacket[] = [];
  const sock = client.inNetns(() => native().openArpSocket('eth0', undefined, ETHERTYPE_IPV6));
  sock.start((frame) => { const p = tryDecodeNdp(frame); if (typeof p !== 'string' && p.type === 'na') nas.push(p); }, () => {});
  t.teardown(() => sock.close());
  // What the client sends, seen on the bridge (a packet socket on br0, promiscuous so that every
  // forwarded frame is also passed up to it; a protocol socket on a bridge port sees nothing, and
  // one on the client's eth0 not its own transmissions): anything to the HA address, to its
  // solicited-node group, or an NS about it.
  const sentAboutHa: string[] = [];
  let watchSent = false;
  const haBytes = ipv6Bytes(haIp)!;
  const promisc = spawnSync('ip', ['-n', lab.bridgeNs, 'link', 'set', 'br0', 'promisc', 'on'], { encoding: 'utf8' });
  if (promisc.status !== 0) throw new Error(`br0 promisc: ${promisc.stderr}`);
  const prev = native().netnsEnter(`/run/netns/${lab.bridgeNs}`);
  let tap: ReturnType<ReturnType<typeof native>['openArpSocket']>;
  try { tap = native().openArpSocket('br0', undefined, ETHERTYPE_IPV6); } finally { native().netnsRestore(prev); }
  tap.start((frame) => {
    if (!watchSent || formatMac(frame, 6) !== client.mac || frame.length < 54) return;
    const p = tryDecodeNdp(frame);
    const dst = frame.subarray(38, 54);
    const aboutHa = dst.equals(haBytes) || formatIPv6(dst) === solicitedNode(haIp) || (typeof p !== 'string' && p.target === haIp);
    if (aboutHa) sentAboutHa.push(typeof p === 'string' ? `IPv6 to ${formatIPv6(dst)}` : `${p.type} for ${p.target} to ${p.dstIp}`);
  }, () => {});
  t.teardown(() => tap.close());

  const aMon = watchAddressEvents(a.h, haIp);
  const bMon = watchAddressEvents(b.h, haIp);
  t.teardown(() => { aMon.stop(); bMon.stop(); });

  daemons.push(startDaemon(a.h, a.config, a.pidfile));
  const aloneMs = START_MS + takeoverBoundMs(V);
  await waitFor(async () => (await a.role()) === 'master', aloneMs, expectedOf('a master (alone)', aloneMs, daemons));
  const line = await addrLine(a.h, haIp);
  t.ok(line, 'a holds the HA address');
  t.notMatch(line ?? '', /tentative|dadfailed/, `a's address is usable at once: ${line}`);
  t.match(line ?? '', /nodad/, 'added with IFA_F_NODAD');

  daemons.push(startDaemon(b.h, b.config, b.pidfile));
  const heardMs = START_MS + V.checkIntervalMs + V.probeTimeoutMs + SLACK_MS;
  await waitFor(async () => (await daemonStatus(b.pidfile))?.roles?.vip?.lastProbe?.result === 'answered', heardMs,
    expectedOf('b hears a answer its NDP probe', heardMs, daemons));
  const st = (await daemonStatus(b.pidfile))?.roles?.vip;
  t.equal(st?.role, 'slave');
  t.equal(st?.lastProbe?.mac, a.h.mac, 'the answer names a\'s MAC');
  t.equal(await addrLine(b.h, haIp), undefined, 'the slave does not hold the address');

  // The client learns a's MAC once, then sends nothing more.
  watchSent = true;
  const ping = await client.exec(['ping', '-6', '-c', '1', '-W', '2', haIp]);
  t.equal(ping.code, 0, `the client reaches the HA address: ${ping.stdout}${ping.stderr}`);
  t.equal(await neighMac(client, haIp), a.h.mac, 'the client resolved the HA address to a');
  t.ok(sentAboutHa.some((x) => x.startsWith('IPv6 to')), `the watch sees the client's own frames (its ping: ${sentAboutHa.join('; ')})`);
  sentAboutHa.length = 0;
  const txBefore = await txPackets(client);

  await a.h.cutLink();
  const cutAt = Date.now();
  await waitFor(async () => (await b.role()) === 'master', takeoverBoundMs(V), expectedOf('b takes over after a\'s link is cut', takeoverBoundMs(V), daemons));
  const seenMs = V.announce.count * V.announce.intervalMs + SLACK_MS;
  await waitFor(async () => (await neighMac(client, haIp)) === b.h.mac, seenMs, `the client's neighbour entry names b (${b.h.mac}) within ${seenMs} ms of the takeover`);
  t.pass(`client cache moved to b ${Date.now() - cutAt} ms after the cut`);
  const fromB = nas.filter((p) => p.target === haIp && p.targetLinkAddr === b.h.mac);
  t.ok(fromB.some((p) => p.dstIp === 'ff02::1' && p.override && !p.solicited), 'b announced to all-nodes, override set');
  const unicast = fromB.filter((p) => p.dstIp === clientIp);
  t.ok(unicast.length >= 1, `b also sent the NA by unicast to the configured router (${unicast.length} of ${fromB.length} NAs from b)`);
  t.equal(unicast[0]?.ethDst, multicastMac(solicitedNode(clientIp)), 'at the router\'s solicited-node MAC: no resolution needed');
  t.same(sentAboutHa, [], 'the client sent nothing about the HA address: the unsolicited NAs alone moved its cache');
  // Other frames it may have sent: answers to the old holder's reachability probe of the client (RFC 4861 §7.3.3).
  t.comment(`client frames sent meanwhile (any): ${(await txPackets(client)) - txBefore}`);
  const bLine = await addrLine(b.h, haIp);
  t.notMatch(bLine ?? '', /tentative|dadfailed/, `b's address: ${bLine}`);
  t.same(bMon.lines().filter((l) => /tentative|dadfailed/.test(l)), [], 'no address event on b ever showed the HA address tentative or dadfailed');

  // a, cut off, releases the address (carrier rule); healed, it stays slave.
  await waitFor(async () => (await a.role()) === 'slave', releaseBoundMs(V), expectedOf('the isolated a releases', releaseBoundMs(V), daemons));
  t.equal(await addrLine(a.h, haIp), undefined, 'a removed the HA address');
  await a.h.restoreLink();
  await waitFor(() => a.h.carrierUp(), SLACK_MS, 'a\'s carrier back');
  const heal = oneMasterBoundMs(V);
  await waitFor(async () => (await daemonStatus(a.pidfile))?.roles?.vip?.lastProbe?.mac === b.h.mac, heal, expectedOf('a hears b after the heal', heal, daemons));
  t.equal(await a.role(), 'slave', 'after the heal a stays slave');
  t.equal(await b.role(), 'master');
  t.same(aMon.lines().filter((l) => /dadfailed/.test(l)), [], 'a never saw the address dadfailed');

  // A restart is not a failover: kill -9 of b's daemon leaves the address; the new daemon resumes as master.
  const bEvents = bMon.lines().length;
  const bd = daemons[1]!;
  bd.proc.kill('SIGKILL');
  await bd.exited;
  t.ok(await addrLine(b.h, haIp), 'the kernel keeps b\'s address after kill -9');
  daemons.push(startDaemon(b.h, b.config, b.pidfile));
  await waitFor(async () => ['master', 'slave'].includes((await daemonStatus(b.pidfile))?.roles?.vip?.role), START_MS, expectedOf('b\'s new daemon answers status', START_MS, daemons));
  const resumed = (await daemonStatus(b.pidfile))?.roles?.vip;
  t.equal(resumed?.role, 'master', 'b resumes as master');
  t.equal(resumed?.takeovers, 0, 'without a takeover');
  t.same(bMon.lines().slice(bEvents).filter((l) => l.startsWith('Deleted')), [], 'the address was never removed meanwhile');
});

t.test('split brain over IPv6: the lower MAC keeps the address', async (t) => {
  const { lab, dir, daemons } = await testLab(t, ['a', 'b'], 'vip6sb');
  await enableIpv6(lab);
  const haIp = `${ula(lab)}100`;
  const nodes = ['a', 'b'].map((n) => vipNode(dir, lab.host(n), haIp, { ...TIMING, address: `${haIp}/64` }));
  for (const n of nodes) await n.h.isolate();
  for (const n of nodes) daemons.push(startDaemon(n.h, n.config, n.pidfile));
  const both = START_MS + takeoverBoundMs(V);
  // Isolated with carrier: each hears silence and takes over (the neighbour gate has nothing to ask on IPv6 ULA-only hosts).
  await waitFor(async () => (await nodes[0]!.role()) === 'master' && (await nodes[1]!.role()) === 'master', both, expectedOf('both masters while isolated', both, daemons));
  for (const n of nodes) await n.h.unisolate();
  const [lower, higher] = nodes[0]!.h.mac < nodes[1]!.h.mac ? [nodes[0]!, nodes[1]!] : [nodes[1]!, nodes[0]!];
  const settle = oneMasterBoundMs(V);
  await waitFor(async () => (await higher.role()) === 'slave', settle, expectedOf(`the higher MAC (${higher.h.name}) steps down`, settle, daemons));
  t.equal(await lower.role(), 'master', 'the lower MAC keeps the address');
  t.ok(await addrLine(lower.h, haIp), 'the lower MAC still holds it');
  t.equal(await addrLine(higher.h, haIp), undefined, 'the higher MAC removed it');
  const conflict = (await daemonStatus(higher.pidfile))?.roles?.vip?.lastConflict;
  t.equal(conflict?.mac, lower.h.mac, 'the conflict was decided against the other node\'s MAC, heard over NDP');
});

t.test('mixed-family IP file, hot-reloaded, and the release notice over IPv6', async (t) => {
  const { lab, dir, daemons } = await testLab(t, ['a', 'b'], 'vip6f');
  await enableIpv6(lab);
  const haIp = `${ula(lab)}100`;
  const extra6 = `${ula(lab)}101`;
  const late6 = `${ula(lab)}102`;
  const extra4 = lab.freeIp(1);
  const ipFile = path.join(dir, 'ips');
  fs.writeFileSync(ipFile, `# both families\n${extra4}/24\n${extra6}/64\nfe80::1\n`, { mode: 0o644 });
  const [a, b] = ['a', 'b'].map((n) => vipNode(dir, lab.host(n), haIp, { ...TIMING, address: `${haIp}/64`, ip_file: ipFile, master_check_interval: '2s', check_interval: '1s', failure_check_interval: '500ms' }));
  const V2 = vipTiming({ ...TIMING, ip_file: ipFile, master_check_interval: '2s', check_interval: '1s', failure_check_interval: '500ms' });
  const ad = startDaemon(a!.h, a!.config, a!.pidfile);
  daemons.push(ad);
  await waitFor(async () => (await a!.role()) === 'master', START_MS + takeoverBoundMs(V2), expectedOf('a master', START_MS + takeoverBoundMs(V2), daemons));
  const v4 = (await a!.h.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout;
  t.match(v4, ` ${extra4}/24`, 'the IPv4 line is held');
  t.ok(await addrLine(a!.h, extra6), 'the IPv6 line is held');
  t.match(await logsMatching(ad.logs, /IP file: invalid line skipped/), /"line":4.*link-local/, 'the link-local line is named by its number and skipped');

  fs.writeFileSync(ipFile, `${extra4}/24\n${late6}/64\n`, { mode: 0o644 });
  await waitFor(async () => (await addrLine(a!.h, late6)) !== undefined && (await addrLine(a!.h, extra6)) === undefined, ipFileBoundMs(V2),
    `the reloaded file applied within ${ipFileBoundMs(V2)} ms: ${late6} added, ${extra6} removed`);
  t.notMatch((await addrLine(a!.h, late6)) ?? '', /tentative|dadfailed/, 'a hot-added IPv6 line is usable at once too');

  // b settles as slave, then a stops gracefully: b confirms the release notice with one probe.
  daemons.push(startDaemon(b!.h, b!.config, b!.pidfile));
  const heardMs = START_MS + V2.checkIntervalMs + V2.probeTimeoutMs + SLACK_MS;
  await waitFor(async () => (await daemonStatus(b!.pidfile))?.roles?.vip?.lastProbe?.result === 'answered', heardMs, expectedOf('b hears a', heardMs, daemons));
  // The slave listens for release notices on the HA address's solicited-node group at the IP layer too
  // (an MLD report), so a snooping switch would forward them to it.
  const group = solicitedNode(haIp);
  await waitFor(async () => (await b!.h.exec(['ip', '-6', 'maddr', 'show', 'dev', 'eth0'])).stdout.includes(`inet6 ${group}`), SLACK_MS, `b joined ${group} at the IP layer`);
  const stop = await runCli(['stop', '-c', a!.config]);
  t.equal(stop.code, 0, stop.stderr);
  const stoppedAt = Date.now();
  await waitFor(async () => (await b!.role()) === 'master', takeoverBoundMs(V2), expectedOf('b takes over', takeoverBoundMs(V2), daemons));
  // Without the notice: (take_over_after - 1) more silent probes, failure_check_interval apart.
  const failurePathMs = (V2.takeOverAfter - 1) * (V2.failureCheckIntervalMs + V2.probeTimeoutMs);
  const took = Date.now() - stoppedAt;
  t.ok(took < failurePathMs + V2.probeTimeoutMs, `b took over ${took} ms after a's stop returned (the failure-count path needs ≥ ${failurePathMs} ms)`);
  t.match(await logsMatching(daemons[1]!.logs, /the holder released the HA IP/), /confirming with one probe/);
  for (const ip of [haIp, late6]) t.ok(await addrLine(b!.h, ip), `b holds ${ip}`);
  t.match((await b!.h.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout, ` ${extra4}/24`, 'and the IPv4 address moved with them');
});

t.test('kernel filter: of a flood of IPv6 ND frames only NAs for the HA address reach the daemon', async (t) => {
  const { lab, dir, daemons } = await testLab(t, ['a', 'client'], 'vip6bpf');
  await enableIpv6(lab);
  const haIp = `${ula(lab)}100`;
  const a = vipNode(dir, lab.host('a'), haIp, { ...TIMING, address: `${haIp}/64` });
  const client = lab.host('client');
  daemons.push(startDaemon(a.h, a.config, a.pidfile));
  const aloneMs = START_MS + takeoverBoundMs(V);
  await waitFor(async () => (await a.role()) === 'master', aloneMs, expectedOf('a master (alone)', aloneMs, daemons));
  const delivered = async () => (await daemonStatus(a.pidfile))?.roles?.vip?.arp?.ndp?.delivered as number | undefined;
  const sock = client.inNetns(() => native().openArpSocket('eth0', undefined, ETHERTYPE_IPV6));
  t.teardown(() => sock.close());
  const other = `${ula(lab)}200`;
  const fake = 'fe:ff:ff:ff:ff:fe'; // higher than any lab MAC: a keeps the address if it hears it
  const flood = [
    buildUnsolicitedNa(fake, other),                       // an NA for another address
    buildDadProbe(fake, haIp),                             // another node's probe for the HA address
    buildDadProbe(fake, haIp, Buffer.from('0123456789ab', 'hex')), // a DAD probe with a nonce that is not its MAC
    buildNdp({ ethSrc: fake, ethDst: '33:33:00:00:00:01', srcIp: haIp, dstIp: 'ff02::1', type: 'na', target: haIp, hopLimit: 64, options: [{ type: 2, data: Buffer.from(fake.replace(/:/g, ''), 'hex') }] }), // hop limit 64
  ];
  const before = await delivered();
  t.type(before, 'number', 'status shows the NDP socket\'s counter');
  for (let i = 0; i < 250; i++) for (const f of flood) sock.send(f);
  // Then a positive control: NAs for the HA address itself do pass.
  await new Promise((r) => setTimeout(r, 200));
  const mid = await delivered();
  for (let i = 0; i < 5; i++) sock.send(buildUnsolicitedNa(fake, haIp));
  await waitFor(async () => ((await delivered()) ?? 0) >= (mid ?? 0) + 5, SLACK_MS, 'the 5 NAs for the HA address delivered');
  // a's own master-check probes are answered by nobody (it holds the address itself), so nothing else counts.
  t.ok((mid ?? 0) - (before ?? 0) <= 2, `of 1000 unrelated or invalid ND frames ${(mid ?? 0) - (before ?? 0)} reached JavaScript`);
  t.equal(await a.role(), 'master', 'a stays master (the fake holder has the higher MAC)');
});
