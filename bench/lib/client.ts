/**
 * Layer: bench support. The benchmark client: a lab host that probes the HA
 * IP over its own ARP socket ({@link ArpProber}) every 10 ms and records,
 * with the kernel's CLOCK_MONOTONIC receive timestamp, which MAC answered.
 *
 * The probing runs in a process of its own inside the client's namespace
 * (client-proc.ts), so the bench's own work (spawning `ip` and daemons)
 * never delays a probe; answers stream back here over a pipe. Times are
 * comparable across processes: CLOCK_MONOTONIC is one clock per machine.
 *
 * One long probe session (`count` huge, `intervalMs` = the period,
 * `stopOnReply: false`) rather than one probe call per period: a reply is
 * attributed to the send it follows by sequence number, and a reply read
 * late is still recorded with its true receive time.
 *
 * Only ARP replies addressed to the client (target MAC = the client's) count
 * as answers: gratuitous ARP from a new master (keepalived sends requests,
 * vigil requests and replies) is not an answer to the client's question.
 */
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { LabHost } from '../../test/support/lab';
import { native } from '../../src/native';
import { onLines } from './lines';

/** One answer to the client. */
export interface Answer {
  /** Index of the probe (send) it answers. */
  seq: number;
  /** Who answered. */
  mac: string;
  /** CLOCK_MONOTONIC receive time, ns. */
  atNs: bigint;
}

/** CLOCK_MONOTONIC now, ns: the clock of every bench timestamp. */
export function nowNs(): bigint {
  return native().monotonicNs();
}

/** ns → ms as a number. */
export const nsToMs = (ns: bigint): number => Number(ns) / 1e6;

/** A running client. */
export interface ArpClient {
  /** Every answer so far, in order of arrival. */
  readonly answers: Answer[];
  /** The client's MAC. */
  readonly mac: string;
  /** First answer from `mac` received at or after `fromNs`. */
  firstFrom(mac: string, fromNs: bigint): Answer | undefined;
  /** Measured mean probe period (ms) over the answers so far. */
  periodMs(): number;
  /** Stop probing and wait for the process to exit. */
  stop(): Promise<void>;
}

const CLIENT_JS = path.join(__dirname, 'client-proc.js');

/**
 * Start probing `ip` from `host` every `periodMs` (default 10). Resolves
 * once the client's socket is open.
 */
export async function startClient(host: LabHost, ip: string, periodMs = 10): Promise<ArpClient> {
  const answers: Answer[] = [];
  const proc: ChildProcess = host.spawn([process.execPath, CLIENT_JS, ip, String(periodMs), host.ifname], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2000); });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  let mac = '';
  let onReady: (() => void) | undefined;
  onLines(proc.stdout!, (line) => {
    const f = line.split(' ');
    if (f[0] === 'A' && f.length === 4) answers.push({ seq: Number(f[1]), mac: f[2]!, atNs: BigInt(f[3]!) });
    else if (f[0] === 'R') { mac = f[1] ?? ''; onReady?.(); }
  });
  await Promise.race([
    new Promise<void>((r) => { onReady = r; }),
    exited.then(() => { throw new Error(`bench client exited before it was ready: ${stderr.trim()}`); }),
    new Promise<void>((_r, rej) => setTimeout(() => rej(new Error(`bench client not ready after 10 s: ${stderr.trim()}`)), 10_000)),
  ]);
  return {
    answers,
    mac,
    firstFrom(m, fromNs) {
      // Answers arrive in time order: binary search the first at/after fromNs.
      let lo = 0;
      let hi = answers.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (answers[mid]!.atNs < fromNs) lo = mid + 1; else hi = mid;
      }
      for (let i = lo; i < answers.length; i++) if (answers[i]!.mac === m) return answers[i];
      return undefined;
    },
    periodMs() {
      if (answers.length < 2) return NaN;
      const a = answers[0]!;
      const b = answers[answers.length - 1]!;
      return b.seq > a.seq ? nsToMs(b.atNs - a.atNs) / (b.seq - a.seq) : NaN;
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}
