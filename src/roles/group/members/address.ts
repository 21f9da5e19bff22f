/**
 * Layer: role `group`, member driver. An IPv4/prefix on an interface
 * (IPaddr2's job): added through netlink with vigil's label, read back,
 * then announced by gratuitous ARP in both request and reply form
 * (resource-agents PR #977: some switches honour only replies) and
 * optionally by unicast to listed neighbours (#1117: firewalls that ignore
 * broadcasts). Only an address carrying vigil's label is ever removed, and
 * only that one (X-22 cannot happen).
 */
import { formatCidr } from '../../../util/ip';
import type { ListedCidr } from '../../../actions/addresses';
import type { AddressMember, Effect, Member, MemberStatus, StepOutcome } from '../types';

/** What the address member needs from the world; injected so the engine is testable without netlink. */
export interface AddressIo {
  list(ifname: string): Promise<ListedCidr[]>;
  add(ifname: string, cidr: { address: string; prefix: number }): Promise<void>;
  remove(ifname: string, cidr: { address: string; prefix: number }): Promise<void>;
  /** Carrier of the interface; undefined when there is no such interface. */
  carrier(ifname: string): Promise<boolean | undefined>;
  /** `net.ipv4.conf.<if>.promote_secondaries` is on. */
  promotesSecondaries(ifname: string): Promise<boolean>;
  /** Gratuitous ARP, `count` rounds `intervalMs` apart, each a request then a reply. */
  announce(ifname: string, ip: string, count: number, intervalMs: number): Promise<void>;
  /** Unicast announcements to `neighbour` (its MAC resolved first). */
  announceTo(ifname: string, ip: string, neighbour: string, count: number, intervalMs: number): Promise<void>;
}

const sameNet = (a: string, b: string, prefix: number): boolean => {
  const n = (s: string) => s.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const size = 2 ** (32 - prefix);
  return Math.floor(n(a) / size) === Math.floor(n(b) / size);
};

/** The `address` member. */
export function addressMember(c: AddressMember, io: AddressIo): Member {
  const label = `${formatCidr(c.cidr)} on ${c.interface}`;
  const find = async () => (await io.list(c.interface)).find((a) => a.address === c.cidr.address);
  const announce = async (): Promise<void> => {
    if (c.arp.count <= 0) return;
    await Promise.all([
      io.announce(c.interface, c.cidr.address, c.arp.count, c.arp.intervalMs),
      ...c.arp.unicast.map((n) => io.announceTo(c.interface, c.cidr.address, n, c.arp.count, c.arp.intervalMs)),
    ]);
  };
  return {
    config: c,
    monitorSpawns: false,
    async validate() {
      const up = await io.carrier(c.interface);
      if (up === undefined) return [`interface ${c.interface} does not exist`];
      if (!up) return [`interface ${c.interface} has no carrier`];
      return [];
    },
    async monitor(): Promise<MemberStatus> {
      const a = await find();
      if (!a) return { state: 'stopped' };
      if (a.prefix !== c.cidr.prefix) return { state: 'failed', reason: `${c.cidr.address}/${a.prefix} is on ${c.interface}, not /${c.cidr.prefix}` };
      return { state: 'running', detail: a.ours ? 'added by vigil' : 'present, not added by vigil (will not be removed)' };
    },
    async start(): Promise<StepOutcome> {
      if (await find()) return { ok: true, detail: 'already present' };
      await io.add(c.interface, c.cidr);
      // Read back: an add that the kernel acked but that is not listed is not done.
      const a = await find();
      if (!a) return { ok: false, reason: `${label}: added, but not listed when read back` };
      await announce();
      return { ok: true, detail: `added and announced ${c.arp.count}× (request+reply)` };
    },
    async complete(): Promise<StepOutcome> {
      const a = await find();
      if (!a?.ours) return { ok: true, detail: 'nothing to complete' };
      await announce();
      return { ok: true, detail: `announced ${c.arp.count}× after an interrupted start` };
    },
    async stop(): Promise<StepOutcome> {
      const all = await io.list(c.interface);
      const a = all.find((x) => x.address === c.cidr.address);
      if (!a) return { ok: true, detail: 'already absent' };
      if (!a.ours) return { ok: true, kept: true, detail: 'present but not added by vigil: left in place' };
      // The kernel deletes the secondaries of a primary it removes (unless promote_secondaries):
      // removing ours must never take the interface's other addresses with it.
      const idx = all.indexOf(a);
      const later = all.slice(idx + 1).filter((x) => x.prefix === a.prefix && sameNet(x.address, a.address, a.prefix));
      const earlier = all.slice(0, idx).some((x) => x.prefix === a.prefix && sameNet(x.address, a.address, a.prefix));
      if (!earlier && later.length > 0 && !(await io.promotesSecondaries(c.interface))) {
        return { ok: false, reason: `${label}: it is the primary of ${later.map((x) => x.address).join(', ')}; removing it would remove them too (set net.ipv4.conf.${c.interface}.promote_secondaries=1)` };
      }
      await io.remove(c.interface, c.cidr);
      const after = await io.list(c.interface);
      if (after.some((x) => x.address === c.cidr.address)) return { ok: false, reason: `${label}: still listed after removal` };
      const lost = all.filter((x) => x !== a && !after.some((y) => y.address === x.address));
      if (lost.length) return { ok: false, reason: `${label}: removal also removed ${lost.map((x) => x.address).join(', ')}` };
      return { ok: true, detail: 'removed (read back)' };
    },
    plan(op): Effect[] {
      if (op === 'stop') return [{ member: c.name, op: 'removeAddress', detail: `${label} (only if it carries vigil's label)` }];
      const eff: Effect[] = [{ member: c.name, op: 'addAddress', detail: label }];
      if (c.arp.count > 0) {
        eff.push({ member: c.name, op: 'announce', detail: `${c.cidr.address} on ${c.interface}: ${c.arp.count} rounds ${c.arp.intervalMs} ms apart, request+reply` });
        for (const n of c.arp.unicast) eff.push({ member: c.name, op: 'announceTo', detail: `${c.cidr.address} to ${n} by unicast, ${c.arp.count}×` });
      }
      return eff;
    },
  };
}
