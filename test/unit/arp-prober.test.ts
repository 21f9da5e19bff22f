// Unit tests of the ARP prober over the fake segment (src/net/arp/fake.ts):
// matching, sharing of one socket, concurrency, timeouts, send errors,
// tri-state results. The real socket is exercised in test/integration/.
import t from 'tap';
import { FakeArpSegment } from '../../src/net/arp/fake';
import { ArpProber, probe, announce, sharedSocketCount } from '../../src/net/arp/prober';
import type { ProbeResult } from '../../src/net/arp/prober';
import { isGratuitous, isProbe, OP_REPLY, OP_REQUEST } from '../../src/net/arp/codec';
import { setLogLevel } from '../../src/log';

setLogLevel('silent');

const OWN = '02:00:00:00:00:01';
const PEER = '02:00:00:00:00:99';

function segment(delayMs = 1): FakeArpSegment {
  return new FakeArpSegment({ interfaces: { eth0: OWN, eth1: '02:00:00:00:00:02' }, delayMs })
    .addHost({ ip: '10.0.0.2', mac: PEER });
}

const now = (): number => performance.now();

t.test('a present IP answers with its MAC and an rtt', async (t) => {
  const seg = segment(20);
  const r = await probe('10.0.0.2', 'eth0', { binding: seg.binding, timeoutMs: 500 });
  t.equal(r.status, 'answered');
  if (r.status !== 'answered') return;
  t.equal(r.answered, true);
  t.equal(r.mac, PEER);
  t.ok(r.rttMs >= 19 && r.rttMs < 400, `rtt ${r.rttMs} ms reflects the 20 ms reply delay`);
  t.equal(r.sent, 1);
  t.equal(r.replies.length, 1);
  t.equal(r.replies[0]!.kind, 'reply');
  t.equal(r.replies[0]!.seq, 0);
  // What went out is an RFC 5227 probe from our MAC.
  const [p] = seg.sentPackets();
  t.ok(p && isProbe(p), 'sent an RFC 5227 probe');
  t.equal(p!.senderMac, OWN);
  t.equal(p!.targetIp, '10.0.0.2');
  t.equal(seg.sockets.size, 0, 'socket closed after the probe');
});

t.test('an absent IP is silent at the timeout after the last send', async (t) => {
  const seg = segment();
  const t0 = now();
  const r = await probe('10.0.0.3', 'eth0', { binding: seg.binding, timeoutMs: 120, count: 3, intervalMs: 40 });
  const took = now() - t0;
  t.equal(r.status, 'silent');
  t.equal(r.answered, false);
  t.equal(r.sent, 3);
  t.equal(seg.sent.length, 3);
  // 2 intervals + the timeout = 200 ms; timers only ever fire late.
  t.ok(took >= 198 && took < 450, `took ${took.toFixed(1)} ms, expected ~200`);
  t.ok(r.elapsedMs >= 198 && r.elapsedMs < 450, `elapsedMs ${r.elapsedMs}`);
});

t.test('count and interval: frames are spaced by the interval', async (t) => {
  const seg = segment();
  const stamps: number[] = [];
  const send = seg.binding.openArpSocket;
  const binding = {
    ...seg.binding,
    openArpSocket: (n: string, d?: number) => {
      const s = send(n, d);
      const orig = s.send.bind(s);
      return Object.assign(s, { send: (f: Buffer) => (stamps.push(now()), orig(f)) });
    },
  };
  await probe('10.0.0.3', 'eth0', { binding, timeoutMs: 10, count: 4, intervalMs: 30 });
  t.equal(stamps.length, 4);
  for (let i = 1; i < stamps.length; i++) {
    const gap = stamps[i]! - stamps[i - 1]!;
    t.ok(gap >= 29 && gap < 200, `gap ${i}: ${gap.toFixed(1)} ms`);
  }
});

t.test('stopOnReply: false collects one answer per send and ends early', async (t) => {
  const seg = segment(2);
  const seen: number[] = [];
  const t0 = now();
  const r = await probe('10.0.0.2', 'eth0', {
    binding: seg.binding, count: 3, intervalMs: 20, timeoutMs: 2000, stopOnReply: false, onReply: (x) => seen.push(x.seq),
  });
  t.equal(r.status, 'answered');
  if (r.status !== 'answered') return;
  t.equal(r.replies.length, 3);
  t.same(seen, [0, 1, 2], 'onReply called for every answer in order');
  t.ok(now() - t0 < 1000, 'did not wait for the 2 s timeout once every send was answered');
});

