/**
 * Layer: bench support, process entry. Watches IPv4 address and link changes
 * in the network namespace it is started in (rtnetlink RTNLGRP_IPV4_IFADDR
 * and RTNLGRP_LINK, through vigil's own netlink layer) and prints one line
 * per change, `<ns>` being CLOCK_MONOTONIC at receipt:
 * `A <ns> <address>/<prefix>` added, `D <ns> <address>/<prefix>` removed,
 * `L <ns> <ifname> <up 0|1> <removed 0|1>` a link changed. `R` once subscribed.
 *
 * Its own process, started inside a lab host, so that a burst of a thousand
 * events can never stall or (on a receive-queue overrun) abort the bench.
 *
 *   node addrwatch-proc.js
 */
import { Netlink } from '../../src/net/netlink';
import { native } from '../../src/native';

function main(): void {
  const nl = Netlink.openSync();
  const clock = native();
  let out: string[] = [];
  const flush = () => { if (out.length) { process.stdout.write(out.join('')); out = []; } };
  setInterval(flush, 5);
  nl.subscribe((ev) => {
    if (ev.kind === 'link') {
      out.push(`L ${clock.monotonicNs()} ${ev.link.name} ${ev.link.up ? 1 : 0} ${ev.removed ? 1 : 0}\n`);
      return;
    }
    out.push(`${ev.removed ? 'D' : 'A'} ${clock.monotonicNs()} ${ev.address.address}/${ev.address.prefix}\n`);
  }, (err) => {
    flush();
    process.stderr.write(`addrwatch: ${err.message}\n`);
    process.exit(1);
  });
  process.stdout.write('R\n');
  process.stdout.on('error', () => process.exit(0));
  process.stdin.on('end', () => { flush(); process.exit(0); });
  process.stdin.resume();
  process.on('SIGTERM', () => { flush(); process.exit(0); });
}

main();
