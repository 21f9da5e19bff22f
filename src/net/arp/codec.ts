/**
 * Layer: net/arp, pure codec. Builds and parses whole Ethernet II frames
 * carrying IPv4-over-Ethernet ARP (RFC 826). No I/O, no clock: the socket
 * layer (`socket.ts`) sends what this module builds and hands back what the
 * native layer received.
 *
 * Frame layout (offsets in bytes):
 *
 *   0  eth destination (6)   6  eth source (6)   12  EtherType 0x0806 (2)
 *   14 htype = 1 (2)         16 ptype = 0x0800 (2)
 *   18 hlen = 6 (1)          19 plen = 4 (1)     20  opcode (2)
 *   22 sender MAC (6)        28 sender IP (4)
 *   32 target MAC (6)        38 target IP (4)
 *   42 zero padding to 60 bytes (the minimum Ethernet frame without FCS;
 *      IEEE 802.3 §3.2.8, which the NIC would otherwise pad itself)
 */
import { VigilError } from '../../errors';
import { formatIPv4, formatMac, ipv4Bytes, parseMac } from '../../util/ip';

/** EtherType of ARP. */
export const ETHERTYPE_ARP = 0x0806;
/** EtherType of IPv4, the ARP protocol type we speak. */
export const ETHERTYPE_IPV4 = 0x0800;
/** ARP hardware type of Ethernet (RFC 826, IANA "Hardware Types"). */
export const HTYPE_ETHERNET = 1;
/** ARP opcode: request. */
export const OP_REQUEST = 1;
/** ARP opcode: reply. */
export const OP_REPLY = 2;
/** Length of the ARP part of an Ethernet frame: 14 header + 28 ARP. */
export const ARP_FRAME_LEN = 42;
/** Minimum Ethernet frame length without the FCS; built frames are padded to it. */
export const MIN_FRAME_LEN = 60;

/** The Ethernet broadcast address. */
export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';
/** The all-zero MAC, "unknown" in a request's target hardware field. */
export const ZERO_MAC = '00:00:00:00:00:00';
/** The unspecified IPv4 address, the sender IP of an RFC 5227 probe. */
export const ZERO_IP = '0.0.0.0';

/** A MAC as `aa:bb:cc:dd:ee:ff` text or as 6 raw bytes. */
export type MacLike = string | Uint8Array;

/** A decoded ARP frame. MACs are lower-case colon hex, IPs dotted quads. */
export interface ArpPacket {
  /** 1 = request, 2 = reply. */
  op: typeof OP_REQUEST | typeof OP_REPLY;
  senderMac: string;
  senderIp: string;
  targetMac: string;
  targetIp: string;
  /** Ethernet source address (normally equal to senderMac). */
  ethSrc: string;
  /** Ethernet destination address (broadcast or a unicast MAC). */
  ethDst: string;
}

/** Why a frame did not decode as IPv4-over-Ethernet ARP. */
export class ArpDecodeError extends VigilError {
  constructor(reason: string) {
    super('EARPDECODE', `not an IPv4-over-Ethernet ARP frame: ${reason}`);
    this.name = 'ArpDecodeError';
  }
}

function macBytes(mac: MacLike, what: string): Uint8Array {
  if (typeof mac === 'string') {
    const b = parseMac(mac);
    if (!b) throw new VigilError('EINVAL', `${what}: invalid MAC address '${mac}'`);
    return b;
  }
  if (mac.length !== 6) throw new VigilError('EINVAL', `${what}: a MAC address has 6 bytes, got ${mac.length}`);
  return mac;
}

function ipBytes(ip: string, what: string): [number, number, number, number] {
  const b = ipv4Bytes(ip);
  if (!b) throw new VigilError('EINVAL', `${what}: invalid IPv4 address '${ip}'`);
  return b;
}

/** The fields of one frame to encode; every MAC and IP is validated. */
export interface ArpFrameFields {
  op: typeof OP_REQUEST | typeof OP_REPLY;
  ethDst: MacLike;
  ethSrc: MacLike;
  senderMac: MacLike;
  senderIp: string;
  targetMac: MacLike;
  targetIp: string;
}

