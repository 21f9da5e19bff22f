/**
 * Layer: net/ndp, pure codec. Builds and parses whole Ethernet II frames
 * carrying IPv6 Neighbor Discovery (RFC 4861): the Neighbor Solicitation in
 * DAD form that probes an HA address, the unsolicited Neighbor Advertisement
 * that announces it, and the release notice. No I/O, no clock.
 *
 * Frame layout (offsets in bytes):
 *
 *   0  eth destination (6)   6  eth source (6)   12 EtherType 0x86DD (2)
 *   14 IPv6: version 6, traffic class 0, flow 0 (4)
 *   18 payload length (2)    20 next header 58 (ICMPv6)   21 hop limit 255
 *   22 source address (16)   38 destination address (16)
 *   54 ICMPv6 type (1)       55 code 0 (1)        56 checksum (2)
 *   58 NA flags R S O (1) + reserved (3)          62 target address (16)
 *   78 options, 8-byte units: type (1), length in units (1), data
 *
 * The checksum covers the RFC 8200 §8.1 pseudo-header (source, destination,
 * upper-layer length, next header 58) and the ICMPv6 message (RFC 4443 §2.3).
 * The parser applies RFC 4861 §7.1's validity checks a receiver must make
 * (hop limit 255, code 0, checksum, lengths, options of non-zero length that
 * fit, no source link-layer option from ::, S clear on a multicast NA), so a
 * frame an IPv6 stack would drop is dropped here too.
 */
import { VigilError } from '../../errors';
import { formatMac, parseMac } from '../../util/ip';
import { formatIPv6, ipv6Bytes } from '../../util/ip6';

/** EtherType of IPv6. */
export const ETHERTYPE_IPV6 = 0x86dd;
/** IPv6 next header of ICMPv6. */
export const NEXT_HEADER_ICMPV6 = 58;
/** ICMPv6 types (RFC 4861 §4.3, §4.4). */
export const ICMP6_NS = 135;
export const ICMP6_NA = 136;
/** ND option types (RFC 4861 §4.6; Nonce: RFC 3971 §5.3.2, used for DAD by RFC 7527). */
export const OPT_SOURCE_LLADDR = 1;
export const OPT_TARGET_LLADDR = 2;
export const OPT_NONCE = 14;
/** The only hop limit ND accepts: proof the sender is on the link (RFC 4861 §7.1). */
export const ND_HOP_LIMIT = 255;
/** Offsets in the frame. */
export const OFF = { ethType: 12, ip: 14, payloadLen: 18, nextHeader: 20, hopLimit: 21, src: 22, dst: 38, icmp: 54, icmpType: 54, flags: 58, target: 62, options: 78 } as const;
/** The all-nodes group and its MAC (RFC 4291 §2.7.1, RFC 2464 §7). */
export const ALL_NODES = 'ff02::1';
export const ALL_NODES_MAC = '33:33:00:00:00:01';
/** The unspecified address, the source of a DAD probe (RFC 4862 §5.4.2). */
export const UNSPECIFIED = '::';

/** NA flag bits in the byte at {@link OFF.flags}. */
const NA_R = 0x80; const NA_S = 0x40; const NA_O = 0x20;

/** A decoded NS or NA. Addresses in RFC 5952 text, MACs lower-case colon hex. */
export interface NdpPacket {
  type: 'ns' | 'na';
  ethSrc: string;
  ethDst: string;
  srcIp: string;
  dstIp: string;
  hopLimit: number;
  target: string;
  /** NA only. */
  router?: boolean;
  solicited?: boolean;
  override?: boolean;
  sourceLinkAddr?: string;
  targetLinkAddr?: string;
  /** Nonce option data, hex. */
  nonce?: string;
}

/** Why a frame is not a valid NS/NA. */
export class NdpDecodeError extends VigilError {
  constructor(reason: string) {
    super('ENDPDECODE', `not a valid Neighbor Discovery frame: ${reason}`);
    this.name = 'NdpDecodeError';
  }
}

function v6(ip: string, what: string): Buffer {
  const b = ipv6Bytes(ip);
  if (!b) throw new VigilError('EINVAL', `${what}: invalid IPv6 address '${ip}'`);
  return b;
}

function mac(m: string | Uint8Array, what: string): Buffer {
  if (typeof m !== 'string') {
    if (m.length !== 6) throw new VigilError('EINVAL', `${what}: a MAC address has 6 bytes, got ${m.length}`);
    return Buffer.from(m);
  }
  const b = parseMac(m);
  if (!b) throw new VigilError('EINVAL', `${what}: invalid MAC address '${m}'`);
  return b;
}

/** The solicited-node multicast group of `ip`: ff02::1:ffXX:XXXX (RFC 4291 §2.7.1). */
export function solicitedNode(ip: string): string {
  const b = v6(ip, 'solicited-node group');
  const g = Buffer.from('ff0200000000000000000001ff000000', 'hex');
  b.copy(g, 13, 13, 16);
  return formatIPv6(g);
}

