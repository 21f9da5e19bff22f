/**
 * Layer: net/ndp, prober. IPv6 presence probes, announcements and release
 * notices over vigil's own packet socket (native/vigil.c opened for
 * EtherType 0x86DD), for the `vip` role: what net/arp/prober.ts is to IPv4.
 *
 * - A probe is a Neighbor Solicitation in DAD form (codec.ts): no
 *   neighbour cache learns anything from it, and it works before this host
 *   holds any address. The answer is an NA for the target from another MAC
 *   (a holder's kernel answers a DAD probe to all-nodes, RFC 4861 §7.2.4).
 *   Tri-state like the ARP probe: an error is never "silent".
 * - The socket joins, at the link layer, the multicast groups ND uses for
 *   the addresses it watches (the solicited-node group, for release notices
 *   sent to it, and all-nodes, where answers go): a host that does not hold
 *   an address has not joined its group, and a NIC filters what nobody
 *   joined. PACKET_ADD_MEMBERSHIP holds the groups for the socket's life.
 * - For release notices the solicited-node group of the HA address is also
 *   joined at the IP layer (a UDP socket's IPV6_JOIN_GROUP, which the kernel
 *   reports by MLD), so a switch doing MLD snooping forwards the notice to
 *   this host too; best effort (no IPv6 on the interface: the link-layer
 *   membership alone).
 * - The kernel filter (filter.ts) passes only NAs for the watched targets
 *   and release notices; the rest of the link's IPv6 stays in the kernel.
 * - Round-trip times: native receive timestamp minus send time, both
 *   CLOCK_MONOTONIC.
 */
import * as dgram from 'node:dgram';
import { VigilError, fromNative } from '../../errors';
import { formatMac } from '../../util/ip';
import { isIPv6 } from '../../util/ip6';
import { moduleLog } from '../../log';
import { native } from '../../native';
import type { NativeArpSocket, NativeBinding } from '../../native-binding';
import {
  ALL_NODES_MAC, buildDadProbe, buildReleaseNotice, buildUnsolicitedNa, ETHERTYPE_IPV6, isReleaseNotice,
  multicastMac, solicitedNode, tryDecodeNdp, type NdpPacket,
} from './codec';
import { buildNdpFilter } from './filter';

const log = moduleLog('ndp');

/** The part of the native binding the NDP layer uses. */
export type NdpBinding = Pick<NativeBinding, 'openArpSocket' | 'monotonicNs'>;

/** Tri-state probe result, shaped as the ARP prober's for the vip role. */
export type NdpProbeResult =
  | { status: 'answered'; mac: string; rttMs: number; senderMac: string; receivedAtNs: bigint }
  | { status: 'silent'; senderMac: string }
  | { status: 'error'; error: VigilError; senderMac?: string };

/** Counters an operator or a bench can read. */
export interface NdpStats { received: number; invalid: number; sent: number }

const nsToMs = (ns: bigint): number => Number(ns) / 1e6;

interface Waiter { ip: string; onAnswer(mac: string, atNs: bigint): void }

/** An NDP prober on one interface: one socket, reopened after a fatal error. */
export class NdpProber {
  readonly iface: string;
  private readonly binding: NdpBinding;
  private sock: NativeArpSocket | undefined;
  private ownMac = '';
  private readonly waiters = new Set<Waiter>();
  private readonly releaseListeners = new Map<string, Set<(mac: string) => void>>();
  /** Standing targets (the HA address): kept in the filter across probes. */
  private pinned: string[] = [];
  private filterKey: string | undefined;
  private joined = new Set<string>();
  private closedFlag = false;
  /** The UDP socket holding IP-layer memberships (MLD) of the release groups, once one is wanted. */
  private mld: { sock: dgram.Socket; ready: Promise<boolean>; joined: Set<string> } | undefined;
  readonly counters: NdpStats = { received: 0, invalid: 0, sent: 0 };

  /** Open the socket on `iface`. Throws a VigilError (ENODEV, EPERM "needs CAP_NET_RAW", …). */
  static open(iface: string, binding: NdpBinding = native()): NdpProber {
    return new NdpProber(iface, binding);
  }

  private constructor(iface: string, binding: NdpBinding) {
    this.iface = iface;
    this.binding = binding;
    this.socket();
  }

