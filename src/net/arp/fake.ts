/**
 * Layer: net/arp, test double. A fake of the native ARP binding: an
 * in-memory Ethernet segment where configured hosts answer ARP requests and
 * RFC 5227 probes like the Linux kernel does. It implements the same
 * contract (`ArpBinding`) as the addon so the prober and the roles can be
 * tested without privileges; the real socket is tested in network
 * namespaces (`test/integration/arp*.test.ts`). Named a fake everywhere.
 */
import { buildRequest, decodeArp, encodeArp, isProbe, OP_REPLY, OP_REQUEST, tryDecodeArp } from './codec';
import { parseMac } from '../../util/ip';
import type { NativeArpSocket } from '../../native-binding';
import type { ArpBinding } from './socket';

/** A host on the fake segment that answers for `ip` with `mac`. */
export interface FakeHost {
  ip: string;
  mac: string;
  /** Reply delay in ms; the segment default when omitted. */
  delayMs?: number;
  /** Answer only every n-th request (1 = all). */
  answerEvery?: number;
}

/** A native-style error: `{errno, code, syscall}`. */
function nativeError(code: string, syscall: string): Error & { errno: number; code: string; syscall: string } {
  const errnos: Record<string, number> = { EPERM: 1, EINTR: 4, ENXIO: 6, EBADF: 9, EAGAIN: 11, ENOMEM: 12, EACCES: 13, ENODEV: 19, ENOBUFS: 105, ENETDOWN: 100 };
  return Object.assign(new Error(`${syscall} failed: ${code}`), { errno: errnos[code] ?? 0, code, syscall });
}

/** One open fake socket. */
class FakeSocket implements NativeArpSocket {
  readonly ifindex: number;
  readonly mac: Buffer;
  closed = false;
  onFrame?: (frame: Buffer, at: bigint) => void;
  onError?: (err: Error) => void;
  /** Frames "in the kernel's queue": delivered by the next loop turn or by drainNow(). */
  readonly queue: { frame: Buffer; at: bigint }[] = [];

  constructor(readonly seg: FakeArpSegment, readonly ifname: string, ifindex: number, mac: Buffer) {
    this.ifindex = ifindex;
    this.mac = mac;
  }

  send(frame: Buffer): number {
    if (this.closed) throw nativeError('EBADF', 'send');
    const fail = this.seg.sendFailures.shift();
    if (fail) throw nativeError(fail, 'send');
    this.seg.sent.push({ ifname: this.ifname, frame: Buffer.from(frame) });
    this.seg.onSent(this, frame);
    return frame.length;
  }

  start(onFrame: (frame: Buffer, at: bigint) => void, onError: (err: Error) => void): void {
    if (this.closed) throw nativeError('EBADF', 'uv_poll_start');
    this.onFrame = onFrame;
    this.onError = onError;
  }

  /** Deliver what is queued (the poll phase, or drainNow). */
  flush(): number {
    let n = 0;
    for (let q = this.queue.shift(); q && !this.closed; q = this.queue.shift()) {
      n++;
      this.onFrame?.(q.frame, q.at);
    }
    return n;
  }

  drainNow(): number {
    return this.closed || !this.onFrame ? 0 : this.flush();
  }

  /** Multicast MACs joined with membership() (the fake delivers every frame regardless). */
  readonly memberships = new Set<string>();
  membership(mac: Buffer, join: boolean): void {
    if (this.closed) throw nativeError('EBADF', 'setsockopt(PACKET_ADD_MEMBERSHIP)');
    if (join) this.memberships.add(mac.toString('hex')); else this.memberships.delete(mac.toString('hex'));
  }

  /** The last program given to setFilter (the fake delivers every frame regardless). */
  filter: Buffer | undefined;
  setFilter(program: Buffer): void {
    this.filter = program;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.seg.sockets.delete(this);
  }
}

/**
 * The fake segment. `binding` is what to inject; `hosts` answer; every
 * frame any socket sends is in `sent`; `sendFailures` holds error codes
 * the next sends throw (EAGAIN, ENETDOWN…); `inject` delivers a frame to
 * every open socket on an interface as if it came from the wire.
 */
export class FakeArpSegment {
  /** The injectable binding. */
  readonly binding: ArpBinding;
  /** Interfaces that exist, name → MAC. */
  readonly interfaces = new Map<string, string>();
  /** Hosts answering on the segment, by IP. */
  readonly hosts = new Map<string, FakeHost>();
  /** Frames sent by sockets, in order. */
  readonly sent: Array<{ ifname: string; frame: Buffer }> = [];
  /** Error codes the next send() calls throw, consumed one per call. */
  readonly sendFailures: string[] = [];
  /** Sockets currently open. */
  readonly sockets = new Set<FakeSocket>();
  /** Sockets opened in total. */
  opened = 0;
  /** Error code openArpSocket throws for every open (e.g. 'EPERM'), if set. */
  openFailure: string | undefined;
  /** Default reply delay in ms. */
  defaultDelayMs: number;
  private readonly requests = new Map<string, number>();

