// Unit: the pure NDP codec (src/net/ndp/codec.ts) — frame layout byte by byte, the
// ICMPv6 checksum over the pseudo-header, and a seeded property test that round-trips
// NS/NA frames and rejects malformed ones the way RFC 4861 §7.1 receivers must.
import t from 'tap';
import {
  ALL_NODES, ALL_NODES_MAC, buildDadProbe, buildNdp, buildReleaseNotice, buildUnsolicitedNa, decodeNdp,
  icmp6Checksum, isReleaseNotice, multicastMac, OFF, solicitedNode, tryDecodeNdp,
} from '../../src/net/ndp/codec';
import { formatIPv6 } from '../../src/util/ip6';
import { formatMac } from '../../src/util/ip';
import { seededRandom } from '../../bench/lib/stats';

const MAC = '02:00:00:00:00:0a';

t.test('solicited-node group and multicast MACs (RFC 4291 §2.7.1, RFC 2464 §7)', async (t) => {
  t.equal(solicitedNode('fd00::1:2345:6789'), 'ff02::1:ff45:6789');
  t.equal(multicastMac('ff02::1:ff45:6789'), '33:33:ff:45:67:89');
  t.equal(multicastMac(ALL_NODES), ALL_NODES_MAC);
});

t.test('DAD probe: from ::, to the solicited-node group and its MAC, hop limit 255, no source link-layer option', async (t) => {
  const f = buildDadProbe(MAC, 'fd00::100');
  t.equal(f.length, 78, '14 Ethernet + 40 IPv6 + 24 NS, no option');
  t.equal(f.subarray(0, 6).toString('hex'), '3333ff000100', 'eth dst 33:33:ff + last 24 bits of the target');
  t.equal(f.subarray(6, 12).toString('hex'), '02000000000a', 'eth src: our MAC');
  t.equal(f.readUInt16BE(12), 0x86dd, 'EtherType IPv6');
  t.equal(f.readUInt32BE(14), 0x60000000, 'version 6, class 0, flow 0');
  t.equal(f.readUInt16BE(18), 24, 'payload length');
  t.equal(f[20], 58, 'next header ICMPv6');
  t.equal(f[21], 255, 'hop limit 255');
  t.equal(formatIPv6(f, 22), '::', 'source: unspecified');
  t.equal(formatIPv6(f, 38), 'ff02::1:ff00:100', 'destination: solicited-node');
  t.equal(f[54], 135, 'NS');
  t.equal(formatIPv6(f, 62), 'fd00::100', 'target');
  // The checksum of the whole message including its checksum field is 0 (RFC 1071).
  t.equal(icmp6Checksum(f.subarray(22, 38), f.subarray(38, 54), f.subarray(54)), 0);
  const p = decodeNdp(f);
  t.same({ type: p.type, src: p.srcIp, dst: p.dstIp, target: p.target, sll: p.sourceLinkAddr, nonce: p.nonce },
    { type: 'ns', src: '::', dst: 'ff02::1:ff00:100', target: 'fd00::100', sll: undefined, nonce: undefined });
  t.notOk(isReleaseNotice(p), 'a probe is not a release notice');
});

t.test('unsolicited NA: override, not solicited, target link-layer option, from the target to all-nodes', async (t) => {
  const f = buildUnsolicitedNa(MAC, 'fd00::100');
  t.equal(f.length, 86, '78 + one 8-byte option');
  t.equal(formatMac(f, 0), ALL_NODES_MAC);
  t.equal(formatIPv6(f, 22), 'fd00::100', 'source: the address itself');
  t.equal(formatIPv6(f, 38), 'ff02::1');
  t.equal(f[54], 136, 'NA');
  t.equal(f[58], 0x20, 'flags: O only');
  t.same([f[78], f[79]], [2, 1], 'option: target link-layer, one unit');
  t.equal(formatMac(f, 80), MAC);
  const p = decodeNdp(f);
  t.same({ o: p.override, s: p.solicited, r: p.router, tll: p.targetLinkAddr }, { o: true, s: false, r: false, tll: MAC });
  const u = decodeNdp(buildUnsolicitedNa(MAC, 'fd00::100', { ip: 'fd00::1', mac: '02:00:00:00:00:01' }));
  t.same([u.dstIp, u.ethDst], ['fd00::1', '02:00:00:00:00:01'], 'unicast to the router');
});

t.test('release notice: a DAD probe whose RFC 7527 nonce is the sender MAC', async (t) => {
  const f = buildReleaseNotice(MAC, 'fd00::100');
  const p = decodeNdp(f);
  t.equal(p.nonce, '02000000000a');
  t.ok(isReleaseNotice(p));
  t.notOk(isReleaseNotice(decodeNdp(buildDadProbe(MAC, 'fd00::100', Buffer.from('0123456789ab', 'hex')))), 'another nonce: an ordinary probe');
  // Forged: the nonce is the MAC but the frame came from elsewhere.
  const forged = buildDadProbe('02:00:00:00:00:0b', 'fd00::100', Buffer.from('02000000000a', 'hex'));
  t.notOk(isReleaseNotice(decodeNdp(forged)));
});

