// Unit tests of the ARP socket wrapper over the fake binding: decoding,
// counters, close semantics and the mapping of native errors.
import t from 'tap';
import { FakeArpSegment } from '../../src/net/arp/fake';
import { ArpSocket } from '../../src/net/arp/socket';
import type { ArpPacket } from '../../src/net/arp/codec';
import { buildProbe, buildRequest } from '../../src/net/arp/codec';
import { VigilError } from '../../src/errors';

const OWN = '02:00:00:00:00:01';
const seg = (): FakeArpSegment => new FakeArpSegment({ interfaces: { eth0: OWN } }).addHost({ ip: '10.0.0.2', mac: '02:00:00:00:00:02' });

t.test('open reads MAC and ifindex; frames arrive decoded with a timestamp', async (t) => {
  const s = seg();
  const sock = ArpSocket.open('eth0', { binding: s.binding });
  t.equal(sock.mac, OWN);
  t.equal(sock.macBytes.toString('hex'), '020000000001');
  t.equal(sock.ifindex, 1);
  const got = new Promise<[ArpPacket, bigint]>((res) => sock.once('frame', (p, at) => res([p, at])));
  const before = sock.nowNs();
  sock.send(buildProbe({ senderMac: sock.macBytes, targetIp: '10.0.0.2' }));
  const [p, at] = await got;
  t.equal(p.senderIp, '10.0.0.2');
  t.equal(p.op, 2);
  t.ok(at > before, 'receive time after the send, same clock');
  t.same(sock.stats, { received: 1, invalid: 0, sent: 1, sendErrors: 0 });
  sock.close();
});

t.test('frames that are not ARP are counted and dropped', async (t) => {
  const s = seg();
  const sock = ArpSocket.open('eth0', { binding: s.binding });
  const seen: ArpPacket[] = [];
  sock.on('frame', (p) => seen.push(p));
  const bad = buildRequest({ senderMac: '02:00:00:00:00:09', senderIp: '10.0.0.9', targetIp: '10.0.0.1' });
  bad.writeUInt16BE(9, 20); // opcode 9: not a request or a reply
  s.inject('eth0', bad);
  s.inject('eth0', Buffer.alloc(20));
  s.inject('eth0', buildRequest({ senderMac: '02:00:00:00:00:09', senderIp: '10.0.0.9', targetIp: '10.0.0.1' }));
  await new Promise((r) => setTimeout(r, 10));
  t.equal(seen.length, 1);
  t.equal(sock.stats.received, 3);
  t.equal(sock.stats.invalid, 2);
  sock.close();
});

t.test('close is idempotent, emits close once, and stops delivery', async (t) => {
  const s = seg();
  const sock = ArpSocket.open('eth0', { binding: s.binding });
  let closes = 0;
  let frames = 0;
  sock.on('close', () => closes++);
  sock.on('frame', () => frames++);
  sock.close();
  sock.close();
  t.equal(closes, 1);
  t.ok(sock.closed);
  t.equal(s.sockets.size, 0);
  s.inject('eth0', buildRequest({ senderMac: '02:00:00:00:00:09', senderIp: '10.0.0.9', targetIp: '10.0.0.1' }));
  await new Promise((r) => setTimeout(r, 5));
  t.equal(frames, 0);
  t.throws(() => sock.send(Buffer.alloc(60)), { code: 'EBADF' });
});

t.test('close from inside a frame listener', async (t) => {
  const s = seg();
  const sock = ArpSocket.open('eth0', { binding: s.binding });
  let frames = 0;
  sock.on('frame', () => { frames++; sock.close(); });
  const f = buildRequest({ senderMac: '02:00:00:00:00:09', senderIp: '10.0.0.9', targetIp: '10.0.0.1' });
  s.inject('eth0', f);
  s.inject('eth0', f);
  await new Promise((r) => setTimeout(r, 10));
  t.equal(frames, 1);
  t.ok(sock.closed);
});

t.test('send errors are VigilErrors sorted into retryable and fatal', async (t) => {
  const s = seg();
  const sock = ArpSocket.open('eth0', { binding: s.binding });
  s.sendFailures.push('EAGAIN', 'ENETDOWN', 'EPERM');
  const grab = (): VigilError => {
    try { sock.send(Buffer.alloc(60)); } catch (e) { return e as VigilError; }
    throw new Error('send did not throw');
  };
  const again = grab();
  t.ok(again instanceof VigilError);
  t.equal(again.code, 'EAGAIN');
  t.equal(again.retryable, true);
  const down = grab();
  t.equal(down.code, 'ENETDOWN');
  t.equal(down.retryable, false);
  t.match(down.message, /^ARP send on 'eth0': send failed: ENETDOWN/);
  const perm = grab();
  t.match(perm.message, /needs CAP_NET_RAW/);
  t.equal(sock.stats.sendErrors, 3);
  sock.close();
});

t.test('a fatal receive error emits error then close', async (t) => {
  const s = seg();
  const sock = ArpSocket.open('eth0', { binding: s.binding });
  const events: string[] = [];
  sock.on('error', (e) => events.push(`error ${e.code}`));
  sock.on('close', () => events.push('close'));
  s.failSockets('eth0', 'EBADF', 'uv_poll');
  t.same(events, ['error ENETDOWN', 'close'], 'libuv POLLERR (EBADF) reads as the interface going down');
  t.ok(sock.closed);
  sock.close();
  t.same(events, ['error ENETDOWN', 'close'], 'no second close');

  const other = ArpSocket.open('eth0', { binding: s.binding });
  const errs: VigilError[] = [];
  other.on('error', (e) => errs.push(e));
  s.failSockets('eth0', 'ENOMEM', 'recvfrom');
  t.equal(errs[0]?.code, 'ENOMEM');
  t.match(errs[0]!.message, /^ARP receive on 'eth0': recvfrom failed: ENOMEM/);
});

t.test('a fatal error with no error listener does not throw', async (t) => {
  const s = seg();
  const sock = ArpSocket.open('eth0', { binding: s.binding });
  t.doesNotThrow(() => s.failSockets('eth0'));
  t.ok(sock.closed);
});

t.test('open errors', async (t) => {
  const s = seg();
  t.throws(() => ArpSocket.open('eth9', { binding: s.binding }), { code: 'ENODEV', message: "no such interface 'eth9'" });
  t.throws(() => ArpSocket.open('', { binding: s.binding }), { code: 'EINVAL', message: "invalid interface name ''" });
  t.throws(() => ArpSocket.open('x'.repeat(16), { binding: s.binding }), { code: 'EINVAL' });
  s.openFailure = 'EPERM';
  t.throws(() => ArpSocket.open('eth0', { binding: s.binding }), { code: 'EPERM', message: /needs CAP_NET_RAW/ });
  t.equal(s.sockets.size, 0);
});
