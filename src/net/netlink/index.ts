/**
 * Layer: netlink layer, the API the rest of vigil uses. Links (carrier,
 * operstate, MAC, ifindex), IPv4 addresses (list, idempotent add/remove, and
 * batches of them), IPv4 neighbours, and a subscription to link and address
 * changes — all over rtnetlink, with no process spawned.
 *
 * A {@link Netlink} lives in the network namespace its sockets were created
 * in: {@link Netlink.open} creates both sockets synchronously before its first
 * await, so `host.inNetns(() => Netlink.open())` opens it inside `host`.
 */
import { VigilError } from '../../errors';
import { moduleLog } from '../../log';
import { isIPv4, formatCidr, type Cidr } from '../../util/ip';
import { isIPv6 } from '../../util/ip6';
import {
  AF_INET, AF_INET6, AF_UNSPEC, NLM_F, RTM, RTNLGRP,
  addrPayload, getAddrPayload, getLinkPayload, getNeighPayload,
  parseAddress, parseLink, parseMessages, parseNeighbour,
  type AddressInfo, type LinkInfo, type NeighbourInfo, type NlMessage,
} from './codec';
import { NetlinkRequester, errnoError, netlinkSystemError, openNativeEventTransport, openPackageTransport, type NetlinkTransport } from './transport';

export type { AddressInfo, LinkInfo, NeighbourInfo } from './codec';

const log = moduleLog('netlink');

/** A change seen on the link or IPv4 address multicast groups. */
export type NetlinkEvent =
  | { kind: 'link'; link: LinkInfo; removed: boolean }
  | { kind: 'address'; address: AddressInfo; removed: boolean };

/** Outcome of a batch of address changes. */
export interface BatchResult {
  /** Every CIDR now in the wanted state (including those that already were). */
  done: Cidr[];
  /** Of `done`, those that already were in the wanted state (EEXIST / EADDRNOTAVAIL). */
  unchanged: Cidr[];
  /** CIDRs the kernel refused, with the reason. */
  failed: Array<{ cidr: Cidr; error: VigilError }>;
}

/** Options for {@link Netlink.open}. */
export interface NetlinkOptions {
  /** Deadline for each kernel reply (default 5000 ms). */
  timeoutMs?: number;
}

/** Options for address additions. */
export interface AddAddressOptions {
  /** IFA_LABEL, at most 15 bytes (IFNAMSIZ - 1), e.g. `eth0:vip`. */
  label?: string;
}

/** Receive buffer asked for on the request socket; the kernel caps it at net.core.rmem_max. */
const RECV_BUFFER_BYTES = 4 * 1024 * 1024;
/**
 * Receive buffer of the event socket (SO_RCVBUFFORCE passes rmem_max as
 * root). An overrun is survivable (EOVERFLOW → re-read), so this only needs
 * to make it rare: ~20,000 address events of ~200 bytes of skb truesize.
 */
const EVENT_BUFFER_BYTES = 8 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 5000;

const EEXIST = 17;
const EADDRNOTAVAIL = 99;
const ENOENT = 2;
const ENODEV = 19;

/** Interface names the kernel can accept (dev_valid_name in net/core/dev.c). */
function assertIfname(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > 15 || name === '.' || name === '..'
    || /[/:\s]/.test(name)) {
    throw new VigilError('EINVAL', `invalid interface name ${JSON.stringify(name)}`);
  }
}

function assertCidr(c: Cidr): void {
  // IPv6 (the HA role's): added with IFA_F_NODAD, see addr6Payload.
  const v6 = typeof c?.address === 'string' && isIPv6(c.address);
  if (!c || typeof c.address !== 'string' || !(v6 || isIPv4(c.address)) || !Number.isInteger(c.prefix) || c.prefix < 0 || c.prefix > (v6 ? 128 : 32)) {
    throw new VigilError('EINVAL', `invalid IP address/prefix ${JSON.stringify(c)}`);
  }
}

function assertLabel(label: string | undefined): void {
  if (label !== undefined && (label.length === 0 || Buffer.byteLength(label) > 15)) {
    throw new VigilError('EINVAL', `invalid address label ${JSON.stringify(label)} (1 to 15 bytes)`);
  }
}