t.test('stopOnReply: false waits the timeout when a send goes unanswered', async (t) => {
  const seg = new FakeArpSegment({ interfaces: { eth0: OWN } }).addHost({ ip: '10.0.0.2', mac: PEER, answerEvery: 2 });
  const t0 = now();
  const r = await probe('10.0.0.2', 'eth0', { binding: seg.binding, count: 2, intervalMs: 10, timeoutMs: 150, stopOnReply: false });
  t.equal(r.status, 'answered');
  t.equal(r.status === 'answered' && r.replies.length, 1);
  t.ok(now() - t0 >= 155, 'waited for the timeout after the last send');
});

t.test('many concurrent probes share one socket and get their own answers', async (t) => {
  const seg = new FakeArpSegment({ interfaces: { eth0: OWN }, delayMs: 5 });
  for (let i = 1; i <= 40; i++) seg.addHost({ ip: `10.0.1.${i}`, mac: `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`, delayMs: (i * 7) % 30 });
  const ips = Array.from({ length: 80 }, (_, i) => `10.0.1.${i + 1}`); // 41..80 absent
  const results = await Promise.all(ips.map((ip) => probe(ip, 'eth0', { binding: seg.binding, timeoutMs: 150 })));
  t.equal(seg.opened, 1, 'one socket for 80 concurrent probes');
  results.forEach((r, i) => {
    const n = i + 1;
    if (n <= 40) {
      t.equal(r.status, 'answered', `${r.ip} answered`);
      t.equal(r.status === 'answered' && r.mac, `02:00:00:00:01:${n.toString(16).padStart(2, '0')}`, `${r.ip} got its own MAC`);
    } else {
      t.equal(r.status, 'silent', `${r.ip} silent`);
    }
  });
  t.equal(seg.sockets.size, 0, 'shared socket closed after the last probe');
  t.equal(sharedSocketCount(seg.binding), 0);
});

t.test('answers for another IP do not answer a probe', async (t) => {
  const seg = segment();
  const p = probe('10.0.0.3', 'eth0', { binding: seg.binding, timeoutMs: 100 });
  seg.requestFrom('eth0', PEER, '10.0.0.2', '10.0.0.3', 10); // from .2, not .3
  const r = await p;
  t.equal(r.status, 'silent');
});

t.test('a request whose sender is the probed IP counts (RFC 5227 §2.1.1)', async (t) => {
  const seg = segment();
  const p = probe('10.0.0.7', 'eth0', { binding: seg.binding, timeoutMs: 300 });
  seg.requestFrom('eth0', '02:00:00:00:00:77', '10.0.0.7', '10.0.0.1', 10);
  const r = await p;
  t.equal(r.status, 'answered');
  if (r.status !== 'answered') return;
  t.equal(r.replies[0]!.kind, 'request');
  t.equal(r.mac, '02:00:00:00:00:77');
});

t.test('a probe for the same IP from another host is a conflict', async (t) => {
  const seg = segment();
  const p = probe('10.0.0.8', 'eth0', { binding: seg.binding, timeoutMs: 300 });
  seg.probeFrom('eth0', '02:00:00:00:00:88', '10.0.0.8', 10);
  const r = await p;
  t.equal(r.status, 'answered');
  t.equal(r.status === 'answered' && r.replies[0]!.kind, 'conflict');
  t.equal(r.status === 'answered' && r.mac, '02:00:00:00:00:88');

  const q = probe('10.0.0.8', 'eth0', { binding: seg.binding, timeoutMs: 100, acceptConflict: false });
  seg.probeFrom('eth0', '02:00:00:00:00:88', '10.0.0.8', 10);
  t.equal((await q).status, 'silent', 'ignored with acceptConflict: false');

  const r2 = probe('10.0.0.8', 'eth0', { binding: seg.binding, timeoutMs: 100, source: 'request', senderIp: '10.0.0.1' });
  seg.probeFrom('eth0', '02:00:00:00:00:88', '10.0.0.8', 10);
  t.equal((await r2).status, 'silent', 'not a conflict for an ordinary request');

  const own = probe('10.0.0.8', 'eth0', { binding: seg.binding, timeoutMs: 100 });
  seg.probeFrom('eth0', OWN, '10.0.0.8', 10);
  t.equal((await own).status, 'silent', 'our own probe looped back is not a conflict');
});

