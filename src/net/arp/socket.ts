/**
 * Layer: net/arp, socket. A dgram-like wrapper around the native AF_PACKET
 * ARP socket (`native/vigil.c`): open on an interface, send whole frames,
 * receive decoded ARP packets with their kernel-side receive time, close.
 *
 * The native binding is a constructor parameter with the real addon as its
 * default (serialport's injected poller), so the prober can be tested
 * against a fake segment (`fake.ts`) and the real socket with the same code.
 * Frames are decoded here, in TypeScript; the C layer only moves bytes.
 */
import { EventEmitter } from 'node:events';
import { fromNative, isNativeError, SystemError, VigilError } from '../../errors';
import { formatMac } from '../../util/ip';
import type { NativeArpSocket, NativeBinding, NativeWatchState } from '../../native-binding';
import { native } from '../../native';
import { tryDecodeArp } from './codec';
import type { ArpPacket } from './codec';

/** The part of the native binding the ARP layer uses. */
export type ArpBinding = Pick<NativeBinding, 'openArpSocket' | 'monotonicNs'>;

/** Counters an operator or a bench can read. */
export interface ArpSocketStats {
  /** Frames handed up by the native layer. */
  received: number;
  /** Of those, frames that did not decode as IPv4-over-Ethernet ARP. */
  invalid: number;
  /** Frames sent successfully. */
  sent: number;
  /** send() calls that threw. */
  sendErrors: number;
}

/** Options for {@link ArpSocket.open}. */
export interface ArpSocketOptions {
  /** The binding to use; the compiled addon when omitted. */
  binding?: ArpBinding;
  /** Frames read per readable event at most (native default 32). */
  drain?: number;
}

/**
 * Events of an {@link ArpSocket}:
 * - `'frame'` `(packet: ArpPacket, receivedAtNs: bigint)` — one decoded ARP
 *   frame; the time is CLOCK_MONOTONIC in ns taken by the native layer right
 *   after recvfrom, comparable with {@link ArpSocket.nowNs}.
 * - `'error'` `(err: VigilError)` — a fatal receive error; the socket is
 *   closed when this fires.
 * - `'close'` `()` — once, after close (explicit or after an error).
 */
export interface ArpSocketEvents {
  frame: [packet: ArpPacket, receivedAtNs: bigint];
  error: [err: VigilError];
  close: [];
}

/** An open ARP socket on one interface (in the network namespace it was opened in). */
export class ArpSocket extends EventEmitter<ArpSocketEvents> {
  /** The interface name given at open. */
  readonly ifname: string;
  /** Its index at open time. */
  readonly ifindex: number;
  /** Its MAC, `aa:bb:cc:dd:ee:ff`, read at open. */
  readonly mac: string;
  /** The MAC as 6 bytes. */
  readonly macBytes: Buffer;
  /** Counters since open. */
  readonly stats: ArpSocketStats = { received: 0, invalid: 0, sent: 0, sendErrors: 0 };
  private readonly sock: NativeArpSocket;
  private readonly binding: ArpBinding;
  private isClosed = false;
  /** The one callback waiting on the native timer ({@link after}). */
  private timerEntry: { cb: () => void } | undefined;

  /**
   * Open and start receiving at once. Throws a {@link VigilError}: code
   * ENODEV "no such interface", EPERM/EACCES "needs CAP_NET_RAW", or the
   * failed syscall's errno code.
   */
  static open(ifname: string, opts: ArpSocketOptions = {}): ArpSocket {
    return new ArpSocket(ifname, opts.binding ?? native(), opts.drain);
  }

  /** Prefer {@link ArpSocket.open}; the binding is injectable for tests. */
  constructor(ifname: string, binding: ArpBinding = native(), drain?: number) {
    super();
    this.ifname = ifname;
    this.binding = binding;
    try {
      this.sock = binding.openArpSocket(ifname, drain);
    } catch (e) {
      throw openError(e, ifname);
    }
    this.ifindex = this.sock.ifindex;
    this.macBytes = Buffer.from(this.sock.mac);
    this.mac = formatMac(this.macBytes);
    try {
      this.sock.start((frame, at) => this.onFrame(frame, at), (err) => this.onError(err), () => this.onTimer());
    } catch (e) {
      this.sock.close();
      throw fromNative(e, `ARP socket on '${ifname}'`);
    }
  }

