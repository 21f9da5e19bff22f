/**
 * Layer: netlink layer, transport. A NETLINK_ROUTE socket from the `netlink`
 * npm package (its `raw` layer only: socket, bind, uv_poll, recvmsg), and the
 * request engine vigil runs over it: sequence numbers, acks, multipart dumps,
 * timeouts. Messages are built and parsed by `codec.ts`.
 *
 * Two properties of the package's native socket shape this file:
 * - When a socket's receive queue overruns, the kernel flags ENOBUFS and the
 *   package's poll handler aborts the whole process (it builds an error with
 *   a NULL syscall name). So replies in flight are bounded
 *   ({@link MAX_BATCH_MESSAGES} acks per transaction, one transaction at a
 *   time; dumps are flow-controlled by the kernel), and sockets ask for a
 *   large receive buffer.
 * - More than 256 sends queued at once also abort it, so a batch goes out as
 *   one datagram holding many messages (the kernel processes each message of
 *   a datagram in turn and acks each one), never as many sends.
 */
// The package's raw layer and its constants only: its index also loads the
// generic-netlink, nl80211, WireGuard and rtnetlink struct modules vigil does
// not use (3 MiB of a vip daemon's peak RSS, bench/memory.ts).
import { RawNetlinkSocket } from 'netlink/dist/raw';
import { Protocol } from 'netlink/dist/constants';
import { getSystemErrorName } from 'node:util';
import { SystemError, VigilError } from '../../errors';
import { NLM_F, NLMSG, encodeMessage, parseErrorPayload, parseMessages, type NlMessage } from './codec';
import { native } from '../../native';

/** Acks one transaction may have in flight: 64 error replies stay well under the default 208 KiB receive buffer. */
export const MAX_BATCH_MESSAGES = 64;
/** Dump retries when the kernel marks a dump inconsistent (NLM_F_DUMP_INTR). */
const DUMP_RETRIES = 3;

/**
 * What the request engine needs from a socket. Implemented over the `netlink`
 * package by {@link openPackageTransport}; a native socket can replace it.
 */
export interface NetlinkTransport {
  /** The socket's netlink port id (nl_pid), stamped into requests. */
  readonly port: number;
  /** Send one datagram to the kernel; `cb` gets the send error, if any. */
  send(datagram: Buffer, cb: (err?: unknown) => void): void;
  /** Receive datagrams and socket errors. */
  listen(onDatagram: (buf: Buffer) => void, onError: (err: unknown) => void): void;
  /** Join a multicast group (RTNLGRP_*). */
  addMembership(group: number): void;
  /** Leave a multicast group. */
  dropMembership(group: number): void;
  /** Keep / stop keeping the event loop alive for this socket. */
  ref(): void;
  unref(): void;
  close(): void;
}

/**
 * Open a NETLINK_ROUTE socket over the `netlink` package, synchronously, in
 * the calling thread's current network namespace. Starts unref'd.
 */
export function openPackageTransport(opts: { recvBufferBytes?: number } = {}): NetlinkTransport {
  let raw: RawNetlinkSocket;
  try {
    raw = new RawNetlinkSocket(Protocol.ROUTE, { recvBufferSize: 0, sendBufferSize: 0 });
  } catch (e) {
    throw netlinkSystemError(e, 'open netlink socket');
  }
  raw.unref();
  if (opts.recvBufferBytes) {
    // SO_RCVBUF is capped by net.core.rmem_max; take what the kernel grants.
    try { raw.setRecvBufferSize(opts.recvBufferBytes); } catch { /* keep the default */ }
  }
  let closed = false;
  return {
    port: raw.address().port,
    send: (datagram, cb) => {
      if (closed) { cb(new VigilError('ECLOSED', 'netlink socket is closed')); return; }
      raw.send(datagram, {}, (err) => cb(err));
    },
    listen: (onDatagram, onError) => {
      raw.on('message', (buf) => onDatagram(buf));
      raw.on('truncatedMessage', () => onError(new VigilError('ETRUNC', 'netlink message truncated')));
      raw.on('error', (err) => onError(err));
    },
    addMembership: (g) => raw.addMembership(g),
    dropMembership: (g) => raw.dropMembership(g),
    ref: () => { if (!closed) raw.ref(); },
    unref: () => { if (!closed) raw.unref(); },
    close: () => {
      if (closed) return;
      closed = true;
      raw.close();
    },
  };
}

