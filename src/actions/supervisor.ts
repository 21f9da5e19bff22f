/**
 * Layer: executor. Supervises one long-running process the operator asked
 * vigil to keep alive (a local Consul agent's `command`).
 *
 * Restarts happen only when the role asks (it knows whether the agent is
 * really gone or merely slow), with exponential backoff, and never while a
 * previous child is still alive: an agent that already answers is adopted
 * instead of starting a second one (hostha counted processes with
 * `ps | grep` and could start duplicates, K-41, K-48).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '../log';

/** Backoff bounds. */
export interface BackoffOptions { initialMs: number; maxMs: number }

/** One supervised process. */
export class Supervised {
  private child?: ChildProcess;
  private restarts = 0;
  private nextAllowedMs = 0;
  private delayMs: number;
  private lastExit?: { code: number | null; signal: NodeJS.Signals | null };

  constructor(
    readonly name: string,
    private readonly argv: readonly string[],
    private readonly log: Logger,
    private readonly backoff: BackoffOptions = { initialMs: 1000, maxMs: 60_000 },
    private readonly now: () => number = () => performance.now(),
  ) {
    this.delayMs = backoff.initialMs;
  }

  /** True while the process we started is running. */
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** For status. */
  info(): { pid?: number; running: boolean; restarts: number; lastExit?: { code: number | null; signal: string | null } } {
    return { ...(this.child?.pid ? { pid: this.child.pid } : {}), running: this.running, restarts: this.restarts, ...(this.lastExit ? { lastExit: this.lastExit } : {}) };
  }

  /**
   * Start (or restart) the process if it is not running and the backoff
   * allows. Returns true when a process was started.
   */
  ensureRunning(): boolean {
    if (this.running) return false;
    const now = this.now();
    if (now < this.nextAllowedMs) return false;
    const [cmd, ...args] = this.argv;
    if (!cmd) return false;
    const child = spawn(cmd, args, { stdio: 'ignore', detached: true });
    child.on('error', (e) => this.log.error({ agent: this.name, err: e.message }, 'supervised process could not start'));
    child.on('exit', (code, signal) => {
      this.lastExit = { code, signal };
      this.log.warn({ agent: this.name, code, signal }, 'supervised process exited');
    });
    if (this.child) this.restarts++;
    this.child = child;
    this.nextAllowedMs = now + this.delayMs;
    this.delayMs = Math.min(this.delayMs * 2, this.backoff.maxMs);
    this.log.warn({ agent: this.name, pid: child.pid, argv: this.argv, restarts: this.restarts }, 'started supervised process');
    return true;
  }

  /** The process has proven healthy: the next failure restarts quickly again. */
  resetBackoff(): void {
    this.delayMs = this.backoff.initialMs;
  }

  /** Stop the process we started (TERM to its group). */
  stop(): void {
    if (this.running && this.child?.pid) {
      try { process.kill(-this.child.pid, 'SIGTERM'); } catch { /* gone */ }
    }
  }
}
