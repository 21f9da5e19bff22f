/**
 * Layer: roles, pure. `vigil status`'s lines for the HA IP role's status
 * JSON (VipRunner.status(), or the placeholder while it starts or waits for
 * its container).
 */

/** Human lines for the `vip` entry of the daemon's status. */
export function formatVipStatus(vip: Record<string, any>): string[] {
  const lines: string[] = [];
  const lp = vip.lastProbe as { at: string; result: string; mac?: string; rttMs?: number; error?: string } | undefined;
  lines.push(`vip: ${vip.role}${vip.phase && vip.phase !== 'steady' ? ` (${vip.phase})` : ''} since ${vip.since} on ${vip.interface}, HA IP ${vip.haIp}`);
  const ct = vip.container as { container: string; phase: string; status?: string; error?: string; polls: number } | undefined;
  if (ct) lines.push(`  container ${ct.container}: ${ct.phase}${ct.status ? ` (vzlist says ${ct.status})` : ''}${ct.error ? ` (${ct.error})` : ''}; ${ct.polls} polls`);
  lines.push(`  last probe: ${lp ? `${lp.result}${lp.mac ? ` from ${lp.mac}` : ''}${lp.rttMs !== undefined ? ` in ${lp.rttMs} ms` : ''}${lp.error ? ` (${lp.error})` : ''} at ${lp.at}` : 'none yet'}`);
  lines.push(`  failures: ${vip.failures}; takeovers: ${vip.takeovers}; step-downs: ${vip.stepDowns}`);
  lines.push(`  held: ${(vip.held as string[]).join(', ') || 'nothing'}`);
  const nb = vip.neighbours as { note: string; lastAnswered?: boolean; lastAt?: string } | undefined;
  if (nb) lines.push(`  neighbours: ${nb.note}${nb.lastAnswered !== undefined ? `; last ${nb.lastAnswered ? 'answered' : 'all silent'} at ${nb.lastAt}` : ''}`);
  const arp = vip.arp as { delivered: number; sent: number } | undefined;
  if (arp) lines.push(`  ARP frames: ${arp.delivered} delivered to the daemon by the kernel filter, ${arp.sent} sent`);
  if (vip.carrier !== undefined) lines.push(`  carrier: ${vip.carrier ? 'up' : 'down'}`);
  if (vip.track) lines.push(`  track: ${JSON.stringify(vip.track)}`);
  return lines;
}