/**
 * Open a listen-only event socket in the native layer (native/nlevents.c),
 * in the calling thread's current network namespace: large receive buffer,
 * NETLINK_NO_ENOBUFS, so an overrun can never abort the process. An overrun
 * reaches `listen`'s onError as a VigilError with code `EOVERFLOW` (events
 * were lost; the socket stays open): the owner re-reads the state with a
 * dump. `send` is refused: this socket never makes requests. Starts unref'd.
 */
export function openNativeEventTransport(opts: { recvBufferBytes: number }): NetlinkTransport {
  let sock: ReturnType<ReturnType<typeof native>['openNetlinkEvents']>;
  try {
    sock = native().openNetlinkEvents([], opts.recvBufferBytes);
  } catch (e) {
    throw netlinkSystemError(e, 'open netlink event socket');
  }
  let keep = false;
  let started = false;
  return {
    port: sock.port,
    send: (_d, cb) => cb(new VigilError('EINVAL', 'the netlink event socket does not send')),
    listen: (onDatagram, onError) => {
      if (started) throw new VigilError('EINVAL', 'netlink event socket already listening');
      started = true;
      sock.start(onDatagram,
        () => onError(new VigilError('EOVERFLOW', 'netlink event socket overran: events were lost, state must be re-read')),
        (err) => onError(err));
      sock.ref(keep);
    },
    addMembership: (g) => { try { sock.membership(g, true); } catch (e) { throw netlinkSystemError(e, 'join netlink group'); } },
    dropMembership: (g) => { try { sock.membership(g, false); } catch (e) { throw netlinkSystemError(e, 'leave netlink group'); } },
    ref: () => { keep = true; if (!sock.closed) sock.ref(true); },
    unref: () => { keep = false; if (!sock.closed) sock.ref(false); },
    close: () => sock.close(),
  };
}

/** Wrap an errno (positive) from a netlink reply as a SystemError. */
export function errnoError(errno: number, what: string): SystemError {
  let code = `E${errno}`;
  try { code = getSystemErrorName(-errno); } catch { /* unknown errno: keep the number */ }
  const hint = code === 'EPERM' || code === 'EACCES' ? ' (needs CAP_NET_ADMIN: run as root or grant the capability)' : '';
  return new SystemError(errno, code, 'netlink', `${what}: ${code}${hint}`);
}

/** Wrap an error thrown by the package's native socket ({errno, code, syscall}). */
export function netlinkSystemError(e: unknown, what: string): VigilError {
  if (e instanceof VigilError) return e;
  const x = e as { errno?: unknown; code?: unknown; syscall?: unknown; message?: unknown } | null;
  if (x && typeof x.errno === 'number' && typeof x.code === 'string') {
    return new SystemError(Math.abs(x.errno), x.code, typeof x.syscall === 'string' ? x.syscall : 'netlink',
      `${what}: ${x.code}${typeof x.message === 'string' ? ` (${x.message})` : ''}`);
  }
  return new VigilError('ENETLINK', `${what}: ${String(e instanceof Error ? e.message : e)}`);
}

/** One request of a batch. */
export interface NlRequest { type: number; flags: number; payload: Buffer }

interface Pending {
  /** Messages received for this seq (dump parts, or a doit reply). */
  parts: NlMessage[];
  /** Set once the seq is finished: 0 for success, else a positive errno. */
  errno?: number;
  /** The kernel flagged the dump as interrupted by a concurrent change. */
  intr: boolean;
  dump: boolean;
}

interface Transaction {
  seqs: number[];
  finish: (err?: VigilError) => void;
}

/**
 * Request engine: one transaction (one datagram and its replies) at a time,
 * in order. Replies are matched by sequence number; a transaction ends when
 * every request in it has its ACK/ERROR (or NLMSG_DONE for a dump).
 */
export class NetlinkRequester {
  private seq: number;
  private readonly pending = new Map<number, Pending>();
  private current: Transaction | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  /** `onUnsolicited` receives messages with no pending request (multicast). */
  constructor(
    private readonly transport: NetlinkTransport,
    private readonly timeoutMs: number,
    private readonly onUnsolicited?: (m: NlMessage) => void,
    onSocketError?: (err: unknown) => void,
  ) {
    // Random start so replies meant for an earlier socket on the same port are never mistaken for ours.
    this.seq = 1 + Math.floor(Math.random() * 0x7fffffff);
    transport.listen((buf) => this.receive(buf), (err) => {
      this.fail(netlinkSystemError(err, 'netlink socket'));
      onSocketError?.(err);
    });
  }

  /** A dump request: all parts until NLMSG_DONE, retried if the kernel interrupts it. */
  async dump(type: number, payload: Buffer, what: string): Promise<NlMessage[]> {
    for (let attempt = 0; ; attempt++) {
      const [r] = await this.transact([{ type, flags: NLM_F.REQUEST | NLM_F.DUMP, payload }], what);
      if (r!.errno) throw errnoError(r!.errno, what);
      if (!r!.intr || attempt >= DUMP_RETRIES) return r!.parts;
    }
  }