t.test('source: request sends a who-has from the sender IP', async (t) => {
  const seg = segment();
  const r = await probe('10.0.0.2', 'eth0', { binding: seg.binding, source: 'request', senderIp: '10.0.0.1', timeoutMs: 300 });
  t.equal(r.status, 'answered');
  const [p] = seg.sentPackets();
  t.equal(p!.op, OP_REQUEST);
  t.equal(p!.senderIp, '10.0.0.1');
  t.equal(p!.targetMac, '00:00:00:00:00:00');
  // The fake's reply then targets our IP, as the kernel's would.
  t.equal(r.status === 'answered' && r.replies[0]!.packet.targetIp, '10.0.0.1');
  t.equal(r.status === 'answered' && r.replies[0]!.packet.op, OP_REPLY);
});

t.test('source: request without an address on the interface is an error', async (t) => {
  const seg = new FakeArpSegment({ interfaces: { vgnoaddr0: OWN } });
  const r = await probe('10.0.0.2', 'vgnoaddr0', { binding: seg.binding, source: 'request' });
  t.equal(r.status, 'error');
  t.equal(r.status === 'error' && r.error.code, 'ENOADDR');
});

t.test('a retryable send error is retried', async (t) => {
  const seg = segment();
  seg.sendFailures.push('EAGAIN', 'ENOBUFS');
  const r = await probe('10.0.0.2', 'eth0', { binding: seg.binding, timeoutMs: 300 });
  t.equal(r.status, 'answered');
  t.equal(seg.sent.length, 1, 'the frame left once, on the third try');
});

t.test('retries are bounded; then the result is an error, not silence', async (t) => {
  const seg = segment();
  seg.sendFailures.push('EAGAIN', 'EAGAIN', 'EAGAIN', 'EAGAIN', 'EAGAIN');
  const t0 = now();
  const r = await probe('10.0.0.3', 'eth0', { binding: seg.binding, timeoutMs: 1000, sendRetries: 3 });
  t.equal(r.status, 'error');
  if (r.status !== 'error') return;
  t.equal(r.answered, undefined);
  t.equal(r.error.code, 'EAGAIN');
  t.match(r.error.message, /after 3 retries/);
  t.equal(seg.sendFailures.length, 1, '1 try + 3 retries consumed 4 failures');
  t.ok(now() - t0 < 500, 'reported at once, not after the timeout');
});

t.test('a fatal send error is not retried', async (t) => {
  const seg = segment();
  seg.sendFailures.push('ENETDOWN', 'ENETDOWN');
  const r = await probe('10.0.0.2', 'eth0', { binding: seg.binding, timeoutMs: 1000 });
  t.equal(r.status, 'error');
  t.equal(r.status === 'error' && r.error.code, 'ENETDOWN');
  t.equal(seg.sendFailures.length, 1, 'one try only');
});

t.test('a later send error after an answer keeps the answer', async (t) => {
  const seg = segment(1);
  const p = probe('10.0.0.2', 'eth0', { binding: seg.binding, count: 2, intervalMs: 50, timeoutMs: 100, stopOnReply: false });
  setTimeout(() => seg.sendFailures.push('ENETDOWN'), 25);
  const r = await p;
  t.equal(r.status, 'answered');
});

t.test('open failures are error results naming the problem', async (t) => {
  const seg = segment();
  const r = await probe('10.0.0.2', 'eth9', { binding: seg.binding });
  t.equal(r.status, 'error');
  if (r.status === 'error') {
    t.equal(r.error.code, 'ENODEV');
    t.equal(r.error.message, "no such interface 'eth9'");
  }
  seg.openFailure = 'EPERM';
  const e = await probe('10.0.0.2', 'eth0', { binding: seg.binding });
  t.equal(e.status, 'error');
  if (e.status === 'error') {
    t.equal(e.error.code, 'EPERM');
    t.match(e.error.message, /needs CAP_NET_RAW/);
  }
});

