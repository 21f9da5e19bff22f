/**
 * Layer: net/arp, the prober's vocabulary: probe and announcement options,
 * the tri-state probe result, one answer's evidence (prober.ts runs them).
 */
import type { VigilError } from '../../errors';
import type { ArpPacket, MacLike } from './codec';
import type { ArpBinding } from './socket';

/** How a probe asks: an RFC 5227 probe (sender IP 0.0.0.0) or an ordinary request. */
export type ProbeSource = 'probe' | 'request';

/** Options of one probe. */
export interface ProbeOptions {
  /** How long to wait for an answer after the last send. Default 1000. */
  timeoutMs?: number;
  /** Frames to send. Default 1. */
  count?: number;
  /** Time between sends. Default 200. */
  intervalMs?: number;
  /**
   * `'probe'` (default): RFC 5227 probe, sender IP 0.0.0.0, so no neighbour
   * cache learns anything from it and it works before we hold any address.
   * `'request'`: an ordinary who-has from `senderIp`.
   */
  source?: ProbeSource;
  /** Sender IP for `source: 'request'`; default: the interface's first IPv4 address. */
  senderIp?: string;
  /**
   * Finish at the first answer (default true). With false every send is
   * made and the probe ends when each send has had an answer or at the
   * timeout after the last one, collecting every reply (arping style).
   */
  stopOnReply?: boolean;
  /**
   * Wait the whole timeout after the last send and collect every reply
   * (default false); overrides `stopOnReply`. The way to see *every* holder
   * of an IP: with two of them (a split brain), the first answer alone says
   * nothing about the second, and `stopOnReply: false` ends as soon as each
   * send has had one answer.
   */
  untilTimeout?: boolean;
  /**
   * For `source: 'probe'`: count an RFC 5227 probe for the same IP from
   * another host as an answer of kind `'conflict'` (RFC 5227 §2.1.1: both
   * sides back off). Default true.
   */
  acceptConflict?: boolean;
  /** Called for each answer as it arrives (the CLI prints from it). */
  onReply?: (reply: ArpReply) => void;
  /** Retries of a send that failed with a retryable error (EAGAIN, ENOBUFS). Default 3. */
  sendRetries?: number;
}

/**
 * One piece of evidence that the IP is in use. `kind`:
 * - `'reply'` — an ARP reply whose sender IP is the probed IP;
 * - `'request'` — an ARP request from the probed IP (including gratuitous
 *   ARP): RFC 5227 §2.1.1 counts "any ARP packet (Request or Reply)" whose
 *   sender IP is the probed address;
 * - `'conflict'` — an RFC 5227 probe for the same IP from another MAC:
 *   another host is trying to claim it at the same time.
 */
export interface ArpReply {
  kind: 'reply' | 'request' | 'conflict';
  /** The probed IP. */
  ip: string;
  /** Sender MAC of the answer: who holds (or claims) the IP. */
  mac: string;
  /** Receive time minus the time of the latest send before it, in ms. */
  rttMs: number;
  /** Index (0-based) of the latest send before this answer. */
  seq: number;
  /** CLOCK_MONOTONIC receive time in ns, from the native layer. */
  receivedAtNs: bigint;
  /** The decoded frame. */
  packet: ArpPacket;
}

export interface ResultBase {
  /** The probed IP. */
  ip: string;
  /** The interface probed on. */
  iface: string;
  /** Frames actually sent. */
  sent: number;
  /** Wall time from the start of the probe to its result, in ms (monotonic). */
  elapsedMs: number;
  /**
   * The MAC the probe went out with (the interface's at the time), when a
   * socket was open: it changes when the interface is re-created.
   */
  senderMac?: string;
}

/** Someone answered. `mac`/`rttMs` are those of the first answer. */
export interface ProbeAnswered extends ResultBase {
  status: 'answered';
  answered: true;
  mac: string;
  rttMs: number;
  replies: ArpReply[];
}

/** Every send was made and nothing answered within the timeout. */
export interface ProbeSilent extends ResultBase {
  status: 'silent';
  answered: false;
}

/**
 * The probe could not be carried out. Not evidence of absence: callers must
 * treat it as "unknown". (`answered` is absent, so switch on `status`.)
 */
export interface ProbeFailed extends ResultBase {
  status: 'error';
  answered?: undefined;
  error: VigilError;
}

/** Tri-state probe result; switch on `status`. */
export type ProbeResult = ProbeAnswered | ProbeSilent | ProbeFailed;

/** Options of an announcement. */
export interface AnnounceOptions {
  /** Frames to send (per form). Default 2 (RFC 5227 §1.1 ANNOUNCE_NUM). */
  count?: number;
  /** Time between sends. Default 2000 (RFC 5227 ANNOUNCE_INTERVAL). */
  intervalMs?: number;
  /** The MAC to announce; default the interface's own. */
  mac?: MacLike;
  /**
   * `'request'` (default, RFC 5227 §3), `'reply'` (RFC 5944 §4.6) or
   * `'both'` (each round sends a request then a reply: stacks differ in which
   * they honour).
   */
  form?: 'request' | 'reply' | 'both';
  /** Retries of a retryable send failure. Default 3. */
  sendRetries?: number;
}

/** Options of the shared socket (and of the binding it runs on). */
export interface ProberOptions {
  /** The native binding; the compiled addon when omitted. */
  binding?: ArpBinding;
}