  /** A single request with ACK; resolves with its reply messages, rejects on a kernel error. */
  async request(type: number, flags: number, payload: Buffer, what: string): Promise<NlMessage[]> {
    const [r] = await this.transact([{ type, flags: flags | NLM_F.REQUEST | NLM_F.ACK, payload }], what);
    if (r!.errno) throw errnoError(r!.errno, what);
    return r!.parts;
  }

  /**
   * Many requests with ACK, sent as datagrams of at most
   * {@link MAX_BATCH_MESSAGES} messages each. Resolves with the errno of each
   * request (0 = success), in order; rejects only when the socket or the
   * kernel stops answering.
   */
  async batch(reqs: NlRequest[], what: string): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < reqs.length; i += MAX_BATCH_MESSAGES) {
      const chunk = reqs.slice(i, i + MAX_BATCH_MESSAGES).map((r) => ({ ...r, flags: r.flags | NLM_F.REQUEST | NLM_F.ACK }));
      const res = await this.transact(chunk, what);
      for (const r of res) out.push(r.errno ?? 0);
    }
    return out;
  }

  /** Fail everything pending and stop; the transport is closed by the owner. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.fail(new VigilError('ECLOSED', 'netlink socket closed'));
  }

  private nextSeq(): number {
    const s = this.seq;
    this.seq = this.seq >= 0xffffffff ? 1 : this.seq + 1;
    return s;
  }

  private transact(reqs: NlRequest[], what: string): Promise<Pending[]> {
    const run = (): Promise<Pending[]> => new Promise<Pending[]>((resolve, reject) => {
      if (this.closed) { reject(new VigilError('ECLOSED', `${what}: netlink socket closed`)); return; }
      const seqs: number[] = [];
      const entries: Pending[] = [];
      const frames: Buffer[] = [];
      for (const r of reqs) {
        const seq = this.nextSeq();
        const p: Pending = { parts: [], intr: false, dump: (r.flags & NLM_F.DUMP) === NLM_F.DUMP };
        seqs.push(seq);
        entries.push(p);
        this.pending.set(seq, p);
        frames.push(encodeMessage({ type: r.type, flags: r.flags, seq, pid: this.transport.port, payload: r.payload }));
      }
      let done = false;
      const timer = setTimeout(() => {
        tx.finish(new VigilError('ETIMEDOUT', `${what}: no netlink reply within ${this.timeoutMs} ms`, { retryable: true }));
      }, this.timeoutMs);
      const tx: Transaction = {
        seqs,
        finish: (err) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          for (const s of seqs) this.pending.delete(s);
          if (this.current === tx) this.current = undefined;
          if (this.pending.size === 0) this.transport.unref();
          if (err) reject(err); else resolve(entries);
        },
      };
      this.current = tx;
      this.transport.ref();
      this.transport.send(Buffer.concat(frames), (err) => {
        if (err) tx.finish(netlinkSystemError(err, `${what}: send`));
      });
    });
    // Serialize: the next transaction starts when this one settles either way.
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private receive(buf: Buffer): void {
    let msgs: NlMessage[];
    try {
      msgs = parseMessages(buf);
    } catch (e) {
      this.fail(new VigilError('EPROTO', `netlink: unparsable reply: ${(e as Error).message}`));
      return;
    }
    for (const m of msgs) {
      const p = m.seq !== 0 ? this.pending.get(m.seq) : undefined;
      if (!p) {
        if (m.type !== NLMSG.ERROR && m.type !== NLMSG.DONE) this.onUnsolicited?.(m);
        continue;
      }
      if (p.errno !== undefined) continue;
      if (m.flags & NLM_F.DUMP_INTR) p.intr = true;
      if (m.type === NLMSG.ERROR) {
        p.errno = parseErrorPayload(m.payload);
      } else if (m.type === NLMSG.DONE) {
        // Since 4.x NLMSG_DONE carries the dump's own error as an int.
        p.errno = m.payload.length >= 4 ? Math.max(0, parseErrorPayload(m.payload)) : 0;
      } else if (m.type !== NLMSG.NOOP && m.type !== NLMSG.OVERRUN) {
        p.parts.push(m);
      }
    }
    const tx = this.current;
    if (tx && tx.seqs.every((s) => this.pending.get(s)?.errno !== undefined)) tx.finish();
  }

  private fail(err: VigilError): void {
    this.current?.finish(err);
  }
}
