/**
 * Layer: executor. The real {@link VipIo}: ARP (IPv4) and NDP (IPv6)
 * through our AF_PACKET sockets, addresses through the configured backend,
 * the operator's commands through the command runner. No spawn here except
 * the operator's own commands.
 *
 * The machine is family-blind: one probe of the HA address, one decision,
 * and every address of the set (IPv4 and IPv6 alike) moves with it. Each
 * effect is routed here by the family of the address it names. The NDP
 * socket opens at its first use, so an IPv4-only role never opens it.
 */
import type { VipConfig } from './config';
import type { Logger } from '../../log';
import { ArpProber } from '../../net/arp/prober';
import type { NdpProber } from '../../net/ndp/prober';
import { isV6 } from '../../util/ip6';
import { multicastMac, solicitedNode } from '../../net/ndp/codec';
import { runCommand, describeCommand, type Command } from '../../actions/commands';
import type { AddressBackend } from '../../actions/addresses';
import type { Cidr } from '../../util/ip';
import type { VipIo, WatchOutcome } from './runner';
import type { ProbeOutcome } from './machine';
import type { NeighbourGate } from './neighbours';

/**
 * Carrier of the HA interface (netlink, no spawn): undefined when the
 * interface is gone.
 */
export type CarrierCheck = () => Promise<boolean | undefined>;

/**
 * Whether any of `ips` answers an ARP request within `timeoutMs`: true at the
 * first answer (usually well under a millisecond), false once all are silent.
 */
function anyAnswers(prober: ArpProber, ips: string[], timeoutMs: number): Promise<boolean> {
  if (ips.length === 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    let left = ips.length;
    const one = (ok: boolean) => { if (ok) resolve(true); else if (--left === 0) resolve(false); };
    for (const ip of ips) prober.probe(ip, { timeoutMs, count: 1, source: 'request' }).then((r) => one(r.status === 'answered'), () => one(false));
  });
}

