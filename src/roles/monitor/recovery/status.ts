/**
 * Layer: presentation (pure). The recovery part of `vigil monitor status`'s
 * text form, from the `recovery` key the runner adds to the status document
 * (absent without a recovery section: no lines).
 */

interface RecoveryStatusDoc {
  method?: string;
  running?: string[];
  hosts?: Record<string, { stage?: string; outcome?: string; spare?: string; forcedDown?: boolean; servers?: { total: number; done: number; failed: number }; evacuations?: Record<string, { step: string; attempts: number; dest?: string; error?: string }>; lastStep?: string }>;
  spares?: { name: string; inUse: boolean; holderSession?: string }[];
}

export function recoveryLines(doc: unknown): string[] {
  const r = (doc as { recovery?: RecoveryStatusDoc } | undefined)?.recovery;
  if (!r) return [];
  const out = ['', `recovery (method ${r.method ?? '?'}): ${r.running?.length ? `running for ${r.running.join(', ')}` : 'none running'}`];
  for (const [host, h] of Object.entries(r.hosts ?? {})) {
    const s = h.servers;
    out.push(`  ${host}: ${h.outcome ?? 'running'}, stage ${h.stage ?? '-'}${h.spare ? `, spare ${h.spare}` : ''}${h.forcedDown ? ', forced down' : ''}${s && s.total > 0 ? `, servers ${s.done}/${s.total} done${s.failed ? `, ${s.failed} failed` : ''}` : ''}${h.lastStep ? ` (last step ${h.lastStep})` : ''}`);
    for (const [id, e] of Object.entries(h.evacuations ?? {})) if (e.step !== 'done') out.push(`    ${id}: ${e.step} after ${e.attempts} attempt(s)${e.error ? `: ${e.error}` : ''}`);
  }
  for (const sp of r.spares ?? []) out.push(`  spare ${sp.name}: ${sp.inUse ? 'in use' : 'free'}${sp.holderSession ? ` (held by session ${sp.holderSession})` : ''}`);
  return out;
}
