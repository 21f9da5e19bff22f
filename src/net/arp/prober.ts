/**
 * Layer: net/arp, prober. ARP presence probes and gratuitous announcements
 * over {@link ArpSocket}, for the `vip` role, the `arp-probe` verb and benches.
 *
 * - Every probe is tri-state: `answered` (someone holds the IP), `silent`
 *   (nobody answered within the timeout), or `error` (the probe could not be
 *   carried out: no interface, no privilege, send failures). An error is
 *   never "silent": the HA logic must not take over an address because its
 *   own NIC is broken (seed hazard V-22).
 * - All probers on one interface in one network namespace share ONE socket,
 *   reference-counted and closed when its last user is done (endpoint.ts).
 *   Replies are dispatched by IP to the probes waiting for them. The types
 *   are in probe-types.ts, the native steady-state loop in watch.ts.
 * - Round-trip times are the native layer's read time of the answer minus
 *   the send time, both CLOCK_MONOTONIC: no JavaScript or event-loop work is
 *   in them, but a stall of the whole process before the read is.
 */
import * as os from 'node:os';
import { VigilError } from '../../errors';
import { isIPv4 } from '../../util/ip';
import { moduleLog } from '../../log';
import { buildAnnounceReply, buildAnnounceRequest, buildProbe, buildRelease, buildRequest } from './codec';
import type { ArpSocket, ArpSocketStats, ArpBinding } from './socket';
import { native } from '../../native';
import { startWatch, type ArpWatch, type WatchOptions } from './watch';
import { acquire, currentNetns, type Endpoint, type Lease, type Pin, type Waiter } from './endpoint';
import type { AnnounceOptions, ArpReply, ProbeOptions, ProbeResult, ProbeSource, ProberOptions, ResultBase } from './probe-types';
import type { NativeWatchState } from '../../native-binding';

export type * from './probe-types';
export { sharedSocketCount, type Pin } from './endpoint';

const log = moduleLog('arp');

const DEFAULTS = { timeoutMs: 1000, count: 1, intervalMs: 200, sendRetries: 3 } as const;
const ANNOUNCE_DEFAULTS = { count: 2, intervalMs: 2000 } as const;
/** How long a looked-up sender address is reused. */
const SENDER_IP_TTL_NS = 1_000_000_000n;
/** Backoff before send retry n (1-based): 1, 2, 4 … ms, capped. */
const retryDelayMs = (n: number): number => Math.min(2 ** (n - 1), 50);

// ---------------------------------------------------------------------------

function assertProbeOptions(ip: string, o: ProbeOptions): Required<Pick<ProbeOptions, 'timeoutMs' | 'count' | 'intervalMs' | 'sendRetries'>> {
  if (!isIPv4(ip)) throw new VigilError('EINVAL', `invalid IPv4 address '${ip}'`);
  const timeoutMs = o.timeoutMs ?? DEFAULTS.timeoutMs;
  const count = o.count ?? DEFAULTS.count;
  const intervalMs = o.intervalMs ?? DEFAULTS.intervalMs;
  const sendRetries = o.sendRetries ?? DEFAULTS.sendRetries;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new VigilError('EINVAL', `timeoutMs must be a non-negative number, got ${timeoutMs}`);
  if (!Number.isInteger(count) || count < 1) throw new VigilError('EINVAL', `count must be an integer ≥ 1, got ${count}`);
  if (!Number.isFinite(intervalMs) || intervalMs < 0) throw new VigilError('EINVAL', `intervalMs must be a non-negative number, got ${intervalMs}`);
  if (!Number.isInteger(sendRetries) || sendRetries < 0) throw new VigilError('EINVAL', `sendRetries must be an integer ≥ 0, got ${sendRetries}`);
  if (o.senderIp !== undefined && !isIPv4(o.senderIp)) throw new VigilError('EINVAL', `invalid sender IPv4 address '${o.senderIp}'`);
  return { timeoutMs, count, intervalMs, sendRetries };
}

/** First IPv4 address of `iface` in the calling thread's namespace (getifaddrs). */
function interfaceIPv4(iface: string): string | undefined {
  return os.networkInterfaces()[iface]?.find((a) => a.family === 'IPv4')?.address;
}

