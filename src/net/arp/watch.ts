/**
 * Layer: net/arp, watch. The steady-state probe loop of the HA IP role on
 * the native side of the socket (native/arpwatch.c), seen from TypeScript.
 *
 * A slave at rest probes the HA IP once per check interval and hears the
 * same holder every time; a master at rest probes for a competitor and hears
 * nothing. Neither round needs JavaScript: the native loop runs `rounds` of
 * them and wakes JavaScript only when one is not what was expected. The
 * watch ends, once, with:
 * - `complete`: every round passed (the round trips of the answers taken);
 * - `silent`: expected an answer (the holder's, or a neighbour's), none came
 *   by a timeout (declared after the queued frames were read, the prober's
 *   own rule);
 * - `heard`: a frame about the IP from another MAC reached JavaScript (a
 *   competitor's answer or gratuitous ARP, another holder's reply): the
 *   loop is stopped and the caller looks with an ordinary probe;
 * - `error`: the loop could not send (the caller probes the ordinary way,
 *   with its retries, and reports that).
 */
import { getSystemErrorName } from 'node:util';
import { fromNative, VigilError } from '../../errors';
import type { ArpPacket } from './codec';
import type { ArpSocket } from './socket';

/** How a watch ended (see the module comment). `rttsMs`: round trips of the answers taken, in order. */
export type WatchEnd =
  | { status: 'complete'; rounds: number; rttsMs: number[] }
  | { status: 'silent'; rounds: number; rttsMs: number[] }
  | { status: 'heard'; rounds: number; rttsMs: number[]; mac: string }
  | { status: 'error'; rounds: number; rttsMs: number[]; error: VigilError };

/** A running watch. `stop()` ends it without a result (`done` never settles then). */
export interface ArpWatch {
  readonly done: Promise<WatchEnd>;
  stop(): void;
}

/** What the watch needs of the prober's shared endpoint. */
export interface WatchEndpoint {
  readonly socket: ArpSocket;
  /** Standing interests kept in the kernel filter (the prober's pins). */
  readonly pins: Set<{ senders?: string[]; replySenders?: string[] }>;
  refilter(): void;
  watch(ip: string, w: WatchWaiter): void;
  unwatch(ip: string, w: WatchWaiter): void;
}

/** The prober's waiter shape (a frame about the watched IP, or the socket's failure). */
export interface WatchWaiter {
  conflicts: boolean;
  onPacket(p: ArpPacket, at: bigint, kind: 'reply' | 'request' | 'conflict'): void;
  fail(e: VigilError): void;
}

/** Options of {@link startWatch}. */
export interface WatchOptions {
  /** The holder expected to answer (a slave); absent: silence is expected (a master). */
  expectMac?: string;
  everyMs: number;
  timeoutMs: number;
  /** 1..1000. */
  rounds: number;
  /**
   * Without `expectMac` only: ARP requests sent with each round, which then
   * passes at the first reply from one of `ips` (a master's neighbour gate);
   * none by the timeout ends the watch as `silent`.
   */
  neighbours?: { frames: Buffer[]; ips: string[] };
}

const ipBytes = (ip: string): Buffer => Buffer.from(ip.split('.').map(Number));
const macBytes = (mac: string): Buffer => Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));

/**
 * Start the native loop on `ep`'s socket, probing `ip` with `frame`. Throws a
 * {@link VigilError} if the socket cannot run it (closed, no native loop).
 */
export function startWatch(ep: WatchEndpoint, frame: Buffer, ip: string, o: WatchOptions): ArpWatch {
  const socket = ep.socket;
  const expect = o.expectMac?.toLowerCase();
  let finished = false;
  let resolve!: (e: WatchEnd) => void;
  const done = new Promise<WatchEnd>((r) => { resolve = r; });
  // The neighbours' replies must pass the kernel filter (a daemon pins them already: no swap then).
  const nbPin = o.neighbours && o.neighbours.ips.length > 0 ? { replySenders: [...o.neighbours.ips] } : undefined;
  const end = (e: WatchEnd | undefined): void => {
    if (finished) return;
    finished = true;
    ep.unwatch(ip, waiter);
    if (nbPin) { ep.pins.delete(nbPin); ep.refilter(); }
    if (e) resolve(e);
  };
  const waiter: WatchWaiter = {
    // Another slave's RFC 5227 probe is not an owner answering (as the probe's acceptConflict false).
    conflicts: false,
    onPacket: (p) => {
      if (finished) return;
      // The holder we expect (a late answer, its gratuitous ARP): nothing new.
      if (expect !== undefined && p.senderMac === expect) return;
      const rounds = socket.watchState()?.rounds ?? 0;
      socket.unwatch();
      end({ status: 'heard', rounds, rttsMs: [], mac: p.senderMac });
    },
    fail: (e) => end({ status: 'error', rounds: 0, rttsMs: [], error: e }),
  };
  // The filter must pass a competitor's frames (and the neighbours' replies) before the first round goes out.
  if (nbPin) { ep.pins.add(nbPin); ep.refilter(); }
  ep.watch(ip, waiter);
  try {
    const nb = o.neighbours && o.neighbours.ips.length > 0 ? { frames: o.neighbours.frames, ips: Buffer.concat(o.neighbours.ips.map(ipBytes)) } : undefined;
    socket.watch(frame, ipBytes(ip), expect !== undefined ? macBytes(expect) : null, o.everyMs, o.timeoutMs, o.rounds, (kind, rounds, rtts, errno) => {
      const rttsMs = Array.from(rtts);
      if (kind === 0) end({ status: 'complete', rounds, rttsMs });
      else if (kind === 1) end({ status: 'silent', rounds, rttsMs });
      else end({ status: 'error', rounds, rttsMs, error: fromNative({ errno, code: errnoName(errno), syscall: 'send', message: '' }, `ARP probe loop on '${socket.ifname}'`) });
    }, nb);
  } catch (e) {
    end(undefined);
    throw e instanceof VigilError ? e : new VigilError('EUNKNOWN', String(e));
  }
  return {
    done,
    stop: () => {
      if (finished) return;
      socket.unwatch();
      end(undefined);
    },
  };
}

/** `ENETDOWN` for 100: the name Node gives a (positive) errno. */
function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-Math.abs(errno));
  } catch {
    return `E${errno}`;
  }
}