/**
 * Encode any ARP frame from its fields, padded to {@link MIN_FRAME_LEN}.
 * The named builders below are the ones callers should use; this one is the
 * single place the layout is written.
 */
export function encodeArp(f: ArpFrameFields): Buffer {
  const buf = Buffer.alloc(MIN_FRAME_LEN); // zero-filled: the padding is zeros
  buf.set(macBytes(f.ethDst, 'ethernet destination'), 0);
  buf.set(macBytes(f.ethSrc, 'ethernet source'), 6);
  buf.writeUInt16BE(ETHERTYPE_ARP, 12);
  buf.writeUInt16BE(HTYPE_ETHERNET, 14);
  buf.writeUInt16BE(ETHERTYPE_IPV4, 16);
  buf.writeUInt8(6, 18);
  buf.writeUInt8(4, 19);
  buf.writeUInt16BE(f.op, 20);
  buf.set(macBytes(f.senderMac, 'sender MAC'), 22);
  buf.set(ipBytes(f.senderIp, 'sender IP'), 28);
  buf.set(macBytes(f.targetMac, 'target MAC'), 32);
  buf.set(ipBytes(f.targetIp, 'target IP'), 38);
  return buf;
}

/**
 * An ordinary ARP request, "who has `targetIp`? tell `senderIp`" (RFC 826).
 * Broadcast unless `ethDst` is given (a unicast request re-confirms a known
 * neighbour, as Linux does for entries in PROBE state). The target MAC is
 * zero: RFC 826 leaves it unspecified and Linux and iputils send zeros.
 */
export function buildRequest(o: { senderMac: MacLike; senderIp: string; targetIp: string; ethDst?: MacLike }): Buffer {
  return encodeArp({
    op: OP_REQUEST,
    ethDst: o.ethDst ?? BROADCAST_MAC,
    ethSrc: o.senderMac,
    senderMac: o.senderMac,
    senderIp: o.senderIp,
    targetMac: ZERO_MAC,
    targetIp: o.targetIp,
  });
}

/**
 * An RFC 5227 §2.1.1 ARP Probe for `targetIp`: a broadcast request with
 * sender IP 0.0.0.0 (so no neighbour cache anywhere learns a binding from
 * it) and an all-zero target hardware address. Whoever holds the address
 * answers with a reply whose sender IP is `targetIp`.
 */
export function buildProbe(o: { senderMac: MacLike; targetIp: string }): Buffer {
  return probeFrame(o.senderMac, o.targetIp, ZERO_MAC);
}

/** An RFC 5227 probe frame with the given target MAC (zero, or the sender's for a release). */
function probeFrame(senderMac: MacLike, targetIp: string, targetMac: MacLike): Buffer {
  return encodeArp({
    op: OP_REQUEST,
    ethDst: BROADCAST_MAC,
    ethSrc: senderMac,
    senderMac,
    senderIp: ZERO_IP,
    targetMac,
    targetIp,
  });
}

/**
 * vigil's release notice: "this MAC no longer holds `ip`", sent by a master
 * right after it removed the HA IP (graceful stop, step-down), so a slave
 * need not wait for its probes to time out before confirming and taking
 * over. On the wire it is an RFC 5227 probe (sender IP 0.0.0.0, so no cache
 * learns anything and every other stack ignores it as another host's probe)
 * whose target hardware address, which RFC 5227 leaves unused in a probe, is
 * the sender's own MAC: that is what tells it from the master's own conflict
 * probes. It is a hint, not authority: a slave still confirms with a probe.
 */
export function buildRelease(o: { senderMac: MacLike; ip: string }): Buffer {
  return probeFrame(o.senderMac, o.ip, o.senderMac);
}

/**
 * A gratuitous ARP in request form, the RFC 5227 §3 "ARP Announcement":
 * broadcast, sender IP = target IP = `ip`, sender MAC = `mac`, target MAC
 * zero (as in the probe it follows). Receivers holding an entry for `ip`
 * update it to `mac` (RFC 826 merge step); Linux creates a new entry from it
 * only with `arp_accept=1`.
 */
