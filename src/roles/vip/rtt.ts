/**
 * Layer: role logic (pure). The probe timeout learnt from the HA IP's round trip.
 *
 * A fixed probe timeout must be sized for the worst link an operator might
 * run on, so on a LAN (round trips well under a millisecond) it spends most
 * of the detection time waiting for answers that either came long ago or
 * never will. Like TCP's retransmission timer (RFC 6298), the slave keeps a
 * smoothed round trip and its variation from every answer and waits
 * `srtt + 4 × rttvar`, clamped to [`probe_timeout_min`, `probe_timeout`]:
 *
 * - the floor keeps one late answer (a busy master, a congested switch)
 *   from counting as silence: the default 20 ms is some twenty LAN round
 *   trips, and an ARP answer comes from the holder's kernel, not from a
 *   process that may be descheduled;
 * - the ceiling is the configured `probe_timeout`, also used before any
 *   answer has been heard (a slave started beside a dead master);
 * - round trips are the time the native layer read the answer (before any
 *   JavaScript runs; right after the send when the answer is already
 *   queued) minus the send time: a stall of our own process can only
 *   lengthen a sample, which raises the timeout, the safe direction.
 *
 * The rule that keeps a stalled slave from a false takeover is the
 * prober's, not this file's: silence is declared only after the socket has
 * been drained, and an answer that is there counts, however late we read it.
 */

/** The estimator's state (ms). `samples`: answers folded in since start. */
export interface RttEstimate {
  srttMs: number;
  rttvarMs: number;
  samples: number;
}

/** RFC 6298's gains: 1/8 for the mean, 1/4 for the variation. */
const ALPHA = 1 / 8;
const BETA = 1 / 4;

/** Fold one measured round trip into the estimate (a negative or non-finite sample is ignored). */
export function addRttSample(est: RttEstimate | undefined, rttMs: number): RttEstimate | undefined {
  if (!Number.isFinite(rttMs) || rttMs < 0) return est;
  if (!est) return { srttMs: rttMs, rttvarMs: rttMs / 2, samples: 1 };
  const rttvarMs = (1 - BETA) * est.rttvarMs + BETA * Math.abs(est.srttMs - rttMs);
  const srttMs = (1 - ALPHA) * est.srttMs + ALPHA * rttMs;
  return { srttMs, rttvarMs, samples: est.samples + 1 };
}

/**
 * The timeout of the next probe: `probe_timeout` until an answer has been
 * measured, then `srtt + 4 × rttvar` within [minMs, maxMs], in whole ms.
 */
export function learntTimeoutMs(est: RttEstimate | undefined, minMs: number, maxMs: number): number {
  if (!est || minMs >= maxMs) return maxMs;
  return Math.min(maxMs, Math.max(minMs, Math.ceil(est.srttMs + 4 * est.rttvarMs)));
}
