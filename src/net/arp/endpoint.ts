/**
 * Layer: net/arp, shared sockets. All probers on one interface in one
 * network namespace share ONE socket ({@link Endpoint}), reference-counted
 * and closed when its last user is done: replies are dispatched by IP to the
 * probes waiting for them, and the kernel filter is rebuilt from what is
 * waited for (the waiters, the probers' pins, the release listeners).
 */
import * as fs from 'node:fs';
import type { VigilError } from '../../errors';
import { moduleLog } from '../../log';
import { isProbe, isRelease, OP_REPLY, type ArpPacket } from './codec';
import { ArpSocket, type ArpBinding } from './socket';
import { buildArpFilter } from './filter';
import { native } from '../../native';
import type { ArpReply } from './probe-types';

const log = moduleLog('arp');

/** Standing interests (see {@link ArpProber.pin}). */
export interface Pin { senders?: string[]; replySenders?: string[] }

/** Every ARP frame (the filter of last resort when a built one is refused). */
const OPEN_FILTER = buildArpFilter({ senders: [], openAll: true });

export type Waiter = { onPacket(p: ArpPacket, at: bigint, kind: ArpReply['kind']): void; fail(e: VigilError): void; conflicts: boolean };

/** One open socket and the probes waiting on it. */
export class Endpoint {
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
export function currentNetns(): string {
  // Without /proc every call reads 'net:?': the pool then behaves as if there
  // were one namespace, which is right for the daemon (it never switches).
  try {
    return fs.readlinkSync('/proc/thread-self/ns/net');
  } catch {
    return 'net:?';
  }
}

/** A counted reference to an endpoint; `release()` is idempotent. */
export interface Lease { readonly ep: Endpoint; release(): void }

export function acquire(iface: string, binding: ArpBinding, netns: string): Lease {
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
