// RMCP/ASF Presence Ping/Pong and session-less Get Channel Authentication
// Capabilities: frames observed with tcpdump against ipmi_sim and fakebmc
// (shared/spec/bmc-and-nova.md §1c), then a seeded property test: every
// encoded request checks out, every valid response round-trips, and random
// corruption never decodes into something else.
import t from 'tap';
import {
  decodeAuthCapResponse, decodePresencePong, encodeAuthCapRequest, encodePresencePing, ipmiChecksum,
} from '../../src/net/bmc/codec';
import { seededRandom as prng } from '../../bench/lib/stats'; // mulberry32, seeded so a failure reproduces

const hex = (s: string) => Buffer.from(s.replace(/[\s|]/g, ''), 'hex');

t.test('Presence Ping bytes (rmcp_ping / ipmitool lan.c)', async (t) => {
  // 06 00 FF 06: RMCP v1.0, reserved, seq FF (no ACK), class ASF
  // 00 00 11 BE: IANA 4542 · 80: Presence Ping · 07: tag · 00: reserved · 00: length
  t.equal(encodePresencePing(7).toString('hex'), hex('06 00 FF 06 | 00 00 11 BE | 80 07 00 00').toString('hex'));
  t.same(encodePresencePing(0x107), encodePresencePing(7), 'tag is one byte');
});

t.test('Presence Pong from ipmi_sim', async (t) => {
  // header 06 00 FF 06 · IANA · 40 Pong · tag 03 · 00 · length 10
  // IANA again · OEM 00000000 · entities 81 (IPMI, ASF 1.0) · interactions 00 · reserved ×6
  const pong = hex('06 00 FF 06 | 00 00 11 BE | 40 03 00 10 | 00 00 11 BE | 00 00 00 00 | 81 00 | 00 00 00 00 00 00');
  t.same(decodePresencePong(pong), { tag: 3, ipmi: true, asfVersion: 1 });
  t.equal(decodePresencePong(encodePresencePing(3)), undefined, 'a ping is not a pong');
  t.equal(decodePresencePong(pong.subarray(0, 27)), undefined, 'short');
  const wrongIana = Buffer.from(pong); wrongIana[7] = 0xbf;
  t.equal(decodePresencePong(wrongIana), undefined, 'IANA must be 4542');
  const ipmiClass = Buffer.from(pong); ipmiClass[3] = 0x07;
  t.equal(decodePresencePong(ipmiClass), undefined, 'class must be ASF');
});

t.test('Get Channel Auth Capabilities request is the one ipmitool sends', async (t) => {
  // 06 00 FF 07 RMCP/IPMI · 00 auth NONE · seq 0 · session 0 · 09 length
  // 20 rsAddr · 18 netFn App<<2 · C8 = -(20+18) · 81 rqAddr · 00 rqSeq 0 · 38 cmd
  // 8E = v2 data | channel E · 04 Administrator · B5 = -(81+00+38+8E+04)
  t.equal(encodeAuthCapRequest({ seq: 0 }).toString('hex'), hex('06 00 FF 07 | 00 | 00000000 | 00000000 | 09 | 20 18 C8 | 81 00 38 8E 04 | B5').toString('hex'));
  const r = encodeAuthCapRequest({ seq: 5, v2: false, channel: 1, privilege: 2 });
  t.equal(r[18], 5 << 2, 'rqSeq in the high 6 bits');
  t.equal(r[20], 0x01, 'no v2 bit, channel 1');
  t.equal(ipmiChecksum(r, 14, 17), 0, 'header part sums to 0');
  t.equal(ipmiChecksum(r, 17, 23), 0, 'body part sums to 0');
});

