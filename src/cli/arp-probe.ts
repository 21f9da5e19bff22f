/**
 * Layer: cli. `vigil arp-probe`: probe whether an IP is in use on an
 * interface, with the same socket and prober the daemon uses.
 *
 * Exit codes: 0 the IP answered, 1 it did not, 2 the probe could not be
 * made (bad arguments, unknown interface, missing privilege, send errors) —
 * the distinction vzhaipd's `arpsend` callers lost (seed hazard V-22).
 */
import { parseArgs } from 'node:util';
import { errorMessage } from '../errors';
import { DURATION_FORMS, formatDurationMs, parseDurationMs } from '../util/duration';
import { isIPv4 } from '../util/ip';
import { probe } from '../net/arp/prober';
import type { ArpReply, ProbeSource } from '../net/arp/prober';
import { EXIT, usageError } from './common';

const USAGE = `Usage: vigil arp-probe -I IFACE [options] IP

Send ARP probes for IP on IFACE and print one line per answer.

Options:
  -I, --interface IFACE   interface to probe on (required)
  -w, --timeout DURATION  wait after the last probe (default 1s)
  -c, --count N           probes to send (default 1)
  -i, --interval DURATION time between probes (default 200ms)
      --source KIND       'probe': RFC 5227 probe from 0.0.0.0 (default);
                          'request': ordinary who-has from --sender
  -s, --sender IP         sender IP for --source request
                          (default: the interface's first IPv4 address)
  -h, --help              show this help

Durations: ${DURATION_FORMS}.
Exit status: 0 the IP answered, 1 no answer, 2 error.
`;

class UsageError extends Error {}

function duration(flag: string, value: string | undefined, dflt: number): number {
  if (value === undefined) return dflt;
  const ms = parseDurationMs(value);
  if (ms === undefined) throw new UsageError(`--${flag}: invalid duration '${value}' (expected ${DURATION_FORMS})`);
  return ms;
}

/** One output line for an answer, e.g. `reply from 10.1.2.3 [aa:bb:cc:dd:ee:ff] 0.213 ms`. */
export function formatReply(r: ArpReply): string {
  const rtt = `${r.rttMs.toFixed(3)} ms`;
  switch (r.kind) {
    case 'reply': return `reply from ${r.ip} [${r.mac}] ${rtt}`;
    case 'request': return `request from ${r.ip} [${r.mac}] ${rtt}`;
    case 'conflict': return `conflict: probe for ${r.ip} from [${r.mac}] ${rtt}`;
  }
}

/** Run the verb; resolves with the exit code. */
export async function run(args: string[]): Promise<number> {
  // One line, whatever the message (parseArgs' own messages span lines).
  const fail = (msg: string): number => usageError('arp-probe', msg.replace(/\s+/g, ' ').trim());
  let iface: string;
  let ip: string;
  let timeoutMs: number;
  let intervalMs: number;
  let count: number;
  let source: ProbeSource;
  let senderIp: string | undefined;
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        interface: { type: 'string', short: 'I' },
        timeout: { type: 'string', short: 'w' },
        count: { type: 'string', short: 'c' },
        interval: { type: 'string', short: 'i' },
        source: { type: 'string' },
        sender: { type: 'string', short: 's' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(USAGE);
      return EXIT.OK;
    }
    if (!values.interface) throw new UsageError('missing -I IFACE (see --help)');
    iface = values.interface;
    if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'missing the IP to probe (see --help)' : `expected one IP, got ${positionals.length}: ${positionals.join(' ')}`);
    ip = positionals[0]!;
    if (!isIPv4(ip)) throw new UsageError(`invalid IPv4 address '${ip}'`);
    timeoutMs = duration('timeout', values.timeout, 1000);
    intervalMs = duration('interval', values.interval, 200);
    const c = values.count ?? '1';
    if (!/^[1-9]\d{0,6}$/.test(c)) throw new UsageError(`--count: expected a whole number from 1 to 9999999, got '${c}'`);
    count = Number(c);
    const s = values.source ?? 'probe';
    if (s !== 'probe' && s !== 'request') throw new UsageError(`--source: expected 'probe' or 'request', got '${s}'`);
    source = s;
    senderIp = values.sender;
    if (senderIp !== undefined && !isIPv4(senderIp)) throw new UsageError(`--sender: invalid IPv4 address '${senderIp}'`);
    if (senderIp !== undefined && source !== 'request') throw new UsageError('--sender needs --source request (a probe is always sent from 0.0.0.0)');
  } catch (e) {
    // parseArgs throws TypeErrors with codes such as ERR_PARSE_ARGS_UNKNOWN_OPTION.
    return fail(errorMessage(e));
  }

  const r = await probe(ip, iface, {
    timeoutMs, intervalMs, count, source, ...(senderIp ? { senderIp } : {}),
    stopOnReply: false,
    onReply: (reply) => process.stdout.write(`${formatReply(reply)}\n`),
  });
  switch (r.status) {
    case 'answered':
      return EXIT.OK;
    case 'silent':
      process.stdout.write(`no reply from ${ip} on ${iface} (${r.sent} probe${r.sent === 1 ? '' : 's'}, waited ${formatDurationMs(timeoutMs)})\n`);
      return EXIT.FAIL;
    case 'error':
      return fail(r.error.message);
  }
}
