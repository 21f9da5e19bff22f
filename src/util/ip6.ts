/**
 * Layer: shared, pure. Strict IPv6 parsing and canonical formatting
 * (RFC 4291 §2.2 text forms in, RFC 5952 text out), and the HA address
 * rules both families share: which addresses may move between hosts.
 *
 * No zone index (`%eth0`): an HA address is never link-scoped, so a zone
 * never has a meaning here and is refused rather than dropped.
 */
import { ipv4Bytes, parseCidr, type Cidr } from './ip';

/** The 16 bytes of an IPv6 address in any RFC 4291 text form, or undefined. */
export function ipv6Bytes(s: string): Buffer | undefined {
  if (s.length === 0 || s.length > 45 || !/^[0-9A-Fa-f:.]+$/.test(s)) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const items = part.split(':');
    for (let i = 0; i < items.length; i++) {
      const g = items[i]!;
      if (i === items.length - 1 && g.includes('.')) {
        // An embedded IPv4 tail (::ffff:10.0.0.1) is two groups.
        const b = ipv4Bytes(g);
        if (!b) return undefined;
        out.push((b[0] << 8) | b[1], (b[2] << 8) | b[3]);
        continue;
      }
      if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const n = head.length + tail.length;
  if (halves.length === 2 ? n > 7 : n !== 8) return undefined;
  const all = [...head, ...new Array<number>(8 - n).fill(0), ...tail];
  const buf = Buffer.alloc(16);
  all.forEach((g, i) => buf.writeUInt16BE(g, i * 2));
  return buf;
}

/** True when `s` is an IPv6 address in a strict RFC 4291 text form. */
export function isIPv6(s: string): boolean {
  return ipv6Bytes(s) !== undefined;
}

/** RFC 5952 text of 16 bytes: lower case, no leading zeros, the longest run of two or more zero groups as `::`. */
export function formatIPv6(buf: Uint8Array, offset = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((buf[offset + i * 2]! << 8) | buf[offset + i * 2 + 1]!);
  let best = -1; let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** The canonical text of an IPv6 address, or undefined. */
export function canonicalIPv6(s: string): string | undefined {
  const b = ipv6Bytes(s);
  return b ? formatIPv6(b) : undefined;
}

/** True when the Cidr's address is IPv6 (the family of an address in vigil's canonical text). */
export function isV6(c: Cidr | string): boolean {
  return (typeof c === 'string' ? c : c.address).includes(':');
}

/**
 * Parse `ADDR` or `ADDR/N` of either family: IPv4 as {@link parseCidr},
 * IPv6 with 0 ≤ N ≤ 128 and its address in canonical text (so the same
 * address written two ways is one address). Without a prefix the family's
 * default applies.
 */
export function parseAnyCidr(s: string, defaultPrefix4 = 32, defaultPrefix6 = 128): Cidr | undefined {
  if (!s.includes(':')) return parseCidr(s, defaultPrefix4);
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  const text = canonicalIPv6(addr);
  if (text === undefined) return undefined;
  if (slash < 0) return { address: text, prefix: defaultPrefix6 };
  const p = s.slice(slash + 1);
  if (!/^(12[0-8]|1[01]\d|[1-9]?\d)$/.test(p)) return undefined;
  return { address: text, prefix: Number(p) };
}

/**
 * Why an IPv6 address cannot be an HA address, or undefined when it can.
 * An HA address moves between hosts, so it must be a global-scope unicast
 * (global or ULA): link-local addresses belong to one interface (and every
 * interface has its own), multicast is not an address a host holds, and a
 * v4-mapped address is an IPv4 address that belongs in IPv4 form.
 */
export function ipv6HaProblem(address: string): string | undefined {
  const b = ipv6Bytes(address);
  if (!b) return 'is not an IPv6 address';
  if (b.every((x) => x === 0)) return 'is the unspecified address ::';
  if (b.subarray(0, 15).every((x) => x === 0) && b[15] === 1) return 'is the loopback address ::1';
  if (b[0] === 0xff) return 'is a multicast address (ff00::/8)';
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return 'is a link-local address (fe80::/10)';
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return 'is an IPv4-mapped address (::ffff:0:0/96; write the IPv4 address instead)';
  return undefined;
}