const nsToMs = (ns: bigint): number => Number(ns) / 1e6;

/**
 * Send `frame`, retrying retryable failures (EAGAIN, ENOBUFS, EINTR) up to
 * `retries` times with a short backoff. Calls `done(undefined, sentAtNs)`
 * on success, the time taken just before the send that succeeded, or
 * `done(err)` on a fatal error or when retries run out.
 */
function sendWithRetry(
  socket: ArpSocket, frame: Buffer, retries: number,
  done: (err: VigilError | undefined, sentAtNs: bigint) => void, timers: Set<NodeJS.Timeout>,
): void {
  let attempt = 0;
  const tryOnce = (): void => {
    let at = 0n;
    try {
      at = socket.nowNs();
      socket.send(frame);
    } catch (e) {
      const err = e instanceof VigilError ? e : new VigilError('EUNKNOWN', String(e));
      if (err.retryable && attempt < retries) {
        attempt++;
        const t = setTimeout(() => {
          timers.delete(t);
          tryOnce();
        }, retryDelayMs(attempt));
        timers.add(t);
        return;
      }
      done(attempt > 0 ? new VigilError(err.code, `${err.message} (after ${attempt} retries)`, { retryable: err.retryable, cause: err }) : err, 0n);
      return;
    }
    done(undefined, at);
  };
  tryOnce();
}

/**
 * A prober bound to one interface, for the daemon: it keeps its reference
 * to the interface's shared socket across probes (the daemon probes every
 * 200 ms–1 s), and reopens it after a fatal socket error.
 */
export class ArpProber {
  /** The interface probed on. */
  readonly iface: string;
  private readonly binding: ArpBinding;
  private lease: Lease | undefined;
  private readonly cancels = new Set<(e: VigilError) => void>();
  private isClosed = false;
  /** The network namespace the prober was opened in; it only ever reopens there. */
  private readonly netns: string;
  /** The interface's address for `source: 'request'`, and when it was read (ns). */
  private sender: { ip: string | undefined; atNs: bigint } | undefined;
  /** Release listeners of this prober, re-attached to a reopened socket. */
  private readonly releaseListeners: { ip: string; cb: (mac: string) => void }[] = [];
  private myPin: Pin | undefined;
  /**
   * Probe frames built before, by what they are made of (form, IP, sender
   * IP, MAC): the daemon sends the same frame at every check, and building
   * one (parsing the MAC and addresses) was the largest part of a probe's
   * JavaScript. The socket copies a frame at send, so one Buffer serves all.
   */
  private readonly frames = new Map<string, Buffer>();

  /**
   * Open (or join) the shared socket on `iface` in the calling thread's
   * network namespace. Throws a {@link VigilError}: ENODEV "no such
   * interface 'X'", EPERM "needs CAP_NET_RAW", …
   */
  static open(iface: string, opts: ProberOptions = {}): ArpProber {
    return new ArpProber(iface, opts);
  }

  private constructor(iface: string, opts: ProberOptions) {
    this.iface = iface;
    this.binding = opts.binding ?? native();
    this.netns = currentNetns();
    this.lease = acquire(iface, this.binding, this.netns);
  }

