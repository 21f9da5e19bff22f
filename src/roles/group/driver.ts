/**
 * Layer: role `group`, driven by another role (`vip.group: NAME`): the
 * group's activate and deactivate exactly as `vigil group` runs them
 * (preflight, owner lock, ordered start with roll-back, reverse stop), in
 * the group's turn against `vigil group` processes and one at a time.
 */
import type { VigilConfig } from '../../config/types';
import { errorMessage } from '../../errors';
import { RealAddressIo } from './io';
import { lockAfter } from './owner-lock';
import { OpQueue } from './queue';
import { readJournal, takeTurn } from './state';
import type { GroupConfig } from './types';
import { wireGroup } from './wire';

/** activate / deactivate of one group → ok (exit 0) and one line. */
export interface GroupDriver {
  run(op: 'activate' | 'deactivate'): Promise<{ ok: boolean; detail: string; exit: number }>;
  /** Why the group is not active (a member not recorded running in its journal), or undefined when it is. */
  inactive(): string | undefined;
  close(): void;
}

/** The driver of group `name` of a loaded config. */
export function groupDriver(cfg: VigilConfig, name: string): GroupDriver {
  const g = (cfg as unknown as { group?: Map<string, GroupConfig> }).group?.get(name);
  if (!g) throw new Error(`no group '${name}' in ${cfg.file}`);
  const io = new RealAddressIo();
  const wired = wireGroup(g, { io, node: cfg.node, dry: false, withLock: true });
  const queue = new OpQueue();
  return {
    run: (op) => queue.run(async () => {
      try {
        const turn = await takeTurn(g.stateDir, g.name, g.lockTimeoutMs);
        try {
          wired.reload();
          const rep = op === 'activate' ? await wired.engine.activate() : await wired.engine.deactivate();
          const lock = wired.lock ? await lockAfter(wired.lock, op, rep.exit) : undefined;
          const failed = rep.steps?.filter((s) => !s.ok).map((s) => `${s.op} ${s.member}: ${s.detail}`) ?? [];
          return { ok: rep.exit === 0, exit: rep.exit, detail: `exit ${rep.exit}: ${rep.summary}${failed.length ? ` [${failed.join('; ')}]` : ''}${lock ? `; ${lock}` : ''}` };
        } finally { turn.release(); }
      } catch (e) {
        return { ok: false, exit: 1, detail: `${op} ${g.name}: ${errorMessage(e)}` };
      }
    }),
    inactive: () => {
      let members: Record<string, string>;
      try { members = readJournal(g.stateDir, g.name).members; } catch (e) { return `journal unreadable: ${errorMessage(e)}`; }
      const down = g.members.filter((m) => members[m.name] !== 'running').map((m) => `${m.name} ${members[m.name] ?? 'never started'}`);
      return down.length > 0 ? `group ${g.name}: ${down.join(', ')}` : undefined;
    },
    close: () => io.close(),
  };
}
