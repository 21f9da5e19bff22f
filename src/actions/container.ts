/**
 * Layer: executor. Waiting for an OpenVZ / Virtuozzo container before the
 * HA IP role starts (vzhaipd's wait_for_container_start, V-15): poll
 * `vzlist -H -o status CTID` until it says `running`, then wait
 * `container_settle` so the container's own services are up before
 * `on_slave`/`on_master` reach into it, then check once more that it still
 * runs (a container that stopped while settling sends the wait back).
 *
 * The wait probes nothing and changes nothing: its only action is vzlist.
 * It is cancellable at any moment (a stop during the wait ends it at once,
 * an in-flight vzlist is left to finish on its own and its answer ignored),
 * and reports progress so the systemd watchdog keeps being fed while the
 * container is down, however long that lasts.
 */
import { performance } from 'node:perf_hooks';
import { runCommand, describeCommand, type Command, type CommandResult, type RunOptions } from './commands';
import type { Logger } from '../log';
import { formatDurationMs } from '../util/duration';

/** How often vzlist is asked while the container is not running. */
export const CONTAINER_POLL_MS = 2000;
/** A reminder that the wait goes on is logged this often. */
const REMINDER_MS = 5 * 60_000;

/** The spawn function, injectable for tests. */
export type RunFn = (cmd: Command, opts: RunOptions) => Promise<CommandResult>;

/** What vzlist said about the container. */
export type ContainerStatus = { status: string } | { error: string };

/**
 * `vzlist -H -o status CTID`: the container's status (`running`, `stopped`,
 * `mounted`, `suspended`…), or why it could not be read (no such container,
 * vzlist missing or timing out). Never throws.
 */
export async function containerStatus(vzlist: string, container: string, timeoutMs: number, run: RunFn = runCommand): Promise<ContainerStatus> {
  const argv = [vzlist, '-H', '-o', 'status', container];
  const r = await run(argv, { timeoutMs });
  if (!r.ok) {
    const why = r.spawnError ? `could not start: ${r.spawnError}` : r.timedOut ? `killed after ${timeoutMs} ms timeout` : r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
    const line = `${r.stderr}\n${r.stdout}`.split('\n').map((l) => l.trim()).filter(Boolean).pop();
    return { error: `${describeCommand(argv)}: ${why}${line ? `: ${line}` : ''}` };
  }
  const status = r.stdout.trim().split(/\s+/)[0];
  return status ? { status } : { error: `${describeCommand(argv)}: printed nothing` };
}

/** Settings read at every step, so a reload applies to the next one. */
export interface ContainerWaitSettings {
  vzlist: string;
  settleMs: number;
  /** Timeout of each vzlist run. */
  timeoutMs: number;
}

/** Options for {@link ContainerWait}. */
export interface ContainerWaitOptions {
  container: string;
  settings: () => ContainerWaitSettings;
  log: Logger;
  /** Called with a one-line description whenever the wait's state changes (systemd STATUS=). */
  onChange?: (text: string) => void;
  pollMs?: number;
  run?: RunFn;
  now?: () => number;
}

/** A snapshot for `vigil status`. */
export interface ContainerWaitSnapshot {
  container: string;
  phase: 'waiting' | 'settling' | 'running' | 'cancelled';
  /** The last status vzlist gave, if any. */
  status?: string;
  error?: string;
  polls: number;
  /** Monotonic ms at which settling ends (phase settling). */
  settleEndsMs?: number;
}

/** One wait for one container; starts at construction. */
export class ContainerWait {
  /** Resolves `running` once the container runs and has settled, `cancelled` after {@link cancel}. */
  readonly done: Promise<'running' | 'cancelled'>;
  /** Last time the wait made progress (monotonic ms), for the systemd watchdog. */
  lastProgressMs: number;
  private phase: ContainerWaitSnapshot['phase'] = 'waiting';
  private last?: ContainerStatus;
  private polls = 0;
  private settleEndsMs?: number;
  private timer?: NodeJS.Timeout;
  private resolve!: (r: 'running' | 'cancelled') => void;
  private lastReminderMs: number;
  private readonly pollMs: number;
  private readonly now: () => number;
  private readonly run: RunFn;

