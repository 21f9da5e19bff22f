/**
 * Layer: role `group`, executor. The real world behind the engine: netlink
 * for links and addresses, vigil's own AF_PACKET socket for the RFC 5227
 * duplicate-address probe and the announcements, the command runner for
 * hooks. Also builds the member drivers from their config.
 */
import * as fs from 'node:fs';
import { Netlink } from '../../net/netlink';
import { ArpProber } from '../../net/arp/prober';
import { ArpSocket } from '../../net/arp/socket';
import { encodeArp, OP_REPLY } from '../../net/arp/codec';
import { NetlinkAddresses } from '../../actions/addresses';
import { runCommand, describeCommand, type Command } from '../../actions/commands';
import { VigilError } from '../../errors';
import type { AddressIo } from './members/address';
import { addressMember } from './members/address';
import { commandMember } from './members/command';
import { hostnameMember } from './members/hostname';
import { symlinkMember } from './members/symlink';
import { unitMember } from './members/unit';
import type { PreflightCheck, PreflightResult } from './engine';
import type { Recorded } from './state';
import type { AddressMember, GroupConfig, HookName, Member, StepOutcome } from './types';

/** Netlink-and-ARP implementation of {@link AddressIo}; close() when done. */
export class RealAddressIo implements AddressIo {
  private nl: Promise<Netlink> | undefined;
  private readonly backends = new Map<string, Promise<NetlinkAddresses>>();

  private netlink(): Promise<Netlink> {
    return (this.nl ??= Netlink.open());
  }

  private backend(ifname: string): Promise<NetlinkAddresses> {
    let b = this.backends.get(ifname);
    if (!b) this.backends.set(ifname, (b = NetlinkAddresses.open(ifname)));
    return b;
  }

  async list(ifname: string) {
    return (await this.backend(ifname)).list();
  }

  async add(ifname: string, cidr: { address: string; prefix: number }): Promise<void> {
    const r = await (await this.backend(ifname)).add([cidr]);
    if (r.failed[0]) throw new VigilError('EADDR', `add ${cidr.address}/${cidr.prefix} on ${ifname}: ${r.failed[0].error}`);
  }

  async remove(ifname: string, cidr: { address: string; prefix: number }): Promise<void> {
    const r = await (await this.backend(ifname)).remove([cidr]);
    if (r.failed[0]) throw new VigilError('EADDR', `remove ${cidr.address}/${cidr.prefix} on ${ifname}: ${r.failed[0].error}`);
  }

  async carrier(ifname: string): Promise<boolean | undefined> {
    const l = await (await this.netlink()).link(ifname);
    return l === undefined ? undefined : l.up && l.carrier;
  }

  async promotesSecondaries(ifname: string): Promise<boolean> {
    // /proc/sys/net shows the reader's network namespace.
    try { return fs.readFileSync(`/proc/sys/net/ipv4/conf/${ifname}/promote_secondaries`, 'utf8').trim() === '1'; } catch { return false; }
  }

  async announce(ifname: string, ip: string, count: number, intervalMs: number): Promise<void> {
    const p = ArpProber.open(ifname);
    try { await p.announce(ip, { count, intervalMs, form: 'both' }); } finally { p.close(); }
  }

  async announceTo(ifname: string, ip: string, neighbour: string, count: number, intervalMs: number): Promise<void> {
    // The neighbour's MAC, asked from the address just added (an ordinary request).
    const r = await probeOnce(ifname, neighbour, { source: 'request', senderIp: ip, timeoutMs: 500, count: 1 });
    if (r.status !== 'answered') throw new VigilError('ENEIGH', `unicast announce to ${neighbour}: it did not answer ARP`);
    const s = ArpSocket.open(ifname);
    try {
      const frame = encodeArp({ op: OP_REPLY, ethDst: r.mac, ethSrc: s.mac, senderMac: s.mac, senderIp: ip, targetMac: r.mac, targetIp: neighbour });
      for (let i = 0; i < count; i++) {
        if (i > 0) await new Promise((res) => setTimeout(res, intervalMs));
        s.send(frame);
      }
    } finally { s.close(); }
  }

  close(): void {
    void this.nl?.then((n) => n.close(), () => undefined);
    for (const b of this.backends.values()) void b.then((x) => x.close(), () => undefined);
  }
}

async function probeOnce(ifname: string, ip: string, opts: Parameters<ArpProber['probe']>[1]) {
  const p = ArpProber.open(ifname);
  try { return await p.probe(ip, opts); } finally { p.close(); }
}

/**
 * The RFC 5227 duplicate-address probe of every address member, on vigil's
 * own socket (sender IP 0.0.0.0, so no cache learns from it). A holder that
 * drops ICMP still answers ARP (X-12/X-18: xcatha pinged). A probe that
 * could not be made refuses too: an error is never evidence of absence.
 */
export function addressProbeCheck(g: GroupConfig): PreflightCheck {
  return {
    name: 'arp-probe',
    async run(): Promise<PreflightResult[]> {
      const addrs = g.members.filter((m): m is AddressMember => m.type === 'address');
      return Promise.all(addrs.map(async (m): Promise<PreflightResult> => {
        const check = `arp-probe ${m.cidr.address} on ${m.interface}`;
        let p: ArpProber;
        try { p = ArpProber.open(m.interface); } catch (e) { return { check, ok: false, detail: `cannot probe: ${(e as Error).message}` }; }
        try {
          const own = p.mac;
          const r = await p.probe(m.cidr.address, { count: g.probe.count, intervalMs: g.probe.intervalMs, timeoutMs: g.probe.timeoutMs, source: 'probe' });
          if (r.status === 'error') return { check, ok: false, detail: `probe failed: ${r.error.message}`, elapsedMs: Math.round(r.elapsedMs) };
          const other = r.status === 'answered' ? r.replies.find((x) => x.mac !== own) : undefined;
          if (other) return { check, ok: false, detail: `address ${m.cidr.address} in use by MAC ${other.mac}`, elapsedMs: Math.round(r.elapsedMs) };
          return { check, ok: true, detail: 'no other holder answered', elapsedMs: Math.round(r.elapsedMs) };
        } finally { p.close(); }
      }));
    },
  };
}

/** Run a hook with its timeout; the environment says which group and hook. */
export async function runHook(g: GroupConfig, name: HookName, cmd: Command): Promise<StepOutcome> {
  const r = await runCommand(cmd, { timeoutMs: g.hookTimeoutMs, env: { ...process.env, VIGIL_GROUP: g.name, VIGIL_HOOK: name } });
  if (r.ok) return { ok: true };
  const why = r.spawnError ? `could not start: ${r.spawnError}` : r.timedOut ? `timed out after ${g.hookTimeoutMs} ms` : r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
  return { ok: false, reason: `${name} ${describeCommand(cmd)}: ${why}`, output: `${r.stdout}${r.stderr}`.trim().slice(-400) };
}

/** The member drivers of a group, in order. */
export function buildMembers(g: GroupConfig, addresses: AddressIo, recorded: (m: string) => Recorded | undefined): Member[] {
  return g.members.map((c) => {
    switch (c.type) {
      case 'address': return addressMember(c, addresses);
      case 'symlink': return symlinkMember(c);
      case 'hostname': return hostnameMember(c, `${g.name}/${c.name}`);
      case 'unit': return unitMember(c);
      case 'command': return commandMember(c, g.name, () => (recorded(c.name) === 'running' ? 'running' : 'stopped'));
    }
  });
}
