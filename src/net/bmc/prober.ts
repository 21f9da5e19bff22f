/**
 * Layer: socket. BMC reachability over UDP 623 from Node, without spawning
 * (DESIGN ground rule 1): a session-less Get Channel Authentication
 * Capabilities request and an RMCP/ASF Presence Ping, sent together on one
 * connected dgram socket, resent each try, under one hard deadline.
 *
 * Auth-Cap is the main evidence: every IPMI-over-LAN BMC must answer it
 * (it is how ipmitool starts a session). The Presence Ping is a hint only:
 * many BMCs and fakebmc never answer it (bmc-and-nova.md §1c).
 *
 * Reachability is not the host's power state, and "up" is not "fenced":
 * this only tells, before an incident, that the BMC will be there when the
 * fence needs it.
 *
 * The socket is created, bound and connected synchronously in the first
 * call (a synchronous `lookup` for the IP literal), so a caller can open it
 * inside a network namespace with `host.inNetns(() => probeBmc(…))`.
 */
import * as dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { errorMessage } from '../../errors';
import { isIPv4 } from '../../util/ip';
import { RMCP_PORT, decodeAuthCapResponse, decodePresencePong, encodeAuthCapRequest, encodePresencePing } from './codec';

/** Tri-state like every vigil probe. */
export type BmcProbeStatus = 'up' | 'down' | 'unknown';

/** Result of {@link probeBmc}. */
export interface BmcProbeResult {
  status: BmcProbeStatus;
  /** Time from the first send to the first valid answer (up only). */
  latencyMs?: number;
  /** Which message was answered first, or why there was no answer. */
  detail: string;
  /** Auth-Cap answered and announced IPMI 2.0 (RMCP+), which `-I lanplus` needs. */
  ipmi20?: boolean;
  /** The answer was a Presence Pong (the BMC ignored or lost Auth-Cap). */
  pong?: boolean;
  /** Errno code of a socket error, when one ended the probe. */
  code?: string;
}

/** Options of {@link probeBmc}. */
export interface BmcProbeOptions {
  /** UDP port; default 623. */
  port?: number;
  /** Wait per try before resending; default 1000 ms. */
  tryTimeoutMs?: number;
  /** Number of tries; default 3. The whole probe ends by `tries × tryTimeoutMs`. */
  tries?: number;
  /** Send the ASF Presence Ping; default true. */
  ping?: boolean;
  /** Send Get Channel Authentication Capabilities; default true. */
  authCap?: boolean;
}

/**
 * Socket errors that are evidence about the BMC's side: an ICMP port
 * unreachable (ECONNREFUSED: the address answers, nothing listens on 623)
 * or host unreachable (EHOSTUNREACH: on the local link, ARP for it failed).
 * Everything else (ENETUNREACH: we have no route; EPERM: a local firewall;
 * ENOBUFS…) says something about *our* side, not the BMC, and an error on
 * our side is never evidence about a peer (DESIGN: unknown policy → hold).
 */
const BMC_SIDE_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'EHOSTDOWN']);

/** A `lookup` for dgram that answers IP literals synchronously (see the file comment). */
function literalLookup(host: string, _opts: unknown, cb: (err: Error | null, address: string, family: number) => void): void {
  if (isIPv4(host)) cb(null, host, 4);
  else cb(Object.assign(new Error(`not an IPv4 address: ${host}`), { code: 'EINVAL' }), '', 4);
}

/**
 * Probe the BMC at `ip`: `up` on the first valid Auth-Cap response or
 * Presence Pong; `down` when every try stays silent or the BMC's side
 * refuses (ICMP port/host unreachable); `unknown` on an error on our own
 * side (no route, socket errors, invalid address). Never throws.
 */
