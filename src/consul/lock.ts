/**
 * Layer: policy over an injected client (no I/O of its own, clock
 * injectable). A Consul session lock for the group and promote roles
 * (shared/spec/consul-api.md §3i; spec/next-roles.md §2d-2, §2d-5):
 * create a session, `?acquire` the key, renew at TTL/2, and answer "do I
 * still hold it?" before every action, as Patroni's loop does.
 *
 * The holder's own deadline is the *send time* of the last successful
 * renewal (or of the create) + TTL on the local monotonic clock: the servers
 * never expire a session before TTL, so until then nobody else can hold the
 * key. Past the deadline, or when renew answers 404 (invalidated), or the
 * key names another session, the lock is lost and stays lost. A hold's
 * `(key, lockIndex, session)` is the sequencer downstream writes check with
 * `check-session` in a txn, so a stale holder's late write is refused.
 */
import { VigilError } from '../errors';
import type { KvEntry, KvPutOptions } from './kv';
import type { SessionSpec } from './session';

/** What the lock needs from a client (ConsulClient fits; tests pass a fake). */
export interface LockClient {
  sessionCreate(spec: SessionSpec): Promise<string>;
  sessionRenew(id: string): Promise<boolean>;
  sessionDestroy(id: string): Promise<boolean>;
  kvPut(key: string, value: Buffer | string, opts: KvPutOptions): Promise<boolean>;
  kvGet(key: string): Promise<KvEntry | undefined>;
}

/** Options of {@link ConsulLock}. */
export interface LockOptions {
  key: string;
  /** Value written on acquire (e.g. the holder's name). */
  value?: Buffer | string;
  /** The session; `ttl` is required (e.g. `15s`). Use `checks: []` for a lock that only a TTL expiry can take away. */
  session: SessionSpec & { ttl: string };
  /** Monotonic clock in ms (default performance.now). */
  now?: () => number;
}

/** A held lock: the fencing token for downstream writes. */
export interface LockHold { key: string; session: string; lockIndex: number }

/** Timer functions, injectable so the renew loop runs on a fake clock in tests. */
export interface LockTimers { setTimeout(fn: () => void, ms: number): unknown; clearTimeout(handle: unknown): void }

const REAL_TIMERS: LockTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Why a lock was lost. */
export type LockLostReason = 'session-invalidated' | 'lock-taken' | 'renew-deadline' | 'released';

