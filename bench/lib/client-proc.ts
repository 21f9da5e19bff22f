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

async function main(): Promise<number> {
  const [ip, periodArg, ifaceArg] = process.argv.slice(2);
  const periodMs = Number(periodArg ?? '10');
  if (!ip || !Number.isFinite(periodMs) || periodMs <= 0) {
    process.stderr.write('usage: client-proc <ha-ip> <period-ms> [iface]\n');
    return 2;
  }
  const iface = ifaceArg ?? 'eth0';
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
