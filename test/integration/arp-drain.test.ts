// Integration: the native socket's drainNow() and the prober's no-false-silence
// rule under a stalled process, with real AF_PACKET sockets in a lab (hosts a
// and b on a bridge). The prober takes answers queued within its send at once
// (drainNow); an answer that arrives while the process is stalled past the
// timeout must still count: silence is declared only after the socket was drained.
import t from 'tap';
import { createLab, skipUnlessRoot } from '../support/lab';
import type { Lab, LabHost } from '../support/lab';
import { SLACK_MS } from '../support/vigil';
import { ArpProber } from '../../src/net/arp/prober';
import { ArpSocket } from '../../src/net/arp/socket';
import type { ArpPacket } from '../../src/net/arp/codec';
import { buildAnnounceRequest } from '../../src/net/arp/codec';
import { setLogLevel } from '../../src/log';

setLogLevel('silent');

/** Block the event loop for `ms` (a stalled process: a saturated core, a long GC). */
function stall(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* spin */ }
}

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
}
