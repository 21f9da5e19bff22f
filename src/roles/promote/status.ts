/**
 * Layer: roles, pure. `vigil status`'s lines for the promote role's status
 * JSON (PromoteRunner.status()).
 */

/** Human lines for the `promote` entry of the daemon's status. */
export function formatPromoteStatus(p: Record<string, any>): string[] {
  const lines: string[] = [];
  lines.push(`promote ${p.name}: ${p.phase}${p.phase === 'promoting' || p.phase === 'demoting' ? ` (step ${p.step})` : ''} on site ${p.site}, mode ${p.mode}`);
  if (p.phase === 'stopped') lines.push(`  STOPPED, operator needed: ${p.reason ?? 'no reason recorded'}`);
  else if (p.reason) lines.push(`  last reason: ${p.reason}`);
  lines.push(`  witness: ${p.witness ?? 'not contacted yet'}; lease: ${p.lease ? `held (LockIndex ${p.lease.lockIndex}, session ${p.lease.session}, ${p.lease.remainingMs} ms left)` : 'not held'}`);
  if (p.lastCheck) lines.push(`  last check: peer ${p.lastCheck.peer}, ready ${p.lastCheck.ready}${p.lastCheck.prereq === undefined ? '' : `, prereq ${p.lastCheck.prereq ? 'met' : 'not met'}`} at ${p.lastCheck.at}`);
  if (p.granted) lines.push('  granted by the operator');
  return lines;
}