/** The Ethernet MAC of an IPv6 multicast group: 33:33 and its last 32 bits (RFC 2464 §7). */
export function multicastMac(group: string): string {
  const b = v6(group, 'multicast MAC');
  return formatMac(Buffer.from([0x33, 0x33, b[12]!, b[13]!, b[14]!, b[15]!]));
}

/** The ICMPv6 checksum of `icmp` between `src` and `dst` (RFC 4443 §2.3, pseudo-header RFC 8200 §8.1). */
export function icmp6Checksum(src: Uint8Array, dst: Uint8Array, icmp: Uint8Array): number {
  let sum = 0;
  const add = (b: Uint8Array) => {
    for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) | (i + 1 < b.length ? b[i + 1]! : 0);
  };
  add(src);
  add(dst);
  sum += (icmp.length >>> 16) + (icmp.length & 0xffff) + NEXT_HEADER_ICMPV6;
  add(icmp);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return (~sum) & 0xffff;
}

interface BuildFields {
  ethSrc: string | Uint8Array;
  ethDst: string;
  srcIp: string;
  dstIp: string;
  type: 'ns' | 'na';
  target: string;
  flags?: number;
  options?: Array<{ type: number; data: Buffer }>;
  /** Tests only: a hop limit other than 255. */
  hopLimit?: number;
}

/** Build a whole frame; options are padded to 8-byte units. */
export function buildNdp(f: BuildFields): Buffer {
  const opts = (f.options ?? []).map((o) => {
    const len = Math.ceil((o.data.length + 2) / 8);
    const b = Buffer.alloc(len * 8);
    b[0] = o.type; b[1] = len;
    o.data.copy(b, 2);
    return b;
  });
  const icmp = Buffer.concat([Buffer.alloc(24), ...opts]);
  icmp[0] = f.type === 'ns' ? ICMP6_NS : ICMP6_NA;
  icmp[4] = f.flags ?? 0;
  v6(f.target, 'target').copy(icmp, 8);
  const src = v6(f.srcIp, 'source'); const dst = v6(f.dstIp, 'destination');
  icmp.writeUInt16BE(icmp6Checksum(src, dst, icmp), 2);
  const hdr = Buffer.alloc(OFF.icmp);
  mac(f.ethDst, 'destination MAC').copy(hdr, 0);
  mac(f.ethSrc, 'source MAC').copy(hdr, 6);
  hdr.writeUInt16BE(ETHERTYPE_IPV6, OFF.ethType);
  hdr.writeUInt32BE(0x60000000, OFF.ip);
  hdr.writeUInt16BE(icmp.length, OFF.payloadLen);
  hdr[OFF.nextHeader] = NEXT_HEADER_ICMPV6;
  hdr[OFF.hopLimit] = f.hopLimit ?? ND_HOP_LIMIT;
  src.copy(hdr, OFF.src);
  dst.copy(hdr, OFF.dst);
  return Buffer.concat([hdr, icmp]);
}

/**
 * The probe: an NS in DAD form (RFC 4862 §5.4.2) for `target`, from ::
 * to the target's solicited-node group, with no source link-layer option,
 * so no neighbour cache learns anything from it (as an RFC 5227 ARP probe).
 * A `nonce` (6 bytes) adds the RFC 7527 Nonce option.
 */
export function buildDadProbe(ownMac: string | Uint8Array, target: string, nonce?: Uint8Array): Buffer {
  const group = solicitedNode(target);
  return buildNdp({
    ethSrc: ownMac, ethDst: multicastMac(group), srcIp: UNSPECIFIED, dstIp: group, type: 'ns', target,
    ...(nonce ? { options: [{ type: OPT_NONCE, data: Buffer.from(nonce) }] } : {}),
  });
}

/**
 * The release notice: a DAD probe whose Nonce option carries the sender's
 * own MAC. Every other stack sees an ordinary RFC 7527 DAD probe (a holder
 * answers it, a host with the address tentative compares the nonce with its
 * own and they differ); vigil reads "the sender let the address go".
 */
export function buildReleaseNotice(ownMac: string | Uint8Array, target: string): Buffer {
  return buildDadProbe(ownMac, target, mac(ownMac, 'source MAC'));
}

/** True when `p` is a release notice: a DAD probe whose nonce is its Ethernet source. */
export function isReleaseNotice(p: NdpPacket): boolean {
  return p.type === 'ns' && p.srcIp === UNSPECIFIED && p.nonce === p.ethSrc.replace(/:/g, '');
}

/**
 * An unsolicited NA for `target` (RFC 4861 §7.2.6): override set, solicited
 * clear, the target link-layer option with `ownMac`, from the target itself
 * to the all-nodes group; or, with `to`, to one neighbour's unicast address
 * and MAC (a router whose cache should move at once).
 */
