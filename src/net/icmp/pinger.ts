/**
 * Layer: socket. ICMP echo over one raw socket (the `raw-socket` package),
 * shared by concurrent pings; replies are matched by identifier, sequence
 * and source. Tri-state result like the ARP prober: an error is not silence.
 */
import * as raw from 'raw-socket';
import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { errorMessage } from '../../errors';
import { isIPv4 } from '../../util/ip';
import { decodeEchoReply, encodeEchoRequest } from './codec';

/** Outcome of one ping. */
export type PingResult = { status: 'answered'; rttMs: number } | { status: 'silent' } | { status: 'error'; error: string };

interface Pending { ip: string; sentAt: number; resolve: (r: PingResult) => void; timer: NodeJS.Timeout }

/** A raw ICMP socket for echo probes (needs CAP_NET_RAW). */
export class Pinger {
  private readonly socket: raw.Socket;
  private readonly id = randomInt(0, 0x10000);
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  /** Open the socket in the calling thread's network namespace. */
  constructor() {
    this.socket = raw.createSocket({ protocol: raw.Protocol.ICMP });
    this.socket.on('message', (buf: Buffer) => this.onMessage(buf));
    this.socket.on('error', (e: Error) => this.failAll(errorMessage(e)));
    // Receiving is paused while nothing is pending, so an idle pinger costs nothing.
    this.socket.pauseRecv();
  }

  /** Echo `ip` once and wait up to `timeoutMs` for the reply. */
  ping(ip: string, timeoutMs: number): Promise<PingResult> {
    if (this.closed) return Promise.resolve({ status: 'error', error: 'pinger closed' });
    if (!isIPv4(ip)) return Promise.resolve({ status: 'error', error: `not an IPv4 address: ${ip}` });
    const seq = this.seq = (this.seq + 1) & 0xffff;
    const packet = encodeEchoRequest(this.id, seq, Buffer.from('vigil'));
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle(seq, { status: 'silent' }), timeoutMs);
      this.pending.set(seq, { ip, sentAt: performance.now(), resolve, timer });
      if (this.pending.size === 1) this.socket.resumeRecv();
      this.socket.send(packet, 0, packet.length, ip, (err: Error | null) => {
        if (err) this.settle(seq, { status: 'error', error: errorMessage(err) });
      });
    });
  }

  private onMessage(buf: Buffer): void {
    const r = decodeEchoReply(buf);
    if (!r || r.id !== this.id) return;
    const p = this.pending.get(r.seq);
    if (p && p.ip === r.from) this.settle(r.seq, { status: 'answered', rttMs: performance.now() - p.sentAt });
  }

  private settle(seq: number, r: PingResult): void {
    const p = this.pending.get(seq);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(seq);
    if (this.pending.size === 0 && !this.closed) this.socket.pauseRecv();
    p.resolve(r);
  }

  private failAll(error: string): void {
    for (const seq of [...this.pending.keys()]) this.settle(seq, { status: 'error', error });
  }

  /** Close the socket; pending pings resolve as errors. */
  close(): void {
    if (this.closed) return;
    this.failAll('pinger closed');
    this.closed = true;
    this.socket.close();
  }
}
