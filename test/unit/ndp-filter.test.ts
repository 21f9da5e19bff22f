// Unit: the NDP socket's kernel filter (src/net/ndp/filter.ts), run on a small
// classic-BPF interpreter over frames from the codec: what passes is exactly what
// the prober can use (NAs for the watched targets, release notices), nothing else.
import t from 'tap';
import { endianness } from 'node:os';
import { buildNdpFilter } from '../../src/net/ndp/filter';
import { buildDadProbe, buildNdp, buildReleaseNotice, buildUnsolicitedNa, ALL_NODES, ALL_NODES_MAC } from '../../src/net/ndp/codec';

const PACKET_HOST = 0; const PACKET_MULTICAST = 2; const PACKET_OUTGOING = 4;

/** Run a classic BPF program (the opcodes filter.ts emits) on `pkt`; returns the accept length. */
function run(prog: Buffer, pkt: Buffer, pktType = PACKET_MULTICAST): number {
  const le = endianness() === 'LE';
  const n = prog.length / 8;
  let a = 0; let x = 0;
  for (let pc = 0; pc < n;) {
    const o = pc * 8;
    const code = le ? prog.readUInt16LE(o) : prog.readUInt16BE(o);
    const jt = prog[o + 2]!; const jf = prog[o + 3]!;
    const k = le ? prog.readUInt32LE(o + 4) : prog.readUInt32BE(o + 4);
    const load = (size: number): number | undefined => {
      if (k === ((-0x1000 + 4) >>> 0)) return pktType; // SKF_AD_PKTTYPE
      if (k + size > pkt.length) return undefined;
      return size === 4 ? pkt.readUInt32BE(k) : size === 2 ? pkt.readUInt16BE(k) : pkt[k]!;
    };
    switch (code) {
      case 0x20: case 0x28: case 0x30: {
        const v = load(code === 0x20 ? 4 : code === 0x28 ? 2 : 1);
        if (v === undefined) return 0; // out of bounds: the kernel drops
        a = v; pc++; break;
      }
      case 0x07: x = a; pc++; break;
      case 0x05: pc += 1 + k; break;
      case 0x15: pc += 1 + (a === k ? jt : jf); break;
      case 0x1d: pc += 1 + (a === x ? jt : jf); break;
      case 0x06: return k;
      default: throw new Error(`opcode 0x${code.toString(16)} not in the interpreter`);
    }
  }
  throw new Error('fell off the end');
}

const OTHER = '02:00:00:00:00:0b';
const HA = 'fd00::100';

t.test('passes NAs for watched targets only, and not our own', async (t) => {
  const f = buildNdpFilter({ targets: [HA, 'fd00::200'] });
  t.ok(run(f, buildUnsolicitedNa(OTHER, HA)) > 0, 'NA for the HA address');
  t.ok(run(f, buildUnsolicitedNa(OTHER, 'fd00::200')) > 0, 'NA for the second target');
  t.equal(run(f, buildUnsolicitedNa(OTHER, 'fd00::101')), 0, 'NA for another address');
  t.equal(run(f, buildUnsolicitedNa(OTHER, HA), PACKET_OUTGOING), 0, 'our own transmission');
  t.equal(run(f, buildUnsolicitedNa(OTHER, HA, { ip: 'fd00::1', mac: '02:00:00:00:00:01' }), PACKET_HOST), run(f, buildUnsolicitedNa(OTHER, HA)), 'unicast NA like multicast');
  t.equal(run(f, buildDadProbe(OTHER, HA)), 0, 'another slave\'s probe stays in the kernel');
  t.equal(run(f, buildNdp({ ethSrc: OTHER, ethDst: ALL_NODES_MAC, srcIp: HA, dstIp: ALL_NODES, type: 'na', target: HA, hopLimit: 64 })), 0, 'hop limit not 255');
  const arp = buildUnsolicitedNa(OTHER, HA); arp.writeUInt16BE(0x0806, 12);
  t.equal(run(f, arp), 0, 'not IPv6');
  const udp = buildUnsolicitedNa(OTHER, HA); udp[20] = 17;
  t.equal(run(f, udp), 0, 'not ICMPv6');
  t.equal(run(buildNdpFilter({ targets: [] }), buildUnsolicitedNa(OTHER, HA)), 0, 'no targets: nothing');
});

t.test('passes release notices for release targets only', async (t) => {
  const f = buildNdpFilter({ targets: [HA], releaseTargets: [HA] });
  t.ok(run(f, buildReleaseNotice(OTHER, HA)) > 0, 'release notice for the HA address');
  t.equal(run(f, buildReleaseNotice(OTHER, 'fd00::101')), 0, 'for another address');
  t.equal(run(f, buildDadProbe(OTHER, HA, Buffer.from('0123456789ab', 'hex'))), 0, 'a DAD probe with another nonce');
  t.equal(run(f, buildDadProbe(OTHER, HA, Buffer.from('02000000000c', 'hex'))), 0, 'a nonce that is a MAC, not the sender\'s');
  t.equal(run(buildNdpFilter({ targets: [HA] }), buildReleaseNotice(OTHER, HA)), 0, 'nobody listens: dropped');
  const fromAddr = buildNdp({ ethSrc: OTHER, ethDst: '33:33:ff:00:01:00', srcIp: 'fd00::9', dstIp: 'ff02::1:ff00:100', type: 'ns', target: HA, options: [{ type: 14, data: Buffer.from('02000000000b', 'hex') }] });
  t.equal(run(f, fromAddr), 0, 'an NS from an address is not a release notice');
});

t.test('many targets still fit the jump range', async (t) => {
  const targets = Array.from({ length: 30 }, (_, i) => `fd00::${(i + 1).toString(16)}`);
  const f = buildNdpFilter({ targets, releaseTargets: targets.slice(0, 5) });
  for (const ip of targets) if (!(run(f, buildUnsolicitedNa(OTHER, ip)) > 0)) t.fail(`NA for ${ip} dropped`);
  t.equal(run(f, buildUnsolicitedNa(OTHER, 'fd00::ff')), 0);
  t.ok(run(f, buildReleaseNotice(OTHER, 'fd00::5')) > 0);
});
