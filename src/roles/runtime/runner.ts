/**
 * Layer: roles. The runtime role's periodic job: every interval one cycle
 * (read the file, ask the local agent, read the key once, write it with
 * ?cas only when publish.ts's decision says so). No process is spawned; the
 * I/O is injected ({@link RuntimeIo}) so the cycle is tested without Consul.
 * A skip reason is logged once, when it first appears (not every interval).
 */
import type { Logger } from '../../log';
import { errorMessage } from '../../errors';
import type { RuntimePublishConfig } from './config';
import { decideCycle, parseRuntimeFile, runtimeKey, type SkipReason } from './publish';

/** What the job needs from the outside world. */
export interface RuntimeIo {
  /** The file's text, or undefined when it does not exist. */
  readFile(path: string): string | undefined;
  /** Does the local agent answer and see servers and a leader? */
  agentHealth(): Promise<{ ok: boolean; detail: string }>;
  /** The key (`null`: absent). */
  kvGet(key: string): Promise<{ value: string | undefined; modifyIndex: number } | null>;
  /** `PUT ?cas=`; false when the key moved since it was read. */
  kvPutCas(key: string, value: string, cas: number): Promise<boolean>;
  /** Wall clock (ms epoch): the copy's publication time. */
  now(): number;
  /** Monotonic clock (ms) for the health rule. */
  mono(): number;
}

/** The outcome of one cycle, as status shows it. */
export interface CycleResult {
  result: 'published' | 'skipped' | 'refused' | 'failed';
  reason?: SkipReason;
  detail?: string;
  atMs: number;
}

export class RuntimePublisher {
  readonly key: string;
  last: CycleResult | undefined;
  lastPublishAtMs: number | undefined;
  modifyIndex: number | undefined;
  publishes = 0;
  /** Cycles finished (tests and status: "has a cycle run since…"). */
  cycles = 0;
  lastProgressMs: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  /** The last logged condition, so a lasting one is logged once. */
  private logged = '';

  constructor(readonly cfg: RuntimePublishConfig, readonly host: string, private readonly io: RuntimeIo, private readonly log: Logger) {
    this.key = runtimeKey(cfg.kvPrefix, host);
    this.lastProgressMs = io.mono();
  }

  start(): void {
    this.log.info({ file: this.cfg.file, key: this.key, intervalMs: this.cfg.intervalMs }, 'runtime_config publication started');
    this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private tick(): void {
    if (this.stopped) return;
    this.running = this.cycle().then(() => undefined).finally(() => {
      this.running = undefined;
      if (!this.stopped) this.timer = setTimeout(() => this.tick(), this.cfg.intervalMs);
    });
  }

  /** One cycle; never throws (a failure is its result). Exposed for tests. */
  async cycle(): Promise<CycleResult> {
    const r = await this.decideAndWrite().catch((e): CycleResult => ({ result: 'failed', detail: errorMessage(e), atMs: this.io.now() }));
    this.last = r;
    this.cycles++;
    this.lastProgressMs = this.io.mono();
    this.report(r);
    return r;
  }

  private async decideAndWrite(): Promise<CycleResult> {
    const file = parseRuntimeFile(this.io.readFile(this.cfg.file), this.cfg.file);
    let d = decideCycle({ file, nowMs: this.io.now() });
    if (!d) {
      const agent = await this.io.agentHealth();
      d = decideCycle({ file, agent, nowMs: this.io.now() });
      if (!d) {
        const stored = await this.io.kvGet(this.key);
        if (stored) this.modifyIndex = stored.modifyIndex;
        d = decideCycle({ file, agent, stored, nowMs: this.io.now() })!;
      }
    }
    const atMs = this.io.now();
    if (!d.publish) return { result: 'skipped', reason: d.reason, detail: d.detail, atMs };
    if (!(await this.io.kvPutCas(this.key, d.value, d.cas))) {
      return { result: 'refused', detail: 'the key changed between read and write (another publisher?); next cycle reads it again', atMs };
    }
    this.publishes++;
    this.lastPublishAtMs = atMs;
    // The new index is seen on the next read; the old one is no longer true.
    this.modifyIndex = undefined;
    return { result: 'published', atMs };
  }

  private report(r: CycleResult): void {
    if (r.result === 'published') {
      this.logged = '';
      this.log.info({ key: this.key }, 'runtime_config published');
      return;
    }
    // "unchanged" is the steady state: nothing to say.
    if (r.reason === 'unchanged') { this.logged = ''; return; }
    const what = `${r.result}:${r.reason ?? ''}:${r.detail ?? ''}`;
    if (what === this.logged) return;
    this.logged = what;
    this.log.warn({ key: this.key, reason: r.reason, detail: r.detail }, `runtime_config not published (${r.result})`);
  }

  /** Resolves once a cycle in flight has finished (stop waits for it). */
  async idle(): Promise<void> {
    await this.running;
  }

  status(): Record<string, unknown> {
    return {
      phase: this.stopped ? 'stopped' : 'running',
      host: this.host,
      key: this.key,
      file: this.cfg.file,
      intervalMs: this.cfg.intervalMs,
      ...(this.last ? { last: this.last } : {}),
      ...(this.lastPublishAtMs !== undefined ? { lastPublishAtMs: this.lastPublishAtMs } : {}),
      ...(this.modifyIndex !== undefined ? { modifyIndex: this.modifyIndex } : {}),
      publishes: this.publishes,
      cycles: this.cycles,
    };
  }
}
