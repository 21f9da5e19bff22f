/**
 * Layer: roles, pure. `vigil status`'s lines for the self-fencing role's
 * status JSON (FenceRunner.status()).
 */

/** Human lines for the `fence` entry of the daemon's status. */
export function formatFenceStatus(fence: Record<string, any>): string[] {
  const lines = [`fence: ${fence.phase}, verdict: ${fence.verdict}; isolated cycles ${fence.fenceCount}/${fence.confirmCycles}; servers seen: ${fence.seenServers ? 'yes' : 'no'}${fence.dryRun ? ' (dry run)' : ''}`];
  for (const a of (fence.agents ?? []) as Record<string, any>[]) {
    const st = a.state as Record<string, any>;
    const what = st.kind === 'client' ? `client, known_servers ${st.knownServers}` : st.kind === 'unknown' ? `unknown (${st.reason})` : st.kind;
    const proc = a.process ? `; process ${a.process.running ? `pid ${a.process.pid}` : 'not running'}, restarts ${a.process.restarts}` : '';
    lines.push(`  agent ${a.name} ${a.url}: ${what}${proc}`);
  }
  return lines;
}