  constructor(opts: { interfaces?: Record<string, string>; delayMs?: number } = {}) {
    this.defaultDelayMs = opts.delayMs ?? 1;
    for (const [n, m] of Object.entries(opts.interfaces ?? { eth0: '02:00:00:00:00:01' })) this.interfaces.set(n, m);
    const monotonicNs = (): bigint => process.hrtime.bigint(); // CLOCK_MONOTONIC, like the addon
    this.binding = {
      monotonicNs,
      openArpSocket: (ifname: string) => {
        // The addon checks the name before anything else (1..15 bytes, IFNAMSIZ).
        if (ifname.length === 0 || Buffer.byteLength(ifname) >= 16) {
          throw Object.assign(new TypeError('ifname must be 1..15 characters'), { code: 'EVIGILARG' });
        }
        if (this.openFailure) throw nativeError(this.openFailure, 'socket');
        const mac = this.interfaces.get(ifname);
        if (mac === undefined) throw nativeError('ENODEV', 'if_nametoindex');
        const s = new FakeSocket(this, ifname, [...this.interfaces.keys()].indexOf(ifname) + 1, parseMac(mac)!);
        this.sockets.add(s);
        this.opened++;
        return s;
      },
    };
  }

  /** Add a host that answers for `ip`. */
  addHost(h: FakeHost): this {
    this.hosts.set(h.ip, h);
    return this;
  }

  /**
   * Deliver `frame` to every open socket on `ifname` after `delayMs`. With 0
   * it is queued at once, as the kernel queues an answer within the send
   * that caused it: a socket's drainNow() hands it over synchronously, else
   * the next turn of the loop does.
   */
  inject(ifname: string, frame: Buffer, delayMs = 0): void {
    const deliver = (now: boolean): void => {
      const at = this.binding.monotonicNs();
      const to = [...this.sockets].filter((s) => s.ifname === ifname && !s.closed);
      for (const s of to) s.queue.push({ frame: Buffer.from(frame), at });
      const flush = () => { for (const s of to) s.flush(); };
      if (now) flush(); else setImmediate(flush);
    };
    if (delayMs > 0) setTimeout(() => deliver(true), delayMs);
    else deliver(false);
  }

  /**
   * Fail every open socket on `ifname` as the addon does on a poll or
   * receive error: the socket closes, then onError runs. The real addon
   * reports POLLERR as `{code: 'EBADF', syscall: 'uv_poll'}`.
   */
  failSockets(ifname: string, code = 'ENETDOWN', syscall = 'recvfrom'): void {
    for (const s of [...this.sockets]) {
      if (s.ifname !== ifname) continue;
      const cb = s.onError;
      s.close();
      cb?.(nativeError(code, syscall));
    }
  }

  /** Another host on the segment sends an RFC 5227 probe for `ip`. */
  probeFrom(ifname: string, mac: string, ip: string, delayMs = 0): void {
    this.inject(ifname, encodeArp({ op: OP_REQUEST, ethDst: 'ff:ff:ff:ff:ff:ff', ethSrc: mac, senderMac: mac, senderIp: '0.0.0.0', targetMac: '00:00:00:00:00:00', targetIp: ip }), delayMs);
  }

  /** Another host sends an ordinary request from `ip` (evidence it holds `ip`). */
  requestFrom(ifname: string, mac: string, ip: string, targetIp: string, delayMs = 0): void {
    this.inject(ifname, buildRequest({ senderMac: mac, senderIp: ip, targetIp }), delayMs);
  }

  /** Frames sent so far, decoded. */
  sentPackets(): ReturnType<typeof decodeArp>[] {
    return this.sent.map((s) => decodeArp(s.frame));
  }

  /** @internal The kernel-like responder: answer requests for hosts' IPs. */
  onSent(from: FakeSocket, frame: Buffer): void {
    const p = tryDecodeArp(frame);
    if (typeof p === 'string' || p.op !== OP_REQUEST) return;
    const h = this.hosts.get(p.targetIp);
    if (!h || p.senderIp === p.targetIp) return; // gratuitous ARP gets no answer
    const n = (this.requests.get(h.ip) ?? 0) + 1;
    this.requests.set(h.ip, n);
    if (n % (h.answerEvery ?? 1) !== 0) return;
    // Linux answers a probe (sender IP 0.0.0.0) with target IP 0.0.0.0, unicast (net/ipv4/arp.c).
    const reply = encodeArp({
      op: OP_REPLY, ethDst: p.senderMac, ethSrc: h.mac, senderMac: h.mac, senderIp: h.ip,
      targetMac: p.senderMac, targetIp: isProbe(p) ? '0.0.0.0' : p.senderIp,
    });
    this.inject(from.ifname, reply, h.delayMs ?? this.defaultDelayMs);
  }
}