export function buildUnsolicitedNa(ownMac: string | Uint8Array, target: string, to?: { ip: string; mac: string }): Buffer {
  const m = mac(ownMac, 'source MAC');
  return buildNdp({
    ethSrc: m, ethDst: to?.mac ?? ALL_NODES_MAC, srcIp: target, dstIp: to?.ip ?? ALL_NODES, type: 'na', target, flags: NA_O,
    options: [{ type: OPT_TARGET_LLADDR, data: m }],
  });
}

/** Decode and validate a frame (RFC 4861 §7.1.1, §7.1.2); throws {@link NdpDecodeError}. */
export function decodeNdp(frame: Uint8Array): NdpPacket {
  const b = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  if (b.length < OFF.options) throw new NdpDecodeError(`frame too short (${b.length} bytes)`);
  if (b.readUInt16BE(OFF.ethType) !== ETHERTYPE_IPV6) throw new NdpDecodeError('EtherType is not IPv6');
  if ((b[OFF.ip]! >> 4) !== 6) throw new NdpDecodeError('IP version is not 6');
  if (b[OFF.nextHeader] !== NEXT_HEADER_ICMPV6) throw new NdpDecodeError('next header is not ICMPv6');
  const hopLimit = b[OFF.hopLimit]!;
  if (hopLimit !== ND_HOP_LIMIT) throw new NdpDecodeError(`hop limit ${hopLimit} (RFC 4861 requires 255)`);
  const plen = b.readUInt16BE(OFF.payloadLen);
  if (plen < 24) throw new NdpDecodeError(`ICMPv6 length ${plen} (at least 24)`);
  if (OFF.icmp + plen > b.length) throw new NdpDecodeError(`truncated: IPv6 payload length ${plen}, ${b.length - OFF.icmp} bytes present`);
  const icmp = b.subarray(OFF.icmp, OFF.icmp + plen);
  const t = icmp[0];
  if (t !== ICMP6_NS && t !== ICMP6_NA) throw new NdpDecodeError(`ICMPv6 type ${t} is neither NS nor NA`);
  if (icmp[1] !== 0) throw new NdpDecodeError(`ICMPv6 code ${icmp[1]}`);
  const src = b.subarray(OFF.src, OFF.src + 16); const dst = b.subarray(OFF.dst, OFF.dst + 16);
  if (icmp6Checksum(src, dst, icmp) !== 0) throw new NdpDecodeError('bad ICMPv6 checksum');
  const target = icmp.subarray(8, 24);
  if (target[0] === 0xff) throw new NdpDecodeError('target is a multicast address');
  const p: NdpPacket = {
    type: t === ICMP6_NS ? 'ns' : 'na',
    ethDst: formatMac(b, 0), ethSrc: formatMac(b, 6),
    srcIp: formatIPv6(src), dstIp: formatIPv6(dst), hopLimit, target: formatIPv6(target),
  };
  if (p.type === 'na') {
    p.router = (icmp[4]! & NA_R) !== 0; p.solicited = (icmp[4]! & NA_S) !== 0; p.override = (icmp[4]! & NA_O) !== 0;
    if (p.solicited && dst[0] === 0xff) throw new NdpDecodeError('solicited flag set on a multicast NA');
  }
  for (let o = 24; o < icmp.length;) {
    if (o + 2 > icmp.length) throw new NdpDecodeError('truncated option header');
    const len = icmp[o + 1]! * 8;
    if (len === 0) throw new NdpDecodeError('option of length 0');
    if (o + len > icmp.length) throw new NdpDecodeError(`truncated option (type ${icmp[o]}, ${len} bytes, ${icmp.length - o} left)`);
    const data = icmp.subarray(o + 2, o + len);
    if (icmp[o] === OPT_SOURCE_LLADDR) p.sourceLinkAddr = formatMac(data, 0);
    else if (icmp[o] === OPT_TARGET_LLADDR) p.targetLinkAddr = formatMac(data, 0);
    else if (icmp[o] === OPT_NONCE) p.nonce = data.toString('hex');
    o += len;
  }
  if (p.type === 'ns' && p.srcIp === UNSPECIFIED) {
    if (p.sourceLinkAddr !== undefined) throw new NdpDecodeError('source link-layer option on an NS from ::');
    if (dst[0] !== 0xff) throw new NdpDecodeError('NS from :: to a unicast address');
  }
  return p;
}

/** {@link decodeNdp} returning the reason as a string instead of throwing. */
export function tryDecodeNdp(frame: Uint8Array): NdpPacket | string {
  try {
    return decodeNdp(frame);
  } catch (e) {
    if (e instanceof NdpDecodeError) return e.message;
    throw e;
  }
}
