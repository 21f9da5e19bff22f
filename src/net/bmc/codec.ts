/**
 * Layer: codec (pure). The two session-less datagrams a BMC answers on UDP
 * 623 without credentials, used to know a BMC is reachable before an
 * incident needs it (no spawn in the steady state):
 *
 * - RMCP/ASF Presence Ping / Pong (DMTF DSP0136 ASF 2.0 §3.2.4; ipmitool
 *   `lan.c` `ipmi_lan_ping`; openipmi `lanserv_asf.c`);
 * - IPMI v1.5 session-less "Get Channel Authentication Capabilities"
 *   (IPMI v2.0 spec §22.13; the first packet `ipmitool -I lanplus` sends).
 *
 * Byte layouts and observed frames: shared/spec/bmc-and-nova.md §1c.
 * Decoders never throw: anything malformed is `undefined`.
 */

/** UDP port of RMCP (IPMI over LAN). */
export const RMCP_PORT = 623;
/** IANA enterprise number of the ASF (DMTF), big-endian in every ASF message. */
export const ASF_IANA = 4542;
/** RMCP message classes (byte 3). */
export const RMCP_CLASS_ASF = 0x06;
export const RMCP_CLASS_IPMI = 0x07;
/** ASF message types (byte 8). */
export const ASF_PRESENCE_PING = 0x80;
export const ASF_PRESENCE_PONG = 0x40;
/** IPMI App netFn (request 0x06, response 0x07) and the command number. */
export const NETFN_APP = 0x06;
export const CMD_GET_CHANNEL_AUTH_CAP = 0x38;
/** Our software ID as requester (0x81: "remote console software 1", as ipmitool). */
export const RQ_ADDR = 0x81;
/** The BMC's slave address. */
export const BMC_ADDR = 0x20;

/**
 * IPMI two's-complement checksum (IPMI v2.0 §13.8): the byte that makes
 * the covered bytes plus itself sum to 0 mod 256.
 */
export function ipmiChecksum(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let sum = 0;
  for (let i = start; i < end; i++) sum = (sum + bytes[i]!) & 0xff;
  return (0x100 - sum) & 0xff;
}

/** RMCP header: version 06, reserved 00, sequence FF (no RMCP ACK), class. */
function rmcpHeader(b: Buffer, cls: number): void {
  b[0] = 0x06; // RMCP version 1.0
  b[1] = 0x00; // reserved
  b[2] = 0xff; // sequence 0xFF: the receiver must not send an RMCP ACK
  b[3] = cls;
}

function rmcpHeaderOk(b: Uint8Array, cls: number): boolean {
  return b[0] === 0x06 && b[2] === 0xff && b[3] === cls;
}

/**
 * A Presence Ping, 12 bytes: `06 00 FF 06 | 00 00 11 BE | 80 TT 00 00`
 * (RMCP header, IANA 4542, type 0x80, message tag, reserved, length 0).
 */
export function encodePresencePing(tag: number): Buffer {
  const b = Buffer.alloc(12);
  rmcpHeader(b, RMCP_CLASS_ASF);
  b.writeUInt32BE(ASF_IANA, 4);
  b[8] = ASF_PRESENCE_PING;
  b[9] = tag & 0xff; // echoed in the Pong; 0xFF is reserved for "not a request/response pair"
  b[10] = 0x00; // reserved
  b[11] = 0x00; // data length
  return b;
}

/** What a Presence Pong tells. */
export interface PresencePong {
  tag: number;
  /** Byte 20 bit 7: the managed client supports IPMI. */
  ipmi: boolean;
  /** Byte 20 bits 3:0: ASF version (1 = ASF 1.0). */
  asfVersion: number;
}

/**
 * Decode a Presence Pong (28 bytes): RMCP header class 6, IANA 4542, type
 * 0x40, the tag, reserved, length 16 (≥ 16 accepted), then IANA again
 * (12–15), OEM (16–19), supported entities (20), interactions (21),
 * reserved (22–27).
 */
export function decodePresencePong(buf: Uint8Array): PresencePong | undefined {
  if (buf.length < 28 || !rmcpHeaderOk(buf, RMCP_CLASS_ASF)) return undefined;
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  if (b.readUInt32BE(4) !== ASF_IANA || b[8] !== ASF_PRESENCE_PONG || b[11]! < 16) return undefined;
  return { tag: b[9]!, ipmi: (b[20]! & 0x80) !== 0, asfVersion: b[20]! & 0x0f };
}

/** Options of the Get Channel Authentication Capabilities request. */
export interface AuthCapRequestOptions {
  /** rqSeq, 0–63 (6 bits), echoed in the response. */
  seq: number;
  /** Channel; 0x0E means "the channel this request arrives on". */
  channel?: number;
  /** Maximum privilege level asked about; 4 = Administrator. */
  privilege?: number;
  /** Ask for IPMI v2.0 extended data (bit 7 of the channel byte). */
  v2?: boolean;
}

