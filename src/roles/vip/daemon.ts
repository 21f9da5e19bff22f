/**
 * Layer: roles. The HA IP role as the daemon drives it: the ARP prober, the
 * address backend (netlink, or vzctl into a container after the container
 * wait) and link state, wired to the runner. Loaded only when a config runs
 * the role.
 */
import { performance } from 'node:perf_hooks';
import type { VigilConfig } from '../../config/types';
import { moduleLog } from '../../log';
import { ArpProber } from '../../net/arp/prober';
import { NdpProber } from '../../net/ndp/prober';
import { NetlinkAddresses, type AddressBackend } from '../../actions/addresses';
import { Netlink } from '../../net/netlink';
import { vzctlBackendFor } from '../../actions/vzctl';
import { ContainerWait } from '../../actions/container';
import { errorMessage } from '../../errors';
import { formatCidr } from '../../util/ip';
import type { RoleContext, RoleRunner } from '../role';
import { VipRunner } from './runner';
import { WATCH_SPAN_MS } from './machine';
import { realVipIo } from './io';
import { readRouteTable, resolveNeighbours, type NeighbourGate } from './neighbours';

/** The runner factory of the registry entry. */
export function createVipRunner(initial: VigilConfig, { notifier }: RoleContext): RoleRunner {
  let cfg = initial;
  const log = moduleLog('vip');
  let runner: VipRunner | undefined;
  // Container mode only: the wait for `running` + container_settle before the runner exists.
  let wait: { cw: ContainerWait; sinceMs: number } | undefined;
  let stopRequested = false;
  // vip.neighbours as resolved at start (and on a reload that changes it).
  let gate: NeighbourGate = { ips: [], source: 'none', note: 'not resolved yet' };
  let resolveGate: () => Promise<void> = async () => {};
  let resolveDone!: (c: number) => void;
  const done = new Promise<number>((r) => { resolveDone = r; });
  return {
    name: 'vip',
    done,
    async start() {
      const v = cfg.vip!;
      // Sockets first, in both modes, so a missing interface or privilege fails the start at once.
      const prober = ArpProber.open(v.interface);
      let backend: AddressBackend;
      try {
        backend = v.backend === 'vzctl'
          ? vzctlBackendFor(() => cfg.vip!, () => { const st = runner?.status(); return st ? [...st.held, ...st.desired] : []; }, log)
          : await NetlinkAddresses.open(v.interface, { ipv6: true });
      } catch (e) {
        prober.close();
        throw e;
      }
      // Link state of the HA interface (the probe's interface in both modes).
      const links = await Netlink.open();
      resolveGate = async () => {
        const c = cfg.vip!;
        const addrs = c.neighbours !== undefined ? [] : await links.addresses(c.interface).catch(() => []);
        const own = addrs.filter((a) => a.address !== c.address.address).map((a) => ({ address: a.address, prefix: a.prefix }));
        gate = resolveNeighbours(c.neighbours, c.interface, own, c.neighbours !== undefined ? undefined : readRouteTable());
        log.info({ neighbours: gate.ips, source: gate.source }, `neighbour gate: ${gate.note}`);
      };
      // The carrier as the event socket last reported it. While events flow, a
      // silent probe (every master check's conflict probe is one) needs no netlink
      // round trip: a carrier change is queued on the event socket the moment it
      // happens, and the prober declares silence only after a poll phase has read
      // that socket, so the event is in before the answer to this question is used.
      // Undefined (none yet, events lost, the socket failed, the link removed): ask the kernel.
      let known: boolean | undefined;
      // The event socket delivers (a master's native probe loop relies on it for its carrier and addresses).
      let eventsLive = false;
      const carrier = async () => {
        if (known !== undefined) return known;
        const l = await links.link(cfg.vip!.interface);
        return l ? l.up && l.carrier : undefined;
      };
      const begin = async () => {
        await resolveGate();
        const base = realVipIo(() => cfg.vip!, prober, backend, log, carrier, () => links.close(), () => gate, () => NdpProber.open(cfg.vip!.interface), () => eventsLive);
        // vip.group: the group's code loads only when a group is driven (the group role's driver).
        const driver = cfg.vip!.group !== undefined ? (await import('../group/driver')).groupDriver(cfg, cfg.vip!.group) : undefined;
        const io = driver ? { ...base, group: (op: 'activate' | 'deactivate') => driver.run(op), groupInactive: () => driver.inactive(), close: () => { driver.close(); base.close(); } } : base;
        runner = new VipRunner(cfg.vip!, io, log);
        runner.done.then(resolveDone, () => resolveDone(1));
        await runner.start();
        watchLinks(runner);
      };
      // Carrier and address changes as they happen (native netlink event socket:
      // no polling, and an overrun means "re-read", never an abort).
      const watchLinks = (r: VipRunner) => {
        let last: boolean | undefined;
        let rereading = false;
        // live: the event socket still delivers (after it failed, nothing may be cached).
        let live = true;
        eventsLive = true;
        const feed = (up: boolean) => { if (live) known = up; if (up !== last) { last = up; r.linkChanged(up); } };
        const reread = () => carrier().then((up) => { if (up !== undefined) feed(up); },
          (e) => log.warn({ err: errorMessage(e) }, 'could not read the carrier'));
        links.subscribe((ev) => {
          const ifname = cfg.vip!.interface;
          if (ev.kind === 'link') {
            if (ev.link.name === ifname) {
              if (!ev.removed) feed(ev.link.up && ev.link.carrier);
              else known = undefined;
            }
          } else if (ev.removed && cfg.vip!.backend === 'netlink' && ev.address.ifname === ifname) {
            r.addressRemoved({ address: ev.address.address, prefix: ev.address.prefix });
          }
        }, (e) => {
          if (e.code === 'EOVERFLOW') {
            // Coalesced: a storm overruns many drains in a row; one re-read at a time covers them.
            known = undefined;
            if (rereading) return;
            rereading = true;
            log.info('link/address events were lost (event queue overran): re-reading the carrier and the addresses');
            void reread().finally(() => { rereading = false; });
            r.resync();
          } else {
            live = false;
            eventsLive = false;
            known = undefined;
            log.warn({ err: e.message }, 'link/address events unavailable: carrier is read at each silent probe, addresses at each master check');
            // A master's native probe loop counted on the events: a full check now, and one per master check from here on.
            r.resync();
          }
        });
        void reread();
      };
      if (v.backend !== 'vzctl') { await begin(); return; }
      // Container mode: start() returns at once, so the daemon opens its control
      // socket and tells systemd READY (the sockets are open); STATUS= says it
      // waits. No probe, address change or command happens until the container
      // runs and has settled (vzhaipd V-15/V-16), and a stop ends the wait at once.
      const ct = v.container!;
      const cw = new ContainerWait({
        container: ct,
        settings: () => ({ vzlist: cfg.vip!.vzlist, settleMs: cfg.vip!.containerSettleMs, timeoutMs: cfg.vip!.commandTimeoutMs }),
        log,
        onChange: (text) => notifier.status(`vip: ${text}`),
      });
      wait = { cw, sinceMs: Date.now() };
      void cw.done.then(async (outcome) => {
        wait = undefined;
        // A stop that came between the wait's end and this callback counts as a cancel.
        if (outcome === 'cancelled' || stopRequested) {
          prober.close();
          backend.close();
          links.close();
          resolveDone(0);
          return;
        }
        try {
          await begin();
          notifier.status(`vip: container ${ct} running; HA IP role started`);
        } catch (e) {
          log.error({ err: errorMessage(e) }, 'the HA IP role failed to start after the container wait: stopping vigil');
          if (!runner) { prober.close(); backend.close(); links.close(); resolveDone(1); }
          // The daemon's own graceful stop, so the other roles release what they hold too.
          process.kill(process.pid, 'SIGTERM');
        }
      });
    },
    stop() {
      stopRequested = true;
      if (wait) wait.cw.cancel();
      else if (runner) runner.stop();
      else resolveDone(0);
    },
    canReload(next) {
      if (!next.vip) return undefined;
      if (runner) return runner.canReload(next.vip);
      const v = cfg.vip!;
      for (const k of ['interface', 'backend', 'container'] as const) {
        if (next.vip[k] !== v[k]) return `changing vip.${k} needs a restart (vigil restart)`;
      }
      return undefined;
    },
    reload(next) {
      const nbChanged = JSON.stringify(next.vip?.neighbours) !== JSON.stringify(cfg.vip?.neighbours);
      cfg = next;
      if (nbChanged && next.vip) void resolveGate().then(() => runner?.refreshInterests());
      if (next.vip) runner?.reload(next.vip);
    },
    status() {
      if (runner) return runner.status();
      const v = cfg.vip!;
      return {
        role: 'inactive',
        phase: wait ? 'waiting for container' : 'starting',
        since: new Date(wait?.sinceMs ?? Date.now()).toISOString(),
        interface: v.interface,
        haIp: formatCidr(v.address),
        failures: 0,
        held: [],
        desired: [],
        takeovers: 0,
        stepDowns: 0,
        ...(wait ? { container: wait.cw.snapshot() } : {}),
      };
    },
    healthy(nowMs = performance.now()) {
      if (wait) return wait.cw.healthy(nowMs);
      if (!runner) return false;
      const v = cfg.vip!;
      // While a native probe loop (a watch) runs, the runner hears of it only at its end, once per WATCH_SPAN_MS.
      const bound = 3 * Math.max(v.checkIntervalMs, v.masterCheckIntervalMs) + 2 * v.probeTimeoutMs + v.commandTimeoutMs + 5000
        + (runner.watching ? WATCH_SPAN_MS : 0);
      return nowMs - runner.lastProgressMs < bound;
    },
  };
}
