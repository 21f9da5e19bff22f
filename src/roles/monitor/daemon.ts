/**
 * Layer: roles. The monitor role as the daemon drives it: the runner over
 * the real Consul agents, BMCs and ARP. Loaded only when a config runs it.
 */
import { performance } from 'node:perf_hooks';
import type { VigilConfig } from '../../config/types';
import { moduleLog } from '../../log';
import type { RoleContext, RoleRunner } from '../role';
import { createRealIo } from './io';
import { MonitorRunner } from './runner';
import { recoveryIoFromConfig } from './recovery/io';

/** The runner factory of the registry entry. */
export function createMonitorRunner(initial: VigilConfig, _ctx: RoleContext): RoleRunner {
  let cfg = initial;
  const log = moduleLog('monitor', { role: 'monitor' });
  let runner: MonitorRunner | undefined;
  let resolveDone!: (c: number) => void;
  const done = new Promise<number>((r) => { resolveDone = r; });
  return {
    name: 'monitor',
    done,
    async start() {
      // Secret files, default passwords and a KV tree that does not decode throw a ConfigError: exit 2.
      runner = new MonitorRunner(cfg.monitor!, cfg.node, createRealIo(cfg, cfg.monitor!, log), log, recoveryIoFromConfig(cfg.monitor!, log));
      runner.done.then(resolveDone, () => resolveDone(1));
      await runner.start();
    },
    stop() {
      if (runner) runner.stop();
      else resolveDone(0);
    },
    canReload(next) {
      if (!next.monitor) return 'the monitor section was removed';
      const a = cfg.monitor!;
      const b = next.monitor;
      if (JSON.stringify(a.networks) !== JSON.stringify(b.networks) || a.kvNetwork !== b.kvNetwork || a.kvPrefix !== b.kvPrefix) return 'monitor.networks, kv_network and kv_prefix need a restart';
      return undefined;
    },
    reload(next) {
      cfg = next;
      if (next.monitor) runner?.reload(next.monitor);
    },
    status() {
      return runner?.status() ?? { phase: 'starting' };
    },
    healthy(nowMs = performance.now()) {
      if (!runner) return false;
      return nowMs - runner.lastProgressMs < 3 * cfg.monitor!.intervalMs + 10_000;
    },
  };
}