/**
 * The session-less request, 23 bytes, e.g. seq 0:
 * `06 00 FF 07 | 00 | 00000000 | 00000000 | 09 | 20 18 C8 | 81 00 38 8E 04 | B5`
 * RMCP header class 7; session header: auth type NONE, sequence 0, session
 * ID 0, message length 9; IPMI message: rsAddr, netFn<<2|rsLUN, checksum 1,
 * rqAddr, rqSeq<<2|rqLUN, command, data (channel, privilege), checksum 2.
 */
export function encodeAuthCapRequest(o: AuthCapRequestOptions): Buffer {
  const b = Buffer.alloc(23);
  rmcpHeader(b, RMCP_CLASS_IPMI);
  b[4] = 0x00; // auth type NONE: session-less
  b.writeUInt32BE(0, 5); // session sequence number
  b.writeUInt32BE(0, 9); // session ID
  b[13] = 9; // IPMI message length (bytes 14–22)
  b[14] = BMC_ADDR; // rsAddr
  b[15] = NETFN_APP << 2; // netFn App, rsLUN 0
  b[16] = ipmiChecksum(b, 14, 16); // checksum 1 over rsAddr, netFn
  b[17] = RQ_ADDR; // rqAddr
  b[18] = (o.seq & 0x3f) << 2; // rqSeq, rqLUN 0
  b[19] = CMD_GET_CHANNEL_AUTH_CAP;
  b[20] = ((o.v2 ?? true) ? 0x80 : 0x00) | ((o.channel ?? 0x0e) & 0x0f);
  b[21] = (o.privilege ?? 4) & 0x0f;
  b[22] = ipmiChecksum(b, 17, 22); // checksum 2 over rqAddr … data
  return b;
}

/** The decoded response data (IPMI v2.0 Table 22-15). */
export interface AuthCapResponse {
  seq: number;
  /** Completion code; 0 = OK. */
  completionCode: number;
  channel: number;
  /** Bit 7 of the auth byte: the BMC sent IPMI v2.0 extended data. */
  v2Data: boolean;
  /** Bits 5:0: IPMI v1.5 auth types (bit0 none, 1 MD2, 2 MD5, 4 straight, 5 OEM). */
  authTypes: number;
  /** Status byte: KG, per-message/user-level auth off, non-null/null/anonymous users. */
  status: number;
  /** Extended capabilities: bit 1 IPMI 2.0 (RMCP+), bit 0 IPMI 1.5. */
  ipmi20: boolean;
  ipmi15: boolean;
}

/**
 * Decode a session-less Get Channel Authentication Capabilities response.
 * Checks the RMCP class, auth type NONE, the length, both checksums,
 * rqAddr, netFn 0x07 (App response), the command; a completion code other
 * than 0 is returned (short data is allowed then), anything else malformed
 * is `undefined`.
 */
export function decodeAuthCapResponse(buf: Uint8Array): AuthCapResponse | undefined {
  if (buf.length < 14 + 7 || !rmcpHeaderOk(buf, RMCP_CLASS_IPMI) || buf[4] !== 0x00) return undefined;
  const len = buf[13]!;
  if (len < 7 || buf.length < 14 + len) return undefined;
  const m = buf.subarray(14, 14 + len);
  // m: rqAddr, netFn<<2|rqLUN, cksum1, rsAddr, rqSeq<<2|rsLUN, cmd, cc, data…, cksum2
  if (ipmiChecksum(m, 0, 3) !== 0 || ipmiChecksum(m, 3, len) !== 0) return undefined;
  if (m[0] !== RQ_ADDR || m[1]! >> 2 !== NETFN_APP + 1 || m[5] !== CMD_GET_CHANNEL_AUTH_CAP) return undefined;
  const seq = m[4]! >> 2;
  const completionCode = m[6]!;
  const data = m.subarray(7, len - 1);
  if (completionCode !== 0) {
    return { seq, completionCode, channel: 0, v2Data: false, authTypes: 0, status: 0, ipmi20: false, ipmi15: false };
  }
  if (data.length < 8) return undefined; // ch, auth, status, ext, OEM ID ×3, aux
  return {
    seq,
    completionCode,
    channel: data[0]! & 0x0f,
    v2Data: (data[1]! & 0x80) !== 0,
    authTypes: data[1]! & 0x3f,
    status: data[2]!,
    ipmi20: (data[3]! & 0x02) !== 0,
    ipmi15: (data[3]! & 0x01) !== 0,
  };
}
