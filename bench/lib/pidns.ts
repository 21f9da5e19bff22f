/**
 * Layer: bench support. Run one process alone in a fresh PID namespace
 * (inside a lab host's network namespace) and measure what it costs at rest:
 * tasks it creates (the namespace's last allocated PID, from
 * /proc/sys/kernel/ns_last_pid, read by the namespace's own shell with
 * builtins only, so the reader forks nothing), CPU time and memory from
 * /proc.
 *
 *   ip netns exec NS unshare --pid --fork bash -c '"$@" >LOG 2>&1 & while read; …'
 *
 * The namespace holds bash (PID 1) and the process; any PID allocated after
 * the baseline is a process or a thread the measured program made. Keep
 * other processes (test doubles, clients) outside it.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import type { LabHost } from '../../test/support/lab';

/** A process running alone in its own PID namespace. */
export interface AloneInPidNs {
  /** The `unshare` process (in the lab host's network namespace). */
  proc: ChildProcess;
  /** The namespace's last allocated PID, read by its own shell. */
  lastPid(): Promise<number>;
  /** The measured process's PID as this process sees it (found by its command line). */
  targetPid(timeoutMs?: number): Promise<number>;
  /** SIGTERM the measured process, then end the namespace's shell. */
  stop(graceMs?: number): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// argv of bash: $1 the log file, then the command. Only builtins after the '&'.
const SCRIPT = 'log=$1; shift; "$@" >"$log" 2>&1 & while read -r _; do read -r v < /proc/sys/kernel/ns_last_pid; echo "$v"; done';

/** Parent PID of `pid` (field 4 of /proc/PID/stat), or undefined when gone. */
function ppidOf(pid: number): number | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** Every live descendant of `root`. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    const pp = ppidOf(pid);
    if (pp === undefined) continue;
    let list = children.get(pp);
    if (!list) children.set(pp, (list = []));
    list.push(pid);
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    for (const c of children.get(stack.pop()!) ?? []) { out.push(c); stack.push(c); }
  }
  return out;
}

function cmdline(pid: number): string {
  try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '); } catch { return ''; }
}

/**
 * Start `argv` alone in a fresh PID namespace inside `host`, its output
 * going to `logFile`. `match` picks the measured process among the
 * namespace's processes by its command line (default: contains argv[1] or argv[0]).
 */
export function startAloneInPidNs(host: LabHost, argv: string[], logFile: string, match?: (cmd: string) => boolean): AloneInPidNs {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const proc = host.spawn(['unshare', '--pid', '--fork', 'bash', '-c', SCRIPT, 'bench-pidns', logFile, ...argv], { env });
  proc.stderr?.resume();
  const lines = readline.createInterface({ input: proc.stdout! });
  const waiting: ((v: number) => void)[] = [];
  lines.on('line', (l) => waiting.shift()?.(Number(l)));
  const key = argv[1] ?? argv[0]!;
  const isTarget = match ?? ((cmd: string) => cmd.includes(key));
  let target: number | undefined;
  const api: AloneInPidNs = {
    proc,
    lastPid: () => new Promise<number>((resolve, reject) => {
      if (proc.exitCode !== null || proc.signalCode !== null) { reject(new Error('the PID namespace shell has exited')); return; }
      waiting.push(resolve);
      proc.stdin!.write('\n');
    }),
    async targetPid(timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (target === undefined) {
        // unshare (proc.pid) → bash (PID 1 inside) → the measured process.
        target = descendants(proc.pid!).find((p) => isTarget(cmdline(p)) && !cmdline(p).startsWith('bash '));
        if (target !== undefined) break;
        if (Date.now() > deadline) throw new Error(`no process matching ${key} appeared in the PID namespace`);
        await sleep(50);
      }
      return target;
    },
    async stop(graceMs = 5000) {
      if (target !== undefined) {
        try { process.kill(target, 'SIGTERM'); } catch { /* already gone */ }
        const deadline = Date.now() + graceMs;
        while (fs.existsSync(`/proc/${target}`) && Date.now() < deadline) await sleep(50);
        try { process.kill(target, 'SIGKILL'); } catch { /* gone */ }
      }
      // End of input ends the shell's loop; the namespace dies with its PID 1.
      proc.stdin?.end();
      if (proc.exitCode === null && proc.signalCode === null) {
        await Promise.race([new Promise((r) => proc.once('exit', r)), sleep(graceMs)]);
      }
    },
  };
  return api;
}

/** CPU and memory of one process, from /proc. */
export interface ProcSample {
  /** utime + stime of every thread, live or exited (field 14 + 15 of /proc/PID/stat), in clock ticks. */
  cpuTicks: number;
  /** Sum of the live threads' on-CPU time (first field of /proc/PID/task/T/schedstat), ns; exited threads are not in it. */
  schedNs: number;
  /** Peak resident set size (VmHWM), kB. */
  hwmKb: number;
  /** Resident set size now (VmRSS), kB. */
  rssKb: number;
  /** Threads now. */
  threads: number;
}

/** Sample `pid`'s CPU time, memory and thread count. */
export function sampleProc(pid: number): ProcSample {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields from 3 (state) on, counted after the ')' that ends the command name.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuTicks = Number(f[11]) + Number(f[12]);
  const threads = Number(f[17]);
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  let schedNs = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try { schedNs += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]); } catch { /* thread gone */ }
  }
  return { cpuTicks, schedNs, hwmKb: kb('VmHWM'), rssKb: kb('VmRSS'), threads };
}

let clkTck: number | undefined;

/** Clock ticks per second (`getconf CLK_TCK`; 100 when that cannot be asked). */
export function clockTicksPerSecond(): number {
  if (clkTck === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 });
    const n = Number(r.stdout?.trim());
    clkTck = Number.isInteger(n) && n > 0 ? n : 100;
  }
  return clkTck;
}
