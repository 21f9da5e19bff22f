/**
 * Layer: netlink layer, pure codec. Builds and parses the rtnetlink messages
 * vigil uses (links, IPv4 addresses, neighbours), with no socket and no I/O.
 *
 * Wire formats follow the kernel UAPI headers: `linux/netlink.h` (nlmsghdr,
 * nlattr, nlmsgerr), `linux/rtnetlink.h` (ifinfomsg, ifaddrmsg, ndmsg),
 * `linux/if_link.h` (IFLA_*), `linux/if_addr.h` (IFA_*), `linux/neighbour.h`
 * (NDA_*, NUD_*). Netlink integers are in host byte order; only IP addresses
 * are in network order.
 */
import { endianness } from 'node:os';
import { formatIPv4, ipv4Bytes } from '../../util/ip';
import { formatIPv6, ipv6Bytes } from '../../util/ip6';

const LE = endianness() === 'LE';

/** Netlink control message types (`linux/netlink.h`). */
export const NLMSG = { NOOP: 1, ERROR: 2, DONE: 3, OVERRUN: 4 } as const;

/** rtnetlink message types (`linux/rtnetlink.h`). */
export const RTM = {
  NEWLINK: 16, DELLINK: 17, GETLINK: 18,
  NEWADDR: 20, DELADDR: 21, GETADDR: 22,
  NEWNEIGH: 28, DELNEIGH: 29, GETNEIGH: 30,
} as const;

/** nlmsghdr flags. */
export const NLM_F = {
  REQUEST: 0x1, MULTI: 0x2, ACK: 0x4, ECHO: 0x8, DUMP_INTR: 0x10,
  ROOT: 0x100, MATCH: 0x200, DUMP: 0x300,
  REPLACE: 0x100, EXCL: 0x200, CREATE: 0x400, APPEND: 0x800,
} as const;

/** rtnetlink multicast groups, as numbers for NETLINK_ADD_MEMBERSHIP. */
export const RTNLGRP = { LINK: 1, NEIGH: 3, IPV4_IFADDR: 5, IPV6_IFADDR: 9 } as const;

/** Address families seen in rtnetlink headers (`linux/socket.h`). */
export const AF_UNSPEC = 0;
/** IPv4. */
export const AF_INET = 2;
/** Bridge port notifications repeat link changes with this family. */
export const AF_BRIDGE = 7;
/** IPv6 (the HA role's IPv6 addresses). */
export const AF_INET6 = 10;
/** ifa_flags bits (linux/if_addr.h) the HA role sets and reads on IPv6 addresses. */
export const IFA_F = { NODAD: 0x02, DADFAILED: 0x08, TENTATIVE: 0x40 } as const;

const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, OPERSTATE: 16, EXT_MASK: 29, CARRIER: 33 } as const;
const IFA = { ADDRESS: 1, LOCAL: 2, LABEL: 3, BROADCAST: 4, FLAGS: 8 } as const;
const NDA = { DST: 1, LLADDR: 2 } as const;

const IFF_UP = 0x1;
const IFF_LOWER_UP = 0x10000;
/** RTEXT_FILTER_SKIP_STATS: leave the large stats blocks out of link replies. */
const RTEXT_FILTER_SKIP_STATS = 1 << 3;

/** IF_OPER_* (RFC 2863 operational status), indexed by value. */
const OPERSTATES = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'];

/** NUD_* neighbour states, one bit each, in the order `ip neigh` prints them. */
const NUD_STATES: Array<[number, string]> = [
  [0x01, 'INCOMPLETE'], [0x02, 'REACHABLE'], [0x04, 'STALE'], [0x08, 'DELAY'],
  [0x10, 'PROBE'], [0x20, 'FAILED'], [0x40, 'NOARP'], [0x80, 'PERMANENT'],
];

/** Size of struct nlmsghdr. */
export const NLMSG_HDRLEN = 16;
const IFINFOMSG_LEN = 16;
const IFADDRMSG_LEN = 8;
const NDMSG_LEN = 12;

/** One network interface as the kernel reports it. */
export interface LinkInfo {
  ifindex: number;
  name: string;
  /** Hardware address, lower-case colon hex; empty when the link has none. */
  mac: string;
  /** IFF_UP: administratively up. */
  up: boolean;
  /** Carrier present: IFLA_CARRIER when the kernel sends it, else IFF_LOWER_UP. */
  carrier: boolean;
  /** RFC 2863 operational state, lower case: 'up', 'down', 'lowerlayerdown', 'unknown', … */
  operstate: string;
  mtu: number;
}