  /** True once closed (by {@link close} or after a fatal error). */
  get closed(): boolean {
    return this.isClosed;
  }

  /** CLOCK_MONOTONIC now in ns, the clock of the receive timestamps. */
  nowNs(): bigint {
    return this.binding.monotonicNs();
  }

  /**
   * Send one whole Ethernet frame (see `codec.ts`). Throws a
   * {@link VigilError} whose `retryable` is true for EAGAIN/ENOBUFS/EINTR
   * (a full queue) and false otherwise (ENETDOWN, ENXIO: the link is down or
   * gone; EBADF: closed).
   */
  send(frame: Buffer): void {
    if (this.isClosed) throw new VigilError('EBADF', `ARP socket on '${this.ifname}' is closed`);
    try {
      this.sock.send(frame);
      this.stats.sent++;
    } catch (e) {
      this.stats.sendErrors++;
      throw fromNative(e, `ARP send on '${this.ifname}'`);
    }
  }

  /**
   * Deliver the frames already queued in the kernel now, synchronously, as
   * `'frame'` events (the same ones the next poll phase would emit, with
   * their receive timestamps), and return how many. A prober calls it right
   * after a send: an answer that came back within the send (the peer's
   * kernel answers on the same host, a fast LAN) then settles the probe
   * before it arms a timeout timer, which Node would wake up for even
   * after it was cleared. A throw from a listener propagates.
   */
  drainNow(): number {
    if (this.isClosed) return 0;
    return this.sock.drainNow?.() ?? 0;
  }

  /**
   * Call `cb` once after `ms` unless the returned function is called first.
   * On the socket's native timer when the binding has one and it is free:
   * Node wakes the process for a cleared setTimeout at its due time anyway
   * (its one libuv timer is re-armed lazily), and a probe's timeout is
   * cleared at nearly every answer; a disarmed native timer never wakes it.
   * Otherwise (a second deadline at once, a binding without the timer) a
   * plain setTimeout. A deadline still pending when the socket closes is
   * dropped: its probe has been failed or cancelled by then.
   */
  after(ms: number, cb: () => void): () => void {
    if (!this.isClosed && !this.timerEntry && this.sock.armTimer && this.sock.disarmTimer) {
      const entry = { cb };
      this.sock.armTimer(ms);
      this.timerEntry = entry;
      return () => {
        if (this.timerEntry !== entry) return;
        this.timerEntry = undefined;
        if (!this.isClosed) this.sock.disarmTimer?.();
      };
    }
    const t = setTimeout(cb, ms);
    return () => clearTimeout(t);
  }

  /** Whether the binding has the native probe loop ({@link watch}). */
  get canWatch(): boolean {
    return !this.isClosed && typeof this.sock.watch === 'function' && typeof this.sock.unwatch === 'function';
  }

