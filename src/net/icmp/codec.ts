/**
 * Layer: codec (pure). ICMP echo request/reply (RFC 792) for the
 * reachability probe of routed addresses (ARP only reaches the local link).
 */

export const ICMP_ECHO_REPLY = 0;
export const ICMP_ECHO_REQUEST = 8;

/** RFC 1071 Internet checksum over `buf`. */
export function inetChecksum(buf: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (buf.length % 2 === 1) sum += buf[buf.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An echo request: type 8, code 0, checksum, identifier, sequence, payload. */
export function encodeEchoRequest(id: number, seq: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const b = Buffer.alloc(8 + payload.length);
  b[0] = ICMP_ECHO_REQUEST;
  b[1] = 0;
  b.writeUInt16BE(id & 0xffff, 4);
  b.writeUInt16BE(seq & 0xffff, 6);
  Buffer.from(payload).copy(b, 8);
  b.writeUInt16BE(inetChecksum(b), 2);
  return b;
}

/** A decoded echo reply, or undefined for anything else. */
export interface EchoReply { id: number; seq: number; from: string }

/**
 * Decode what an IPv4 raw ICMP socket receives: the IP header (its length
 * from IHL) then the ICMP message. Only valid echo replies are returned.
 */
export function decodeEchoReply(datagram: Uint8Array): EchoReply | undefined {
  if (datagram.length < 20 || datagram[0]! >> 4 !== 4) return undefined;
  const ihl = (datagram[0]! & 0x0f) * 4;
  if (ihl < 20 || datagram.length < ihl + 8 || datagram[9] !== 1) return undefined;
  const icmp = datagram.subarray(ihl);
  if (icmp[0] !== ICMP_ECHO_REPLY || icmp[1] !== 0 || inetChecksum(icmp) !== 0) return undefined;
  const from = `${datagram[12]}.${datagram[13]}.${datagram[14]}.${datagram[15]}`;
  return { id: (icmp[4]! << 8) | icmp[5]!, seq: (icmp[6]! << 8) | icmp[7]!, from };
}
