/**
 * Layer: roles. The promote role as the daemon drives it: the run lock
 * (one scheduler: the daemon's, or a `run-once`'s), the journal store and
 * the real I/O wired to the runner. Loaded only when a config runs the role.
 */
import type { VigilConfig } from '../../config/types';
import { moduleLog } from '../../log';
import type { RoleContext, RoleRunner } from '../role';
import type { PromoteConfig } from './config';
import { realPromoteIo } from './io';
import { PromoteRunner } from './runner';
import { realJournalStore, takeRunLock } from './store';

/** The runner factory of the registry entry. */
export function createPromoteRunner(initial: VigilConfig, _ctx: RoleContext): RoleRunner {
  const cfg = initial.promote as PromoteConfig;
  const log = moduleLog('promote', { role: 'promote' });
  let runner: PromoteRunner | undefined;
  let unlock: (() => void) | undefined;
  let resolveDone!: (c: number) => void;
  const done = new Promise<number>((r) => { resolveDone = r; });
  return {
    name: 'promote',
    done,
    async start() {
      const store = realJournalStore(cfg.journalDir, cfg.name);
      unlock = takeRunLock(cfg.journalDir, cfg.name);
      runner = new PromoteRunner(cfg, realPromoteIo(cfg), store, log);
      runner.done.then((c) => { unlock?.(); resolveDone(c); }, () => { unlock?.(); resolveDone(1); });
      await runner.start();
    },
    stop() { if (runner) runner.stop(); else resolveDone(0); },
    canReload(next) {
      return JSON.stringify(next.promote) === JSON.stringify(cfg) ? undefined : 'changing the promote section needs a restart (vigil restart): the lease and the journal are tied to it';
    },
    reload() { /* canReload refuses every change */ },
    status() { return runner ? runner.status() : { name: cfg.name, site: cfg.site, mode: cfg.mode, phase: 'starting', step: 0 }; },
    healthy(nowMs) { return runner ? runner.healthy(nowMs) : false; },
  };
}
