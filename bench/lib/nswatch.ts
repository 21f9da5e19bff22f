/**
 * Layer: bench support. The parent side of addrwatch-proc.ts: a watcher
 * process inside one network namespace (a lab host's, or the lab bridge's)
 * reporting address and link changes with their CLOCK_MONOTONIC receipt
 * times, so benches can time faults and takeovers by the kernel's own
 * notifications instead of by when a command returned.
 */
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Lab, LabHost } from '../../test/support/lab';
import { onLines } from './lines';

/** One link change. */
export interface LinkEvent { atNs: bigint; name: string; up: boolean; removed: boolean }

/** A running watcher. */
export interface NsWatch {
  /** Address → receipt time of its latest add (absent once removed). */
  present: Map<string, bigint>;
  /** Link changes, in order. */
  links: LinkEvent[];
  /** False once the watcher process has exited. */
  healthy(): boolean;
  stop(): Promise<void>;
}

const SCRIPT = path.join(__dirname, 'addrwatch-proc.js');

/** Start a watcher in a lab host's namespace. */
export function watchHost(host: LabHost): Promise<NsWatch> {
  return attach(host.spawn([process.execPath, SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] }), host.name);
}

/**
 * Start a watcher in the lab bridge's namespace (`ip netns exec`; the lab's
 * teardown kills whatever is left in its namespaces, and stop() ends it first).
 */
export function watchBridge(lab: Lab): Promise<NsWatch> {
  const proc = spawn('ip', ['netns', 'exec', lab.bridgeNs, process.execPath, SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
  return attach(proc, lab.bridgeNs);
}

async function attach(proc: ChildProcess, where: string): Promise<NsWatch> {
  const present = new Map<string, bigint>();
  const links: LinkEvent[] = [];
  let ok = true;
  let stderr = '';
  let ready: (() => void) | undefined;
  proc.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-1000); });
  const exited = new Promise<void>((r) => proc.once('exit', () => { ok = false; r(); }));
  onLines(proc.stdout!, (line) => {
    if (line === 'R') { ready?.(); return; }
    const f = line.split(' ');
    if (f[0] === 'L' && f.length === 5) {
      links.push({ atNs: BigInt(f[1]!), name: f[2]!, up: f[3] === '1', removed: f[4] === '1' });
      return;
    }
    if (f.length !== 3) return;
    const ip = f[2]!.split('/')[0]!;
    if (f[0] === 'A') present.set(ip, BigInt(f[1]!));
    else if (f[0] === 'D') present.delete(ip);
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      new Promise<void>((r) => { ready = r; }),
      exited.then(() => { throw new Error(`netlink watcher in ${where} failed: ${stderr.trim()}`); }),
      new Promise<void>((_r, rej) => { timer = setTimeout(() => rej(new Error(`netlink watcher in ${where} not ready after 10 s`)), 10_000); }),
    ]);
  } catch (e) {
    proc.kill('SIGKILL');
    throw e;
  } finally {
    clearTimeout(timer);
  }
  return {
    present,
    links,
    healthy: () => ok,
    async stop() {
      if (!ok) return;
      proc.stdin!.end();
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}
