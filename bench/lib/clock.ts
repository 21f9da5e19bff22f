/**
 * Layer: bench support. CLOCK_REALTIME in nanoseconds, for comparing this
 * process's instants with timestamps other processes took with the wall
 * clock (`date +%s%N` in a marker command, `Date.now()` in a Consul double,
 * pino's ISO `time`).
 *
 * Node offers the wall clock only in whole milliseconds (`Date.now()`), and
 * `performance.timeOrigin` is fixed at start (a later NTP step or slew makes
 * it drift). So the monotonic `process.hrtime.bigint()` is mapped onto the
 * wall clock with an offset found at a millisecond edge: spin until
 * `Date.now()` ticks over; at that moment the wall clock is within a few
 * microseconds of the new whole millisecond. Re-calibrate before each
 * measurement rather than once per run.
 */

/** A monotonic clock mapped onto CLOCK_REALTIME. */
export interface RealtimeClock {
  /** CLOCK_REALTIME now, ns since the epoch. */
  nowNs(): bigint;
  /** The offset added to `process.hrtime.bigint()`, ns. */
  offsetNs: bigint;
}

/** Offset (realtime − hrtime) at one millisecond edge; never above the true offset. */
function edgeOffsetNs(): bigint {
  const start = Date.now();
  let ms = start;
  let h = process.hrtime.bigint();
  // At most ~1 ms of spinning.
  while (ms === start) {
    h = process.hrtime.bigint();
    ms = Date.now();
  }
  // Detection can only be late (h taken before the tick seen): offset ≤ true offset.
  return BigInt(ms) * 1_000_000n - h;
}

/**
 * Calibrate a realtime clock: the largest of `edges` edge offsets (each
 * can only err low, by how late the tick was seen).
 */
export function calibrateRealtime(edges = 3): RealtimeClock {
  let best = edgeOffsetNs();
  for (let i = 1; i < edges; i++) {
    const o = edgeOffsetNs();
    if (o > best) best = o;
  }
  const offsetNs = best;
  return { offsetNs, nowNs: () => process.hrtime.bigint() + offsetNs };
}

/** ns → ms as a number. */
export const nsToMs = (ns: bigint): number => Number(ns) / 1e6;
