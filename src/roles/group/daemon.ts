/**
 * Layer: roles. The `group` role as the daemon drives it (runner.ts):
 * loaded only when a config runs the role.
 */
import { performance } from 'node:perf_hooks';
import type { VigilConfig } from '../../config/types';
import { moduleLog } from '../../log';
import type { RoleContext, RoleRunner } from '../role';
import { ArpProber } from '../../net/arp/prober';
import { RealAddressIo } from './io';
import { GroupRunner } from './runner';
import type { GroupConfig } from './types';
import { wireGroup } from './wire';

/** The runner factory of the registry entry. */
export function createGroupRunner(cfg: VigilConfig, _ctx: RoleContext): RoleRunner {
  const groups = [...((cfg as unknown as { group?: Map<string, GroupConfig> }).group?.values() ?? [])];
  const io = new RealAddressIo();
  // One prober per interface, opened on first use and kept: the conflict check runs every monitor_interval.
  const probers = new Map<string, ArpProber>();
  const probeOther = async (ifname: string, ip: string, timeoutMs: number) => {
    let p = probers.get(ifname);
    if (!p) { p = ArpProber.open(ifname); probers.set(ifname, p); }
    // acceptConflict false: a standby's RFC 5227 probe is not a holder answering.
    const r = await p.probe(ip, { timeoutMs, count: 1, acceptConflict: false });
    if (r.status !== 'answered') return undefined;
    const own = r.senderMac ?? p.mac;
    const other = r.replies.find((x) => x.mac !== own);
    return other ? { ownMac: own, otherMac: other.mac } : undefined;
  };
  const runner = new GroupRunner({
    groups, io, log: moduleLog('group', { role: 'group' }), probeOther,
    closeProbes: () => { for (const p of probers.values()) p.close(); probers.clear(); },
    wire: (g) => wireGroup(g, { io, node: cfg.node, dry: false, withLock: true }),
  });
  return {
    name: 'group',
    done: runner.done,
    start: () => runner.start(),
    stop: () => runner.stop(),
    // Groups are activated once at start; a changed group needs a restart of the daemon (the members may be running).
    canReload: (next) => (JSON.stringify([...((next as unknown as { group?: Map<string, GroupConfig> }).group?.entries() ?? [])]) === JSON.stringify([...(cfg as unknown as { group?: Map<string, GroupConfig> }).group?.entries() ?? []])
      ? undefined : 'the group section changed (restart vigil to apply it)'),
    reload: () => undefined,
    status: () => runner.status(),
    healthy: (nowMs = performance.now()) => nowMs - runner.lastProgressMs < runner.progressBoundMs() + 5000 || runner.progressBoundMs() === 0,
  };
}
