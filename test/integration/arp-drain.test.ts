// Integration: the native socket's drainNow() and the prober's no-false-silence
// rule under a stalled process, with real AF_PACKET sockets in a lab (hosts a
// and b on a bridge). The prober takes answers queued within its send at once
// (drainNow); an answer that arrives while the process is stalled past the
// timeout must still count: silence is declared only after the socket was drained.
import t from 'tap';
import { createLab, skipUnlessRoot } from '../support/lab';
import type { Lab, LabHost } from '../support/lab';
import { SLACK_MS, stall } from '../support/vigil';
import { ArpProber } from '../../src/net/arp/prober';
import { ArpSocket } from '../../src/net/arp/socket';
import type { ArpPacket } from '../../src/net/arp/codec';
import { buildAnnounceRequest } from '../../src/net/arp/codec';
import { setLogLevel } from '../../src/log';

setLogLevel('silent');

if (!skipUnlessRoot(t)) {
  let lab: Lab;
  let a: LabHost;
  let b: LabHost;

  t.before(async () => {
    lab = await createLab({ hosts: ['a', 'b'] });
    a = lab.host('a');
    b = lab.host('b');
  });
  t.teardown(async () => {
    await lab?.destroy();
  });

  t.test('drainNow hands a queued frame over synchronously, with its receive time', async (t) => {
    const sa = a.inNetns(() => ArpSocket.open(a.ifname));
    const sb = b.inNetns(() => ArpSocket.open(b.ifname));
    t.teardown(() => { sa.close(); sb.close(); });
    const got: { p: ArpPacket; at: bigint }[] = [];
    sa.on('frame', (p, at) => got.push({ p, at }));
    t.equal(sa.drainNow(), 0, 'nothing queued: 0');
    const ip = lab.freeIp(20);
    const sentAt = sa.nowNs();
    sb.send(buildAnnounceRequest({ mac: sb.macBytes, ip, ethSrc: sb.macBytes }));
    // No turn of the event loop from here on: only drainNow can deliver.
    let n = 0;
    const deadline = performance.now() + SLACK_MS;
    while (n === 0 && performance.now() < deadline) n = sa.drainNow();
    t.equal(n, 1, `one frame delivered by drainNow within ${SLACK_MS} ms of b's send`);
    t.equal(got.length, 1, 'emitted as a frame event inside drainNow');
    t.equal(got[0]?.p.senderIp, ip);
    t.equal(got[0]?.p.senderMac, b.mac);
    t.ok(got[0] && got[0].at >= sentAt && got[0].at <= sa.nowNs(), 'the kernel receive time lies between the send and now');
    t.equal(sa.stats.received, 1, 'counted as delivered');
    sa.close();
    t.equal(sa.drainNow(), 0, 'closed: 0, no throw');
  });

  t.test('an answer that arrives while the process is stalled past the timeout is answered, not silent', async (t) => {
    const pa = a.inNetns(() => ArpProber.open(a.ifname));
    const sb = b.inNetns(() => ArpSocket.open(b.ifname));
    t.teardown(() => { pa.close(); sb.close(); });
    const ip = lab.freeIp(21); // held by nobody: only b's gratuitous request below answers
    const timeoutMs = 50;
    const pending = pa.probe(ip, { timeoutMs });
    // b claims the IP right after our send; the process then stalls well past
    // the timeout, so the timer phase comes before the poll phase reads it.
    sb.send(buildAnnounceRequest({ mac: sb.macBytes, ip, ethSrc: sb.macBytes }));
    stall(timeoutMs * 6);
    const r = await pending;
    t.equal(r.status, 'answered', `answered (got ${r.status}${r.status === 'error' ? `: ${r.error.message}` : ''})`);
    if (r.status !== 'answered') return;
    t.equal(r.mac, b.mac);
    t.equal(r.replies[0]!.kind, 'request', "b's gratuitous request is the evidence");
  });

  t.test('an answer after the send (not within it) settles the probe; the timeout then never fires', async (t) => {
    const pa = a.inNetns(() => ArpProber.open(a.ifname));
    const sb = b.inNetns(() => ArpSocket.open(b.ifname));
    t.teardown(() => { pa.close(); sb.close(); });
    const ip = lab.freeIp(22);
    const timeoutMs = 400;
    const t0 = performance.now();
    const pending = pa.probe(ip, { timeoutMs });
    setTimeout(() => sb.send(buildAnnounceRequest({ mac: sb.macBytes, ip, ethSrc: sb.macBytes })), 20);
    const r = await pending;
    const took = performance.now() - t0;
    t.equal(r.status, 'answered', `answered by b's request 20 ms after the send (got ${r.status})`);
    t.ok(took < timeoutMs, `settled at the answer (${took.toFixed(1)} ms), not at the ${timeoutMs} ms timeout`);
    // The same prober's next probe of a silent IP still times out: the timer was freed, not lost.
    const t1 = performance.now();
    const silent = await pa.probe(lab.freeIp(23), { timeoutMs: 50 });
    t.equal(silent.status, 'silent');
    t.ok(performance.now() - t1 >= 50, 'silent only at its timeout');
  });
}

if (!skipUnlessRoot(t)) {
  t.test('after(): the native timer fires once, not before its time; a cancelled one never fires; a second one at once falls back', async (t) => {
    const lab2 = await createLab({ hosts: ['a'] });
    t.teardown(() => lab2.destroy());
    const h = lab2.host('a');
    const s = h.inNetns(() => ArpSocket.open(h.ifname));
    t.teardown(() => s.close());
    const fired: string[] = [];
    const t0 = performance.now();
    const at: Record<string, number> = {};
    s.after(30, () => { fired.push('native'); at.native = performance.now() - t0; });
    s.after(10, () => { fired.push('fallback'); at.fallback = performance.now() - t0; }); // the native timer is taken
    await new Promise((r) => setTimeout(r, 30 + SLACK_MS / 10));
    t.same(fired, ['fallback', 'native'], 'both fired once, in due order');
    t.ok(at.native! >= 30, `native fired at ${at.native?.toFixed(1)} ms, not before 30 (the loop's time is refreshed before arming)`);
    const cancel = s.after(20, () => fired.push('cancelled'));
    cancel();
    cancel(); // idempotent
    const again = s.after(5, () => fired.push('reused'));
    await new Promise((r) => setTimeout(r, 60));
    t.same(fired, ['fallback', 'native', 'reused'], 'the cancelled one never fired; the freed timer served the next');
    again(); // after it fired: a no-op
    s.after(10, () => fired.push('after-close'));
    s.close();
    await new Promise((r) => setTimeout(r, 40));
    t.equal(fired.length, 3, 'a deadline pending at close is dropped');
  });
}
