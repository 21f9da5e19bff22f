/**
 * Layer: unit test of the netlink layer's pure codec (src/net/netlink/codec.ts)
 * against byte-commented rtnetlink messages. Netlink integers are in host
 * byte order; the frames below are little-endian, so this file needs an LE host.
 */
import t from 'tap';
import { endianness } from 'node:os';
import {
  NLM_F, RTM, NetlinkParseError, addrPayload, align4, broadcastOf, encodeAttr, encodeMessage, getLinkPayload,
  parseAddress, parseAttrs, parseErrorPayload, parseLink, parseMessages, parseNeighbour,
} from '../../src/net/netlink/codec';

/** Bytes from commented hex: everything after `//` on a line is ignored. */
function hex(s: string): Buffer {
  return Buffer.from(s.split('\n').map((l) => l.replace(/\/\/.*$/, '')).join('').replace(/\s+/g, ''), 'hex');
}

if (endianness() !== 'LE') {
  t.plan(0, 'frames are written for a little-endian host');
} else {
  const NEWLINK_ETH0 = hex(`
    00 00          // ifi_family AF_UNSPEC, pad
    01 00          // ifi_type ARPHRD_ETHER
    02 00 00 00    // ifi_index 2
    43 10 01 00    // ifi_flags UP|BROADCAST|RUNNING|MULTICAST|LOWER_UP (0x11043)
    00 00 00 00    // ifi_change
    09 00 03 00 65 74 68 30 00 00 00 00   // IFLA_IFNAME "eth0\\0" + 3 pad
    08 00 04 00 dc 05 00 00               // IFLA_MTU 1500
    05 00 10 00 06 00 00 00               // IFLA_OPERSTATE 6 (IF_OPER_UP) + pad
    05 00 21 00 01 00 00 00               // IFLA_CARRIER 1 + pad
    0a 00 01 00 02 11 22 33 44 55 00 00   // IFLA_ADDRESS 02:11:22:33:44:55 + pad
    08 00 1b 00 00 00 00 00               // IFLA_STATS-ish attribute vigil ignores (type 27)
  `);

  t.test('RTM_NEWLINK: name, MAC, flags, carrier, operstate, MTU', async (t) => {
    const l = parseLink(NEWLINK_ETH0);
    t.equal(l.family, 0);
    t.same(l.info, { ifindex: 2, name: 'eth0', mac: '02:11:22:33:44:55', up: true, carrier: true, operstate: 'up', mtu: 1500 });
  });

  t.test('RTM_NEWLINK: carrier lost, admin up, IFLA_CARRIER 0 wins over missing LOWER_UP', async (t) => {
    const b = Buffer.from(NEWLINK_ETH0);
    b.writeUInt32LE(0x1003, 8);  // UP|BROADCAST|MULTICAST: no RUNNING, no LOWER_UP
    b[36 + 4] = 2;              // IFLA_OPERSTATE (at 36) value → IF_OPER_DOWN
    b[44 + 4] = 0;              // IFLA_CARRIER (at 44) value → 0
    const l = parseLink(b);
    t.equal(l.info.up, true);
    t.equal(l.info.carrier, false);
    t.equal(l.info.operstate, 'down');
  });

  t.test('RTM_NEWLINK without IFLA_CARRIER falls back to IFF_LOWER_UP', async (t) => {
    const noCarrier = Buffer.concat([NEWLINK_ETH0.subarray(0, 44), NEWLINK_ETH0.subarray(52)]);
    t.equal(parseLink(noCarrier).info.carrier, true);
    noCarrier.writeUInt32LE(0x1003, 8);
    t.equal(parseLink(noCarrier).info.carrier, false);
  });

  t.test('RTM_NEWADDR: IFA_LOCAL preferred, label kept', async (t) => {
    const a = parseAddress(hex(`
      02             // ifa_family AF_INET
      18             // ifa_prefixlen 24
      80             // ifa_flags IFA_F_PERMANENT
      00             // ifa_scope RT_SCOPE_UNIVERSE
      02 00 00 00    // ifa_index 2
      08 00 01 00 0a 64 05 01   // IFA_ADDRESS 10.100.5.1 (peer on p2p links)
      08 00 02 00 0a 64 05 0b   // IFA_LOCAL 10.100.5.11
      0d 00 03 00 65 74 68 30 3a 76 69 70 00 00 00 00  // IFA_LABEL "eth0:vip\\0" + 3 pad
    `));
    t.same(a, { family: 2, ifindex: 2, prefix: 24, address: '10.100.5.11', label: 'eth0:vip' });
  });

  t.test('RTM_NEWNEIGH: address, MAC, state names', async (t) => {
    const n = parseNeighbour(hex(`
      02 00 00 00    // ndm_family AF_INET, pads
      03 00 00 00    // ndm_ifindex 3
      02 00          // ndm_state NUD_REACHABLE
      00             // ndm_flags
      01             // ndm_type RTN_UNICAST
      08 00 01 00 0a 64 05 0c               // NDA_DST 10.100.5.12
      0a 00 02 00 02 aa bb cc dd ee 00 00   // NDA_LLADDR 02:aa:bb:cc:dd:ee + pad
    `));
    t.same(n, { family: 2, ifindex: 3, address: '10.100.5.12', mac: '02:aa:bb:cc:dd:ee', state: ['REACHABLE'] });
    const incomplete = parseNeighbour(hex(`
      02 00 00 00 03 00 00 00
      21 00          // NUD_INCOMPLETE|NUD_FAILED
      00 01
      08 00 01 00 0a 64 05 0d               // NDA_DST 10.100.5.13, no NDA_LLADDR
    `));
    t.same(incomplete, { family: 2, ifindex: 3, address: '10.100.5.13', state: ['INCOMPLETE', 'FAILED'] });
  });

  t.test('a datagram with several messages: ack then NLMSG_DONE', async (t) => {
    const msgs = parseMessages(hex(`
      24 00 00 00  02 00  00 01  07 00 00 00  2a 00 00 00   // nlmsghdr len 36, NLMSG_ERROR, CAPPED, seq 7, pid 42
      00 00 00 00                                           // error 0: an ACK
      10 00 00 00  14 00  05 00  07 00 00 00  2a 00 00 00   // the acked request's header, echoed
      14 00 00 00  03 00  02 00  08 00 00 00  2a 00 00 00   // nlmsghdr len 20, NLMSG_DONE, MULTI, seq 8
      00 00 00 00                                           // dump status 0
    `));
    t.equal(msgs.length, 2);
    t.same(msgs.map((m) => [m.type, m.flags, m.seq, m.pid, m.payload.length]), [[2, 0x100, 7, 42, 20], [3, 2, 8, 42, 4]]);
    t.equal(parseErrorPayload(msgs[0]!.payload), 0);
    t.equal(parseErrorPayload(hex('ef ff ff ff')), 17, 'the kernel sends -EEXIST; we read 17');
  });

  t.test('malformed input throws NetlinkParseError', async (t) => {
    t.throws(() => parseMessages(hex('30 00 00 00 10 00 00 00 01 00 00 00 00 00 00 00')), NetlinkParseError, 'length past the end');
    t.throws(() => parseMessages(hex('08 00 00 00 10 00 00 00 01 00 00 00 00 00 00 00')), NetlinkParseError, 'length below the header');
    t.throws(() => parseAttrs(hex('20 00 03 00 65 74 68 30')), NetlinkParseError, 'attribute past the end');
    t.throws(() => parseLink(hex('00 00 01 00')), NetlinkParseError, 'short ifinfomsg');
    t.throws(() => parseAddress(hex('02 18')), NetlinkParseError, 'short ifaddrmsg');
    t.throws(() => parseNeighbour(hex('02 00 00 00')), NetlinkParseError, 'short ndmsg');
    t.throws(() => parseErrorPayload(hex('00 00')), NetlinkParseError, 'short nlmsgerr');
    t.same(parseMessages(Buffer.alloc(0)), [], 'empty datagram');
  });

  t.test('RTM_NEWADDR request: what `ip addr add 10.100.5.201/24 brd + dev <2> label eth0:vip` sends', async (t) => {
    t.same(addrPayload('add', 2, '10.100.5.201', 24, 'eth0:vip'), hex(`
      02 18 00 00    // AF_INET, prefixlen 24, flags 0, scope universe
      02 00 00 00    // ifa_index 2
      08 00 02 00 0a 64 05 c9   // IFA_LOCAL 10.100.5.201
      08 00 01 00 0a 64 05 c9   // IFA_ADDRESS 10.100.5.201
      08 00 04 00 0a 64 05 ff   // IFA_BROADCAST 10.100.5.255
      0d 00 03 00 65 74 68 30 3a 76 69 70 00 00 00 00  // IFA_LABEL "eth0:vip\\0" + pad
    `));
    t.same(addrPayload('del', 2, '10.100.5.201', 32), hex(`
      02 20 00 00 02 00 00 00   // AF_INET, /32, index 2
      08 00 02 00 0a 64 05 c9   // IFA_LOCAL
      08 00 01 00 0a 64 05 c9   // IFA_ADDRESS: makes the kernel match the prefix too; no broadcast on delete
    `));
  });

  t.test('RTM_GETLINK by name asks for no stats', async (t) => {
    t.same(getLinkPayload('eth0'), hex(`
      00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00   // ifinfomsg: any family, index 0 (select by name)
      08 00 1d 00 08 00 00 00                           // IFLA_EXT_MASK RTEXT_FILTER_SKIP_STATS
      09 00 03 00 65 74 68 30 00 00 00 00               // IFLA_IFNAME "eth0"
    `));
  });

  t.test('message and attribute framing round-trips', async (t) => {
    const m = encodeMessage({ type: RTM.NEWADDR, flags: NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL, seq: 9, pid: 77, payload: Buffer.from([1, 2, 3]) });
    t.equal(m.length, 20, 'padded to 4');
    const [back] = parseMessages(m);
    t.same([back!.type, back!.flags, back!.seq, back!.pid, [...back!.payload]], [20, 0x605, 9, 77, [1, 2, 3]]);
    const attrs = parseAttrs(Buffer.concat([encodeAttr(3, Buffer.from('ab')), encodeAttr(4 | 0x8000, Buffer.from([9]))]));
    t.same([...attrs.keys()], [3, 4], 'NLA_F_NESTED masked off');
    t.equal(align4(5), 8);
  });

  t.test('broadcast addresses', async (t) => {
    t.equal(broadcastOf('10.1.2.3', 24), '10.1.2.255');
    t.equal(broadcastOf('10.1.2.3', 8), '10.255.255.255');
    t.equal(broadcastOf('10.1.2.3', 30), '10.1.2.3');
    t.equal(broadcastOf('10.1.2.3', 31), undefined, 'RFC 3021 point-to-point');
    t.equal(broadcastOf('10.1.2.3', 32), undefined);
  });
}
