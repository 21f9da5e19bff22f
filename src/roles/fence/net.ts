/**
 * Layer: executor. The real {@link FenceNet}: carrier, addresses and
 * neighbours from rtnetlink, reachability by ARP from our own socket.
 * One netlink socket and one ARP prober per interface, kept open across
 * cycles (no spawn, no socket churn in the loop).
 */
import { Netlink } from '../../net/netlink';
import { ArpProber } from '../../net/arp/prober';
import { Pinger } from '../../net/icmp/pinger';
import { errorMessage } from '../../errors';
import type { FenceNet } from './runner';

/** Open the netlink socket now (in the current namespace); probers open on first use. */
export async function realFenceNet(): Promise<FenceNet> {
  const nl = await Netlink.open();
  const probers = new Map<string, ArpProber>();
  let pinger: Pinger | undefined;
  const prober = (iface: string) => {
    let p = probers.get(iface);
    if (!p || p.closed) {
      p = ArpProber.open(iface);
      probers.set(iface, p);
    }
    return p;
  };
  return {
    async carrier(iface) {
      const l = await nl.link(iface);
      return l ? l.up && l.carrier : undefined;
    },
    async addresses(iface) {
      return (await nl.addresses(iface)).map((a) => ({ address: a.address, prefix: a.prefix }));
    },
    async interfaceOf(ip) {
      return (await nl.addresses()).find((a) => a.address === ip)?.ifname;
    },
    async neighbours(iface) {
      // Every entry with an address, PERMANENT ones too: the probe decides. The
      // state goes along so the runner can put FAILED/INCOMPLETE entries last.
      return (await nl.neighbours(iface)).filter((n) => !n.state.includes('NOARP')).map((n) => ({ ip: n.address, state: n.state }));
    },
    async probe(iface, ip, timeoutMs) {
      // Tri-state all the way up: a probe that could not be made (EPERM,
      // ENETDOWN, no socket) is an error, never "nobody answered".
      let r;
      try {
        r = await prober(iface).probe(ip, { timeoutMs, count: 1, acceptConflict: false });
      } catch (e) {
        return { status: 'error', error: errorMessage(e) };
      }
      if (r.status === 'answered') return { status: 'answered', mac: r.mac, rttMs: r.rttMs };
      if (r.status === 'silent') return { status: 'silent' };
      return { status: 'error', error: errorMessage(r.error) };
    },
    async ping(ip, timeoutMs) {
      try {
        pinger ??= new Pinger();
        return await pinger.ping(ip, timeoutMs);
      } catch (e) {
        return { status: 'error', error: errorMessage(e) };
      }
    },
    close() {
      pinger?.close();
      for (const p of probers.values()) p.close();
      nl.close();
    },
  };
}
