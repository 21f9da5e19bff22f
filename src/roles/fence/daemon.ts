/**
 * Layer: roles. The self-fencing role as the daemon drives it: the runner
 * over the real network (Consul HTTP, netlink, ICMP) and the hardware
 * watchdog. Loaded only when a config runs the role.
 */
import { performance } from 'node:perf_hooks';
import type { VigilConfig } from '../../config/types';
import { moduleLog } from '../../log';
import { native } from '../../native';
import type { RoleContext, RoleRunner } from '../role';
import { FenceRunner, type WatchdogOps } from './runner';
import { realFenceNet } from './net';

const nativeWatchdog: WatchdogOps = {
  open(path, timeoutS) {
    const fd = native().watchdogOpen(path);
    try { native().watchdogSetTimeout(fd, timeoutS); } catch { /* some drivers have a fixed timeout */ }
    return fd;
  },
  pet: (fd) => native().watchdogKeepalive(fd),
  close: (fd, disarm) => native().watchdogClose(fd, disarm),
};

/** The runner factory of the registry entry. */
export function createFenceRunner(initial: VigilConfig, _ctx: RoleContext): RoleRunner {
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