  /**
   * Run the native probe loop (see NativeArpSocket.watch): `rounds` rounds
   * of "wait `everyMs`, send `frame`, wait up to `timeoutMs`", passing on an
   * answer from `ip` at `mac` (taken natively, never a 'frame' event) or, with
   * `mac` null, once sent (silence expected: any answer is a `frame` event);
   * with `neighbours`, their requests go out with each round, which then
   * passes at the first reply from one of `neighbours.ips` (taken natively). `onEnd` once at the end; {@link unwatch} stops it
   * without a call. Replaces a running one. Throws a {@link VigilError}.
   */
  watch(frame: Buffer, ip: Buffer, mac: Buffer | null, everyMs: number, timeoutMs: number, rounds: number,
    onEnd: (kind: 0 | 1 | 2, rounds: number, rttsMs: Float64Array, errno: number) => void,
    neighbours?: { frames: Buffer[]; ips: Buffer }): void {
    if (this.isClosed) throw new VigilError('EBADF', `ARP socket on '${this.ifname}' is closed`);
    if (!this.sock.watch) throw new VigilError('ENOTSUP', 'this ARP binding has no native probe loop');
    try {
      this.sock.watch(frame, ip, mac, everyMs, timeoutMs, rounds, (kind, n, rtts, errno) => {
        // The loop's sends count as the socket's own (status: arp.sent).
        this.stats.sent += (n + (kind === 1 ? 1 : 0)) * (1 + (neighbours?.frames.length ?? 0));
        onEnd(kind, n, rtts, errno);
      }, neighbours?.frames, neighbours?.ips);
    } catch (e) {
      throw fromNative(e, `ARP probe loop on '${this.ifname}'`);
    }
  }

  /** Stop the native probe loop without its onEnd; true if one was running. */
  unwatch(): boolean {
    if (this.isClosed) return false;
    return this.sock.unwatch?.() ?? false;
  }

  /** The native probe loop's counters, or undefined (none yet, closed, no such binding). */
  watchState(): NativeWatchState | undefined {
    if (this.isClosed) return undefined;
    return this.sock.watchState?.();
  }

  /**
   * Replace the kernel filter (see filter.ts): frames it drops never reach
   * JavaScript. Atomic; a program the kernel refuses throws and leaves the
   * old one in place.
   */
  setFilter(program: Buffer): void {
    if (this.isClosed) return;
    try {
      this.sock.setFilter(program);
    } catch (e) {
      throw fromNative(e, `ARP filter on '${this.ifname}'`);
    }
  }

  /** Stop receiving and close the fd. Idempotent; safe inside a 'frame' listener. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.sock.close();
    this.emit('close');
  }

  private onFrame(frame: Buffer, receivedAtNs: bigint): void {
    if (this.isClosed) return;
    this.stats.received++;
    const p = tryDecodeArp(frame);
    if (typeof p === 'string') {
      this.stats.invalid++;
      return;
    }
    this.emit('frame', p, receivedAtNs);
  }

  private onTimer(): void {
    const e = this.timerEntry;
    this.timerEntry = undefined;
    if (!this.isClosed) e?.cb();
  }

  private onError(err: Error): void {
    // The native layer has closed the fd already.
    if (this.isClosed) return;
    this.isClosed = true;
    const e = receiveError(err, this.ifname);
    if (this.listenerCount('error') > 0) this.emit('error', e);
    this.emit('close');
  }
}

/**
 * libuv reports POLLERR on a polled fd as status UV_EBADF. On a packet
 * socket the kernel raises POLLERR with sk_err = ENETDOWN when the bound
 * interface goes down or is unregistered (net/packet/af_packet.c,
 * packet_notifier), so name it that way rather than "bad file descriptor".
 */
function receiveError(err: unknown, ifname: string): VigilError {
  if (isNativeError(err) && err.syscall === 'uv_poll' && err.code === 'EBADF') {
    return new SystemError(100, 'ENETDOWN', 'uv_poll', `ARP socket on '${ifname}': the kernel reported a socket error (interface down or deleted)`);
  }
  return fromNative(err, `ARP receive on '${ifname}'`);
}

function openError(e: unknown, ifname: string): VigilError {
  // The addon throws a TypeError with code EVIGILARG for a name it cannot use (too long, empty).
  if (typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'EVIGILARG') {
    return new VigilError('EINVAL', `invalid interface name '${ifname}'`, { cause: e, detail: { ifname } });
  }
  const err = fromNative(e, `ARP socket on '${ifname}'`);
  // if_nametoindex reports ENODEV; name the interface the way the CLI prints it.
  if (err instanceof SystemError && (err.code === 'ENODEV' || err.code === 'ENXIO')) {
    return new SystemError(err.errno, err.code, err.syscall, `no such interface '${ifname}'`);
  }
  return err;
}
