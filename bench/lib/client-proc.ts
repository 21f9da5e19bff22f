/**
 * Layer: bench support, process entry. The benchmark client as its own
 * process, started inside the client host's network namespace by
 * {@link startClient} (client.ts), so that its 10 ms probe rhythm does not
 * depend on the bench's event loop (which spawns `ip`, daemons, tcpdump).
 *
 *   node client-proc.js <ha-ip> <period-ms>
 *
 * One long probe session over its own ARP socket ({@link ArpProber}); it
 * prints `R <mac>` once the socket is open, then `A <seq> <mac> <ns>` per
 * answer (an ARP reply addressed to the client; `<ns>` is the kernel's
 * CLOCK_MONOTONIC receive time, comparable across processes), and stops on
 * SIGTERM or when stdin closes.
 */
import { ArpProber } from '../../src/net/arp/prober';
import { OP_REPLY } from '../../src/net/arp/codec';
import { NdpProber } from '../../src/net/ndp/prober';

/**
 * IPv6 (the HA IP has a ':'): one DAD-form NS per period over an NDP socket
 * (src/net/ndp/prober.ts), and every NA for the HA IP heard in the period is
 * an answer. The holder's kernel answers a DAD probe to all-nodes, so an
 * answer is not addressed to the client, and a new holder's unsolicited NA
 * counts too: for IPv6 that NA is what moves a client's cache, for both
 * tools alike.
 */
async function runIpv6(ip: string, periodMs: number, iface: string): Promise<number> {
  const prober = NdpProber.open(iface);
  let running = true;
  const stop = () => { running = false; };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
  process.stdout.write(`R ${prober.mac}\n`);
  for (let seq = 0; running; seq++) {
    const started = Date.now();
    const r = await prober.probe(ip, periodMs);
    if (r.status === 'answered') process.stdout.write(`A ${seq} ${r.mac} ${r.receivedAtNs}\n`);
    const wait = periodMs - (Date.now() - started);
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
  }
  prober.close();
  return 0;
}

async function main(): Promise<number> {
  const [ip, periodArg, ifaceArg] = process.argv.slice(2);
  const periodMs = Number(periodArg ?? '10');
  if (!ip || !Number.isFinite(periodMs) || periodMs <= 0) {
    process.stderr.write('usage: client-proc <ha-ip> <period-ms> [iface]\n');
    return 2;
  }
  const iface = ifaceArg ?? 'eth0';
  if (ip.includes(':')) return runIpv6(ip, periodMs, iface);
  let prober = ArpProber.open(iface);
  const mac = prober.mac;
  let running = true;
  const stop = () => { running = false; prober.close(); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
  let out: string[] = [];
  const flush = () => { if (out.length) { process.stdout.write(out.join('')); out = []; } };
  const flusher = setInterval(flush, 5);
  process.stdout.write(`R ${mac}\n`);
  let seqBase = 0;
  while (running) {
    const base = seqBase;
    const r = await prober.probe(ip, {
      count: 1_000_000_000, intervalMs: periodMs, timeoutMs: periodMs, stopOnReply: false, acceptConflict: false,
      onReply: (rep) => {
        if (rep.kind !== 'reply' || rep.packet.op !== OP_REPLY || rep.packet.targetMac !== mac) return;
        out.push(`A ${base + rep.seq} ${rep.mac} ${rep.receivedAtNs}\n`);
      },
    });
    seqBase = base + r.sent + 1;
    if (!running) break;
    // The session ended on a socket error: reopen and go on.
    process.stderr.write(`client: probe session ended (${r.status === 'error' ? r.error.message : r.status}); reopening\n`);
    prober.close();
    await new Promise((res) => setTimeout(res, periodMs));
    prober = ArpProber.open(iface);
  }
  clearInterval(flusher);
  flush();
  return 0;
}

main().then((code) => process.exit(code), (e) => {
  process.stderr.write(`client: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
