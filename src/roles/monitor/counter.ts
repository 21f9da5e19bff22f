/**
 * Layer: policy (pure). Confirmation: a host is down on a network after
 * `confirm` consecutive down samples (hostha: 3 × 10 s, K-16/K-17).
 *
 * - `down` counts (+1), `up` resets to 0 (the first up, like hostha's
 *   "up in any of the last N samples"), `unknown` neither counts nor resets
 *   (an agent that does not answer says nothing about the host).
 * - The counts live in KV so a restart or a second monitor continues them:
 *   per network in vigil's `internal/number_fails_by_network`, and their
 *   maximum in os_nova's `internal/number_fails` (N-11, N-12), which os_nova
 *   tools keep reading as the host's count.
 * - Both keys are written in one txn of `cas` ops quoting the ModifyIndex
 *   read (0 for an absent key), so two monitors never lose an update
 *   (N-17); on a CAS failure the runner re-reads and applies the same
 *   samples again. Each monitor's sample is evidence, so with two monitors
 *   a host is confirmed after `confirm` samples from either.
 */
import type { SampleState } from './samples';
import type { TxnOp, Versioned } from './kvschema';
import { COMPUTE_KEYS, casOp, computeKey, encodeJson } from './kvschema';

/** Consecutive down samples per network. */
export type FailCounts = Readonly<Record<string, number>>;

/** The counts as read from KV, with what a CAS write must quote. */
export interface StoredCounts {
  numberFails?: Versioned<number>;
  failsByNetwork?: Versioned<Record<string, number>>;
}

/** A network's confirmation state. `pending`: down, not yet `confirm` times. */
export type ConfirmState = 'up' | 'down' | 'pending' | 'unknown';

/** Counts never grow past this (a host down for years must not overflow the KV int). */
export const MAX_COUNT = 1_000_000;

/**
 * The per-network counts as stored. When only os_nova's `number_fails`
 * exists (written by os_nova or before vigil ran), no network is credited
 * with it: the counts start from 0 rather than guess which network failed.
 */
export function storedCounts(s: StoredCounts, networks: readonly string[]): Record<string, number> {
  const by = s.failsByNetwork?.value ?? {};
  return Object.fromEntries(networks.map((n) => [n, by[n] ?? 0]));
}

/** Apply one round of samples. Pure. Networks without a sample are unknown. */
export function applySamples(counts: FailCounts, samples: Readonly<Record<string, SampleState>>, networks: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of networks) {
    const c = counts[n] ?? 0;
    const s = samples[n] ?? 'unknown';
    out[n] = s === 'up' ? 0 : s === 'down' ? Math.min(c + 1, MAX_COUNT) : c;
  }
  return out;
}

/**
 * Each network's state after this round: `down` at `confirm` or more,
 * `pending` below it while the last sample was down, `up` when the last
 * sample was up, `unknown` when it was unknown and nothing was pending…
 * and a confirmed down stays down through unknown samples (it was not
 * reset), so a dead agent does not undo a confirmation.
 */
export function confirmStates(counts: FailCounts, samples: Readonly<Record<string, SampleState>>, networks: readonly string[], confirm: number): Record<string, ConfirmState> {
  const out: Record<string, ConfirmState> = {};
  for (const n of networks) {
    const c = counts[n] ?? 0;
    const s = samples[n] ?? 'unknown';
    if (s === 'up') out[n] = 'up';
    else if (c >= confirm) out[n] = 'down';
    else if (s === 'down') out[n] = 'pending';
    else out[n] = 'unknown';
  }
  return out;
}

/** os_nova's host-level count: the largest per-network count. */
export function hostCount(counts: FailCounts): number {
  return Math.max(0, ...Object.values(counts));
}

const same = (a: FailCounts, b: FailCounts) => {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
};

/** The write a round needs: none when nothing changed. */
export interface CounterWrite {
  counts: Record<string, number>;
  numberFails: number;
  /** `/v1/txn` body: cas on both keys with the read indexes. */
  ops: TxnOp[];
}

/**
 * The CAS write that takes the stored counts to `next`, or undefined when
 * both keys already hold those values (no write, no index bump).
 */
export function counterWrite(prefix: string, host: string, stored: StoredCounts, next: FailCounts): CounterWrite | undefined {
  const numberFails = hostCount(next);
  const countsSame = stored.failsByNetwork !== undefined && same(stored.failsByNetwork.value, next);
  const nfSame = stored.numberFails?.value === numberFails;
  if (countsSame && nfSame) return undefined;
  const counts = { ...next };
  return {
    counts,
    numberFails,
    ops: [
      casOp(computeKey(prefix, host, COMPUTE_KEYS.numberFails), String(numberFails), stored.numberFails?.modifyIndex ?? 0),
      casOp(computeKey(prefix, host, COMPUTE_KEYS.failsByNetwork), encodeJson(counts), stored.failsByNetwork?.modifyIndex ?? 0),
    ],
  };
}
