/**
 * Layer: ARP layer, pure. Classic BPF programs for the native ARP socket
 * (`setFilter`), so that frames nobody in this process waits for are dropped
 * in the kernel and never wake JavaScript. At rest on a busy segment this is
 * the difference between every ARP frame on the link costing a wake-up and
 * almost none doing so.
 *
 * The program passes exactly what {@link Endpoint.dispatch} in prober.ts can
 * use, given the interests it is built from:
 * - any ARP frame whose sender IP is in `senders` (an answer, or a holder's
 *   gratuitous frame: RFC 5227 §2.1.1 counts both);
 * - ARP replies whose sender IP is in `replySenders` (neighbours answering
 *   our requests; their own requests for others stay in the kernel);
 * - RFC 5227 probes (sender IP 0.0.0.0) whose target is in `probeTargets`;
 * - release notices (probes whose target MAC equals their sender MAC) whose
 *   target is in `releaseTargets`.
 * Our own transmissions (PACKET_OUTGOING) and non-ARP frames never pass.
 */
import { encodeSockFilter } from '../bpf';
import { ipv4Bytes } from '../../util/ip';

/** What the socket's users wait for; see the file comment. */
export interface ArpInterests {
  senders: Iterable<string>;
  replySenders?: Iterable<string>;
  probeTargets?: Iterable<string>;
  releaseTargets?: Iterable<string>;
  /** Pass every ARP frame not our own (the socket's filter at open). */
  openAll?: boolean;
}

// Classic BPF opcodes (linux/filter.h).
const LD_W_ABS = 0x20;
const LD_H_ABS = 0x28;
const LD_B_ABS = 0x30;
const JEQ_K = 0x15;
const JEQ_X = 0x1d;
const TAX = 0x07;
const RET_K = 0x06;
const SKF_AD_PKTTYPE = -0x1000 + 4; // SKF_AD_OFF + SKF_AD_PKTTYPE
const PACKET_OUTGOING = 4;
const ETH_P_ARP = 0x0806;
// Offsets in an Ethernet frame carrying IPv4 ARP.
const OFF = { ethType: 12, op: 20, sha: 22, spa: 28, tha: 32, tpa: 38 } as const;

type Target = 'accept' | 'drop' | number; // number: a label
interface Insn { code: number; k: number; jt?: Target; jf?: Target; label?: number }

const ipNum = (ip: string): number => {
  const b = ipv4Bytes(ip);
  if (!b) throw new Error(`not an IPv4 address: ${ip}`);
  return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
};

/** The program as struct sock_filter[] bytes in host order, for NativeArpSocket.setFilter. */
export function buildArpFilter(i: ArpInterests): Buffer {
  const senders = [...new Set(i.senders)];
  const replies = [...new Set(i.replySenders ?? [])].filter((x) => !senders.includes(x));
  const probes = [...new Set(i.probeTargets ?? [])];
  const releases = [...new Set(i.releaseTargets ?? [])].filter((x) => !probes.includes(x));
  const p: Insn[] = [];
  const L_REPLY = 1; const L_PROBE = 2; const L_RELEASE = 3;
  p.push({ code: LD_B_ABS, k: SKF_AD_PKTTYPE >>> 0 }, { code: JEQ_K, k: PACKET_OUTGOING, jt: 'drop' });
  p.push({ code: LD_H_ABS, k: OFF.ethType }, { code: JEQ_K, k: ETH_P_ARP, jf: 'drop', ...(i.openAll ? { jt: 'accept' as const } : {}) });
  p.push({ code: LD_W_ABS, k: OFF.spa });
  for (const ip of senders) p.push({ code: JEQ_K, k: ipNum(ip), jt: 'accept' });
  // Sender IP 0: a probe or a release notice; anything else is a reply or nothing.
  p.push({ code: JEQ_K, k: 0, jt: L_PROBE, jf: L_REPLY });
  p.push({ code: LD_H_ABS, k: OFF.op, label: L_REPLY }, { code: JEQ_K, k: 2, jf: 'drop' }, { code: LD_W_ABS, k: OFF.spa });
  for (const ip of replies) p.push({ code: JEQ_K, k: ipNum(ip), jt: 'accept' });
  p.push({ code: RET_K, k: 0 });
  p.push({ code: LD_W_ABS, k: OFF.tpa, label: L_PROBE });
  for (const ip of probes) p.push({ code: JEQ_K, k: ipNum(ip), jt: 'accept' });
  for (const ip of releases) p.push({ code: JEQ_K, k: ipNum(ip), jt: L_RELEASE });
  p.push({ code: RET_K, k: 0 });
  // Release notice: target MAC == sender MAC (4 + 2 bytes).
  p.push({ code: LD_W_ABS, k: OFF.sha, label: L_RELEASE }, { code: TAX, k: 0 }, { code: LD_W_ABS, k: OFF.tha }, { code: JEQ_X, k: 0, jf: 'drop' });
  p.push({ code: LD_H_ABS, k: OFF.sha + 4 }, { code: TAX, k: 0 }, { code: LD_H_ABS, k: OFF.tha + 4 }, { code: JEQ_X, k: 0, jt: 'accept', jf: 'drop' });
  const DROP = p.length; const ACCEPT = p.length + 1;
  p.push({ code: RET_K, k: 0 }, { code: RET_K, k: 0xffffffff });
  const at = new Map<number, number>();
  p.forEach((x, n) => { if (x.label !== undefined) at.set(x.label, n); });
  const rel = (from: number, t: Target | undefined): number => {
    if (t === undefined) return 0;
    const to = t === 'accept' ? ACCEPT : t === 'drop' ? DROP : at.get(t)!;
    const d = to - from - 1;
    if (d < 0 || d > 255) throw new Error(`BPF jump out of range (${d}): too many addresses in one filter`);
    return d;
  };
  return encodeSockFilter(p.map((x, n) => ({ code: x.code, k: x.k, jt: rel(n, x.jt), jf: rel(n, x.jf) })));
}
