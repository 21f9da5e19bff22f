#!/usr/bin/env node
/*
 * Layer: test support. The heartbeat sender that stands in for a lab host's
 * gossip with the Consul TEST DOUBLE (not Consul): run once per lab host,
 * inside its network namespace (`ip netns exec NS node heartbeat.js …`), it
 * sends a UDP datagram `{"Node": name, "Addr": ip}` to the double's
 * heartbeat port on that network's bridge every interval. While the
 * datagrams arrive the double lists the host alive; cut the host's veth and
 * they stop, so the double turns it failed after its suspicion timeout.
 *
 *   node heartbeat.js -node a -to 10.1.2.10:8301 [-addr 10.1.2.11] [-interval-ms 200]
 *
 * Plain CommonJS, no dependencies. Send errors (ENETUNREACH while a link is
 * down) are ignored: a silent host is exactly what the double must detect.
 */
'use strict';

const dgram = require('node:dgram');

function die(msg) { process.stderr.write(`heartbeat: ${msg}\n`); process.exit(2); }

const opts = { node: undefined, to: undefined, addr: undefined, intervalMs: 200 };
const args = process.argv.slice(2);
while (args.length > 0) {
  const a = args.shift();
  const v = args.shift();
  if (v === undefined) die(`flag ${a} needs a value`);
  if (a === '-node') opts.node = v;
  else if (a === '-to') opts.to = v;
  else if (a === '-addr') opts.addr = v;
  else if (a === '-interval-ms') opts.intervalMs = Number(v);
  else die(`unknown flag ${a}`);
}
if (!opts.node) die('-node is required');
const m = /^([0-9.]+):(\d+)$/.exec(opts.to || '');
if (!m) die('-to must be IPv4:port');
if (!(opts.intervalMs >= 10)) die('-interval-ms must be >= 10');

const sock = dgram.createSocket('udp4');
sock.on('error', () => { /* ENETUNREACH and friends while the link is cut */ });
const msg = Buffer.from(JSON.stringify(opts.addr ? { Node: opts.node, Addr: opts.addr } : { Node: opts.node }));
const beat = () => sock.send(msg, Number(m[2]), m[1], () => { /* errors ignored, see above */ });
beat();
const timer = setInterval(beat, opts.intervalMs);
const stop = () => { clearInterval(timer); sock.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdout.write(`${JSON.stringify({ heartbeat: opts.node, to: opts.to, pid: process.pid })}\n`);