/** Build the real I/O for one HA IP role. The prober must already be open. */
export function realVipIo(cfg: () => VipConfig, prober: ArpProber, addresses: AddressBackend, log: Logger, carrier: CarrierCheck, closeCarrier: () => void = () => {},
  gate: () => NeighbourGate = () => ({ ips: [], source: 'none', note: 'none' }), openNdp?: () => NdpProber,
  eventsLive: () => boolean = () => false): VipIo {
  const startMac = prober.mac;
  let ndpProber: NdpProber | undefined;
  const ndp = (): NdpProber => {
    if (ndpProber && !ndpProber.closed) return ndpProber;
    if (!openNdp) throw new Error('IPv6 address but no NDP socket (openNdp not given)');
    return (ndpProber = openNdp());
  };
  // What this role waits for, kept in the sockets' kernel filters: every frame
  // about the HA IP (answers, a competitor's gratuitous ARP or NA) and
  // neighbours' replies. Everything else on the link stays in the kernel.
  const pin = () => {
    const ha = cfg().address.address;
    prober.pin({ senders: isV6(ha) ? [] : [ha], replySenders: gate().ips });
    if (isV6(ha)) ndp().pin([ha]);
  };
  pin();
  // The HA IP was silent at the last check: the neighbours are then asked in the same wake-up as the next probe.
  let haSilent = false;
  let lastNeighbours: { at: number; answered: boolean } | undefined;
  const askNeighbours = (ips: string[]) => anyAnswers(prober, ips, cfg().probeTimeoutMs).then((ok) => { lastNeighbours = { at: Date.now(), answered: ok }; return ok; });
  /**
   * The HA IP was silent: whether that silence says anything. Heard through
   * a dead link it says nothing about the master (unknown, so an isolated
   * slave never takes over and never wins the IP back on heal); nor does it
   * when no neighbour answers either. `early`: the neighbours' answer, asked
   * in the same wake-up as the probe.
   */
  /** Our own link is down or gone: the outcome that says so, or undefined while it has carrier. */
  const ownLinkDown = async (mine: { ownMac?: string }): Promise<(ProbeOutcome & { ownMac?: string }) | undefined> => {
    const up = await carrier().catch(() => undefined);
    return up === true ? undefined : { result: 'error', linkDown: true, error: up === undefined ? `interface ${cfg().interface} is gone` : `no carrier on ${cfg().interface}`, ...mine };
  };
  const judgeSilence = async (mine: { ownMac?: string }, early?: Promise<boolean>): Promise<ProbeOutcome & { ownMac?: string }> => {
    const nbIps = gate().ips;
    const down = await ownLinkDown(mine);
    if (down) return down;
    if (nbIps.length > 0 && !(await (early ?? askNeighbours(nbIps)))) {
      // Carrier but nobody answers: the silence says nothing about the holder. A slave
      // never counts it; a master treats it as its own dead link (released after a peer's takeover window).
      return { result: 'error', linkDown: true, error: `no neighbour answers (${nbIps.join(', ')}): this node reaches nobody, the HA IP's silence is unknown`, ...mine };
    }
    return { result: 'silent', ...mine };
  };
  const io: VipIo = {
    ownMac: startMac,
    refreshInterests: pin,
    arpStatus: () => {
      const st = prober.stats();
      const nd = ndpProber?.stats();
      return st ? { delivered: st.received, invalid: st.invalid, sent: st.sent, ...(nd ? { ndp: { delivered: nd.received, invalid: nd.invalid, sent: nd.sent } } : {}) } : undefined;
    },
    neighbourStatus: () => ({ ...gate(), ...(lastNeighbours ? { lastAnswered: lastNeighbours.answered, lastAt: new Date(lastNeighbours.at).toISOString() } : {}) }),
    async probe(ip: string, timeoutMs: number, purpose: 'check' | 'conflict' = 'check'): Promise<ProbeOutcome & { ownMac?: string }> {
      const nbIps = gate().ips;
      // Master: once per master check, alongside the conflict probe. Slave: only while the HA IP is silent.
      // Neighbours get the configured probe_timeout, not the HA IP's learnt one: a router
      // answers ARP from its control plane, later than a host's kernel, and only their
      // silence delays anything (an answer ends the wait).
      const early = nbIps.length > 0 && (purpose === 'conflict' || haSilent) ? askNeighbours(nbIps) : undefined;
      // acceptConflict false: another slave's RFC 5227 probe is not an owner answering.
      const r = isV6(ip) ? await ndp().probe(ip, timeoutMs) : await prober.probe(ip, { timeoutMs, count: 1, acceptConflict: false });
      haSilent = r.status !== 'answered';
      // The MAC this probe went out with: a re-created interface has a new one,
      // and the conflict decision must use the MAC the other side sees now.
      const mine = r.senderMac !== undefined ? { ownMac: r.senderMac } : {};
      if (r.status === 'answered') {
        if (!('replies' in r)) return { result: 'answered', mac: r.mac, rttMs: r.rttMs, ...mine };
        const own = r.senderMac ?? startMac;
        const other = r.replies.find((x) => x.mac !== own) ?? r.replies[0]!;
        return { result: 'answered', mac: other.mac, rttMs: other.rttMs, ...mine };
      }
      // Asked only when the probe got no answer: an answer proves the link.
      if (r.status === 'silent') return judgeSilence(mine, early);
      return (await ownLinkDown(mine)) ?? { result: 'error', error: r.error.message, ...mine };
    },
    watch(eff) {
      if (isV6(eff.ip)) return undefined;
      // A master learns of its own dead link and of an address removed behind its back from
      // netlink events; without them (the event socket failed, or the addresses live inside a
      // container, backend vzctl) its master check is the upkeep, one at a time as before.
      if (eff.purpose === 'conflict' && (!eventsLive() || cfg().backend !== 'netlink')) return undefined;
      // A master asks its neighbours in every round (a reply from any passes it), with the
      // configured probe_timeout: routers answer from their control plane.
      const nbIps = eff.purpose === 'conflict' ? gate().ips : [];
      const w = prober.watch(eff.ip, {
        ...(eff.expectMac !== undefined ? { expectMac: eff.expectMac } : {}), everyMs: eff.everyMs, rounds: eff.rounds,
        timeoutMs: nbIps.length > 0 ? cfg().probeTimeoutMs : eff.timeoutMs, ...(nbIps.length > 0 ? { neighbours: { ips: nbIps } } : {}),
      });
      if (!w) return undefined;
      const done = w.done.then(async (end): Promise<WatchOutcome> => {
        haSilent = end.status === 'silent';
        if (end.status === 'complete') return { kind: 'complete', rounds: end.rounds, rttsMs: end.rttsMs };
        if (end.status === 'silent' && eff.purpose === 'check') {
          let mine: { ownMac?: string } = {};
          try { mine = { ownMac: prober.mac }; } catch { /* closed meanwhile: the MAC we started with stands */ }
          return { kind: 'probed', outcome: await judgeSilence(mine), rttsMs: end.rttsMs };
        }
        // Another MAC spoke for the IP, no neighbour answered a master, or the loop could not
        // send: look the ordinary way now (all answers collected, the neighbours asked again,
        // send retries, the error as a probe reports it).
        if (end.status === 'error') log.debug({ err: end.error.message }, 'native probe loop ended on a send error; probing the ordinary way');
        return { kind: 'probed', outcome: await io.probe(eff.ip, eff.timeoutMs, eff.purpose), rttsMs: end.rttsMs };
      });
      return { done, stop: w.stop };
    },
    watchStatus() {
      const st = prober.watchState();
      return st ? { active: st.active, ageMs: st.ageMs, lastRttMs: st.lastRttMs, rounds: st.rounds, totalRounds: st.totalRounds, taken: st.taken } : undefined;
    },
    async announce(addrs: Cidr[], count: number, intervalMs: number): Promise<void> {
      if (count <= 0) return;
      // All addresses per round, so clients learn the whole set together:
      // gratuitous ARP for IPv4, unsolicited NAs (override set) for IPv6.
      // IPv6: also by unicast to each of announce.routers, at the Ethernet address of its
      // solicited-node group (joined by every IPv6 node for each of its addresses), so no
      // neighbour resolution is needed before the router's cache moves.
      const routers = (cfg().announce.routers ?? []).map((ip) => ({ ip, mac: multicastMac(solicitedNode(ip)) }));
      await Promise.all(addrs.map((a) => isV6(a) ? ndp().announce(a.address, count, intervalMs, routers) : prober.announce(a.address, { count, intervalMs, form: 'both' })));
    },
    release(ip: string): void {
      if (isV6(ip)) ndp().sendRelease(ip); else prober.sendRelease(ip);
    },
    onRelease: (ip, cb) => isV6(ip) ? ndp().onRelease(ip, cb) : prober.onRelease(ip, cb),
    listAddresses: () => addresses.list(),
    addAddresses: (a) => addresses.add(a),
    removeAddresses: (a) => addresses.remove(a),
    async runCommand(which) {
      const c = cfg();
      const cmd: Command | undefined = which === 'on_master' ? c.onMaster : which === 'on_slave' ? c.onSlave : c.track?.command;
      if (cmd === undefined) return { ok: true, detail: 'not configured' };
      const timeoutMs = which === 'track' ? c.track!.timeoutMs : c.commandTimeoutMs;
      const r = await runCommand(cmd, { timeoutMs, name: which });
      const detail = r.spawnError ? `could not start: ${r.spawnError}` : r.timedOut ? `killed after ${timeoutMs} ms timeout` : r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
      const entry = { command: describeCommand(cmd), exit: r.code, signal: r.signal, timedOut: r.timedOut, ms: Math.round(r.durationMs), stdout: r.stdout.trim() || undefined, stderr: r.stderr.trim() || undefined };
      if (which === 'track') log.debug(entry, `track check: ${detail}`);
      else if (r.ok) log.info(entry, `${which} done: ${detail}`);
      else log.error(entry, `${which} failed: ${detail}`);
      return { ok: r.ok, detail };
    },
    close() {
      prober.close();
      ndpProber?.close();
      addresses.close();
      closeCarrier();
    },
  };
  return io;
}
