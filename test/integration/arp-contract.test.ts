// One contract suite for the ARP socket, run against the fake segment
// (src/net/arp/fake.ts) and against the real AF_PACKET socket in a lab, so
// the fake the unit tests rely on behaves like the real thing.
import t from 'tap';
import { createLab, skipUnlessRoot } from '../support/lab';
import type { Lab } from '../support/lab';
import { FakeArpSegment } from '../../src/net/arp/fake';
import { ArpSocket } from '../../src/net/arp/socket';
import { buildAnnounceRequest, buildProbe, buildRequest, OP_REPLY } from '../../src/net/arp/codec';
import type { ArpPacket } from '../../src/net/arp/codec';

/** What the suite needs from one world. */
interface World {
  /** Open an ARP socket on "our" interface. */
  open(): ArpSocket;
  /** Open on an interface that does not exist. */
  openMissing(): ArpSocket;
  ownMac: string;
  present: { ip: string; mac: string };
  /** Make another host put `frame` on the wire. */
  sendFromPeer(frame: Buffer): void;
  peerMac: string;
  done(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function collect(sock: ArpSocket): Array<{ p: ArpPacket; at: bigint }> {
  const got: Array<{ p: ArpPacket; at: bigint }> = [];
  sock.on('frame', (p, at) => got.push({ p, at }));
  return got;
}

async function until<T>(fn: () => T | undefined, ms = 1000): Promise<T | undefined> {
  const end = performance.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined || performance.now() > end) return v;
    await sleep(2);
  }
}

function contract(name: string, makeWorld: () => Promise<World>): void {
  t.test(`ARP socket contract: ${name}`, async (t) => {
    const w = await makeWorld();
    t.teardown(() => w.done());

    t.test('open reads the interface MAC and index', async (t) => {
      const s = w.open();
      t.equal(s.mac, w.ownMac);
      t.ok(s.ifindex > 0);
      t.notOk(s.closed);
      s.close();
    });

    t.test('a probe of a present IP brings its reply, timestamped on our clock', async (t) => {
      const s = w.open();
      const got = collect(s);
      const sentAt = s.nowNs();
      s.send(buildProbe({ senderMac: s.macBytes, targetIp: w.present.ip }));
      const r = await until(() => got.find((g) => g.p.op === OP_REPLY && g.p.senderIp === w.present.ip));
      s.close();
      t.ok(r, 'reply received');
      if (!r) return;
      t.equal(r.p.senderMac, w.present.mac);
      t.equal(r.p.targetMac, w.ownMac);
      t.equal(r.p.targetIp, '0.0.0.0', 'a probe is answered with target IP 0.0.0.0');
      t.equal(r.p.ethDst, w.ownMac, 'unicast to us');
      const rttMs = Number(r.at - sentAt) / 1e6;
      t.ok(rttMs > 0 && rttMs < 1000, `rtt ${rttMs.toFixed(3)} ms`);
    });

    t.test('our own frames are not delivered back', async (t) => {
      const s = w.open();
      const got = collect(s);
      s.send(buildAnnounceRequest({ mac: s.macBytes, ip: '10.255.255.1' }));
      await sleep(50);
      s.close();
      t.same(got.filter((g) => g.p.senderMac === w.ownMac), []);
    });

    t.test("a peer's frame arrives decoded field for field", async (t) => {
      const s = w.open();
      const got = collect(s);
      const frame = buildRequest({ senderMac: w.peerMac, senderIp: '10.255.255.2', targetIp: '10.255.255.3' });
      w.sendFromPeer(frame);
      const r = await until(() => got.find((g) => g.p.senderIp === '10.255.255.2'));
      s.close();
      t.same(r?.p, {
        op: 1, senderMac: w.peerMac, senderIp: '10.255.255.2', targetMac: '00:00:00:00:00:00', targetIp: '10.255.255.3',
        ethSrc: w.peerMac, ethDst: 'ff:ff:ff:ff:ff:ff',
      });
    });

    t.test('a non-ARP frame produces no frame event', async (t) => {
      const s = w.open();
      const got = collect(s);
      const frame = buildRequest({ senderMac: w.peerMac, senderIp: '10.255.255.4', targetIp: '10.255.255.5' });
      frame.writeUInt16BE(0x0800, 12); // EtherType IPv4
      w.sendFromPeer(frame);
      await sleep(50);
      s.close();
      t.same(got.filter((g) => g.p.senderIp === '10.255.255.4'), []);
    });

    t.test('close: idempotent, then send fails with EBADF', async (t) => {
      const s = w.open();
      s.close();
      s.close();
      t.ok(s.closed);
      t.throws(() => s.send(buildProbe({ senderMac: s.macBytes, targetIp: w.present.ip })), { code: 'EBADF' });
    });

    t.test('a missing interface is ENODEV', async (t) => {
      t.throws(() => w.openMissing(), { code: 'ENODEV', message: /^no such interface '/ });
    });
  });
}

contract('fake segment', async () => {
  const seg = new FakeArpSegment({ interfaces: { eth0: '02:00:00:00:00:01' } }).addHost({ ip: '10.9.9.2', mac: '02:00:00:00:00:02' });
  return {
    open: () => ArpSocket.open('eth0', { binding: seg.binding }),
    openMissing: () => ArpSocket.open('vgnone0', { binding: seg.binding }),
    ownMac: '02:00:00:00:00:01',
    present: { ip: '10.9.9.2', mac: '02:00:00:00:00:02' },
    peerMac: '02:00:00:00:00:03',
    sendFromPeer: (f) => seg.inject('eth0', f),
    done: async () => undefined,
  };
});

if (!skipUnlessRoot(t)) {
  contract('real AF_PACKET socket in a lab', async () => {
    const lab: Lab = await createLab({ hosts: ['a', 'b'] });
    const a = lab.host('a');
    const b = lab.host('b');
    const peer = b.inNetns(() => ArpSocket.open(b.ifname));
    return {
      open: () => a.inNetns(() => ArpSocket.open(a.ifname)),
      openMissing: () => a.inNetns(() => ArpSocket.open('vgnone0')),
      ownMac: a.mac,
      present: { ip: b.ip, mac: b.mac },
      peerMac: b.mac,
      sendFromPeer: (f) => peer.send(f),
      done: async () => {
        peer.close();
        await lab.destroy();
      },
    };
  });
}
