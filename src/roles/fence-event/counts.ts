/**
 * Layer: role I/O. Running totals of the fence-event handler's verdicts, in
 * a small JSON file beside the handled-events store.
 *
 * The handler is not a daemon: Consul starts it once per delivery and it
 * exits. To put its verdicts on the daemon's metrics endpoint it adds them to
 * this file under the store's lock, and the daemon reads the file when it is
 * scraped. Reasons are the verifier's own codes (a fixed set), so the labels
 * stay bounded whatever a sender puts in an event.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DeliveryResult } from '../../consul/event';

/** The file's name in state_dir. */
export const COUNTS_FILE = 'fence-events-counts.json';

/** Accepted events, rejected events by reason, and whole deliveries refused by reason. */
export interface FenceEventCounts {
  accepted: number;
  rejected: Record<string, number>;
  deliveriesRefused: Record<string, number>;
}

/** Where the counts of a config's handler live. */
export function countsPath(stateDir: string): string {
  return path.join(stateDir, COUNTS_FILE);
}

const empty = (): FenceEventCounts => ({ accepted: 0, rejected: {}, deliveriesRefused: {} });

const isCountMap = (v: unknown): v is Record<string, number> => typeof v === 'object' && v !== null && !Array.isArray(v)
  && Object.entries(v).every(([k, n]) => /^[a-z-]{1,40}$/.test(k) && Number.isSafeInteger(n) && (n as number) >= 0);

/** The counts in `file`; zeros when it is missing or not what this module writes. */
export function readCounts(file: string): FenceEventCounts {
  let v: unknown;
  try { v = JSON.parse(fs.readFileSync(file, 'utf8')); } catch { return empty(); }
  const o = v as Partial<FenceEventCounts> | null;
  if (!o || !Number.isSafeInteger(o.accepted) || (o.accepted as number) < 0 || !isCountMap(o.rejected) || !isCountMap(o.deliveriesRefused)) return empty();
  return { accepted: o.accepted!, rejected: o.rejected, deliveriesRefused: o.deliveriesRefused };
}

/** Add one delivery's verdicts (call under the handled-events store's lock). */
export function addDelivery(file: string, r: DeliveryResult): FenceEventCounts {
  const c = readCounts(file);
  if (!r.ok) c.deliveriesRefused[r.reason] = (c.deliveriesRefused[r.reason] ?? 0) + 1;
  for (const d of r.decisions) {
    if (d.accept) c.accepted++;
    else c.rejected[d.reason] = (c.rejected[d.reason] ?? 0) + 1;
  }
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(c)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
  return c;
}
