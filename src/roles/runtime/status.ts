/**
 * Layer: roles, pure. `vigil status`'s lines for the runtime role's status
 * JSON (RuntimePublisher.status()).
 */

const at = (ms: unknown): string => (typeof ms === 'number' ? new Date(ms).toISOString() : 'never');

/** Human lines for the `runtime` entry of the daemon's status. */
export function formatRuntimeStatus(s: Record<string, any>): string[] {
  const last = s.last as Record<string, any> | undefined;
  const result = last ? `${last.result}${last.reason ? ` (${last.reason}: ${last.detail})` : last.detail ? ` (${last.detail})` : ''} at ${at(last.atMs)}` : 'no cycle yet';
  return [
    `runtime: publishing ${s.file} to ${s.key} every ${Math.round((s.intervalMs ?? 0) / 1000)}s; last cycle: ${result}`,
    `  last publish: ${at(s.lastPublishAtMs)}${s.modifyIndex !== undefined ? `, ModifyIndex ${s.modifyIndex}` : ''}; publishes ${s.publishes ?? 0} in ${s.cycles ?? 0} cycles`,
  ];
}
