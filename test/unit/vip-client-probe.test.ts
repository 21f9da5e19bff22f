// What the HA IP role and its clients (the demo, the vip integration test)
// need from the ARP prober, over the fake segment (src/net/arp/fake.ts):
// seeing *every* holder of an IP during a split brain, and knowing which MAC
// our own probe went out with after the interface was re-created.
import t from 'tap';
import { FakeArpSegment } from '../../src/net/arp/fake';
import { ArpProber, probe } from '../../src/net/arp/prober';
import { encodeArp, OP_REPLY } from '../../src/net/arp/codec';
import { setLogLevel } from '../../src/log';

setLogLevel('silent');

const OWN = '02:00:00:00:00:01';
const FIRST = '02:00:00:00:00:98';
const SECOND = '02:00:00:00:00:99';
const IP = '10.0.0.2';

/** A segment where FIRST answers for IP (the fake kernel) and SECOND answers `lateMs` later (a split brain). */
function splitBrain(lateMs: number): FakeArpSegment {
  const seg = new FakeArpSegment({ interfaces: { eth0: OWN }, delayMs: 1 }).addHost({ ip: IP, mac: FIRST });
  const onSent = seg.onSent.bind(seg);
  seg.onSent = (from, frame) => {
    onSent(from, frame);
    seg.inject('eth0', encodeArp({ op: OP_REPLY, ethDst: OWN, ethSrc: SECOND, senderMac: SECOND, senderIp: IP, targetMac: OWN, targetIp: '0.0.0.0' }), lateMs);
  };
  return seg;
}

t.test('untilTimeout: every holder of the IP is seen, not just the first', async (t) => {
  const seg = splitBrain(30);
  const t0 = performance.now();
  const r = await probe(IP, 'eth0', { binding: seg.binding, timeoutMs: 150, untilTimeout: true, acceptConflict: false });
  const took = performance.now() - t0;
  t.equal(r.status, 'answered');
  if (r.status !== 'answered') return;
  t.same([...new Set(r.replies.map((x) => x.mac))].sort(), [FIRST, SECOND], 'both answerers');
  t.equal(r.mac, FIRST, 'mac is still the first answer');
  t.ok(took >= 145, `waited the whole timeout (${took.toFixed(0)} ms)`);
});

t.test('untilTimeout overrides stopOnReply; silence is still silence', async (t) => {
  const r = await probe(IP, 'eth0', { binding: splitBrain(30).binding, timeoutMs: 120, untilTimeout: true, stopOnReply: true });
  t.equal(r.status === 'answered' && r.replies.length, 2, 'stopOnReply: true does not cut it short');
  const quiet = new FakeArpSegment({ interfaces: { eth0: OWN } });
  const s = await probe('10.0.0.3', 'eth0', { binding: quiet.binding, timeoutMs: 60, untilTimeout: true });
  t.equal(s.status, 'silent');
});

t.test('without untilTimeout the documented early ends stay: one answer per send', async (t) => {
  const a = await probe(IP, 'eth0', { binding: splitBrain(30).binding, timeoutMs: 150 });
  t.equal(a.status === 'answered' && a.replies.length, 1, 'stopOnReply (default): the first answer ends it');
  const b = await probe(IP, 'eth0', { binding: splitBrain(30).binding, timeoutMs: 150, stopOnReply: false });
  t.equal(b.status === 'answered' && b.replies.length, 1, 'stopOnReply: false, count 1: ends once the send is answered');
});

t.test('senderMac: the MAC a probe went out with follows a re-created interface', async (t) => {
  const seg = new FakeArpSegment({ interfaces: { eth0: OWN } }).addHost({ ip: IP, mac: FIRST });
  const prober = ArpProber.open('eth0', { binding: seg.binding });
  t.teardown(() => prober.close());
  const r1 = await prober.probe(IP, { timeoutMs: 100 });
  t.equal(r1.senderMac, OWN);
  // The interface goes away (its socket fails) and comes back with another MAC.
  const NEW = '02:00:00:00:00:42';
  seg.interfaces.set('eth0', NEW);
  seg.failSockets('eth0');
  const r2 = await prober.probe(IP, { timeoutMs: 100 });
  t.equal(r2.status, 'answered');
  t.equal(r2.senderMac, NEW, 'the reopened socket carries the new MAC');
  t.equal(seg.sentPackets().at(-1)!.senderMac, NEW, 'and the probe went out with it');
});
