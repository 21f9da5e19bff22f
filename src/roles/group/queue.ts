/**
 * Layer: role `group`, runner support. Inside one process (the daemon) the
 * group's operations run one at a time in the order they were asked for,
 * like the CLI's turn queue across processes: hooks never overlap and never
 * run out of order (keepalived #996/#584).
 */

/** A FIFO of async operations; each runs after the previous one settled. */
export class OpQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;

  /** Queue `op`; resolves or rejects with its outcome. */
  run<T>(op: () => Promise<T>): Promise<T> {
    this.pending++;
    const p = this.tail.then(op).finally(() => { this.pending--; });
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** Operations queued or running. */
  get size(): number {
    return this.pending;
  }
}