/** One IPv4 address on an interface. */
export interface AddressInfo {
  ifindex: number;
  ifname: string;
  address: string;
  prefix: number;
  /** IFA_LABEL (for IPv4 the kernel defaults it to the interface name). */
  label?: string;
  /** IPv6 only: ifa_flags (IFA_FLAGS when present), e.g. {@link IFA_F}.TENTATIVE. */
  flags?: number;
}

/** One IPv4 neighbour (ARP) entry. */
export interface NeighbourInfo {
  ifindex: number;
  address: string;
  /** Link-layer address; absent for INCOMPLETE/FAILED entries. */
  mac?: string;
  /** NUD states set on the entry, e.g. ['REACHABLE'] or ['STALE']. */
  state: string[];
}

/** A parsed netlink message header with its payload. */
export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** The bytes after the 16-byte header, up to nlmsg_len. */
  payload: Buffer;
}

/** A link message as it came off the wire, before interpretation. */
export interface RawLink { family: number; info: LinkInfo }

/** Thrown for bytes that do not form valid netlink messages. */
export class NetlinkParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NetlinkParseError';
  }
}

function u16(b: Buffer, o: number): number { return LE ? b.readUInt16LE(o) : b.readUInt16BE(o); }
function u32(b: Buffer, o: number): number { return LE ? b.readUInt32LE(o) : b.readUInt32BE(o); }
function s32(b: Buffer, o: number): number { return LE ? b.readInt32LE(o) : b.readInt32BE(o); }
function w16(b: Buffer, v: number, o: number): void { if (LE) b.writeUInt16LE(v, o); else b.writeUInt16BE(v, o); }
function w32(b: Buffer, v: number, o: number): void { if (LE) b.writeUInt32LE(v >>> 0, o); else b.writeUInt32BE(v >>> 0, o); }

/** NLMSG_ALIGN / NLA_ALIGN: round up to 4 bytes. */
export function align4(n: number): number {
  return (n + 3) & ~3;
}

/**
 * Split one received datagram into its netlink messages. A datagram may hold
 * many messages (a dump part, or several acks); each is 4-byte aligned.
 */
export function parseMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = u32(buf, off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) {
      throw new NetlinkParseError(`bad nlmsg_len ${len} at offset ${off} of ${buf.length}`);
    }
    out.push({
      type: u16(buf, off + 4),
      flags: u16(buf, off + 6),
      seq: u32(buf, off + 8),
      pid: u32(buf, off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

/** Encode one netlink message (header + payload). */
export function encodeMessage(m: { type: number; flags: number; seq: number; pid: number; payload: Buffer }): Buffer {
  const len = NLMSG_HDRLEN + m.payload.length;
  const out = Buffer.alloc(align4(len));
  w32(out, len, 0);
  w16(out, m.type, 4);
  w16(out, m.flags, 6);
  w32(out, m.seq, 8);
  w32(out, m.pid, 12);
  m.payload.copy(out, NLMSG_HDRLEN);
  return out;
}

/**
 * The errno of an NLMSG_ERROR payload (struct nlmsgerr): 0 for an ACK, a
 * positive errno otherwise (the kernel sends it negated).
 */
export function parseErrorPayload(payload: Buffer): number {
  if (payload.length < 4) throw new NetlinkParseError(`NLMSG_ERROR payload too short (${payload.length} bytes)`);
  return -s32(payload, 0);
}

/** Attributes of a message, by type (nla_type with the NESTED/BYTEORDER bits masked off). */
export function parseAttrs(buf: Buffer, offset = 0): Map<number, Buffer> {
  const attrs = new Map<number, Buffer>();
  let off = offset;
  while (off + 4 <= buf.length) {
    const len = u16(buf, off);
    const type = u16(buf, off + 2) & 0x3fff;
    if (len < 4 || off + len > buf.length) {
      throw new NetlinkParseError(`bad nla_len ${len} at offset ${off} of ${buf.length}`);
    }
    // First occurrence wins; rtnetlink does not repeat the attributes read here.
    if (!attrs.has(type)) attrs.set(type, buf.subarray(off + 4, off + len));
    off += align4(len);
  }
  return attrs;
}

/** Encode one attribute (header, value, padding). */
export function encodeAttr(type: number, value: Buffer): Buffer {
  const len = 4 + value.length;
  const out = Buffer.alloc(align4(len));
  w16(out, len, 0);
  w16(out, type, 2);
  value.copy(out, 4);
  return out;
}

function u32Attr(v: number): Buffer {
  const b = Buffer.alloc(4);
  w32(b, v, 0);
  return b;
}

/** A NUL-terminated string attribute value. */
function strAttr(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, 'utf8'), Buffer.alloc(1)]);
}

