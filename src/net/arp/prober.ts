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
 *   reference-counted and closed when its last user is done. Replies are
 *   dispatched by IP to the probes waiting for them.
 * - Round-trip times are the native layer's read time of the answer minus
 *   the send time, both CLOCK_MONOTONIC: no JavaScript or event-loop work is
 *   in them, but a stall of the whole process before the read is.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { VigilError } from '../../errors';
import { isIPv4 } from '../../util/ip';
import { moduleLog } from '../../log';
import {
  buildAnnounceReply, buildAnnounceRequest, buildProbe, buildRelease, buildRequest, isProbe, isRelease, OP_REPLY,
} from './codec';
import type { ArpPacket, MacLike } from './codec';
import { ArpSocket, type ArpSocketStats } from './socket';
import { buildArpFilter } from './filter';
import type { ArpBinding } from './socket';
import { native } from '../../native';
import { startWatch, type ArpWatch, type WatchOptions } from './watch';
import type { NativeWatchState } from '../../native-binding';

const log = moduleLog('arp');

/** How a probe asks: an RFC 5227 probe (sender IP 0.0.0.0) or an ordinary request. */
export type ProbeSource = 'probe' | 'request';

/** Options of one probe. */
export interface ProbeOptions {
  /** How long to wait for an answer after the last send. Default 1000. */
  timeoutMs?: number;
  /** Frames to send. Default 1. */
  count?: number;
  /** Time between sends. Default 200. */
  intervalMs?: number;
  /**
   * `'probe'` (default): RFC 5227 probe, sender IP 0.0.0.0, so no neighbour
   * cache learns anything from it and it works before we hold any address.
   * `'request'`: an ordinary who-has from `senderIp`.
   */
  source?: ProbeSource;
  /** Sender IP for `source: 'request'`; default: the interface's first IPv4 address. */
  senderIp?: string;
  /**
   * Finish at the first answer (default true). With false every send is
   * made and the probe ends when each send has had an answer or at the
   * timeout after the last one, collecting every reply (arping style).
   */
  stopOnReply?: boolean;
  /**
   * Wait the whole timeout after the last send and collect every reply
   * (default false); overrides `stopOnReply`. The way to see *every* holder
   * of an IP: with two of them (a split brain), the first answer alone says
   * nothing about the second, and `stopOnReply: false` ends as soon as each
   * send has had one answer.
   */
  untilTimeout?: boolean;
  /**
   * For `source: 'probe'`: count an RFC 5227 probe for the same IP from
   * another host as an answer of kind `'conflict'` (RFC 5227 §2.1.1: both
   * sides back off). Default true.
   */
  acceptConflict?: boolean;
  /** Called for each answer as it arrives (the CLI prints from it). */
  onReply?: (reply: ArpReply) => void;
  /** Retries of a send that failed with a retryable error (EAGAIN, ENOBUFS). Default 3. */
  sendRetries?: number;
}

/**
 * One piece of evidence that the IP is in use. `kind`:
 * - `'reply'` — an ARP reply whose sender IP is the probed IP;
 * - `'request'` — an ARP request from the probed IP (including gratuitous
 *   ARP): RFC 5227 §2.1.1 counts "any ARP packet (Request or Reply)" whose
 *   sender IP is the probed address;
 * - `'conflict'` — an RFC 5227 probe for the same IP from another MAC:
 *   another host is trying to claim it at the same time.
 */
export interface ArpReply {
  kind: 'reply' | 'request' | 'conflict';
  /** The probed IP. */
  ip: string;
  /** Sender MAC of the answer: who holds (or claims) the IP. */
  mac: string;
  /** Receive time minus the time of the latest send before it, in ms. */
  rttMs: number;
  /** Index (0-based) of the latest send before this answer. */
  seq: number;
  /** CLOCK_MONOTONIC receive time in ns, from the native layer. */
  receivedAtNs: bigint;
  /** The decoded frame. */
  packet: ArpPacket;
}

interface ResultBase {
  /** The probed IP. */
  ip: string;
  /** The interface probed on. */
  iface: string;
  /** Frames actually sent. */
  sent: number;
  /** Wall time from the start of the probe to its result, in ms (monotonic). */
  elapsedMs: number;
  /**
   * The MAC the probe went out with (the interface's at the time), when a
   * socket was open: it changes when the interface is re-created.
   */
  senderMac?: string;
}

/** Someone answered. `mac`/`rttMs` are those of the first answer. */
export interface ProbeAnswered extends ResultBase {
  status: 'answered';
  answered: true;
  mac: string;
  rttMs: number;
  replies: ArpReply[];
}