/** A NETLINK_ROUTE client bound to one network namespace. */
export class Netlink {
  private readonly req: NetlinkRequester;
  private readonly subscribers = new Set<{ cb: (ev: NetlinkEvent) => void; onError?: (err: VigilError) => void }>();
  /** ifindex → name for address events (they carry the index only); fed by link events. */
  private readonly names = new Map<number, string>();
  private closed = false;

  private constructor(private readonly reqSocket: NetlinkTransport, private readonly eventSocket: NetlinkTransport, timeoutMs: number) {
    this.req = new NetlinkRequester(reqSocket, timeoutMs);
    eventSocket.listen((buf) => this.onEventDatagram(buf), (err) => this.onEventError(err));
  }

  /**
   * Open a client in the calling thread's current network namespace. Both
   * sockets (requests, and events for {@link subscribe}) are created
   * synchronously, before this returns its promise.
   */
  static open(opts: NetlinkOptions = {}): Promise<Netlink> {
    try {
      return Promise.resolve(Netlink.openSync(opts));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** {@link open} without the promise, for callers inside a synchronous namespace switch. */
  static openSync(opts: NetlinkOptions = {}): Netlink {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new VigilError('EINVAL', `invalid netlink timeout ${timeoutMs}`);
    const reqSocket = openPackageTransport({ recvBufferBytes: RECV_BUFFER_BYTES });
    let eventSocket: NetlinkTransport;
    try {
      // Native: the package's socket aborts the process when its queue overruns.
      eventSocket = openNativeEventTransport({ recvBufferBytes: EVENT_BUFFER_BYTES });
    } catch (e) {
      reqSocket.close();
      throw e;
    }
    return new Netlink(reqSocket, eventSocket, timeoutMs);
  }

  /** Every link in the namespace. */
  async links(): Promise<LinkInfo[]> {
    const msgs = await this.req.dump(RTM.GETLINK, getLinkPayload(), 'list links');
    return msgs.filter((m) => m.type === RTM.NEWLINK).map((m) => parseLink(m.payload))
      .filter((l) => l.family === AF_UNSPEC).map((l) => l.info);
  }

  /** One link by name, or undefined when there is none. */
  async link(name: string): Promise<LinkInfo | undefined> {
    assertIfname(name);
    try {
      const msgs = await this.req.request(RTM.GETLINK, 0, getLinkPayload(name), `read link ${name}`);
      const m = msgs.find((x) => x.type === RTM.NEWLINK);
      return m ? parseLink(m.payload).info : undefined;
    } catch (e) {
      if (e instanceof VigilError && e.code === 'ENODEV') return undefined;
      throw e;
    }
  }

  /**
   * IPv4 addresses, of one interface or of all; with `ipv6` IPv6 ones too
   * (with their flags). Unknown interface: ENODEV.
   */
  async addresses(ifname?: string, opts: { ipv6?: boolean } = {}): Promise<AddressInfo[]> {
    let only: LinkInfo | undefined;
    let names: Map<number, string>;
    if (ifname !== undefined) {
      only = await this.requireLink(ifname);
      names = new Map([[only.ifindex, only.name]]);
    } else {
      names = new Map((await this.links()).map((l) => [l.ifindex, l.name]));
    }
    const msgs = await this.req.dump(RTM.GETADDR, getAddrPayload(opts.ipv6 === true), 'list addresses');
    const out: AddressInfo[] = [];
    for (const m of msgs) {
      if (m.type !== RTM.NEWADDR) continue;
      const a = parseAddress(m.payload);
      // Without NETLINK_GET_STRICT_CHK the kernel ignores dump filters, so filter here.
      if (!(a.family === AF_INET || (opts.ipv6 && a.family === AF_INET6)) || (only && a.ifindex !== only.ifindex)) continue;
      out.push(toAddressInfo(a, names.get(a.ifindex)));
    }
    return out;
  }

  /** Add one IPv4 address; adding one already present is success. */
  async addAddress(ifname: string, cidr: Cidr, opts: AddAddressOptions = {}): Promise<void> {
    const r = await this.addAddresses(ifname, [cidr], opts);
    if (r.failed[0]) throw r.failed[0].error;
  }

  /** Remove one IPv4 address; removing one that is absent is success. */
  async removeAddress(ifname: string, cidr: Cidr): Promise<void> {
    const r = await this.removeAddresses(ifname, [cidr]);
    if (r.failed[0]) throw r.failed[0].error;
  }

  /**
   * Add many IPv4 addresses as one batch: the requests go to the kernel
   * packed in as few datagrams as the reply budget allows, then every ack is
   * awaited. Per-address failures are reported in the result, not thrown;
   * an unknown interface or a dead socket throws.
   */
  async addAddresses(ifname: string, cidrs: Cidr[], opts: AddAddressOptions = {}): Promise<BatchResult> {
    assertLabel(opts.label);
    cidrs.forEach(assertCidr);
    const link = await this.requireLink(ifname);
    // CREATE|EXCL: an existing address answers EEXIST and is left exactly as it was.
    return this.runBatch('add', link, cidrs, RTM.NEWADDR, NLM_F.CREATE | NLM_F.EXCL, [EEXIST], opts.label);
  }

  /**
   * Remove many IPv4 addresses as one batch (see {@link addAddresses}).
   * Beware the kernel's primary/secondary rule: removing the first address of
   * a subnet also removes the other addresses of that subnet on the interface
   * unless `net.ipv4.conf.<if>.promote_secondaries=1`; those then report as
   * `unchanged`. HA addresses added as /32 are each their own primary.
   */
  async removeAddresses(ifname: string, cidrs: Cidr[]): Promise<BatchResult> {
    cidrs.forEach(assertCidr);
    const link = await this.requireLink(ifname);
    return this.runBatch('remove', link, cidrs, RTM.DELADDR, 0, [EADDRNOTAVAIL, ENOENT]);
  }

  /** IPv4 neighbour (ARP) entries, of one interface or of all. Unknown interface: ENODEV. */
  async neighbours(ifname?: string): Promise<NeighbourInfo[]> {
    const only = ifname !== undefined ? await this.requireLink(ifname) : undefined;
    const msgs = await this.req.dump(RTM.GETNEIGH, getNeighPayload(), 'list neighbours');
    const out: NeighbourInfo[] = [];
    for (const m of msgs) {
      if (m.type !== RTM.NEWNEIGH) continue;
      const { family, ...n } = parseNeighbour(m.payload);
      if (family !== AF_INET || (only && n.ifindex !== only.ifindex)) continue;
      out.push(n);
    }
    return out;
  }

  /**
   * Receive link and address changes (RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR,
   * RTNLGRP_IPV6_IFADDR: the HA role holds IPv6 addresses too)
   * on the event socket. Returns the unsubscribe function. `onError` hears
   * about socket trouble: code `EOVERFLOW` when the receive queue overran
   * (events were lost, the socket goes on: re-read the state with a dump),
   * anything else when the socket failed and delivers no more events.
   * While anyone is subscribed, the event socket keeps the process alive.
   */
  subscribe(cb: (ev: NetlinkEvent) => void, onError?: (err: VigilError) => void): () => void {
    if (this.closed) throw new VigilError('ECLOSED', 'netlink client is closed');
    const sub = onError ? { cb, onError } : { cb };
    if (this.subscribers.size === 0) {
      this.eventSocket.addMembership(RTNLGRP.LINK);
      this.eventSocket.addMembership(RTNLGRP.IPV4_IFADDR);
      this.eventSocket.addMembership(RTNLGRP.IPV6_IFADDR);
      this.eventSocket.ref();
      // Seed the ifindex → name map for address events; link events keep it current.
      this.links().then((ls) => { for (const l of ls) if (!this.names.has(l.ifindex)) this.names.set(l.ifindex, l.name); },
        (e) => log.debug({ code: (e as VigilError).code }, 'could not seed interface names'));
    }
    this.subscribers.add(sub);
    return () => {
      if (!this.subscribers.delete(sub) || this.subscribers.size > 0 || this.closed) return;
      try {
        this.eventSocket.dropMembership(RTNLGRP.LINK);
        this.eventSocket.dropMembership(RTNLGRP.IPV4_IFADDR);
        this.eventSocket.dropMembership(RTNLGRP.IPV6_IFADDR);
      } catch { /* socket already gone */ }
      this.eventSocket.unref();
    };
  }

  /** Close both sockets; pending requests reject with ECLOSED. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.subscribers.clear();
    this.req.close();
    this.reqSocket.close();
    this.eventSocket.close();
  }

  private async requireLink(ifname: string): Promise<LinkInfo> {
    const l = await this.link(ifname);
    if (!l) throw new VigilError('ENODEV', `no such interface: ${ifname}`, { detail: { ifname } });
    return l;
  }

  private async runBatch(op: 'add' | 'remove', link: LinkInfo, cidrs: Cidr[], type: number, flags: number,
    benign: number[], label?: string): Promise<BatchResult> {
    const reqs = cidrs.map((c) => ({
      type, flags, payload: addrPayload(op === 'add' ? 'add' : 'del', link.ifindex, c.address, c.prefix, label),
    }));
    const errnos = await this.req.batch(reqs, `${op} addresses on ${link.name}`);
    const result: BatchResult = { done: [], unchanged: [], failed: [] };
    errnos.forEach((errno, i) => {
      const cidr = cidrs[i]!;
      if (errno === 0) {
        result.done.push(cidr);
      } else if (benign.includes(errno)) {
        result.done.push(cidr);
        result.unchanged.push(cidr);
      } else {
        const error = errno === ENODEV
          ? new VigilError('ENODEV', `${op} ${formatCidr(cidr)}: interface ${link.name} is gone`)
          : errnoError(errno, `${op} ${formatCidr(cidr)} on ${link.name}`);
        result.failed.push({ cidr, error });
      }
    });
    log.debug({ iface: link.name, op, done: result.done.length, unchanged: result.unchanged.length, failed: result.failed.length },
      'address batch');
    return result;
  }

  private onEventDatagram(buf: Buffer): void {
    let msgs: NlMessage[];
    try {
      msgs = parseMessages(buf);
    } catch (e) {
      this.onEventError(e);
      return;
    }
    for (const m of msgs) {
      const ev = this.toEvent(m);
      if (!ev) continue;
      for (const s of [...this.subscribers]) {
        try {
          s.cb(ev);
        } catch (e) {
          log.error({ err: e }, 'netlink subscriber threw');
        }
      }
    }
  }

  private toEvent(m: NlMessage): NetlinkEvent | undefined {
    try {
      if (m.type === RTM.NEWLINK || m.type === RTM.DELLINK) {
        const l = parseLink(m.payload);
        // The bridge module repeats port changes with family AF_BRIDGE; the AF_UNSPEC one is the link itself.
        if (l.family !== AF_UNSPEC) return undefined;
        const removed = m.type === RTM.DELLINK;
        if (removed) this.names.delete(l.info.ifindex); else this.names.set(l.info.ifindex, l.info.name);
        return { kind: 'link', link: l.info, removed };
      }
      if (m.type === RTM.NEWADDR || m.type === RTM.DELADDR) {
        const a = parseAddress(m.payload);
        if (a.family !== AF_INET && a.family !== AF_INET6) return undefined;
        return { kind: 'address', address: toAddressInfo(a, this.names.get(a.ifindex)), removed: m.type === RTM.DELADDR };
      }
    } catch (e) {
      log.warn({ err: e, type: m.type }, 'unparsable netlink event');
    }
    return undefined;
  }

  private onEventError(err: unknown): void {
    const e = netlinkSystemError(err, 'netlink event socket');
    // An overrun is routine under an address storm and is handled by the subscribers' re-read.
    if (e.code === 'EOVERFLOW') log.debug('netlink event socket overran; subscribers re-read the state');
    else log.warn({ code: e.code }, 'netlink event socket error; no more events from it');
    for (const s of [...this.subscribers]) {
      try { s.onError?.(e); } catch (x) { log.error({ err: x }, 'netlink onError handler threw'); }
    }
  }
}

function toAddressInfo(a: { ifindex: number; address: string; prefix: number; label?: string; flags?: number }, name: string | undefined): AddressInfo {
  // IPv4 labels start with the interface name unless set otherwise ("eth0:vip"), the best guess when the index is unknown.
  const ifname = name ?? (a.label ? a.label.split(':')[0]! : '');
  const out: AddressInfo = { ifindex: a.ifindex, ifname, address: a.address, prefix: a.prefix };
  if (a.label !== undefined) out.label = a.label;
  if (a.flags !== undefined) out.flags = a.flags;
  return out;
}