/** A C string from an attribute value (up to the first NUL). */
function cstr(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('utf8');
}

/** Colon hex of any hardware address length (6 for Ethernet; tunnels differ). */
function hwaddr(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Parse an RTM_NEWLINK/RTM_DELLINK payload (ifinfomsg + IFLA_* attributes). */
export function parseLink(payload: Buffer): RawLink {
  if (payload.length < IFINFOMSG_LEN) throw new NetlinkParseError(`ifinfomsg too short (${payload.length} bytes)`);
  const family = payload[0]!;
  const ifindex = s32(payload, 4);
  const flags = u32(payload, 8);
  const a = parseAttrs(payload, IFINFOMSG_LEN);
  const name = a.get(IFLA.IFNAME);
  const addr = a.get(IFLA.ADDRESS);
  const mtu = a.get(IFLA.MTU);
  const oper = a.get(IFLA.OPERSTATE);
  const carrierAttr = a.get(IFLA.CARRIER);
  const operIdx = oper && oper.length >= 1 ? oper[0]! : 0;
  return {
    family,
    info: {
      ifindex,
      name: name ? cstr(name) : '',
      mac: addr ? hwaddr(addr) : '',
      up: (flags & IFF_UP) !== 0,
      // IFLA_CARRIER (since 3.x) is the driver's carrier bit itself; LOWER_UP
      // in ifi_flags carries the same for kernels that do not send it.
      carrier: carrierAttr && carrierAttr.length >= 1 ? carrierAttr[0] === 1 : (flags & IFF_LOWER_UP) !== 0,
      operstate: OPERSTATES[operIdx] ?? `unknown(${operIdx})`,
      mtu: mtu && mtu.length >= 4 ? u32(mtu, 0) : 0,
    },
  };
}

/** A parsed address message; `family` lets callers skip IPv6. */
export interface RawAddress { family: number; ifindex: number; address: string; prefix: number; label?: string; flags?: number }

/** Parse an RTM_NEWADDR/RTM_DELADDR payload (ifaddrmsg + IFA_* attributes). */
export function parseAddress(payload: Buffer): RawAddress {
  if (payload.length < IFADDRMSG_LEN) throw new NetlinkParseError(`ifaddrmsg too short (${payload.length} bytes)`);
  const family = payload[0]!;
  const prefix = payload[1]!;
  const ifindex = u32(payload, 4);
  const a = parseAttrs(payload, IFADDRMSG_LEN);
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
  // point-to-point links, so prefer LOCAL (linux/if_addr.h).
  const raw = a.get(IFA.LOCAL) ?? a.get(IFA.ADDRESS);
  const label = a.get(IFA.LABEL);
  const out: RawAddress = {
    family,
    ifindex,
    prefix,
    address: raw && family === AF_INET && raw.length === 4 ? formatIPv4(raw)
      : raw && family === AF_INET6 && raw.length === 16 ? formatIPv6(raw) : raw ? hwaddr(raw) : '',
  };
  if (label) out.label = cstr(label);
  if (family === AF_INET6) {
    // IFA_FLAGS (32 bits) supersedes the 8-bit ifa_flags when the kernel sends it.
    const f = a.get(IFA.FLAGS);
    out.flags = f && f.length >= 4 ? u32(f, 0) : payload[2]!;
  }
  return out;
}

/** A parsed neighbour message; `family` lets callers skip IPv6 and bridge FDB entries. */
export interface RawNeighbour extends NeighbourInfo { family: number }

/** Parse an RTM_NEWNEIGH payload (ndmsg + NDA_* attributes). */
export function parseNeighbour(payload: Buffer): RawNeighbour {
  if (payload.length < NDMSG_LEN) throw new NetlinkParseError(`ndmsg too short (${payload.length} bytes)`);
  const family = payload[0]!;
  const ifindex = s32(payload, 4);
  const stateBits = u16(payload, 8);
  const a = parseAttrs(payload, NDMSG_LEN);
  const dst = a.get(NDA.DST);
  const ll = a.get(NDA.LLADDR);
  const state = NUD_STATES.filter(([bit]) => (stateBits & bit) !== 0).map(([, name]) => name);
  if (stateBits === 0) state.push('NONE');
  const out: RawNeighbour = {
    family,
    ifindex,
    address: dst && family === AF_INET && dst.length === 4 ? formatIPv4(dst) : dst ? hwaddr(dst) : '',
    state,
  };
  if (ll && ll.length > 0) out.mac = hwaddr(ll);
  return out;
}

/** Payload of RTM_GETLINK: a dump of all links, or one link by name. */
export function getLinkPayload(name?: string): Buffer {
  const hdr = Buffer.alloc(IFINFOMSG_LEN); // family AF_UNSPEC, index 0: select by IFLA_IFNAME
  const attrs = [encodeAttr(IFLA.EXT_MASK, u32Attr(RTEXT_FILTER_SKIP_STATS))];
  if (name !== undefined) attrs.push(encodeAttr(IFLA.IFNAME, strAttr(name)));
  return Buffer.concat([hdr, ...attrs]);
}

/** Payload of an RTM_GETADDR dump: AF_INET, or with `all` AF_UNSPEC (IPv4 and IPv6). */
export function getAddrPayload(all = false): Buffer {
  const hdr = Buffer.alloc(IFADDRMSG_LEN);
  hdr[0] = all ? AF_UNSPEC : AF_INET;
  return hdr;
}

/** Payload of an AF_INET RTM_GETNEIGH dump. */
export function getNeighPayload(): Buffer {
  const hdr = Buffer.alloc(NDMSG_LEN);
  hdr[0] = AF_INET;
  return hdr;
}

/** Directed broadcast of `address/prefix`, or undefined for /31 and /32 (RFC 3021). */
export function broadcastOf(address: string, prefix: number): string | undefined {
  const b = ipv4Bytes(address);
  if (!b || prefix > 30) return undefined;
  const n = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
  const host = prefix === 0 ? 0xffffffff : (0xffffffff >>> prefix);
  const bc = (n | host) >>> 0;
  return `${bc >>> 24}.${(bc >>> 16) & 255}.${(bc >>> 8) & 255}.${bc & 255}`;
}

function ipAttr(type: number, address: string): Buffer {
  const b = ipv4Bytes(address);
  if (!b) throw new NetlinkParseError(`not an IPv4 address: ${address}`);
  return encodeAttr(type, Buffer.from(b));
}

/**
 * Payload of RTM_NEWADDR / RTM_DELADDR for one IPv4 address. For NEWADDR the
 * broadcast is set as `ip addr add … brd +` does; a label is optional. For
 * DELADDR, IFA_ADDRESS with the prefix makes the kernel match the exact
 * address/prefix rather than any prefix of that address.
 */
export function addrPayload(op: 'add' | 'del', ifindex: number, address: string, prefix: number, label?: string): Buffer {
  if (address.includes(':')) return addr6Payload(ifindex, address, prefix);
  const hdr = Buffer.alloc(IFADDRMSG_LEN);
  hdr[0] = AF_INET;
  hdr[1] = prefix;
  hdr[2] = 0; // ifa_flags
  hdr[3] = 0; // RT_SCOPE_UNIVERSE
  w32(hdr, ifindex, 4);
  const attrs = [ipAttr(IFA.LOCAL, address), ipAttr(IFA.ADDRESS, address)];
  if (op === 'add') {
    const bc = broadcastOf(address, prefix);
    if (bc) attrs.push(ipAttr(IFA.BROADCAST, bc));
  }
  if (label !== undefined) attrs.push(encodeAttr(IFA.LABEL, strAttr(label)));
  return Buffer.concat([hdr, ...attrs]);
}

/**
 * Payload of RTM_NEWADDR / RTM_DELADDR for one IPv6 address. Added with
 * IFA_F_NODAD: an HA address that moves must answer at once, and the
 * kernel's own DAD would hold it tentative for a second or more and mark it
 * dadfailed if the old holder still answers (the HA role probes by NDP
 * itself before it adds). No label: IPv6 addresses have none.
 */
export function addr6Payload(ifindex: number, address: string, prefix: number): Buffer {
  const b = ipv6Bytes(address);
  if (!b) throw new NetlinkParseError(`not an IPv6 address: ${address}`);
  const hdr = Buffer.alloc(IFADDRMSG_LEN);
  hdr[0] = AF_INET6;
  hdr[1] = prefix;
  hdr[2] = IFA_F.NODAD;
  hdr[3] = 0; // RT_SCOPE_UNIVERSE
  w32(hdr, ifindex, 4);
  return Buffer.concat([hdr, encodeAttr(IFA.LOCAL, b), encodeAttr(IFA.ADDRESS, b)]);
}
