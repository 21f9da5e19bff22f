/**
 * Layer: policy (pure, injectable clock). The client side of Consul's
 * blocking queries (shared/spec/consul-api.md §3j, blocking.mdx):
 * 1. an index lower than the last one (snapshot restore, restart) resets to 0;
 * 2. an index ≤ 0 is replaced by 1, never looping with 0;
 * 3. the loop is rate-limited by a token bucket (burst 2, then one request
 *    per `refillMs`) instead of sleeping every time.
 * A return is not proof of a change: callers compare the data.
 */
import type { Read, ReadOptions } from './wire';

/**
 * The index to send next, from the last one sent and the one just received.
 * `undefined` (no header) keeps the previous one.
 */
export function nextQueryIndex(previous: number, received: number | undefined): number {
  if (received === undefined) return previous;
  if (received < previous) return 0; // rule 1: went backwards, start again
  if (received <= 0) return 1; // rule 2
  return received;
}

/** A token bucket on an injected monotonic clock (ms). */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(private readonly burst: number, private readonly refillMs: number, private readonly now: () => number) {
    this.tokens = burst;
    this.last = now();
  }

  /** Take a token; returns 0 when one was free, else how many ms until one is. */
  take(): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (t - this.last) / this.refillMs);
    this.last = t;
    if (this.tokens >= 1) { this.tokens -= 1; return 0; }
    return Math.ceil((1 - this.tokens) * this.refillMs);
  }
}

/** Options of {@link BlockingQuery}. */
export interface BlockingQueryOptions {
  /** Server-side wait of each read (default 5 min). */
  waitMs?: number;
  consistency?: ReadOptions['consistency'];
  /** Token bucket: burst (default 2) and the refill period (default 15 s, the docs' advice while results churn). */
  burst?: number;
  refillMs?: number;
  /** Monotonic clock and sleep, injectable for tests. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * One watched read: each {@link next} waits for a token, reads with the
 * current index and applies the index rules. Errors are thrown to the
 * caller (who decides unknown/hold); the index is kept across them.
 */
export class BlockingQuery<T> {
  /** The index the next read sends (0: a non-blocking read). */
  index = 0;
  private readonly bucket: TokenBucket;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly read: (opts: ReadOptions) => Promise<Read<T>>, private readonly opts: BlockingQueryOptions = {}) {
    const now = opts.now ?? (() => performance.now());
    this.bucket = new TokenBucket(opts.burst ?? 2, opts.refillMs ?? 15_000, now);
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** The next answer: at once the first time, then when the index passes the last one or the wait ends. */
  async next(): Promise<Read<T>> {
    for (let wait = this.bucket.take(); wait > 0; wait = this.bucket.take()) await this.sleep(wait);
    const r = await this.read({ index: this.index, waitMs: this.opts.waitMs, consistency: this.opts.consistency });
    this.index = nextQueryIndex(this.index, r.meta.index);
    return r;
  }
}
