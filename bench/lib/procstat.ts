/**
 * Layer: bench support. Reading a daemon's cost from /proc: its process
 * tree, CPU time (per process from `stat`, and to the nanosecond from each
 * task's `schedstat`), peak resident memory (VmHWM).
 */
import * as fs from 'node:fs';

/** Clock ticks per second for /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const CLK_TCK = 100;

/** Parent pid of `pid`, or undefined when it is gone. */
export function ppidOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** `pid` and all its live descendants (by walking every process's parent). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = Number(name);
    const pp = ppidOf(p);
    if (pp === undefined) continue;
    let l = children.get(pp);
    if (!l) children.set(pp, (l = []));
    l.push(p);
  }
  if (!fs.existsSync(`/proc/${pid}`)) return [];
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/** True while `pid` exists (and is not a zombie). */
export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** CPU use of one process. */
export interface CpuSample {
  /** utime + stime + cutime + cstime, seconds (10 ms resolution). */
  statS: number;
  /** Sum over the process's tasks of schedstat's time on CPU, seconds (ns resolution; live threads only). */
  schedS: number;
  /** Sum over the process's tasks of schedstat's timeslice count: how often it was run (≈ wakeups). */
  runs: number;
}

/** CPU time used so far by `pid` (undefined when it is gone). */
export function cpuOf(pid: number): CpuSample | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14-17 (utime, stime, cutime, cstime), counted from the state (field 3) at index 0.
    const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    let ns = 0;
    let runs = 0;
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        // schedstat: time on CPU (ns), time waiting to run (ns), timeslices run.
        const f2 = fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ');
        ns += Number(f2[0]);
        runs += Number(f2[2]);
      } catch { /* thread gone */ }
    }
    return { statS: ticks / CLK_TCK, schedS: ns / 1e9, runs };
  } catch {
    return undefined;
  }
}

/** A `kB` field of /proc/<pid>/status (e.g. VmHWM, VmRSS), in kB. */
export function statusKb(pid: number, field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** SIGKILL every process of `pids` and wait (up to `timeoutMs`) until all are gone. */
export async function killAll(pids: number[], timeoutMs = 5000): Promise<void> {
  for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
  const deadline = Date.now() + timeoutMs;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}