function ttlMs(ttl: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(ttl);
  if (!m) throw new VigilError('EVIGILCONFIG', `lock session ttl ${JSON.stringify(ttl)}: expected e.g. "15s"`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
}

/** One lock on one key. Not reentrant; one acquire at a time. */
export class ConsulLock {
  private sessionId: string | undefined;
  private hold: LockHold | undefined;
  private deadline = 0;
  private lostReason: LockLostReason | undefined;
  readonly ttlMs: number;
  private readonly now: () => number;

  constructor(private readonly client: LockClient, private readonly opts: LockOptions) {
    this.ttlMs = ttlMs(opts.session.ttl);
    this.now = opts.now ?? (() => performance.now());
  }

  /** How often to call {@link renew}: TTL/2, as the Go client and `consul lock` do. */
  get renewEveryMs(): number { return Math.floor(this.ttlMs / 2); }

  /**
   * One acquire attempt: a session (created on first use, renewed while
   * waiting, created again after a loss), then `?acquire`. Returns the hold, or undefined when another
   * session holds the key or it is in lock-delay.
   */
  async acquire(): Promise<LockHold | undefined> {
    if (this.hold && this.held()) return this.hold;
    // A waiting session must stay alive too: renew it, and start over with a new one if it is gone.
    let alive = false;
    if (this.sessionId !== undefined && this.lostReason === undefined) {
      const sent = this.now();
      alive = await this.client.sessionRenew(this.sessionId);
      if (alive) this.deadline = sent + this.ttlMs;
    }
    if (!alive) {
      const sent = this.now();
      this.sessionId = await this.client.sessionCreate(this.opts.session);
      this.deadline = sent + this.ttlMs;
      this.lostReason = undefined;
      this.hold = undefined;
    }
    const session = this.sessionId as string; // set by the renew or create above
    const ok = await this.client.kvPut(this.opts.key, this.opts.value ?? '', { acquire: session });
    if (!ok) return undefined;
    const e = await this.client.kvGet(this.opts.key);
    if (!e || e.session !== session) { this.lose('lock-taken'); return undefined; }
    this.hold = { key: this.opts.key, session, lockIndex: e.lockIndex };
    return this.hold;
  }

  /**
   * Take back a hold recorded before a restart (the promote role's
   * journal): renew its session, then confirm the key still names it. The
   * deadline starts from this renewal's send time. Returns undefined (and
   * destroys the old session, if alive) when the hold is gone.
   */
  async adopt(prev: LockHold): Promise<LockHold | undefined> {
    if (this.hold && this.held()) return this.hold;
    const sent = this.now();
    if (!(await this.client.sessionRenew(prev.session))) return undefined;
    const e = await this.client.kvGet(this.opts.key);
    if (!e || e.session !== prev.session) { await this.client.sessionDestroy(prev.session); return undefined; }
    this.sessionId = prev.session;
    this.hold = { key: this.opts.key, session: prev.session, lockIndex: e.lockIndex };
    this.deadline = sent + this.ttlMs;
    this.lostReason = undefined;
    return this.hold;
  }

  /** True while held and before the local deadline (checks the clock, no I/O). */
  held(): boolean {
    if (!this.hold || this.lostReason !== undefined) return false;
    if (this.now() >= this.deadline) { this.lose('renew-deadline'); return false; }
    return true;
  }

  /** The current hold (fencing token) while {@link held}. */
  current(): LockHold | undefined { return this.held() ? this.hold : undefined; }

  /** Why the lock was lost, if it was. */
  lost(): LockLostReason | undefined { return this.lostReason; }

  /** Ms left before the holder must consider the lock gone (0 when not held). */
  remainingMs(): number { return this.held() ? this.deadline - this.now() : 0; }

  /**
   * One renewal: renew the session, then confirm the key still names it.
   * A transport error is thrown (the caller retries until {@link held}
   * turns false); a 404 or another holder loses the lock. Returns held().
   */
  async renew(): Promise<boolean> {
    if (!this.hold || this.sessionId === undefined || this.lostReason !== undefined) return false;
    const sent = this.now();
    if (!(await this.client.sessionRenew(this.sessionId))) { this.lose('session-invalidated'); return false; }
    const e = await this.client.kvGet(this.opts.key);
    if (!e || e.session !== this.sessionId) { this.lose('lock-taken'); return false; }
    // Never move the deadline back, and only from a renewal sent while still held.
    if (sent < this.deadline) this.deadline = Math.max(this.deadline, sent + this.ttlMs);
    return this.held();
  }

  /**
   * Keep a held lock: renew every TTL/2 (a failed renewal is retried every
   * `retryMs`, default 1 s), and call `onLost` once when it is lost — at the
   * latest at the local deadline, even while a renewal is still in flight.
   * Returns a stop function (stopping does not release).
   */
  keep(onLost: (reason: LockLostReason) => void, opts: { timers?: LockTimers; retryMs?: number } = {}): () => void {
    const timers = opts.timers ?? REAL_TIMERS;
    let stopped = false;
    let tick: unknown;
    let watchdog: unknown;
    const stop = () => { stopped = true; timers.clearTimeout(tick); timers.clearTimeout(watchdog); };
    const report = () => {
      if (stopped) return;
      stop();
      onLost(this.lost() ?? 'renew-deadline');
    };
    const armWatchdog = () => {
      timers.clearTimeout(watchdog);
      watchdog = timers.setTimeout(() => (this.held() ? armWatchdog() : report()), Math.max(1, this.remainingMs()));
    };
    const loop = async () => {
      if (stopped) return;
      let next = this.renewEveryMs;
      try {
        if (!(await this.renew())) { report(); return; }
      } catch {
        next = Math.min(opts.retryMs ?? 1000, next); // unknown, not lost: the deadline decides
      }
      if (!this.held()) { report(); return; }
      armWatchdog();
      if (!stopped) tick = timers.setTimeout(() => { void loop(); }, next);
    };
    if (!this.held()) { report(); return stop; }
    armWatchdog();
    tick = timers.setTimeout(() => { void loop(); }, this.renewEveryMs);
    return stop;
  }

  /** Hand over cleanly: release first (no lock-delay), then destroy the session. */
  async release(): Promise<void> {
    const sid = this.sessionId;
    const wasHeld = this.hold !== undefined && this.lostReason === undefined;
    this.lose('released');
    this.sessionId = undefined;
    if (sid === undefined) return;
    if (wasHeld) await this.client.kvPut(this.opts.key, this.opts.value ?? '', { release: sid });
    await this.client.sessionDestroy(sid);
  }

  private lose(reason: LockLostReason): void {
    if (this.lostReason === undefined) this.lostReason = reason;
    this.hold = undefined;
  }
}