  /** The interface's MAC (from the open socket). */
  get mac(): string {
    return this.endpoint().socket.mac;
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * The interface's first IPv4 address, read at most once a second:
   * getifaddrs is a netlink dump, several times the cost of the probe itself
   * (measured in bench/arp), and an address rarely changes between probes.
   */
  private senderIp(): string | undefined {
    const now = this.binding.monotonicNs();
    if (!this.sender || now - this.sender.atNs > SENDER_IP_TTL_NS) this.sender = { ip: interfaceIPv4(this.iface), atNs: now };
    return this.sender.ip;
  }

  /** The live endpoint, reopened if a fatal error closed the previous one. */
  private endpoint(): Endpoint {
    if (this.isClosed) throw new VigilError('ECANCELED', `ARP prober on '${this.iface}' is closed`);
    if (!this.lease || !this.lease.ep.alive) {
      this.lease?.release();
      this.lease = undefined;
      // Interface names repeat across namespaces: reopening `eth0` from
      // another one would probe on a different machine's (or the host's own)
      // interface. Callers that switch namespaces must probe from inside.
      if (currentNetns() !== this.netns) {
        throw new VigilError('ENETNS', `ARP socket on '${this.iface}' was lost and cannot be reopened from another network namespace`);
      }
      this.lease = acquire(this.iface, this.binding, this.netns);
      if (this.myPin) this.lease.ep.pins.add(this.myPin);
      for (const l of this.releaseListeners) this.attachRelease(this.lease.ep, l);
      this.lease.ep.refilter();
    }
    return this.lease.ep;
  }

  private attachRelease(ep: Endpoint, l: { ip: string; cb: (mac: string) => void }): void {
    let set = ep.releaseListeners.get(l.ip);
    if (!set) ep.releaseListeners.set(l.ip, (set = new Set()));
    set.add(l.cb);
    ep.refilter();
  }

  /**
   * Standing interests of this prober, kept in the socket's kernel filter for
   * as long as the prober is open (across reopens): `senders`, IPs whose every
   * frame matters (the HA IP: answers and a competitor's gratuitous ARP);
   * `replySenders`, IPs whose replies only matter (neighbours answering our
   * requests). Pinning what is probed at every check keeps the filter from
   * being swapped twice per probe. Replaces the previous pin of this prober.
   */
  pin(p: Pin): void {
    if (this.myPin) this.lease?.ep.pins.delete(this.myPin);
    this.myPin = { senders: [...(p.senders ?? [])], replySenders: [...(p.replySenders ?? [])] };
    if (this.lease?.ep.alive) { this.lease.ep.pins.add(this.myPin); this.lease.ep.refilter(); }
  }

  /** Counters of the socket in use (frames delivered to JS = `received`), or undefined before it opens. */
  stats(): ArpSocketStats | undefined {
    return this.lease?.ep.socket.stats;
  }

  /**
   * Call `cb(mac)` for every release notice ({@link buildRelease}) about `ip`
   * heard from another host, for as long as the prober is open (across
   * socket reopens). Returns a function that stops listening.
   */
  onRelease(ip: string, cb: (mac: string) => void): () => void {
    if (!isIPv4(ip)) throw new VigilError('EINVAL', `invalid IPv4 address '${ip}'`);
    const l = { ip, cb };
    this.releaseListeners.push(l);
    if (this.lease?.ep.alive) this.attachRelease(this.lease.ep, l);
    return () => {
      const i = this.releaseListeners.indexOf(l);
      if (i >= 0) this.releaseListeners.splice(i, 1);
      const set = this.lease?.ep.releaseListeners.get(ip);
      set?.delete(cb);
      if (set && set.size === 0) { this.lease!.ep.releaseListeners.delete(ip); this.lease!.ep.refilter(); }
    };
  }

  /**
   * Tell the segment that this host no longer holds `ip`: `count` release
   * notices back to back (a second one in case one is dropped), sent
   * synchronously so a stopping daemon can send them just before it exits.
   * Throws a {@link VigilError} if the socket cannot send.
   */
  sendRelease(ip: string, count = 2): number {
    if (!isIPv4(ip)) throw new VigilError('EINVAL', `invalid IPv4 address '${ip}'`);
    const socket = this.endpoint().socket;
    const frame = buildRelease({ senderMac: socket.macBytes, ip });
    for (let i = 0; i < count; i++) socket.send(frame);
    return count;
  }

  /**
   * Probe `ip`: send `count` frames `intervalMs` apart and wait `timeoutMs`
   * after the last. Rejects only on invalid arguments (VigilError EINVAL);
   * every runtime failure is a result with `status: 'error'`.
   */
  probe(ip: string, opts: ProbeOptions = {}): Promise<ProbeResult> {
    const o = assertProbeOptions(ip, opts);
    const source = opts.source ?? 'probe';
    const untilTimeout = opts.untilTimeout ?? false;
    const stopOnReply = !untilTimeout && (opts.stopOnReply ?? true);
    const startedNs = this.binding.monotonicNs();
    let senderMac: string | undefined;
    const base = (sent: number): ResultBase => ({
      ip, iface: this.iface, sent, elapsedMs: nsToMs(this.binding.monotonicNs() - startedNs), ...(senderMac !== undefined ? { senderMac } : {}),
    });

    let ep: Endpoint;
    let frame: Buffer;
    try {
      ep = this.endpoint();
      senderMac = ep.socket.mac;
      const senderIp = source === 'request' ? opts.senderIp ?? this.senderIp() : '';
      if (senderIp === undefined) throw new VigilError('ENOADDR', `no IPv4 address on '${this.iface}' to send an ARP request from (give a sender IP or use an RFC 5227 probe)`);
      frame = this.probeFrame(ep, source, senderIp, ip);
    } catch (e) {
      const error = e instanceof VigilError ? e : new VigilError('EUNKNOWN', String(e));
      return Promise.resolve({ status: 'error', error, ...base(0) });
    }
    const socket = ep.socket;

    return new Promise<ProbeResult>((resolve) => {
      const timers = new Set<NodeJS.Timeout>();
      const replies: ArpReply[] = [];
      const answeredSeqs = new Set<number>();
      let sent = 0;
      let lastSendNs = 0n;
      let allSent = false;
      let finished = false;

      let stopDeadline: (() => void) | undefined;
      const finish = (r: ProbeResult): void => {
        if (finished) return;
        finished = true;
        for (const t of timers) clearTimeout(t);
        timers.clear();
        stopDeadline?.();
        stopDeadline = undefined;
        ep.unwatch(ip, waiter);
        this.cancels.delete(cancel);
        resolve(r);
      };
      const answered = (): ProbeResult => ({
        status: 'answered', answered: true, mac: replies[0]!.mac, rttMs: replies[0]!.rttMs, replies, ...base(sent),
      });
      const failWith = (error: VigilError): void => {
        // Evidence already received stands: an answer is an answer.
        finish(replies.length > 0 ? answered() : { status: 'error', error, ...base(sent) });
      };
      const cancel = (e: VigilError): void => failWith(e);
      const waiter: Waiter = {
        conflicts: source === 'probe' && (opts.acceptConflict ?? true),
        onPacket: (packet, at, kind) => {
          if (finished || sent === 0) return;
          const reply: ArpReply = {
            kind, ip, mac: packet.senderMac, rttMs: nsToMs(at - lastSendNs), seq: sent - 1, receivedAtNs: at, packet,
          };
          replies.push(reply);
          answeredSeqs.add(reply.seq);
          try {
            opts.onReply?.(reply);
          } catch (e) {
            log.warn({ ip, err: String(e) }, 'onReply callback threw');
          }
          if (!untilTimeout && (stopOnReply || (allSent && answeredSeqs.size >= o.count))) finish(answered());
        },
        fail: failWith,
      };
      this.cancels.add(cancel);
      ep.watch(ip, waiter);

      const sendNext = (): void => {
        if (finished) return;
        sendWithRetry(socket, frame, o.sendRetries, (err, sentAtNs) => {
          if (finished) return;
          if (err) {
            log.debug({ iface: this.iface, ip, code: err.code }, 'ARP probe send failed');
            failWith(err);
            return;
          }
          lastSendNs = sentAtNs;
          sent++;
          // An answer that came back within the send is taken now, before a
          // timer is armed for it: a cleared Node timer still wakes the
          // process at its due time, so this saves a wake-up per probe.
          socket.drainNow();
          if (finished) return;
          if (sent < o.count) {
            const t = setTimeout(() => {
              timers.delete(t);
              sendNext();
            }, o.intervalMs);
            timers.add(t);
          } else {
            allSent = true;
            if (!untilTimeout && !stopOnReply && replies.length > 0 && answeredSeqs.size >= o.count) {
              finish(answered());
              return;
            }
            // On the socket's timer: cleared at the answer, it does not wake us later.
            stopDeadline = socket.after(o.timeoutMs, () => {
              stopDeadline = undefined;
              // Silence is declared only after one more poll phase: libuv runs
              // timers before I/O, so after a stall of this process (a saturated
              // core) the timeout fires while the answer already waits in the
              // socket. setImmediate runs after the poll phase has drained it,
              // and the answer that is there counts, however late we read it.
              setImmediate(() => finish(replies.length > 0 ? answered() : { status: 'silent', answered: false, ...base(sent) }));
            });
          }
        }, timers);
      };
      sendNext();
    });
  }

  /**
   * Probe `ip` with the native steady-state loop (see watch.ts): `rounds`
   * RFC 5227 probes `everyMs` apart that wake JavaScript only when one is not
   * answered by `expectMac` (or, without it, when one is answered at all).
   * Undefined when the socket's binding has no native loop (a test double):
   * the caller probes the ordinary way. Throws EINVAL on a bad IP.
   */
  watch(ip: string, o: Omit<WatchOptions, 'neighbours'> & { neighbours?: { ips: string[] } }): ArpWatch | undefined {
    if (!isIPv4(ip)) throw new VigilError('EINVAL', `invalid IPv4 address '${ip}'`);
    let ep: Endpoint;
    try {
      ep = this.endpoint();
    } catch {
      return undefined; // the ordinary probe reports why
    }
    if (!ep.socket.canWatch) return undefined;
    const { neighbours, ...rest } = o;
    let opts: WatchOptions = rest;
    if (neighbours && neighbours.ips.length > 0) {
      // Ordinary requests from our address, as the neighbour gate's own probes.
      const senderIp = this.senderIp();
      if (senderIp === undefined) return undefined;
      opts = { ...rest, neighbours: { ips: neighbours.ips, frames: neighbours.ips.map((n) => this.probeFrame(ep, 'request', senderIp, n)) } };
    }
    const w = startWatch(ep, this.probeFrame(ep, 'probe', '', ip), ip, opts);
    const cancel = (): void => w.stop();
    this.cancels.add(cancel);
    void w.done.finally(() => this.cancels.delete(cancel));
    return { done: w.done, stop: () => { this.cancels.delete(cancel); w.stop(); } };
  }

  /** The native loop's counters, with its last round's age in ms (undefined: none ran yet). */
  watchState(): (NativeWatchState & { ageMs: number }) | undefined {
    const st = this.lease?.ep.alive ? this.lease.ep.socket.watchState() : undefined;
    if (!st) return undefined;
    return { ...st, ageMs: st.lastRoundNs > 0n ? Number(this.binding.monotonicNs() - st.lastRoundNs) / 1e6 : Infinity };
  }

  /** The probe frame for (form, sender IP, IP) with the socket's MAC, built once. */
  private probeFrame(ep: Endpoint, source: ProbeSource, senderIp: string, ip: string): Buffer {
    const key = `${ep.socket.mac}/${senderIp}/${ip}`;
    let built = this.frames.get(key);
    if (!built) {
      built = source === 'request' ? buildRequest({ senderMac: ep.socket.macBytes, senderIp, targetIp: ip }) : buildProbe({ senderMac: ep.socket.macBytes, targetIp: ip });
      if (this.frames.size >= 64) this.frames.clear(); // a bound, for a caller probing ever new IPs
      this.frames.set(key, built);
    }
    return built;
  }

  /**
   * Announce `ip` as ours with gratuitous ARP: `count` rounds `intervalMs`
   * apart. Resolves with the frames sent; rejects with a
   * {@link VigilError} when a send fails for good (after retries).
   */
  announce(ip: string, opts: AnnounceOptions = {}): Promise<{ sent: number }> {
    if (!isIPv4(ip)) return Promise.reject(new VigilError('EINVAL', `invalid IPv4 address '${ip}'`));
    const count = opts.count ?? ANNOUNCE_DEFAULTS.count;
    const intervalMs = opts.intervalMs ?? ANNOUNCE_DEFAULTS.intervalMs;
    const retries = opts.sendRetries ?? DEFAULTS.sendRetries;
    if (!Number.isInteger(count) || count < 1) return Promise.reject(new VigilError('EINVAL', `count must be an integer ≥ 1, got ${count}`));
    if (!Number.isFinite(intervalMs) || intervalMs < 0) return Promise.reject(new VigilError('EINVAL', `intervalMs must be a non-negative number, got ${intervalMs}`));
    let frames: Buffer[];
    let socket: ArpSocket;
    try {
      socket = this.endpoint().socket;
      const mac = opts.mac ?? socket.macBytes;
      const form = opts.form ?? 'request';
      frames = [];
      if (form === 'request' || form === 'both') frames.push(buildAnnounceRequest({ mac, ip, ethSrc: socket.macBytes }));
      if (form === 'reply' || form === 'both') frames.push(buildAnnounceReply({ mac, ip, ethSrc: socket.macBytes }));
    } catch (e) {
      return Promise.reject(e instanceof VigilError ? e : new VigilError('EUNKNOWN', String(e)));
    }
    return new Promise((resolve, reject) => {
      const timers = new Set<NodeJS.Timeout>();
      let sent = 0;
      let round = 0;
      let done = false;
      const end = (err?: VigilError): void => {
        if (done) return;
        done = true;
        for (const t of timers) clearTimeout(t);
        this.cancels.delete(cancel);
        if (err) reject(new VigilError(err.code, `announce ${ip} on '${this.iface}': ${err.message}`, { retryable: err.retryable, cause: err, detail: { sent } }));
        else resolve({ sent });
      };
      const cancel = (e: VigilError): void => end(e);
      this.cancels.add(cancel);
      const sendFrame = (i: number): void => {
        if (done) return;
        if (i >= frames.length) {
          round++;
          if (round >= count) return end();
          const t = setTimeout(() => {
            timers.delete(t);
            sendFrame(0);
          }, intervalMs);
          timers.add(t);
          return;
        }
        sendWithRetry(socket, frames[i]!, retries, (err) => {
          if (done) return;
          if (err) return end(err);
          sent++;
          sendFrame(i + 1);
        }, timers);
      };
      sendFrame(0);
    });
  }

  /**
   * Release the shared socket (closed when no other prober uses it). Probes
   * still running end with an `ECANCELED` error result. Idempotent.
   */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const err = new VigilError('ECANCELED', `ARP prober on '${this.iface}' closed`);
    for (const c of [...this.cancels]) c(err);
    // The socket may live on for other probers: take our listeners off it.
    const ep = this.lease?.ep;
    for (const l of this.releaseListeners) {
      const set = ep?.releaseListeners.get(l.ip);
      set?.delete(l.cb);
      if (set && set.size === 0) ep!.releaseListeners.delete(l.ip);
    }
    this.releaseListeners.length = 0;
    if (this.myPin) ep?.pins.delete(this.myPin);
    if (ep && ep.refs > 1 && ep.alive) ep.refilter(); // narrow it back for the probers that stay
    this.lease?.release();
    this.lease = undefined;
  }
}

