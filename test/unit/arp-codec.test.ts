// Unit tests of the pure ARP codec against hand-written, byte-commented
// frames and against frames captured from real tools.
import t from 'tap';
import {
  buildRequest, buildProbe, buildAnnounceRequest, buildAnnounceReply, buildRelease, encodeArp,
  decodeArp, tryDecodeArp, isProbe, isGratuitous, isRelease, ArpDecodeError, MIN_FRAME_LEN, OP_REPLY,
} from '../../src/net/arp/codec';

/** Hex with whitespace and `#` comments removed, as a Buffer. */
function hex(s: string): Buffer {
  const clean = s.split('\n').map((l) => l.replace(/#.*$/, '')).join('').replace(/\s+/g, '');
  if (!/^([0-9a-f]{2})*$/i.test(clean)) throw new Error(`bad hex fixture: ${clean}`);
  return Buffer.from(clean, 'hex');
}

const PAD = '00'.repeat(18); // 42 → 60 bytes

const MAC_A = '02:00:00:00:00:0a';
const MAC_B = '02:00:00:00:00:0b';

t.test('ARP request (who-has 10.254.0.2 tell 10.254.0.1)', async (t) => {
  const expected = hex(`
    ff ff ff ff ff ff   # eth destination: broadcast
    02 00 00 00 00 0a   # eth source: MAC_A
    08 06               # EtherType ARP
    00 01               # htype Ethernet
    08 00               # ptype IPv4
    06                  # hlen
    04                  # plen
    00 01               # opcode request
    02 00 00 00 00 0a   # sender MAC
    0a fe 00 01         # sender IP 10.254.0.1
    00 00 00 00 00 00   # target MAC unknown
    0a fe 00 02         # target IP 10.254.0.2
    ${PAD}              # padding to 60 bytes
  `);
  const got = buildRequest({ senderMac: MAC_A, senderIp: '10.254.0.1', targetIp: '10.254.0.2' });
  t.equal(got.length, MIN_FRAME_LEN);
  t.equal(got.toString('hex'), expected.toString('hex'));
});

t.test('unicast ARP request', async (t) => {
  const got = buildRequest({ senderMac: MAC_A, senderIp: '10.254.0.1', targetIp: '10.254.0.2', ethDst: MAC_B });
  t.equal(got.subarray(0, 6).toString('hex'), '02000000000b', 'eth destination is the given unicast MAC');
  t.equal(decodeArp(got).targetMac, '00:00:00:00:00:00');
});

t.test('RFC 5227 probe', async (t) => {
  const expected = hex(`
    ff ff ff ff ff ff   # eth destination: broadcast
    02 00 00 00 00 0a   # eth source
    08 06 00 01 08 00 06 04
    00 01               # opcode request
    02 00 00 00 00 0a   # sender MAC: ours
    00 00 00 00         # sender IP 0.0.0.0 (RFC 5227 §2.1.1)
    00 00 00 00 00 00   # target MAC: zero (RFC 5227 §2.1.1)
    0a fe 00 02         # target IP: the probed address
    ${PAD}
  `);
  const got = buildProbe({ senderMac: MAC_A, targetIp: '10.254.0.2' });
  t.equal(got.toString('hex'), expected.toString('hex'));
  const p = decodeArp(got);
  t.ok(isProbe(p));
  t.notOk(isGratuitous(p));
});

t.test('release notice: an RFC 5227 probe whose target MAC is the sender', async (t) => {
  const expected = hex(`
    ff ff ff ff ff ff   # eth destination: broadcast
    02 00 00 00 00 0a   # eth source
    08 06 00 01 08 00 06 04
    00 01               # opcode request
    02 00 00 00 00 0a   # sender MAC: the releasing master
    00 00 00 00         # sender IP 0.0.0.0: no cache learns anything
    02 00 00 00 00 0a   # target MAC: the sender again (unused in a probe): "release"
    0a fe 00 64         # target IP: the released HA IP
    ${PAD}
  `);
  const got = buildRelease({ senderMac: MAC_A, ip: '10.254.0.100' });
  t.equal(got.toString('hex'), expected.toString('hex'));
  const p = decodeArp(got);
  t.ok(isProbe(p), 'other stacks see an ordinary probe');
  t.ok(isRelease(p));
  t.notOk(isRelease(decodeArp(buildProbe({ senderMac: MAC_A, targetIp: '10.254.0.100' }))), 'a conflict probe is not a release');
  t.notOk(isRelease(decodeArp(buildAnnounceRequest({ mac: MAC_A, ip: '10.254.0.100' }))), 'an announcement is not a release');
  t.notOk(isRelease(decodeArp(encodeArp({ op: OP_REPLY, ethDst: MAC_B, ethSrc: MAC_A, senderMac: MAC_A, senderIp: '0.0.0.0', targetMac: MAC_A, targetIp: '10.254.0.100' }))), 'a reply is not a release');
});

t.test('gratuitous ARP, request form (RFC 5227 §3 announcement)', async (t) => {
  const expected = hex(`
    ff ff ff ff ff ff   # broadcast
    02 00 00 00 00 0a   # eth source
    08 06 00 01 08 00 06 04
    00 01               # opcode request
    02 00 00 00 00 0a   # sender MAC: the MAC to learn
    0a fe 00 01         # sender IP = the announced IP
    00 00 00 00 00 00   # target MAC zero
    0a fe 00 01         # target IP = the announced IP
    ${PAD}
  `);
  const got = buildAnnounceRequest({ mac: MAC_A, ip: '10.254.0.1' });
  t.equal(got.toString('hex'), expected.toString('hex'));
  const p = decodeArp(got);
  t.ok(isGratuitous(p));
  t.notOk(isProbe(p));
});

t.test('gratuitous ARP, reply form (RFC 5944 §4.6)', async (t) => {
  const expected = hex(`
    ff ff ff ff ff ff   # broadcast
    02 00 00 00 00 0a   # eth source
    08 06 00 01 08 00 06 04
    00 02               # opcode reply
    02 00 00 00 00 0a   # sender MAC
    0a fe 00 01         # sender IP
    02 00 00 00 00 0a   # target MAC = sender MAC (RFC 5944 §4.6)
    0a fe 00 01         # target IP = sender IP
    ${PAD}
  `);
  t.equal(buildAnnounceReply({ mac: MAC_A, ip: '10.254.0.1' }).toString('hex'), expected.toString('hex'));
});

t.test('announce with a MAC other than the interface MAC', async (t) => {
  const f = buildAnnounceRequest({ mac: MAC_B, ip: '10.254.0.1', ethSrc: MAC_A });
  const p = decodeArp(f);
  t.equal(p.ethSrc, MAC_A);
  t.equal(p.senderMac, MAC_B);
});

t.test('MACs as bytes and upper-case text', async (t) => {
  const a = buildProbe({ senderMac: Buffer.from([2, 0, 0, 0, 0, 0x0a]), targetIp: '10.0.0.1' });
  const b = buildProbe({ senderMac: '02:00:00:00:00:0A', targetIp: '10.0.0.1' });
  t.same(a, b);
});

// Frames captured with `tcpdump -XX` on a veth in a private test namespace
// (Linux 6.18): the kernel's own replies and iputils-arping 20221126. They
// are 42 bytes: nothing pads a frame on a veth, so the decoder must not
// require 60.
t.test('decode: kernel reply to an ordinary request (captured)', async (t) => {
  const frame = hex(`
    0200 0000 000a 0200 0000 000b 0806 0001
    0800 0604 0002 0200 0000 000b 0afe 0002
    0200 0000 000a 0afe 0001
  `);
  t.equal(frame.length, 42);
  t.same(decodeArp(frame), {
    op: 2,
    senderMac: MAC_B, senderIp: '10.254.0.2',
    targetMac: MAC_A, targetIp: '10.254.0.1',
    ethSrc: MAC_B, ethDst: MAC_A,
  });
});

t.test('decode: kernel reply to an RFC 5227 probe (captured)', async (t) => {
  // Linux answers a probe unicast to the prober, with target IP 0.0.0.0.
  const frame = hex(`
    0200 0000 000a 0200 0000 000b 0806 0001
    0800 0604 0002 0200 0000 000b 0afe 0002
    0200 0000 000a 0000 0000
  `);
  const p = decodeArp(frame);
  t.equal(p.op, OP_REPLY);
  t.equal(p.senderIp, '10.254.0.2');
  t.equal(p.senderMac, MAC_B);
  t.equal(p.targetIp, '0.0.0.0');
  t.equal(p.ethDst, MAC_A);
});

t.test('our probe against `arping -D` (captured)', async (t) => {
  const arping = hex(`
    ffff ffff ffff 0200 0000 000a 0806 0001
    0800 0604 0001 0200 0000 000a 0000 0000
    ffff ffff ffff 0afe 0002
  `);
  const ours = buildProbe({ senderMac: MAC_A, targetIp: '10.254.0.2' });
  // Identical except the target MAC: iputils puts the broadcast address
  // there, RFC 5227 §2.1.1 says zero, which is what we send.
  t.equal(ours.subarray(0, 32).toString('hex'), arping.subarray(0, 32).toString('hex'));
  t.equal(ours.subarray(38, 42).toString('hex'), arping.subarray(38, 42).toString('hex'));
  t.equal(decodeArp(arping).targetMac, 'ff:ff:ff:ff:ff:ff');
  t.equal(decodeArp(ours).targetMac, '00:00:00:00:00:00');
  t.same({ ...decodeArp(ours), targetMac: '' }, { ...decodeArp(arping), targetMac: '' });
});

t.test('our gratuitous reply equals `arping -A` (captured)', async (t) => {
  const arping = hex(`
    ffff ffff ffff 0200 0000 000a 0806 0001
    0800 0604 0002 0200 0000 000a 0afe 0001
    0200 0000 000a 0afe 0001
  `);
  const ours = buildAnnounceReply({ mac: MAC_A, ip: '10.254.0.1' });
  t.equal(ours.subarray(0, 42).toString('hex'), arping.toString('hex'));
  t.equal(ours.subarray(42).toString('hex'), PAD);
});

t.test('decode rejects what is not IPv4-over-Ethernet ARP', async (t) => {
  const good = buildProbe({ senderMac: MAC_A, targetIp: '10.0.0.1' });
  const mutate = (off: number, bytes: number[]): Buffer => {
    const b = Buffer.from(good);
    b.set(bytes, off);
    return b;
  };
  const cases: Array<[string, Buffer, RegExp]> = [
    ['short frame', good.subarray(0, 41), /41 bytes/],
    ['empty frame', Buffer.alloc(0), /0 bytes/],
    ['IPv4 EtherType', mutate(12, [0x08, 0x00]), /EtherType 0x0800/],
    ['RARP EtherType', mutate(12, [0x80, 0x35]), /EtherType 0x8035/],
    ['htype 6 (IEEE 802)', mutate(14, [0, 6]), /hardware type 6/],
    ['ptype IPv6', mutate(16, [0x86, 0xdd]), /protocol type 0x86dd/],
    ['hlen 8', mutate(18, [8]), /hardware address length 8/],
    ['plen 16', mutate(19, [16]), /protocol address length 16/],
    ['opcode 3 (RARP request)', mutate(20, [0, 3]), /opcode 3/],
    ['opcode 0', mutate(20, [0, 0]), /opcode 0/],
  ];
  for (const [name, frame, re] of cases) {
    const r = tryDecodeArp(frame);
    t.type(r, 'string', `${name}: tryDecodeArp gives a reason`);
    t.match(r as string, re, `${name}: reason`);
    t.throws(() => decodeArp(frame), ArpDecodeError, `${name}: decodeArp throws`);
  }
  try {
    decodeArp(cases[0]![1]);
  } catch (e) {
    t.equal((e as ArpDecodeError).code, 'EARPDECODE');
  }
});

t.test('decode accepts trailing bytes beyond the ARP payload', async (t) => {
  const f = Buffer.concat([buildProbe({ senderMac: MAC_A, targetIp: '10.0.0.1' }), Buffer.alloc(4, 0xee)]);
  t.equal(decodeArp(f).targetIp, '10.0.0.1');
});

t.test('encode validates its inputs', async (t) => {
  t.throws(() => buildProbe({ senderMac: 'zz:00:00:00:00:00', targetIp: '10.0.0.1' }), { code: 'EINVAL' });
  t.throws(() => buildProbe({ senderMac: Buffer.alloc(5), targetIp: '10.0.0.1' }), { code: 'EINVAL' });
  t.throws(() => buildProbe({ senderMac: MAC_A, targetIp: '10.0.0.256' }), { code: 'EINVAL' });
  t.throws(() => buildProbe({ senderMac: MAC_A, targetIp: '010.0.0.1' }), { code: 'EINVAL' });
  t.throws(() => buildRequest({ senderMac: MAC_A, senderIp: '', targetIp: '10.0.0.1' }), /sender IP/);
  t.throws(() => encodeArp({ op: 1, ethDst: MAC_A, ethSrc: MAC_A, senderMac: MAC_A, senderIp: '1.2.3.4', targetMac: 'x', targetIp: '1.2.3.4' }), /target MAC/);
});

t.test('round trip of every field', async (t) => {
  const fields = {
    op: 2 as const, ethDst: '12:34:56:78:9a:bc', ethSrc: 'de:ad:be:ef:00:01', senderMac: 'de:ad:be:ef:00:02',
    senderIp: '10.1.2.3', targetMac: 'fe:dc:ba:98:76:54', targetIp: '10.255.0.254',
  };
  t.same(decodeArp(encodeArp(fields)), fields);
});