t.test('Get Channel Auth Capabilities responses from ipmi_sim and fakebmc', async (t) => {
  // …| 10 length | 81 1C 63 rqAddr, netFn 07<<2, cksum | 20 00 38 rsAddr, seq, cmd |
  //   00 cc · 01 channel · auth · status · ext · OEM ×3 · aux | cksum
  const sim = hex('06 00 FF 07 00 00000000 00000000 10 | 81 1C 63 | 20 00 38 | 00 01 85 04 03 00 00 00 00 | 1B');
  const fake = hex('06 00 FF 07 00 00000000 00000000 10 | 81 1C 63 | 20 00 38 | 00 01 80 04 02 00 00 00 00 | 21');
  t.same(decodeAuthCapResponse(sim), { seq: 0, completionCode: 0, channel: 1, v2Data: true, authTypes: 0x05, status: 0x04, ipmi20: true, ipmi15: true });
  t.same(decodeAuthCapResponse(fake), { seq: 0, completionCode: 0, channel: 1, v2Data: true, authTypes: 0, status: 0x04, ipmi20: true, ipmi15: false });
  const badSum = Buffer.from(sim); badSum[29] ^= 1;
  t.equal(decodeAuthCapResponse(badSum), undefined, 'checksum 2 checked');
  const badSum1 = Buffer.from(sim); badSum1[16] ^= 1;
  t.equal(decodeAuthCapResponse(badSum1), undefined, 'checksum 1 checked');
  t.equal(decodeAuthCapResponse(encodeAuthCapRequest({ seq: 0 })), undefined, 'a request is not a response');
  // completion code C1 (invalid command), no data: still an answer
  const cc = hex('06 00 FF 07 00 00000000 00000000 08 | 81 1C 63 | 20 04 38 | C1 | 00');
  cc[21] = ipmiChecksum(cc, 17, 21);
  t.match(decodeAuthCapResponse(cc), { seq: 1, completionCode: 0xc1 });
});


/** A valid response built independently of the codec (plain loops). */
function response(seq: number, data: number[]): Buffer {
  const m = [0x81, 0x07 << 2, 0, 0x20, seq << 2, 0x38, 0x00, ...data, 0];
  m[2] = (0x100 - ((m[0]! + m[1]!) & 0xff)) & 0xff;
  let s = 0;
  for (let i = 3; i < m.length - 1; i++) s += m[i]!;
  m[m.length - 1] = (0x100 - (s & 0xff)) & 0xff;
  return Buffer.from([0x06, 0x00, 0xff, 0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0, m.length, ...m]);
}

t.test('property: round trips and random corruption', async (t) => {
  const rnd = prng(Number(process.env.BMC_PROP_SEED ?? 623));
  const runs = Number(process.env.BMC_PROP_RUNS ?? 5000);
  let accepted = 0;
  let failures = 0;
  for (let i = 0; i < runs && failures < 5; i++) {
    const seq = Math.floor(rnd() * 64);
    const req = encodeAuthCapRequest({ seq, v2: rnd() < 0.5, channel: Math.floor(rnd() * 16), privilege: Math.floor(rnd() * 6) });
    if (ipmiChecksum(req, 14, 17) !== 0 || ipmiChecksum(req, 17, 23) !== 0 || req[18] !== seq << 2) { failures++; t.fail(`request seq ${seq}: bad checksum`); }
    const data = [Math.floor(rnd() * 16), Math.floor(rnd() * 256), Math.floor(rnd() * 256), Math.floor(rnd() * 4), 0, 0, 0, 0];
    const good = response(seq, data);
    const d = decodeAuthCapResponse(good);
    if (!d || d.seq !== seq || d.channel !== data[0]! || d.ipmi20 !== ((data[3]! & 2) !== 0) || d.authTypes !== (data[1]! & 0x3f)) {
      failures++; t.fail(`valid response seq ${seq} data ${data} decoded as ${JSON.stringify(d)}`);
    }
    // Corrupt 1–3 random bytes, or truncate: the result must be undefined,
    // or (when the corruption happened to keep every checked field and both
    // checksums right) the same as decoding a response rebuilt from its fields.
    const bad = Buffer.from(good);
    if (rnd() < 0.2) {
      const cut = bad.subarray(0, Math.floor(rnd() * bad.length));
      if (decodeAuthCapResponse(cut) !== undefined) { failures++; t.fail(`truncated to ${cut.length} bytes accepted`); }
      continue;
    }
    for (let k = 1 + Math.floor(rnd() * 3); k > 0; k--) bad[Math.floor(rnd() * bad.length)] ^= 1 + Math.floor(rnd() * 255);
    const dd = decodeAuthCapResponse(bad);
    if (dd === undefined) continue;
    accepted++;
    const sums = ipmiChecksum(bad, 14, 17) === 0 && ipmiChecksum(bad, 17, 14 + bad[13]!) === 0;
    if (!sums || bad[3] !== 0x07 || bad[14] !== 0x81 || bad[15]! >> 2 !== 0x07 || bad[19] !== 0x38 || dd.seq !== bad[18]! >> 2) {
      failures++; t.fail(`corrupted frame ${bad.toString('hex')} accepted as ${JSON.stringify(dd)}`);
    }
    // Pong decoding never accepts an IPMI frame.
    if (decodePresencePong(bad) !== undefined) { failures++; t.fail('an IPMI frame decoded as a pong'); }
  }
  t.equal(failures, 0, `${runs} runs, ${accepted} corrupted frames still valid by construction`);
});