t.test('invalid arguments reject', async (t) => {
  const seg = segment();
  const b = { binding: seg.binding };
  await t.rejects(probe('10.0.0.256', 'eth0', b), { code: 'EINVAL' });
  await t.rejects(probe('10.0.0.2', 'eth0', { ...b, count: 0 }), { code: 'EINVAL' });
  await t.rejects(probe('10.0.0.2', 'eth0', { ...b, count: 1.5 }), { code: 'EINVAL' });
  await t.rejects(probe('10.0.0.2', 'eth0', { ...b, timeoutMs: -1 }), { code: 'EINVAL' });
  await t.rejects(probe('10.0.0.2', 'eth0', { ...b, intervalMs: NaN }), { code: 'EINVAL' });
  await t.rejects(probe('10.0.0.2', 'eth0', { ...b, senderIp: 'x' }), { code: 'EINVAL' });
  t.equal(seg.opened, 0, 'nothing opened for bad arguments');
});

t.test('a fatal socket error fails the pending probes; the prober reopens', async (t) => {
  const seg = segment();
  const prober = ArpProber.open('eth0', { binding: seg.binding });
  const p = prober.probe('10.0.0.3', { timeoutMs: 1000 });
  setTimeout(() => seg.failSockets('eth0', 'ENETDOWN'), 10);
  const r = await p;
  t.equal(r.status, 'error');
  t.equal(r.status === 'error' && r.error.code, 'ENETDOWN');
  const again = await prober.probe('10.0.0.2', { timeoutMs: 300 });
  t.equal(again.status, 'answered', 'next probe works on a reopened socket');
  t.equal(seg.opened, 2);
  prober.close();
  t.equal(seg.sockets.size, 0);
});

t.test('ArpProber keeps one socket across probes; close cancels', async (t) => {
  const seg = segment();
  const prober = ArpProber.open('eth0', { binding: seg.binding });
  t.equal(prober.mac, OWN);
  for (let i = 0; i < 10; i++) t.equal((await prober.probe('10.0.0.2', { timeoutMs: 300 })).status, 'answered');
  t.equal(seg.opened, 1);
  const pending = prober.probe('10.0.0.3', { timeoutMs: 5000 });
  prober.close();
  const r = await pending;
  t.equal(r.status, 'error');
  t.equal(r.status === 'error' && r.error.code, 'ECANCELED');
  t.equal(seg.sockets.size, 0);
  const after = await prober.probe('10.0.0.2');
  t.equal(after.status, 'error', 'probe on a closed prober is an error result');
  prober.close(); // idempotent
});

t.test('reference counting across probers, interfaces and bindings', async (t) => {
  const seg = segment();
  const a = ArpProber.open('eth0', { binding: seg.binding });
  const b = ArpProber.open('eth0', { binding: seg.binding });
  const c = ArpProber.open('eth1', { binding: seg.binding });
  const other = segment();
  const d = ArpProber.open('eth0', { binding: other.binding });
  t.equal(seg.opened, 2, 'eth0 shared, eth1 separate');
  t.equal(other.opened, 1, 'another binding gets its own socket');
  a.close();
  t.equal(seg.sockets.size, 2, 'eth0 still open for b');
  const r = await b.probe('10.0.0.2', { timeoutMs: 300 });
  t.equal(r.status, 'answered');
  b.close();
  c.close();
  d.close();
  t.equal(seg.sockets.size, 0);
  t.equal(other.sockets.size, 0);
});

t.test('two concurrent probes of the same IP both get the answer', async (t) => {
  const seg = segment(5);
  const [x, y] = await Promise.all([
    probe('10.0.0.2', 'eth0', { binding: seg.binding, timeoutMs: 300 }),
    probe('10.0.0.2', 'eth0', { binding: seg.binding, timeoutMs: 300 }),
  ]);
  t.equal(x.status, 'answered');
  t.equal(y.status, 'answered');
});

t.test('a late answer after the result changes nothing', async (t) => {
  const seg = new FakeArpSegment({ interfaces: { eth0: OWN } }).addHost({ ip: '10.0.0.2', mac: PEER, delayMs: 80 });
  const prober = ArpProber.open('eth0', { binding: seg.binding });
  const r: ProbeResult = await prober.probe('10.0.0.2', { timeoutMs: 20 });
  t.equal(r.status, 'silent');
  await new Promise((res) => setTimeout(res, 120));
  t.equal(r.status, 'silent');
  prober.close();
});

