/**
 * Layer: shared, pure. Strict IPv4 parsing and formatting.
 *
 * Only dotted quads with four decimal octets 0–255 and no leading zeros are
 * accepted (`010.0.0.1` is ambiguous between octal and decimal in old tools,
 * so it is refused rather than guessed).
 */

const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4_RE = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

/** True when `s` is a strict dotted-quad IPv4 address. */
export function isIPv4(s: string): boolean {
  return IPV4_RE.test(s);
}

/** The four octets of a strict IPv4 address, or undefined. */
export function ipv4Bytes(s: string): [number, number, number, number] | undefined {
  if (!isIPv4(s)) return undefined;
  const p = s.split('.').map(Number);
  return [p[0]!, p[1]!, p[2]!, p[3]!];
}

/** Format four bytes (from a Buffer at `offset`) as a dotted quad. */
export function formatIPv4(buf: Uint8Array, offset = 0): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

/** An IPv4 address with its prefix length. */
export interface Cidr { address: string; prefix: number }

/**
 * Parse `A.B.C.D` or `A.B.C.D/N` (0 ≤ N ≤ 32). Without a prefix the given
 * default is used (/32 for a lone host address).
 */
export function parseCidr(s: string, defaultPrefix = 32): Cidr | undefined {
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  if (!isIPv4(addr)) return undefined;
  if (slash < 0) return { address: addr, prefix: defaultPrefix };
  const p = s.slice(slash + 1);
  if (!/^(3[0-2]|[12]?\d)$/.test(p)) return undefined;
  return { address: addr, prefix: Number(p) };
}

/** `address/prefix`, the canonical text of a Cidr. */
export function formatCidr(c: Cidr): string {
  return `${c.address}/${c.prefix}`;
}

/** Format a MAC from 6 bytes as lower-case colon-separated hex. */
export function formatMac(buf: Uint8Array, offset = 0): string {
  const parts: string[] = [];
  for (let i = 0; i < 6; i++) parts.push((buf[offset + i] ?? 0).toString(16).padStart(2, '0'));
  return parts.join(':');
}

/** Parse `aa:bb:cc:dd:ee:ff` (or with dashes) into 6 bytes, or undefined. */
export function parseMac(s: string): Buffer | undefined {
  const m = /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(s);
  if (!m) return undefined;
  return Buffer.from(m.slice(1, 7).map((h) => parseInt(h, 16)));
}
