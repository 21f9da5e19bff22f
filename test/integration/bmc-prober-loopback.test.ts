// vigil's UDP 623 prober against scripted responders on loopback (no root):
// only a valid answer to one of our own requests is "up"; garbage, a stale
// sequence number or a stranger's frame is ignored; a closed port is
// "down" at once (ICMP port unreachable on a connected socket); silence is
// "down" by tries × per-try timeout; our own errors are "unknown".
import t, { type Test } from 'tap';
import * as dgram from 'node:dgram';
import { probeBmc } from '../../src/net/bmc/prober';
import { ipmiChecksum } from '../../src/net/bmc/codec';

/** A UDP responder on 127.0.0.1 that answers each datagram with `reply(request)` (or nothing). */
async function responder(t: Test, reply: (req: Buffer) => Buffer[]): Promise<{ port: number; seen: Buffer[] }> {
  const s = dgram.createSocket('udp4');
  const seen: Buffer[] = [];
  s.on('message', (m, rinfo) => { seen.push(m); for (const b of reply(m)) s.send(b, rinfo.port, rinfo.address); });
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  t.teardown(() => s.close());
  return { port: s.address().port, seen };
}

/** A valid Auth-Cap response to `req` (its rqSeq echoed), built byte by byte. */
function authCapReply(req: Buffer, seqDelta = 0): Buffer {
  const m = [0x81, 0x1c, 0x63, 0x20, ((req[18]! >> 2) + seqDelta & 0x3f) << 2, 0x38, 0x00, 0x01, 0x85, 0x04, 0x03, 0, 0, 0, 0, 0];
  m[15] = ipmiChecksum(Buffer.from(m), 3, 15);
  return Buffer.from([0x06, 0x00, 0xff, 0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, ...m]);
}

const isCap = (b: Buffer) => b[3] === 0x07;
const opts = { tryTimeoutMs: 150, tries: 3 };
const boundMs = opts.tryTimeoutMs * opts.tries + 200;

t.test('a valid Auth-Cap answer is up, with latency', async (t) => {
  const r = await responder(t, (q) => (isCap(q) ? [authCapReply(q)] : []));
  const res = await probeBmc('127.0.0.1', { ...opts, port: r.port });
  t.match(res, { status: 'up', detail: 'Auth-Cap answered', ipmi20: true });
  t.ok(typeof res.latencyMs === 'number' && res.latencyMs >= 0);
  t.equal(r.seen.length, 2, 'Auth-Cap and Presence Ping sent together');
});

t.test('garbage, a stale sequence and a broken checksum are ignored: down after the tries', async (t) => {
  const r = await responder(t, (q) => {
    if (!isCap(q)) return [Buffer.from('not rmcp')];
    const bad = authCapReply(q);
    bad[29] ^= 0xff;
    return [authCapReply(q, 7), bad, Buffer.alloc(30)];
  });
  const t0 = Date.now();
  const res = await probeBmc('127.0.0.1', { ...opts, port: r.port });
  const took = Date.now() - t0;
  t.match(res, { status: 'down', detail: /no answer to 3 Auth-Cap\/Presence Ping tries of 150 ms/ });
  t.equal(r.seen.filter(isCap).length, 3, 'one Auth-Cap per try');
  t.ok(took <= boundMs, `expected down by ${boundMs} ms, took ${took}`);
});

t.test('an answer to an earlier try still counts', async (t) => {
  let n = 0;
  const r = await responder(t, (q) => (isCap(q) && ++n === 2 ? [authCapReply(q, -1)] : []));
  const res = await probeBmc('127.0.0.1', { ...opts, port: r.port, ping: false });
  t.equal(res.status, 'up');
});

t.test('a closed port is down at once (port unreachable)', async (t) => {
  const r = await responder(t, () => []);
  const port = r.port;
  const closed = dgram.createSocket('udp4');
  await new Promise<void>((res) => closed.bind(0, '127.0.0.1', () => res()));
  const freePort = closed.address().port;
  closed.close();
  t.not(freePort, port);
  const t0 = Date.now();
  const res = await probeBmc('127.0.0.1', { ...opts, port: freePort });
  t.match(res, { status: 'down', code: 'ECONNREFUSED' });
  t.ok(Date.now() - t0 < opts.tryTimeoutMs, 'before the first try times out');
});

t.test('our own errors are unknown, never down', async (t) => {
  t.match(await probeBmc('bmc.example'), { status: 'unknown', code: 'EINVAL' });
  t.match(await probeBmc('127.0.0.1', { ping: false, authCap: false }), { status: 'unknown' });
});
