/**
 * Layer: bench support. Counting the processes a daemon spawns, from the
 * kernel's process events (forkwatch-proc.ts, a forkstat-like watcher): a
 * fork whose parent is a watched daemon, or a process already counted as
 * its descendant, is one spawn of that daemon. Nothing is missed, however
 * short-lived, unlike polling /proc for children.
 */
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { onLines } from './lines';

/** A running fork watcher. */
export interface ForkCounter {
  /** Count the forks under each of `pids` (a daemon's processes) as `name`'s; resets its count. */
  watch(name: string, pids: number[]): void;
  /** Spawns under `name` since its watch() call. */
  count(name: string): number;
  /** Reset every count to 0 (the watched trees are kept). */
  reset(): void;
  /** Whether the watcher is still running (false: counts are incomplete). */
  healthy(): boolean;
  stop(): Promise<void>;
}

/** Start the watcher (root only); resolves once it is subscribed. */
export async function startForkCounter(): Promise<ForkCounter> {
  const proc: ChildProcess = spawn(process.execPath, [path.join(__dirname, 'forkwatch-proc.js')], { stdio: ['pipe', 'pipe', 'pipe'] });
  const owner = new Map<number, string>();
  const counts = new Map<string, number>();
  let ok = true;
  let stderr = '';
  let ready: (() => void) | undefined;
  proc.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-1000); });
  const exited = new Promise<void>((r) => proc.once('exit', () => { ok = false; r(); }));
  onLines(proc.stdout!, (line) => {
    if (line === 'R') { ready?.(); return; }
    const f = line.split(' ');
    if (f[0] !== 'F') return;
    const name = owner.get(Number(f[1]));
    if (name === undefined) return;
    owner.set(Number(f[2]), name);
    counts.set(name, (counts.get(name) ?? 0) + 1);
  });
  await Promise.race([
    new Promise<void>((r) => { ready = r; }),
    exited.then(() => { throw new Error(`fork watcher failed: ${stderr.trim()}`); }),
  ]);
  return {
    watch(name, pids) { for (const p of pids) owner.set(p, name); counts.set(name, 0); },
    count: (name) => counts.get(name) ?? 0,
    reset() { for (const k of counts.keys()) counts.set(k, 0); },
    healthy: () => ok,
    async stop() {
      proc.stdin!.end();
      proc.kill('SIGTERM');
      await exited;
    },
  };
}