  constructor(private readonly opts: ContainerWaitOptions) {
    this.pollMs = opts.pollMs ?? CONTAINER_POLL_MS;
    this.now = opts.now ?? (() => performance.now());
    this.run = opts.run ?? runCommand;
    this.lastProgressMs = this.now();
    this.lastReminderMs = this.now();
    this.done = new Promise((r) => { this.resolve = r; });
    // onChange comes with the first answer (a spawn later), so it follows the
    // daemon's READY=1 and its STATUS= is the one systemd keeps showing.
    opts.log.info({ container: opts.container }, `waiting for container ${opts.container} to be running before the HA IP role starts (no probes until then)`);
    this.timer = setTimeout(() => void this.poll(), 0);
  }

  /** Stop waiting now; `done` resolves `cancelled`. Idempotent. */
  cancel(): void {
    if (this.phase === 'running' || this.phase === 'cancelled') return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.phase = 'cancelled';
    this.opts.log.info({ container: this.opts.container }, 'wait for the container cancelled');
    this.resolve('cancelled');
  }

  /** True while the wait keeps making progress (a poll answered, or settling within its time). */
  healthy(nowMs: number = this.now()): boolean {
    const { timeoutMs } = this.opts.settings();
    if (this.phase === 'settling' && this.settleEndsMs !== undefined) return nowMs < this.settleEndsMs + timeoutMs + 5000;
    return nowMs - this.lastProgressMs < this.pollMs + timeoutMs + 5000;
  }

  /** For `vigil status`. */
  snapshot(): ContainerWaitSnapshot {
    return {
      container: this.opts.container,
      phase: this.phase,
      ...(this.last && 'status' in this.last ? { status: this.last.status } : {}),
      ...(this.last && 'error' in this.last ? { error: this.last.error } : {}),
      polls: this.polls,
      ...(this.phase === 'settling' && this.settleEndsMs !== undefined ? { settleEndsMs: this.settleEndsMs } : {}),
    };
  }

  private async poll(): Promise<void> {
    this.timer = undefined;
    if (this.phase !== 'waiting' && this.phase !== 'settling') return;
    const s = this.opts.settings();
    const r = await containerStatus(s.vzlist, this.opts.container, s.timeoutMs, this.run);
    if (this.phase !== 'waiting' && this.phase !== 'settling') return; // cancelled meanwhile
    const now = this.now();
    this.polls++;
    this.lastProgressMs = now;
    const changed = JSON.stringify(r) !== JSON.stringify(this.last);
    this.last = r;
    const ct = this.opts.container;
    const seen = 'status' in r ? r.status : `unknown (${r.error})`;
    if (this.phase === 'settling') {
      if ('status' in r && r.status === 'running') {
        this.phase = 'running';
        this.opts.log.info({ container: ct }, `container ${ct} running and settled: the HA IP role starts`);
        this.resolve('running');
        return;
      }
      this.phase = 'waiting';
      this.opts.log.warn({ container: ct, status: seen }, `container ${ct} left running while settling: waiting again`);
      this.opts.onChange?.(`waiting for container ${ct} to be running (it is ${seen})`);
      this.schedule(this.pollMs);
      return;
    }
    if ('status' in r && r.status === 'running') {
      this.phase = 'settling';
      this.settleEndsMs = now + s.settleMs;
      this.opts.log.info({ container: ct, settleMs: s.settleMs }, `container ${ct} is running: settling for ${formatDurationMs(s.settleMs)} before the HA IP role starts`);
      this.opts.onChange?.(`container ${ct} running; settling for ${formatDurationMs(s.settleMs)}`);
      this.schedule(s.settleMs);
      return;
    }
    if (changed) {
      const data = { container: ct, ...('status' in r ? { status: r.status } : { error: r.error }) };
      if ('error' in r) this.opts.log.warn(data, `container ${ct}: status unknown; still waiting`);
      else this.opts.log.info(data, `container ${ct} is ${r.status}: waiting for running`);
      this.opts.onChange?.(`waiting for container ${ct} to be running (it is ${seen})`);
    } else if (now - this.lastReminderMs >= REMINDER_MS) {
      this.lastReminderMs = now;
      this.opts.log.info({ container: ct, status: seen, polls: this.polls }, `still waiting for container ${ct} to be running`);
    }
    this.schedule(this.pollMs);
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => void this.poll(), ms);
  }
}