export function probeBmc(ip: string, opts: BmcProbeOptions = {}): Promise<BmcProbeResult> {
  const port = opts.port ?? RMCP_PORT;
  const tryMs = opts.tryTimeoutMs ?? 1000;
  const tries = Math.max(1, opts.tries ?? 3);
  const sendPing = opts.ping ?? true;
  const sendCap = opts.authCap ?? true;
  const what = [sendCap ? 'Auth-Cap' : '', sendPing ? 'Presence Ping' : ''].filter(Boolean).join('/');
  if (!sendPing && !sendCap) return Promise.resolve({ status: 'unknown', detail: 'nothing to send: ping and authCap both off', code: 'EINVAL' });
  if (!isIPv4(ip)) return Promise.resolve({ status: 'unknown', detail: `not an IPv4 address: ${ip}`, code: 'EINVAL' });
  return new Promise((resolve) => {
    let settled = false;
    let sentAt = 0;
    let tryNo = 0;
    let timer: NodeJS.Timeout | undefined;
    let hardTimer: NodeJS.Timeout | undefined;
    let sock: dgram.Socket | undefined;
    // rqSeq and the ASF tag are per try, so a late answer to an earlier try still counts (same BMC).
    const seqs = new Set<number>();
    const base = Math.floor(Math.random() * 64);
    const finish = (r: BmcProbeResult) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      if (hardTimer) clearTimeout(hardTimer);
      try { sock?.close(); } catch { /* already closed */ }
      resolve(r);
    };
    const onError = (e: NodeJS.ErrnoException) => {
      const code = e.code ?? 'EUNKNOWN';
      const side = BMC_SIDE_ERRORS.has(code) ? 'down' : 'unknown';
      finish({ status: side, detail: `${e.syscall ?? 'socket'}: ${code}`, code });
    };
    const sendTry = () => {
      if (settled) return;
      if (tryNo >= tries) {
        finish({ status: 'down', detail: `no answer to ${tries} ${what} tries of ${tryMs} ms` });
        return;
      }
      const seq = (base + tryNo) & 0x3f;
      seqs.add(seq);
      tryNo++;
      if (sentAt === 0) sentAt = performance.now();
      const cb = (err: Error | null) => { if (err) onError(err as NodeJS.ErrnoException); };
      if (sendCap) sock!.send(encodeAuthCapRequest({ seq }), cb);
      if (sendPing) sock!.send(encodePresencePing(seq), cb);
      timer = setTimeout(sendTry, tryMs);
    };
    try {
      sock = dgram.createSocket({ type: 'udp4', lookup: literalLookup as never });
      sock.on('error', onError);
      sock.on('message', (buf) => {
        const cap = decodeAuthCapResponse(buf);
        if (cap && seqs.has(cap.seq)) {
          if (cap.completionCode !== 0) {
            // It answered, so it is there; a refusal of this harmless command is odd but still presence.
            finish({ status: 'up', latencyMs: performance.now() - sentAt, detail: `Auth-Cap completion code 0x${cap.completionCode.toString(16)}`, ipmi20: false });
            return;
          }
          finish({ status: 'up', latencyMs: performance.now() - sentAt, detail: 'Auth-Cap answered', ipmi20: cap.ipmi20 });
          return;
        }
        const p = decodePresencePong(buf);
        if (p && seqs.has(p.tag)) {
          finish({ status: 'up', latencyMs: performance.now() - sentAt, detail: 'Presence Pong answered', pong: true });
        }
        // Anything else (malformed, stale, a stranger) is ignored: only a valid answer is evidence.
      });
      // A connected socket makes the kernel deliver ICMP errors (port
      // unreachable → ECONNREFUSED) as 'error' events; unconnected, they are lost.
      sock.bind({ port: 0, address: '0.0.0.0', exclusive: true });
      sock.connect(port, ip, (err?: Error) => {
        if (err) onError(err as NodeJS.ErrnoException);
        else sendTry();
      });
    } catch (e) {
      finish({ status: 'unknown', detail: `socket: ${errorMessage(e)}`, code: (e as NodeJS.ErrnoException).code ?? 'EUNKNOWN' });
      return;
    }
    // The hard bound, whatever the socket does (a send callback that never comes).
    hardTimer = setTimeout(() => finish({ status: 'down', detail: `no answer within ${tries * tryMs} ms` }), tries * tryMs + 50);
  });
}
