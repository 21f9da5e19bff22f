/**
 * Layer: codec (pure). Where recovery lives in KV and the `/v1/txn`
 * operations that write it. Every write starts with `check-session` on the
 * host's incident key: a monitor whose claim is gone (session invalidated,
 * or taken by another after lock-delay) writes nothing (N-17).
 *
 *   <prefix>/compute_nodes/<host>/recovery   the recovery record (JSON, record.ts)
 *   <prefix>/ha_nodes/<ha>/status/in_use     os_nova's spare latch: `True` while
 *                                            claimed, locked by the incident's session
 *   <prefix>/ha_nodes/<ha>/holder            vigil's: {host, incident, step, by}, so a
 *                                            claim whose holder died before its takeover
 *                                            finished is known as such and given back (N-19)
 */
import { COMPUTE_KEYS, HA_KEYS, checkSessionOp, computeKey, encodeBool, encodeJson, haKey, lockOp, setOp, unlockOp, type TxnOp } from '../kvschema';
import type { RecoveryRecord, SpareView } from './record';

/** The record's sub-key of a compute node. */
export const RECOVERY_KEY = 'recovery';
/** vigil's holder record of a spare. */
export const HOLDER_KEY = 'holder';

export const recordKey = (prefix: string, host: string): string => computeKey(prefix, host, RECOVERY_KEY);
export const inUseKey = (prefix: string, ha: string): string => haKey(prefix, ha, HA_KEYS.inUse);
export const holderKey = (prefix: string, ha: string): string => haKey(prefix, ha, HOLDER_KEY);
const incidentKey = (prefix: string, host: string) => computeKey(prefix, host, COMPUTE_KEYS.incident);

/** Write the record under the claim. */
export function recordOps(prefix: string, host: string, session: string, r: RecoveryRecord): TxnOp[] {
  return [checkSessionOp(incidentKey(prefix, host), session), setOp(recordKey(prefix, host), encodeJson(r))];
}

/**
 * Claim a spare: in one txn, the incident claim is still ours, `in_use` is
 * unchanged since it was read free (check-index; absent: check-not-exists),
 * `in_use` is locked by the incident's session with `True` (a dead
 * claimer's session releases it, N-19), the holder record says whose, and
 * the recovery record names the spare. All or nothing.
 */
export function claimSpareOps(prefix: string, host: string, session: string, spare: SpareView, r: RecoveryRecord, by: string): TxnOp[] {
  const key = inUseKey(prefix, spare.name);
  const guard: TxnOp = spare.modifyIndex === 0
    ? { KV: { Verb: 'check-not-exists', Key: key } }
    : { KV: { Verb: 'check-index', Key: key, Index: spare.modifyIndex } };
  return [
    checkSessionOp(incidentKey(prefix, host), session),
    guard,
    lockOp(key, encodeBool(true), session),
    setOp(holderKey(prefix, spare.name), encodeJson({ host, incident: r.incident, step: 'claimed', by })),
    setOp(recordKey(prefix, host), encodeJson(r)),
  ];
}

/** The takeover finished: the holder says so (the spare is now in use for good, until `release-spare`). */
export function takenOverOps(prefix: string, host: string, session: string, spare: string, r: RecoveryRecord, by: string): TxnOp[] {
  return [
    checkSessionOp(incidentKey(prefix, host), session),
    setOp(holderKey(prefix, spare), encodeJson({ host, incident: r.incident, step: 'taken-over', by })),
    setOp(recordKey(prefix, host), encodeJson(r)),
  ];
}

/** Give a spare back after its takeover failed: `in_use` False (unlocked when we hold it), holder removed. */
export function releaseSpareOps(prefix: string, host: string, session: string, spare: SpareView, r: RecoveryRecord): TxnOp[] {
  const key = inUseKey(prefix, spare.name);
  return [
    checkSessionOp(incidentKey(prefix, host), session),
    spare.session === session ? unlockOp(key, encodeBool(false), session) : { KV: { Verb: 'cas', Key: key, Value: Buffer.from(encodeBool(false)).toString('base64'), Index: spare.modifyIndex } },
    { KV: { Verb: 'delete', Key: holderKey(prefix, spare.name) } },
    setOp(recordKey(prefix, host), encodeJson(r)),
  ];
}

/**
 * The incident's end: the record's outcome, the journal's last step (the
 * incident key unlocked), and
 * (on success only) `status/recovered` = True — in one txn, so the latch
 * is written last and never without the end it reports.
 */
export function finishOps(prefix: string, host: string, session: string, r: RecoveryRecord, journal: Record<string, unknown>): TxnOp[] {
  const ops: TxnOp[] = [checkSessionOp(incidentKey(prefix, host), session), setOp(recordKey(prefix, host), encodeJson(r))];
  if (r.outcome === 'recovered') ops.push(setOp(computeKey(prefix, host, COMPUTE_KEYS.recovered), encodeBool(true)));
  // Unlocked with the journal's last step as its value: the incident is over. (A later `?release=` by
  // the claim's ConsulLock is then a no-op, so the claim's first value never overwrites this end.)
  ops.push(unlockOp(incidentKey(prefix, host), encodeJson(journal), session));
  return ops;
}

/** `vigil monitor release-spare HA`: an operator's override (plain sets). */
export function operatorReleaseSpareOps(prefix: string, ha: string): TxnOp[] {
  return [setOp(inUseKey(prefix, ha), encodeBool(false)), { KV: { Verb: 'delete', Key: holderKey(prefix, ha) } }];
}