/** Every send was made and nothing answered within the timeout. */
export interface ProbeSilent extends ResultBase {
  status: 'silent';
  answered: false;
}

/**
 * The probe could not be carried out. Not evidence of absence: callers must
 * treat it as "unknown". (`answered` is absent, so switch on `status`.)
 */
export interface ProbeFailed extends ResultBase {
  status: 'error';
  answered?: undefined;
  error: VigilError;
}

/** Tri-state probe result; switch on `status`. */
export type ProbeResult = ProbeAnswered | ProbeSilent | ProbeFailed;

/** Options of an announcement. */
export interface AnnounceOptions {
  /** Frames to send (per form). Default 2 (RFC 5227 §1.1 ANNOUNCE_NUM). */
  count?: number;
  /** Time between sends. Default 2000 (RFC 5227 ANNOUNCE_INTERVAL). */
  intervalMs?: number;
  /** The MAC to announce; default the interface's own. */
  mac?: MacLike;
  /**
   * `'request'` (default, RFC 5227 §3), `'reply'` (RFC 5944 §4.6) or
   * `'both'` (each round sends a request then a reply: stacks differ in which
   * they honour).
   */
  form?: 'request' | 'reply' | 'both';
  /** Retries of a retryable send failure. Default 3. */
  sendRetries?: number;
}

/** Options of the shared socket (and of the binding it runs on). */
export interface ProberOptions {
  /** The native binding; the compiled addon when omitted. */
  binding?: ArpBinding;
}

const DEFAULTS = { timeoutMs: 1000, count: 1, intervalMs: 200, sendRetries: 3 } as const;
const ANNOUNCE_DEFAULTS = { count: 2, intervalMs: 2000 } as const;
/** How long a looked-up sender address is reused. */
const SENDER_IP_TTL_NS = 1_000_000_000n;
/** Backoff before send retry n (1-based): 1, 2, 4 … ms, capped. */
const retryDelayMs = (n: number): number => Math.min(2 ** (n - 1), 50);

// ---------------------------------------------------------------------------
// Shared sockets: one per (binding, network namespace, interface).

/** Standing interests (see {@link ArpProber.pin}). */
export interface Pin { senders?: string[]; replySenders?: string[] }

/** Every ARP frame (the filter of last resort when a built one is refused). */
const OPEN_FILTER = buildArpFilter({ senders: [], openAll: true });

type Waiter = { onPacket(p: ArpPacket, at: bigint, kind: ArpReply['kind']): void; fail(e: VigilError): void; conflicts: boolean };

/** One open socket and the probes waiting on it. */
class Endpoint {
  readonly socket: ArpSocket;
  refs = 0;
  /** Probed IP → probes waiting for evidence about it. */
  private readonly waiters = new Map<string, Set<Waiter>>();
  /** Released IP → who listens for release notices about it ({@link ArpProber.onRelease}). */
  readonly releaseListeners = new Map<string, Set<(mac: string) => void>>();

  /** Standing interests of the probers on this socket ({@link ArpProber.pin}). */
  readonly pins = new Set<Pin>();
  /** The interests the kernel filter was last built from. */
  private filterKey: string | undefined;

  constructor(socket: ArpSocket, private readonly forget: () => void) {
    this.socket = socket;
    socket.on('frame', (p, at) => this.dispatch(p, at));
    socket.on('error', (e) => {
      log.warn({ iface: socket.ifname, code: e.code, err: e.message }, 'ARP socket failed');
      this.forget();
      for (const set of [...this.waiters.values()]) for (const w of [...set]) w.fail(e);
      this.waiters.clear();
    });
  }

  get alive(): boolean {
    return !this.socket.closed;
  }

