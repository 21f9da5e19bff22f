/**
 * Layer: daemon. The roles a config switches on, behind one small interface
 * the daemon drives (start, stop, reload, status, health).
 */
import { performance } from 'node:perf_hooks';
import type { VigilConfig } from '../config/types';
import type { Logger } from '../log';
import { moduleLog } from '../log';
import { ArpProber } from '../net/arp/prober';
import { NetlinkAddresses, type AddressBackend } from '../actions/addresses';
import { VipRunner } from '../roles/vip/runner';
import { realVipIo } from '../roles/vip/io';
import { FenceRunner, type WatchdogOps } from '../roles/fence/runner';
import { realFenceNet } from '../roles/fence/net';
import { native } from '../native';

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
export function createRoles(cfg: VigilConfig, _log: Logger): RoleRunner[] {
  const roles: RoleRunner[] = [];
  if (cfg.vip) roles.push(vipRole(cfg));
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

/** Backend factory, replaceable for the vzctl backend. */
export type BackendFactory = (cfg: VigilConfig) => Promise<AddressBackend>;

function vipRole(initial: VigilConfig): RoleRunner {
  let cfg = initial;
  const log = moduleLog('vip', { role: 'inactive' });
  let runner: VipRunner | undefined;
  let resolveDone!: (c: number) => void;
  const done = new Promise<number>((r) => { resolveDone = r; });
  return {
    name: 'vip',
    done,
    async start() {
      const v = cfg.vip!;
      const prober = ArpProber.open(v.interface);
      const backend: AddressBackend = await NetlinkAddresses.open(v.interface);
      const io = realVipIo(() => cfg.vip!, prober, backend, log);
      runner = new VipRunner(v, io, log);
      runner.done.then(resolveDone, () => resolveDone(1));
      await runner.start();
    },
    stop() {
      if (runner) runner.stop();
      else resolveDone(0);
    },
    canReload(next) {
      if (!next.vip || !runner) return undefined;
      return runner.canReload(next.vip);
    },
    reload(next) {
      cfg = next;
      if (next.vip) runner?.reload(next.vip);
    },
    status() {
      return runner?.status() ?? { role: 'inactive' };
    },
    healthy(nowMs = performance.now()) {
      if (!runner) return false;
      const v = cfg.vip!;
      const bound = 3 * Math.max(v.checkIntervalMs, v.masterCheckIntervalMs) + 2 * v.probeTimeoutMs + v.commandTimeoutMs + 5000;
      return nowMs - runner.lastProgressMs < bound;
    },
  };
}