/**
 * Probe `ip` once on `iface` (see {@link ArpProber.probe}), joining the
 * interface's shared socket for the duration. Rejects only on invalid
 * arguments; a missing interface or privilege is a `status: 'error'` result.
 */
export async function probe(ip: string, iface: string, opts: ProbeOptions & ProberOptions = {}): Promise<ProbeResult> {
  assertProbeOptions(ip, opts);
  let prober: ArpProber;
  try {
    prober = ArpProber.open(iface, opts);
  } catch (e) {
    const error = e instanceof VigilError ? e : new VigilError('EUNKNOWN', String(e));
    return { status: 'error', error, ip, iface, sent: 0, elapsedMs: 0 };
  }
  try {
    return await prober.probe(ip, opts);
  } finally {
    prober.close();
  }
}

/**
 * Announce `ip` on `iface` with gratuitous ARP (see {@link ArpProber.announce}).
 * Rejects with a {@link VigilError} if the socket cannot be opened or a send fails.
 */
export async function announce(ip: string, iface: string, opts: AnnounceOptions & ProberOptions = {}): Promise<{ sent: number }> {
  if (!isIPv4(ip)) throw new VigilError('EINVAL', `invalid IPv4 address '${ip}'`);
  const prober = ArpProber.open(iface, opts);
  try {
    return await prober.announce(ip, opts);
  } finally {
    prober.close();
  }
}