  /**
   * Rebuild the kernel filter from what is waited for now: the waiters' IPs,
   * the pins, the release listeners; swapped only when that set changed (a
   * pinned IP probed at every check never swaps it). If the kernel refuses
   * a program, fall back to passing every ARP frame: slower, never blind.
   */
  refilter(): void {
    const pinSenders = new Set<string>();
    const pinReplies = new Set<string>();
    for (const p of this.pins) { p.senders?.forEach((x) => pinSenders.add(x)); p.replySenders?.forEach((x) => pinReplies.add(x)); }
    const senders = new Set(pinSenders);
    const probeTargets = new Set<string>();
    for (const [ip, set] of this.waiters) {
      // A pinned neighbour is answered by a reply: keep it reply-only while probed, so the filter stays put.
      if (!pinReplies.has(ip)) senders.add(ip);
      for (const w of set) if (w.conflicts) { probeTargets.add(ip); break; }
    }
    const releaseTargets = new Set(this.releaseListeners.keys());
    const sort = (x: Set<string>) => [...x].sort();
    const interests = { senders: sort(senders), replySenders: sort(pinReplies), probeTargets: sort(probeTargets), releaseTargets: sort(releaseTargets) };
    const key = JSON.stringify(interests);
    if (key === this.filterKey) return;
    try {
      this.socket.setFilter(buildArpFilter(interests));
      this.filterKey = key;
    } catch (e) {
      log.warn({ iface: this.socket.ifname, err: String(e) }, 'ARP kernel filter not updated; passing every ARP frame instead');
      try { this.socket.setFilter(OPEN_FILTER); } catch { /* the old filter stays */ }
      this.filterKey = undefined;
    }
  }

  /**
   * Whether a plain waiter (no conflicts) on `ip` leaves the filter as it is:
   * a pinned IP passes already (its every frame, or its replies), so the
   * probe that runs at every check costs no rebuild of the filter's key.
   */
  private pinned(ip: string): boolean {
    for (const p of this.pins) if (p.senders?.includes(ip) || p.replySenders?.includes(ip)) return true;
    return false;
  }

  watch(ip: string, w: Waiter): void {
    let set = this.waiters.get(ip);
    const fresh = !set || (w.conflicts && ![...set].some((x) => x.conflicts));
    if (!set) this.waiters.set(ip, (set = new Set()));
    set.add(w);
    // The filter must pass the answer before the probe goes out.
    if (fresh && (w.conflicts || !this.pinned(ip))) this.refilter();
  }

  unwatch(ip: string, w: Waiter): void {
    const set = this.waiters.get(ip);
    if (!set) return;
    set.delete(w);
    if (set.size === 0) this.waiters.delete(ip);
    if (w.conflicts || (set.size === 0 && !this.pinned(ip))) this.refilter();
  }

  private dispatch(p: ArpPacket, at: bigint): void {
    // Our own frames are filtered natively; one with our MAC arriving from
    // the wire is a loop (RFC 5227 §2.1.1 excludes "any of the host's
    // interfaces"), never evidence of another holder.
    if (p.senderMac === this.socket.mac) return;
    const holders = this.waiters.get(p.senderIp);
    if (holders) {
      const kind = p.op === OP_REPLY ? 'reply' : 'request';
      for (const w of [...holders]) w.onPacket(p, at, kind);
    }
    if (isProbe(p)) {
      const claimants = this.waiters.get(p.targetIp);
      if (claimants) for (const w of [...claimants]) if (w.conflicts) w.onPacket(p, at, 'conflict');
      if (isRelease(p)) for (const l of [...(this.releaseListeners.get(p.targetIp) ?? [])]) l(p.senderMac);
    }
  }
}

const pools = new WeakMap<ArpBinding, Map<string, Endpoint>>();

/** The calling thread's network namespace (`net:[inode]`), part of the pool key. */
function currentNetns(): string {
  // Without /proc every call reads 'net:?': the pool then behaves as if there
  // were one namespace, which is right for the daemon (it never switches).
  try {
    return fs.readlinkSync('/proc/thread-self/ns/net');
  } catch {
    return 'net:?';
  }
}

/** A counted reference to an endpoint; `release()` is idempotent. */
interface Lease { readonly ep: Endpoint; release(): void }

function acquire(iface: string, binding: ArpBinding, netns: string): Lease {
  let pool = pools.get(binding);
  if (!pool) pools.set(binding, (pool = new Map()));
  const key = `${netns}/${iface}`;
  let ep = pool.get(key);
  if (!ep || !ep.alive) {
    const p = pool;
    const created: Endpoint = new Endpoint(ArpSocket.open(iface, { binding }), () => {
      if (p.get(key) === created) p.delete(key);
    });
    pool.set(key, (ep = created));
  }
  ep.refs++;
  const held = ep;
  const owner = pool;
  let released = false;
  return {
    ep: held,
    release(): void {
      if (released) return;
      released = true;
      if (--held.refs === 0) {
        if (owner.get(key) === held) owner.delete(key);
        held.socket.close();
      }
    },
  };
}

/** Sockets currently open in the shared pool of `binding` (for tests and status). */
export function sharedSocketCount(binding: ArpBinding = native()): number {
  return pools.get(binding)?.size ?? 0;
}

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
