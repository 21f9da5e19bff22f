/**
 * Layer: role, pure projection. What one step of the HA IP machine means for
 * the metrics: the machine's events and states already say everything (a
 * probe's outcome, a role change, a takeover, a settled conflict), so the
 * runner hands each step here instead of sprinkling counters through its
 * effects.
 */
import { countConflict, countProbe, countTakeover, setRoleState } from '../../metrics';
import type { VipEvent, VipState } from './machine';

/** Record one machine step (`before` → `after` on `ev`). */
export function recordVipStep(before: VipState, ev: VipEvent, after: VipState): void {
  if (ev.type === 'probed') {
    // Rounds a watch passed before this outcome were answered ones (a slave's; a master's pass in silence, uncounted here).
    for (const rtt of ev.rttsMs ?? []) countProbe('vip', ev.purpose, 'answered', rtt);
    // A probe that could not be made (link down, socket error) is "unknown", never "silent".
    countProbe('vip', ev.purpose, ev.result === 'error' ? 'unknown' : ev.result, ev.result === 'answered' ? ev.rttMs : undefined);
  }
  if (ev.type === 'watched') {
    // A watch's rounds, counted when the runner hears of them (at most a watch span late).
    if (ev.mac !== undefined) for (const rtt of ev.rttsMs) countProbe('vip', ev.purpose, 'answered', rtt);
    else for (let i = 0; i < ev.rounds; i++) countProbe('vip', ev.purpose, 'silent');
  }
  setRoleState('vip', after.role);
  if (after.takeovers > before.takeovers) countTakeover('vip', 'up');
  if (after.stepDowns > before.stepDowns) countTakeover('vip', 'down');
  if (after.lastConflict && after.lastConflict !== before.lastConflict) countConflict('vip', after.lastConflict.kept);
}