  /** The interface's MAC as of the open socket. */
  get mac(): string {
    this.socket();
    return this.ownMac;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  stats(): NdpStats { return this.counters; }

  private socket(): NativeArpSocket {
    if (this.closedFlag) throw new VigilError('ECANCELED', `NDP prober on '${this.iface}' is closed`);
    if (this.sock && !this.sock.closed) return this.sock;
    let s: NativeArpSocket;
    try {
      s = this.binding.openArpSocket(this.iface, undefined, ETHERTYPE_IPV6);
    } catch (e) {
      throw fromNative(e, `NDP socket on '${this.iface}'`);
    }
    this.sock = s;
    this.ownMac = formatMac(s.mac);
    this.filterKey = undefined;
    this.joined = new Set();
    try {
      s.start((frame, at) => this.onFrame(frame, at), (err) => {
        log.warn({ iface: this.iface, err: String(err) }, 'NDP socket failed; reopening at the next use');
        const e = fromNative(err, `NDP receive on '${this.iface}'`);
        for (const w of [...this.waiters]) this.failWaiter(w, e);
      });
      this.refilter();
    } catch (e) {
      s.close();
      throw fromNative(e, `NDP socket on '${this.iface}'`);
    }
    return s;
  }

  private failures = new Map<Waiter, (e: VigilError) => void>();
  private failWaiter(w: Waiter, e: VigilError): void { this.failures.get(w)?.(e); }

  /** Rebuild the filter and the memberships from what is waited for now. */
  private refilter(): void {
    const s = this.sock;
    if (!s || s.closed) return;
    const targets = [...new Set([...this.pinned, ...[...this.waiters].map((w) => w.ip)])].sort();
    const releases = [...this.releaseListeners.keys()].sort();
    const groups = new Set<string>([ALL_NODES_MAC, ...releases.map((ip) => multicastMac(solicitedNode(ip)))]);
    for (const g of groups) {
      if (this.joined.has(g)) continue;
      s.membership(Buffer.from(g.replace(/:/g, ''), 'hex'), true);
      this.joined.add(g);
    }
    const key = JSON.stringify([targets, releases]);
    if (key === this.filterKey) return;
    s.setFilter(buildNdpFilter({ targets, releaseTargets: releases }));
    this.filterKey = key;
  }

  private onFrame(frame: Buffer, atNs: bigint): void {
    this.counters.received++;
    const p = tryDecodeNdp(frame);
    if (typeof p === 'string') { this.counters.invalid++; return; }
    // A frame with our own MAC arriving from the wire is a loop, never another holder.
    if (p.ethSrc === this.ownMac) return;
    if (p.type === 'na') {
      const mac = p.targetLinkAddr ?? p.ethSrc;
      if (mac === this.ownMac) return;
      for (const w of [...this.waiters]) if (w.ip === p.target) w.onAnswer(mac, atNs);
    } else if (isReleaseNotice(p)) {
      for (const cb of [...(this.releaseListeners.get(p.target) ?? [])]) cb(p.ethSrc);
    }
  }

  /** Keep `targets` (the HA address) in the kernel filter across probes. */
  pin(targets: string[]): void {
    this.pinned = [...targets];
    this.refilter();
  }

  /**
   * One DAD-form probe for `ip`: answered at the first NA for it from
   * another MAC, silent after `timeoutMs`. Never rejects.
   */
  probe(ip: string, timeoutMs: number): Promise<NdpProbeResult> {
    let s: NativeArpSocket;
    try {
      if (!isIPv6(ip)) throw new VigilError('EINVAL', `invalid IPv6 address '${ip}'`);
      s = this.socket();
    } catch (e) {
      return Promise.resolve({ status: 'error', error: e instanceof VigilError ? e : new VigilError('EUNKNOWN', String(e)) });
    }
    const senderMac = this.ownMac;
    return new Promise((resolve) => {
      let sentAt = 0n;
      let timer: NodeJS.Timeout | undefined;
      const w: Waiter = {
        ip,
        onAnswer: (mac, atNs) => finish({ status: 'answered', mac, rttMs: Math.max(0, nsToMs(atNs - sentAt)), senderMac, receivedAtNs: atNs }),
      };
      const finish = (r: NdpProbeResult) => {
        if (!this.waiters.delete(w)) return;
        this.failures.delete(w);
        if (timer) clearTimeout(timer);
        this.refilter();
        resolve(r);
      };
      this.waiters.add(w);
      this.failures.set(w, (error) => finish({ status: 'error', error, senderMac }));
      try {
        this.refilter();
        sentAt = this.binding.monotonicNs();
        s.send(buildDadProbe(senderMac, ip));
        this.counters.sent++;
      } catch (e) {
        finish({ status: 'error', error: fromNative(e, `NDP probe on '${this.iface}'`), senderMac });
        return;
      }
      // As the ARP prober: silence only after one more poll phase has drained the socket.
      timer = setTimeout(() => setImmediate(() => finish({ status: 'silent', senderMac })), timeoutMs);
    });
  }

  /**
   * Announce `ip` with unsolicited NAs (override set) to all-nodes, `count`
   * times `intervalMs` apart, plus one to each of `unicast` (a router) per
   * round. Rejects when a send fails.
   */
  async announce(ip: string, count: number, intervalMs: number, unicast: { ip: string; mac: string }[] = []): Promise<{ sent: number }> {
    if (!isIPv6(ip)) throw new VigilError('EINVAL', `invalid IPv6 address '${ip}'`);
    let sent = 0;
    for (let round = 0; round < count; round++) {
      if (round > 0) await new Promise((r) => setTimeout(r, intervalMs));
      if (this.closedFlag) break;
      const s = this.socket();
      try {
        s.send(buildUnsolicitedNa(this.ownMac, ip));
        for (const u of unicast) s.send(buildUnsolicitedNa(this.ownMac, ip, u));
      } catch (e) {
        throw fromNative(e, `NDP announce ${ip} on '${this.iface}'`);
      }
      sent += 1 + unicast.length;
      this.counters.sent += 1 + unicast.length;
    }
    return { sent };
  }

  /** Send `count` release notices for `ip` at once (synchronous: it may precede an exit). */
  sendRelease(ip: string, count = 2): number {
    if (!isIPv6(ip)) throw new VigilError('EINVAL', `invalid IPv6 address '${ip}'`);
    const s = this.socket();
    const frame = buildReleaseNotice(this.ownMac, ip);
    for (let i = 0; i < count; i++) s.send(frame);
    this.counters.sent += count;
    return count;
  }

  /** Call `cb(mac)` for each release notice about `ip` from another host. Returns the stop function. */
  onRelease(ip: string, cb: (mac: string) => void): () => void {
    if (!isIPv6(ip)) throw new VigilError('EINVAL', `invalid IPv6 address '${ip}'`);
    let set = this.releaseListeners.get(ip);
    if (!set) this.releaseListeners.set(ip, (set = new Set()));
    set.add(cb);
    this.refilter();
    this.joinMld(solicitedNode(ip));
    return () => {
      const cur = this.releaseListeners.get(ip);
      cur?.delete(cb);
      if (cur && cur.size === 0) this.releaseListeners.delete(ip);
      if (!this.closedFlag) this.refilter();
    };
  }

  /** Join `group` at the IP layer on this interface (MLD report), best effort. */
  private joinMld(group: string): void {
    if (!this.mld) {
      const sock = dgram.createSocket({ type: 'udp6' });
      sock.unref();
      const ready = new Promise<boolean>((resolve) => {
        sock.once('error', (e) => { log.info({ iface: this.iface, err: e.message }, 'no IP-layer multicast membership (IPv6 off on the interface?): link-layer only'); resolve(false); });
        sock.bind({ port: 0, address: '::', exclusive: true }, () => resolve(true));
      });
      this.mld = { sock, ready, joined: new Set() };
    }
    const m = this.mld;
    if (m.joined.has(group)) return;
    m.joined.add(group);
    void m.ready.then((ok) => {
      if (!ok || this.closedFlag) return;
      try {
        m.sock.addMembership(group, `::%${this.iface}`);
      } catch (e) {
        log.info({ iface: this.iface, group, err: String(e) }, 'IP-layer multicast membership refused: link-layer only');
      }
    });
  }

  /** Close the socket (memberships go with it); probes under way end as errors. Idempotent. */
  close(): void {
    if (this.closedFlag) return;
    const e = new VigilError('ECANCELED', `NDP prober on '${this.iface}' closed`);
    for (const w of [...this.waiters]) this.failWaiter(w, e);
    this.closedFlag = true;
    this.sock?.close();
    this.sock = undefined;
    try { this.mld?.sock.close(); } catch { /* already closed */ }
    this.mld = undefined;
  }
}

/** For tests: decode helper re-exported so a lab client can read what the prober sent. */
export type { NdpPacket };