t.test('announce sends gratuitous ARP rounds', async (t) => {
  const seg = segment();
  const t0 = now();
  const r = await announce('10.0.0.1', 'eth0', { binding: seg.binding, count: 3, intervalMs: 30, form: 'both' });
  t.equal(r.sent, 6);
  t.ok(now() - t0 >= 59, 'two intervals between three rounds');
  const ps = seg.sentPackets();
  t.equal(ps.length, 6);
  t.same(ps.map((p) => p.op), [1, 2, 1, 2, 1, 2]);
  for (const p of ps) {
    t.ok(isGratuitous(p));
    t.equal(p.senderMac, OWN);
    t.equal(p.ethDst, 'ff:ff:ff:ff:ff:ff');
  }
  t.equal(seg.sockets.size, 0);
});

t.test('announce with another MAC and reply form', async (t) => {
  const seg = segment();
  await announce('10.0.0.1', 'eth0', { binding: seg.binding, count: 1, mac: '02:00:00:00:00:42', form: 'reply' });
  const [p] = seg.sentPackets();
  t.equal(p!.op, OP_REPLY);
  t.equal(p!.senderMac, '02:00:00:00:00:42');
  t.equal(p!.targetMac, '02:00:00:00:00:42');
  t.equal(p!.ethSrc, OWN);
});

t.test('announce failures reject with the code', async (t) => {
  const seg = segment();
  seg.sendFailures.push('ENETDOWN');
  await t.rejects(announce('10.0.0.1', 'eth0', { binding: seg.binding, count: 2, intervalMs: 1 }), { code: 'ENETDOWN' });
  await t.rejects(announce('10.0.0.1', 'eth9', { binding: seg.binding }), { code: 'ENODEV' });
  await t.rejects(announce('nope', 'eth0', { binding: seg.binding }), { code: 'EINVAL' });
  await t.rejects(announce('10.0.0.1', 'eth0', { binding: seg.binding, count: 0 }), { code: 'EINVAL' });
  t.equal(seg.sockets.size, 0);
});

// Node wakes the process for a cleared timer at its due time anyway: an answer
// the kernel queued within the send (delay 0 in the fake, like a peer on the
// same host) must settle the probe before any timeout timer is armed.
t.test('an answer queued within the send settles the probe without arming a timer', async (t) => {
  const seg = new FakeArpSegment({ interfaces: { eth0: OWN }, delayMs: 0 }).addHost({ ip: '10.0.0.2', mac: PEER });
  const prober = ArpProber.open('eth0', { binding: seg.binding });
  t.teardown(() => prober.close());
  const timeouts = () => process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length;
  const before = timeouts();
  const silent = prober.probe('10.0.0.3', { timeoutMs: 60_000 });
  t.equal(timeouts(), before + 1, 'control: an unanswered probe arms its timeout timer at once (the measure sees it)');
  const answered = prober.probe('10.0.0.2', { timeoutMs: 60_000 });
  t.equal(timeouts(), before + 1, 'the answered probe armed no timer');
  const r = await answered;
  t.equal(r.status, 'answered');
  t.equal(r.status === 'answered' && r.mac, PEER);
  t.ok(r.status === 'answered' && r.rttMs >= 0, 'rtt measured from the send');
  prober.close();
  t.equal((await silent).status, 'error', 'the other probe ends with the prober (ECANCELED)');
});

t.test('probe frames are built once and reused, per IP and form', async (t) => {
  const seg = segment();
  const prober = ArpProber.open('eth0', { binding: seg.binding });
  t.teardown(() => prober.close());
  for (let i = 0; i < 3; i++) t.equal((await prober.probe('10.0.0.2', { timeoutMs: 500 })).status, 'answered');
  t.equal((await prober.probe('10.0.0.2', { timeoutMs: 500, source: 'request', senderIp: '10.0.0.1' })).status, 'answered');
  const p = seg.sentPackets();
  t.equal(p.length, 4);
  t.ok(p.slice(0, 3).every((x) => isProbe(x) && x.targetIp === '10.0.0.2'), 'three identical RFC 5227 probes');
  t.equal(p[3]!.senderIp, '10.0.0.1', 'a request is another frame, from its sender IP');
  t.equal(p[3]!.targetIp, '10.0.0.2');
});