export function buildAnnounceRequest(o: { mac: MacLike; ip: string; ethSrc?: MacLike }): Buffer {
  return encodeArp({
    op: OP_REQUEST,
    ethDst: BROADCAST_MAC,
    ethSrc: o.ethSrc ?? o.mac,
    senderMac: o.mac,
    senderIp: o.ip,
    targetMac: ZERO_MAC,
    targetIp: o.ip,
  });
}

/**
 * A gratuitous ARP in reply form (RFC 5944 §4.6): broadcast at the
 * Ethernet layer, opcode 2, sender IP = target IP = `ip`, and both sender
 * and target hardware addresses set to `mac` — §4.6 says the target MAC of a
 * gratuitous reply "is also set to the link-layer address to which this
 * cache entry should be updated". Some stacks only honour replies, which is
 * why announcers (keepalived, `arping -A`) offer this form too.
 */
export function buildAnnounceReply(o: { mac: MacLike; ip: string; ethSrc?: MacLike }): Buffer {
  return encodeArp({
    op: OP_REPLY,
    ethDst: BROADCAST_MAC,
    ethSrc: o.ethSrc ?? o.mac,
    senderMac: o.mac,
    senderIp: o.ip,
    targetMac: o.mac,
    targetIp: o.ip,
  });
}

/**
 * Decode a frame, or return the reason it is not IPv4-over-Ethernet ARP.
 * The hot path uses this form to drop foreign frames without throwing.
 */
export function tryDecodeArp(frame: Uint8Array): ArpPacket | string {
  if (frame.length < ARP_FRAME_LEN) return `frame is ${frame.length} bytes, needs at least ${ARP_FRAME_LEN}`;
  const u16 = (o: number): number => (frame[o]! << 8) | frame[o + 1]!;
  const ethertype = u16(12);
  if (ethertype !== ETHERTYPE_ARP) return `EtherType 0x${ethertype.toString(16).padStart(4, '0')}, expected 0x0806`;
  const htype = u16(14);
  if (htype !== HTYPE_ETHERNET) return `hardware type ${htype}, expected 1 (Ethernet)`;
  const ptype = u16(16);
  if (ptype !== ETHERTYPE_IPV4) return `protocol type 0x${ptype.toString(16).padStart(4, '0')}, expected 0x0800 (IPv4)`;
  if (frame[18] !== 6) return `hardware address length ${frame[18]}, expected 6`;
  if (frame[19] !== 4) return `protocol address length ${frame[19]}, expected 4`;
  const op = u16(20);
  if (op !== OP_REQUEST && op !== OP_REPLY) return `opcode ${op}, expected 1 (request) or 2 (reply)`;
  return {
    op,
    senderMac: formatMac(frame, 22),
    senderIp: formatIPv4(frame, 28),
    targetMac: formatMac(frame, 32),
    targetIp: formatIPv4(frame, 38),
    ethSrc: formatMac(frame, 6),
    ethDst: formatMac(frame, 0),
  };
}

/** Decode a frame; throws {@link ArpDecodeError} naming the failed check. */
export function decodeArp(frame: Uint8Array): ArpPacket {
  const r = tryDecodeArp(frame);
  if (typeof r === 'string') throw new ArpDecodeError(r);
  return r;
}

/** True for an RFC 5227 probe: a request with sender IP 0.0.0.0. */
export function isProbe(p: ArpPacket): boolean {
  return p.op === OP_REQUEST && p.senderIp === ZERO_IP;
}

/** True for a release notice ({@link buildRelease}): a probe naming its own sender as target MAC. */
export function isRelease(p: ArpPacket): boolean {
  return isProbe(p) && p.targetMac === p.senderMac && p.senderMac !== ZERO_MAC;
}

/** True for a gratuitous ARP (request or reply): sender IP equals target IP. */
export function isGratuitous(p: ArpPacket): boolean {
  return p.senderIp === p.targetIp && p.senderIp !== ZERO_IP;
}
