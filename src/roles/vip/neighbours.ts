/**
 * Layer: roles. Which neighbours gate the HA IP role's decisions
 * (`vip.neighbours`), and the one question asked of them: does anyone on
 * the segment answer us at all?
 *
 * A slave whose link has carrier but reaches nobody (a dead uplink behind an
 * access switch, a wrong VLAN, a port that drops everything) hears the HA
 * IP's silence too; without this gate it takes over and makes a split brain.
 * Default: the default gateway when it is on the HA interface's subnet (the
 * one neighbour every node of a segment shares); else none, and `vigil
 * status` says so.
 */
import * as fs from 'node:fs';
import { ipv4Bytes, type Cidr } from '../../util/ip';

/** The resolved gate, as `vigil status` shows it. */
export interface NeighbourGate {
  ips: string[];
  /** Where the list comes from. */
  source: 'config' | 'default gateway' | 'none';
  /** One line for status: what is probed, or why nothing is. */
  note: string;
}

const num = (ip: string): number => {
  const b = ipv4Bytes(ip)!;
  return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
};

/** True when `ip` lies inside `net` (address/prefix). */
export function inSubnet(ip: string, net: Cidr): boolean {
  if (net.prefix === 0) return true;
  const mask = net.prefix >= 32 ? 0xffffffff : (0xffffffff << (32 - net.prefix)) >>> 0;
  return ((num(ip) & mask) >>> 0) === ((num(net.address) & mask) >>> 0);
}

/**
 * Default IPv4 gateways from the text of /proc/net/route (this network
 * namespace's main table; a file read, no spawn): destination and mask 0,
 * RTF_GATEWAY set. Fields are little-endian hex.
 */
export function defaultGateways(procNetRoute: string): Array<{ iface: string; gateway: string }> {
  const out: Array<{ iface: string; gateway: string }> = [];
  for (const line of procNetRoute.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, dest, gw, flags, , , , mask] = f as [string, string, string, string, string, string, string, string];
    if (dest !== '00000000' || mask !== '00000000' || (parseInt(flags, 16) & 0x2) === 0) continue;
    const v = parseInt(gw, 16) >>> 0;
    out.push({ iface, gateway: `${v & 0xff}.${(v >>> 8) & 0xff}.${(v >>> 16) & 0xff}.${(v >>> 24) & 0xff}` });
  }
  return out;
}

/**
 * The gate: the configured list, else the default gateway when it is on a
 * subnet of the HA interface (`ifaceAddrs`, the HA addresses excluded by the
 * caller), else none.
 */
export function resolveNeighbours(configured: string[] | undefined, iface: string, ifaceAddrs: Cidr[], routeText: string | undefined): NeighbourGate {
  if (configured !== undefined) {
    return configured.length > 0
      ? { ips: configured, source: 'config', note: `probed when the HA IP is silent (slave) and at each master check: ${configured.join(', ')}` }
      : { ips: [], source: 'none', note: 'none (vip.neighbours is empty): silence on a link with carrier counts toward a takeover' };
  }
  const gws = routeText === undefined ? [] : defaultGateways(routeText);
  const gw = gws.find((g) => ifaceAddrs.some((a) => a.prefix < 32 && inSubnet(g.gateway, a)));
  if (gw) return { ips: [gw.gateway], source: 'default gateway', note: `the default gateway ${gw.gateway} (on ${iface}'s subnet), probed when the HA IP is silent (slave) and at each master check` };
  const why = gws.length === 0 ? 'no default gateway' : `the default gateway ${gws[0]!.gateway} is not on ${iface}'s subnet`;
  return { ips: [], source: 'none', note: `none: ${why}; set vip.neighbours so that a node that reaches nobody never takes over` };
}

/** /proc/net/route of this namespace, or undefined when it cannot be read. */
export function readRouteTable(): string | undefined {
  try { return fs.readFileSync('/proc/net/route', 'utf8'); } catch { return undefined; }
}