t.test('RFC 4861 §7.1 receiver checks', async (t) => {
  const ns = buildDadProbe(MAC, 'fd00::100');
  t.match(tryDecodeNdp(buildNdp({ ethSrc: MAC, ethDst: ALL_NODES_MAC, srcIp: 'fd00::100', dstIp: ALL_NODES, type: 'na', target: 'fd00::100', hopLimit: 64 })), /hop limit 64/);
  const bad = Buffer.from(ns); bad[70] ^= 1;
  t.match(tryDecodeNdp(bad), /bad ICMPv6 checksum/);
  const code = Buffer.from(ns); code[55] = 1;
  t.match(tryDecodeNdp(code), /code 1/);
  t.match(tryDecodeNdp(ns.subarray(0, 70)), /too short/);
  // An NS from :: with a source link-layer option is invalid.
  t.match(tryDecodeNdp(buildNdp({ ethSrc: MAC, ethDst: '33:33:ff:00:01:00', srcIp: '::', dstIp: 'ff02::1:ff00:100', type: 'ns', target: 'fd00::100', options: [{ type: 1, data: Buffer.alloc(6) }] })), /source link-layer option/);
  // Solicited on a multicast NA.
  t.match(tryDecodeNdp(buildNdp({ ethSrc: MAC, ethDst: ALL_NODES_MAC, srcIp: 'fd00::100', dstIp: ALL_NODES, type: 'na', target: 'fd00::100', flags: 0x40 })), /solicited flag/);
  // An option whose length runs past the end (length field patched, checksum fixed up).
  const na = buildUnsolicitedNa(MAC, 'fd00::100');
  na[79] = 2;
  na.writeUInt16BE(0, 56);
  na.writeUInt16BE(icmp6Checksum(na.subarray(22, 38), na.subarray(38, 54), na.subarray(54)), 56);
  t.match(tryDecodeNdp(na), /truncated option/);
  const zero = buildUnsolicitedNa(MAC, 'fd00::100');
  zero[79] = 0;
  zero.writeUInt16BE(0, 56);
  zero.writeUInt16BE(icmp6Checksum(zero.subarray(22, 38), zero.subarray(38, 54), zero.subarray(54)), 56);
  t.match(tryDecodeNdp(zero), /length 0/);
  const arp = Buffer.from(ns); arp.writeUInt16BE(0x0806, 12);
  t.match(tryDecodeNdp(arp), /EtherType/);
});

t.test('property: random NS/NA frames round-trip; any bit flipped from the payload length on is refused or decodes to a different packet', async (t) => {
  const rnd = seededRandom(0x6e6470);
  const byte = () => Math.floor(rnd() * 256);
  const hex = (n: number) => Array.from({ length: n }, byte);
  let refused = 0; let checked = 0;
  for (let i = 0; i < 400; i++) {
    const mac = formatMac(Buffer.from([(byte() & 0xfe) | 0x02, ...hex(5)]));
    const target = formatIPv6(Buffer.from([0xfd, ...hex(15)]));
    const kind = Math.floor(rnd() * 3);
    const f = kind === 0 ? buildDadProbe(mac, target) : kind === 1 ? buildReleaseNotice(mac, target) : buildUnsolicitedNa(mac, target);
    const p = decodeNdp(f);
    if (p.target !== target || p.ethSrc !== mac || p.hopLimit !== 255) t.fail(`round trip ${i}: ${JSON.stringify(p)}`);
    if (kind === 1 && !isReleaseNotice(p)) t.fail(`release notice ${i} not recognised`);
    if (kind === 2 && (p.targetLinkAddr !== mac || !p.override)) t.fail(`NA ${i}: ${JSON.stringify(p)}`);
    // Flip one bit from the payload length on (traffic class and flow label carry no meaning for ND).
    const at = OFF.payloadLen + Math.floor(rnd() * (f.length - OFF.payloadLen));
    const m = Buffer.from(f); m[at]! ^= 1 << Math.floor(rnd() * 8);
    const q = tryDecodeNdp(m);
    checked++;
    if (typeof q === 'string') refused++;
    else if (JSON.stringify(q) === JSON.stringify(p)) t.fail(`flip at ${at} of frame ${i} went unnoticed`);
    // Truncation anywhere inside the message is refused.
    const cut = OFF.options - 1 + Math.floor(rnd() * (f.length - OFF.options + 1));
    if (cut < f.length && typeof tryDecodeNdp(f.subarray(0, cut)) !== 'string') t.fail(`frame ${i} cut at ${cut} decoded`);
  }
  // The checksum covers every bit from the payload length on except the NA's reserved bits; a flip there still decodes the same.
  t.ok(refused / checked > 0.95, `${refused}/${checked} single-bit flips refused`);
});
