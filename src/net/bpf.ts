/**
 * Layer: net, pure. A classic BPF program as the kernel takes it
 * (`struct sock_filter[]` for SO_ATTACH_FILTER): code u16, jt u8, jf u8,
 * k u32, in host byte order. The ARP and NDP filters build their programs
 * with labels and resolve their jumps; this writes the result.
 */
import { endianness } from 'node:os';

/** One instruction with its jumps already resolved to relative offsets (0–255). */
export interface SockFilterInsn { code: number; jt: number; jf: number; k: number }

/** The program's bytes, 8 per instruction. */
export function encodeSockFilter(insns: readonly SockFilterInsn[]): Buffer {
  const le = endianness() === 'LE';
  const buf = Buffer.alloc(insns.length * 8);
  insns.forEach((x, n) => {
    const o = n * 8;
    if (le) { buf.writeUInt16LE(x.code, o); buf.writeUInt32LE(x.k >>> 0, o + 4); } else { buf.writeUInt16BE(x.code, o); buf.writeUInt32BE(x.k >>> 0, o + 4); }
    buf[o + 2] = x.jt;
    buf[o + 3] = x.jf;
  });
  return buf;
}
