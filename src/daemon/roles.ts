/**
 * Layer: daemon. The roles a config switches on, behind one small interface
 * the daemon drives (start, stop, reload, status, health).
 */
import { performance } from 'node:perf_hooks';
import type { VigilConfig } from '../config/types';
import type { Logger } from '../log';
import { moduleLog, setLogRole } from '../log';
import { ArpProber } from '../net/arp/prober';
import { NetlinkAddresses, type AddressBackend } from '../actions/addresses';
import { Netlink } from '../net/netlink';
import { VipRunner } from '../roles/vip/runner';
import { realVipIo } from '../roles/vip/io';
import { FenceRunner, type WatchdogOps } from '../roles/fence/runner';
import { realFenceNet } from '../roles/fence/net';
import { native } from '../native';
import { vzctlBackendFor } from '../actions/vzctl';
import { ContainerWait } from '../actions/container';
import type { Notifier } from './notify';
import { errorMessage } from '../errors';
import { formatCidr } from '../util/ip';


/** One running role as the daemon sees it. */
export interface RoleRunner {
  readonly name: string;
  start(): Promise<void>;
  stop(): void;
  readonly done: Promise<number>;
  /** Why the new config cannot be applied live, or undefined. */
  canReload(next: VigilConfig): string | undefined;
  reload(next: VigilConfig): void;
  status(): unknown;
  /** True while the role's loop makes progress (systemd watchdog). */
  healthy(nowMs: number): boolean;
  /** `vigil leave` (the fence role leaves its Consul agents). */
  leave?(): Promise<unknown>;
}

/** Build the roles a config asks for. */
export function createRoles(cfg: VigilConfig, _log: Logger, notifier: Notifier): RoleRunner[] {
  const roles: RoleRunner[] = [];
  // The role lines without one of their own carry (see log.ts): the HA IP
  // role's master/slave once it runs, else the fence role's name.
  setLogRole(cfg.vip ? 'inactive' : 'fence');
  if (cfg.vip) roles.push(vipRole(cfg, notifier));
  if (cfg.fence && cfg.fence.agents.length > 0) roles.push(fenceRole(cfg));
  return roles;
}

const nativeWatchdog: WatchdogOps = {
  open(path, timeoutS) {
    const fd = native().watchdogOpen(path);
    try { native().watchdogSetTimeout(fd, timeoutS); } catch { /* some drivers have a fixed timeout */ }
    return fd;
  },
  pet: (fd) => native().watchdogKeepalive(fd),
  close: (fd, disarm) => native().watchdogClose(fd, disarm),
};

function fenceRole(initial: VigilConfig): RoleRunner {
  let cfg = initial;
  const log = moduleLog('fence', { role: 'fence' });
  let runner: FenceRunner | undefined;
  let resolveDone!: (c: number) => void;
  const done = new Promise<number>((r) => { resolveDone = r; });
  return {
    name: 'fence',
    done,
    async start() {
      runner = new FenceRunner(cfg.fence!, await realFenceNet(), log, nativeWatchdog);
      runner.done.then(resolveDone, () => resolveDone(1));
      await runner.start();
    },
    stop() {
      if (runner) runner.stop();
      else resolveDone(0);
    },
    canReload(next) {
      return next.fence && runner ? runner.canReload(next.fence) : undefined;
    },
    reload(next) {
      cfg = next;
      if (next.fence) runner?.reload(next.fence);
    },
    status() {
      return runner?.status() ?? { phase: 'starting' };
    },
    healthy(nowMs = performance.now()) {
      if (!runner) return false;
      const f = cfg.fence!;
      return nowMs - runner.lastProgressMs < 3 * f.checkIntervalMs + f.requestTimeoutMs + f.confirmCycles * f.neighbourProbeTimeoutMs + f.actionTimeoutMs * f.actions.length + 5000;
    },
    leave() {
      return runner ? runner.leave() : Promise.resolve([]);
    },
  };
}

function vipRole(initial: VigilConfig, notifier: Notifier): RoleRunner {
  let cfg = initial;
  const log = moduleLog('vip');
  let runner: VipRunner | undefined;
  // Container mode only: the wait for `running` + container_settle before the runner exists.
  let wait: { cw: ContainerWait; sinceMs: number } | undefined;
  let stopRequested = false;
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
          : await NetlinkAddresses.open(v.interface);
      } catch (e) {
        prober.close();
        throw e;
      }
      // Link state of the HA interface (the probe's interface in both modes).
      const links = await Netlink.open();
      const carrier = async () => {
        const l = await links.link(cfg.vip!.interface);
        return l ? l.up && l.carrier : undefined;
      };
      const begin = async () => {
        const io = realVipIo(() => cfg.vip!, prober, backend, log, carrier, () => links.close());
        runner = new VipRunner(cfg.vip!, io, log);
        runner.done.then(resolveDone, () => resolveDone(1));
        await runner.start();
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
      cfg = next;
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
      const bound = 3 * Math.max(v.checkIntervalMs, v.masterCheckIntervalMs) + 2 * v.probeTimeoutMs + v.commandTimeoutMs + 5000;
      return nowMs - runner.lastProgressMs < bound;
    },
  };
}
