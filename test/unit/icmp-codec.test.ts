import t from 'tap';
import { inetChecksum, encodeEchoRequest, decodeEchoReply } from '../../src/net/icmp/codec';

t.test('RFC 1071 checksum', async (t) => {
  // RFC 1071 §3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2, checksum 220d.
  t.equal(inetChecksum(Buffer.from('0001f203f4f5f6f7', 'hex')), 0x220d);
  t.equal(inetChecksum(Buffer.from('ff', 'hex')), 0x00ff, 'odd length pads with a zero byte');
});

t.test('echo request bytes', async (t) => {
  const b = encodeEchoRequest(0x1234, 1, Buffer.from('ab'));
  // type 08, code 00, checksum, id 1234, seq 0001, payload 6162
  t.equal(b.toString('hex').slice(0, 4), '0800');
  t.equal(b.toString('hex').slice(8), '123400016162');
  t.equal(inetChecksum(b), 0, 'a valid checksum sums to zero');
});

t.test('echo reply decoding', async (t) => {
  const icmp = encodeEchoRequest(0xbeef, 7, Buffer.from('vigil'));
  icmp[0] = 0; // reply
  icmp.writeUInt16BE(0, 2);
  icmp.writeUInt16BE(inetChecksum(icmp), 2);
  // A minimal IPv4 header: version 4, IHL 5, protocol 1, 10.0.0.9 → 10.0.0.1
  const ip = Buffer.from('45000000000000004001000000000000000000000'.slice(0, 40), 'hex');
  ip[9] = 1;
  Buffer.from([10, 0, 0, 9]).copy(ip, 12);
  Buffer.from([10, 0, 0, 1]).copy(ip, 16);
  t.same(decodeEchoReply(Buffer.concat([ip, icmp])), { id: 0xbeef, seq: 7, from: '10.0.0.9' });
  const bad = Buffer.concat([ip, icmp]);
  bad[bad.length - 1] ^= 0xff;
  t.equal(decodeEchoReply(bad), undefined, 'bad checksum refused');
  const req = Buffer.concat([ip, encodeEchoRequest(1, 1)]);
  t.equal(decodeEchoReply(req), undefined, 'a request is not a reply');
  t.equal(decodeEchoReply(Buffer.alloc(10)), undefined, 'short input refused');
});
