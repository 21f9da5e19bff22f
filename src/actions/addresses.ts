/**
 * Layer: executor. Putting addresses on and off: netlink on the host's
 * interface (one pipelined batch per change), or vzctl into an OpenVZ /
 * Virtuozzo container (issue 6). Both report per-address outcomes so the
 * role can roll back exactly what it added.
 */
import { Netlink } from '../net/netlink';
import type { Cidr } from '../util/ip';
import { errorMessage } from '../errors';

/** Per-address outcome of a batch. */
export interface AddressBatch { done: Cidr[]; failed: { cidr: Cidr; error: string }[] }

/**
 * An address as a backend lists it. `ours` is set when the address carries
 * vigil's label ({@link addressLabel}): vigil put it there, maybe in an earlier
 * run, so it is vigil's to remove even when no config names it any more (an
 * address dropped from the IP file while the daemon was down). Backends that
 * cannot label (vzctl) never set it.
 */
export interface ListedCidr extends Cidr { ours?: boolean }

/** Where the HA addresses live. */
export interface AddressBackend {
  list(): Promise<ListedCidr[]>;
  add(addresses: Cidr[]): Promise<AddressBatch>;
  remove(addresses: Cidr[]): Promise<AddressBatch>;
  close(): void;
}

/** The label vigil puts on its addresses (`ip addr` shows it), within IFNAMSIZ. */
export function addressLabel(ifname: string): string | undefined {
  const label = `${ifname}:vg`;
  return label.length <= 15 ? label : undefined;
}

/** Addresses on a host interface through rtnetlink. */
export class NetlinkAddresses implements AddressBackend {
  private constructor(private readonly nl: Netlink, private readonly ifname: string, private readonly ipv6: boolean) {}

  /**
   * Open the netlink socket in the current network namespace. With `ipv6`
   * (the vip role) list() includes IPv6 addresses; IPv6 addresses are added
   * with IFA_F_NODAD either way (net/netlink/codec.ts addr6Payload).
   */
  static async open(ifname: string, opts: { ipv6?: boolean } = {}): Promise<NetlinkAddresses> {
    return new NetlinkAddresses(await Netlink.open(), ifname, opts.ipv6 === true);
  }

  async list(): Promise<ListedCidr[]> {
    const addrs = await this.nl.addresses(this.ifname, { ipv6: this.ipv6 });
    // Without a label (an interface name too long for one) nothing is known to be ours.
    const label = addressLabel(this.ifname);
    return addrs.map((a) => ({ address: a.address, prefix: a.prefix, ...(label !== undefined && a.label === label ? { ours: true } : {}) }));
  }

  async add(addresses: Cidr[]): Promise<AddressBatch> {
    const label = addressLabel(this.ifname);
    const r = await this.nl.addAddresses(this.ifname, addresses, label ? { label } : {});
    return { done: r.done, failed: r.failed.map((f) => ({ cidr: f.cidr, error: errorMessage(f.error) })) };
  }

  async remove(addresses: Cidr[]): Promise<AddressBatch> {
    const r = await this.nl.removeAddresses(this.ifname, addresses);
    return { done: r.done, failed: r.failed.map((f) => ({ cidr: f.cidr, error: errorMessage(f.error) })) };
  }

  close(): void {
    this.nl.close();
  }
}
