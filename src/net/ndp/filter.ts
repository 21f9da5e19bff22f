/**
 * Layer: net/ndp, pure. The classic BPF program of the NDP socket (the
 * native packet socket opened for EtherType 0x86DD), so that of all the
 * IPv6 traffic on the link only what the HA role waits for wakes
 * JavaScript:
 * - Neighbor Advertisements whose target is in `targets` (a holder
 *   answering our DAD probe, or announcing itself);
 * - release notices about `releaseTargets`: NS from :: (DAD form) whose
 *   first option is a Nonce (type 14, one unit) equal to the Ethernet
 *   source (see codec.ts).
 * Both with next header ICMPv6 straight after the fixed header and hop
 * limit 255 (RFC 4861 §7.1: anything else is not ND a receiver may accept).
 * Our own transmissions (PACKET_OUTGOING) never pass. The codec checks the
 * rest (checksum, lengths) in JavaScript.
 */
import { encodeSockFilter } from '../bpf';
import { ipv6Bytes } from '../../util/ip6';
import { ETHERTYPE_IPV6, ICMP6_NA, ICMP6_NS, ND_HOP_LIMIT, NEXT_HEADER_ICMPV6, OFF, OPT_NONCE } from './codec';

/** What the socket's users wait for. */
export interface NdpInterests { targets: Iterable<string>; releaseTargets?: Iterable<string> }

const LD_W_ABS = 0x20; const LD_H_ABS = 0x28; const LD_B_ABS = 0x30;
const JEQ_K = 0x15; const JEQ_X = 0x1d; const TAX = 0x07; const RET_K = 0x06;
const SKF_AD_PKTTYPE = -0x1000 + 4;
const PACKET_OUTGOING = 4;

type Target = string; // a label
/** `ja`: an unconditional jump with a 32-bit offset, for the long jumps over a block of targets. */
interface Insn { code: number; k: number; jt?: Target; jf?: Target; ja?: string; label?: string }
const JA = 0x05;
const ACCEPT_ALL = 0xffffffff;

function words(ip: string): number[] {
  const b = ipv6Bytes(ip);
  if (!b) throw new Error(`not an IPv6 address: ${ip}`);
  return [0, 4, 8, 12].map((o) => b.readUInt32BE(o));
}

/**
 * A block accepting when the 16 bytes at `off` equal one of `ips`, dropping
 * otherwise. Each address accepts inline and a mismatch jumps to the next
 * address, so every conditional jump stays short whatever the list's length.
 */
function matchAny(p: Insn[], off: number, ips: string[], tag: string): void {
  ips.forEach((ip, n) => {
    const miss = `${tag}${n + 1}`;
    words(ip).forEach((w, i) => {
      p.push({ code: LD_W_ABS, k: off + i * 4, ...(i === 0 ? { label: `${tag}${n}` } : {}) });
      p.push({ code: JEQ_K, k: w, jf: miss });
    });
    p.push({ code: RET_K, k: ACCEPT_ALL });
  });
  p.push({ code: RET_K, k: 0, label: `${tag}${ips.length}` });
}

/** The program as struct sock_filter[] bytes in host order, for the native setFilter. */
export function buildNdpFilter(i: NdpInterests): Buffer {
  const targets = [...new Set(i.targets)];
  const releases = [...new Set(i.releaseTargets ?? [])];
  const p: Insn[] = [];
  p.push({ code: LD_B_ABS, k: SKF_AD_PKTTYPE >>> 0 }, { code: JEQ_K, k: PACKET_OUTGOING, jt: 'drop' });
  p.push({ code: LD_H_ABS, k: OFF.ethType }, { code: JEQ_K, k: ETHERTYPE_IPV6, jf: 'drop' });
  p.push({ code: LD_B_ABS, k: OFF.nextHeader }, { code: JEQ_K, k: NEXT_HEADER_ICMPV6, jf: 'drop' });
  p.push({ code: LD_B_ABS, k: OFF.hopLimit }, { code: JEQ_K, k: ND_HOP_LIMIT, jf: 'drop' });
  p.push({ code: LD_B_ABS, k: OFF.icmpType });
  p.push({ code: JEQ_K, k: ICMP6_NA, jf: 'notna' }, { code: JA, k: 0, ja: 'na0' });
  p.push({ code: JEQ_K, k: ICMP6_NS, jf: 'drop', label: 'notna' });
  // NS: from :: with a nonce option (type 14, one unit) equal to the Ethernet source.
  p.push({ code: LD_W_ABS, k: OFF.src }, { code: JEQ_K, k: 0, jf: 'drop' });
  for (const o of [4, 8, 12]) p.push({ code: LD_W_ABS, k: OFF.src + o }, { code: JEQ_K, k: 0, jf: 'drop' });
  p.push({ code: LD_H_ABS, k: OFF.options }, { code: JEQ_K, k: (OPT_NONCE << 8) | 1, jf: 'drop' });
  p.push({ code: LD_W_ABS, k: 6 }, { code: TAX, k: 0 }, { code: LD_W_ABS, k: OFF.options + 2 }, { code: JEQ_X, k: 0, jf: 'drop' });
  p.push({ code: LD_H_ABS, k: 10 }, { code: TAX, k: 0 }, { code: LD_H_ABS, k: OFF.options + 6 }, { code: JEQ_X, k: 0, jf: 'drop' });
  p.push({ code: JA, k: 0, ja: 'rel0' });
  p.push({ code: RET_K, k: 0, label: 'drop' });
  matchAny(p, OFF.target, releases, 'rel');
  // NA: the target is one we wait for.
  matchAny(p, OFF.target, targets, 'na');
  const at = new Map<string, number>();
  p.forEach((x, n) => { if (x.label !== undefined) at.set(x.label, n); });
  const to = (t: string): number => {
    const n = at.get(t);
    if (n === undefined) throw new Error(`BPF label ${t} missing`);
    return n;
  };
  const rel = (from: number, t: Target | undefined): number => {
    if (t === undefined) return 0;
    const d = to(t) - from - 1;
    if (d < 0 || d > 255) throw new Error(`BPF jump out of range (${d})`);
    return d;
  };
  p.forEach((x, n) => { if (x.ja !== undefined) x.k = to(x.ja) - n - 1; });
  return encodeSockFilter(p.map((x, n) => ({ code: x.code, k: x.k, jt: rel(n, x.jt), jf: rel(n, x.jf) })));
}
