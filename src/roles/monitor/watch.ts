/**
 * Layer: I/O. One Consul read kept current in the background by a blocking
 * query (shared/spec/consul-api.md §3j, src/consul/blocking.ts), so that a
 * sample round reads the latest view instead of asking again: an idle
 * round costs no request for it, a change arrives as soon as Consul has it.
 *
 * The view is never trusted beyond what the plain read gave before:
 * - the background read failed → the next {@link Watch.current} reads at
 *   once, non-blocking, and throws if that fails too (the caller turns that
 *   into `unknown`, exactly as a failed per-round read did);
 * - the view is older than a blocking read can legitimately take
 *   (`staleMs`) → read at once (a hung watch is never a silent old view);
 * - the caller wrote (a txn, a claim) → {@link Watch.invalidate}, and the
 *   next round reads at once: it must see its own write.
 * After an error the background loop drops its index, so its next read is
 * non-blocking and the watch recovers as soon as the agent answers.
 */
import { performance } from 'node:perf_hooks';
import { BlockingQuery } from '../../consul/blocking';
import type { Read, ReadOptions } from '../../consul/wire';
import { errorMessage } from '../../errors';

/** Timing of a watch. */
export interface WatchOptions {
  /** Server-side wait of each blocking read. */
  waitMs: number;
  /** Token bucket refill (burst 2): while results churn, at most one read per this. */
  refillMs: number;
  /** A view older than this is read again before use (≥ waitMs × 17/16 + the request timeout). */
  staleMs: number;
  now?: () => number;
}

interface Held<T> { value: T; index: number; atMs: number; seq: number }

export class Watch<T> {
  private held: Held<T> | undefined;
  private failed: string | undefined;
  private dirty = false;
  private started = false;
  private stopped = false;
  private seq = 0;
  private readonly query: BlockingQuery<T>;
  private readonly now: () => number;
  private readonly abort = new AbortController();
  /** Reads sent, background and direct (the bench counts them). */
  reads = 0;

  /** `read` sends one request with those options; `signal` aborts it when the watch stops. */
  constructor(private readonly read: (o: ReadOptions, signal: AbortSignal) => Promise<Read<T>>, private readonly opts: WatchOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.query = new BlockingQuery<T>((o) => this.read(o, this.abort.signal), {
      waitMs: opts.waitMs, refillMs: opts.refillMs, now: this.now,
      // The rate limit's pause ends early when the watch stops (nothing keeps a stopped monitor alive).
      sleep: (ms) => new Promise((resolve, reject) => {
        if (this.abort.signal.aborted) { reject(new Error('watch stopped')); return; }
        const stop = () => { clearTimeout(timer); reject(new Error('watch stopped')); };
        const timer = setTimeout(() => { this.abort.signal.removeEventListener('abort', stop); resolve(); }, ms);
        this.abort.signal.addEventListener('abort', stop, { once: true });
      }),
    });
  }

  /** The latest view; reads at once when there is none, it failed, it is stale or the caller wrote. Throws when that read fails. */
  async current(): Promise<T> {
    if (!this.started) { this.started = true; void this.loop(); }
    const h = this.held;
    if (h && this.failed === undefined && !this.dirty && this.now() - h.atMs <= this.opts.staleMs) return h.value;
    return this.refresh();
  }

  /** A non-blocking read now; its answer becomes the view. */
  async refresh(): Promise<T> {
    const seq = ++this.seq;
    this.dirty = false;
    this.reads += 1;
    try {
      const r = await this.read({}, this.abort.signal);
      this.accept(r, seq);
      return r.value;
    } catch (e) {
      this.failed = errorMessage(e);
      throw e;
    }
  }

  /** The caller changed the data: the next {@link current} reads it back. */
  invalidate(): void { this.dirty = true; }

  /** End the background read (its request is aborted). */
  stop(): void { this.stopped = true; this.abort.abort(); }

  private accept(r: Read<T>, seq: number): void {
    const index = r.meta.index ?? 0;
    const h = this.held;
    // A blocking read that started before a direct one but answered later is as new as its index says;
    // an index that went backwards (snapshot restore) is taken only from a read that started later.
    if (h && index < h.index && seq < h.seq) return;
    this.held = { value: r.value, index, atMs: this.now(), seq };
    this.failed = undefined;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const seq = ++this.seq;
      // Block from the view's index (a direct read may have moved it on).
      if (this.held && this.failed === undefined && this.held.index > this.query.index) this.query.index = this.held.index;
      this.reads += 1;
      try {
        const r = await this.query.next();
        if (this.stopped) return;
        this.accept(r, seq);
      } catch (e) {
        if (this.stopped) return;
        this.failed = errorMessage(e);
        this.query.index = 0; // the next read answers at once: recover as soon as the agent does
      }
    }
  }
}
