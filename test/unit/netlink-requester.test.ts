/**
 * Layer: unit test of the netlink request engine (src/net/netlink/transport.ts)
 * over a scripted transport that answers like the kernel: sequence matching,
 * multipart dumps spread over datagrams, batching limits, interrupted dumps,
 * timeouts, socket errors and close. The real socket is covered in
 * test/integration/netlink.test.ts.
 */
import t from 'tap';
import { NLM_F, NLMSG, RTM, encodeMessage, parseMessages, type NlMessage } from '../../src/net/netlink/codec';
import { MAX_BATCH_MESSAGES, NetlinkRequester, type NetlinkTransport } from '../../src/net/netlink/transport';

const PORT = 4242;

function errPayload(errno: number, req: NlMessage): Buffer {
  const b = Buffer.alloc(4 + 16);
  b.writeInt32LE(-errno, 0);
  encodeMessage({ type: req.type, flags: req.flags, seq: req.seq, pid: req.pid, payload: Buffer.alloc(0) }).copy(b, 4);
  return b;
}

/** A transport whose kernel side is a function from each received request to the datagrams it answers with. */
class ScriptedTransport implements NetlinkTransport {
  readonly port = PORT;
  sent: NlMessage[][] = [];
  refs = 0;
  closed = false;
  private onDatagram: ((b: Buffer) => void) | undefined;
  private onError: ((e: unknown) => void) | undefined;
  constructor(private readonly kernel: (reqs: NlMessage[]) => Buffer[]) {}
  send(datagram: Buffer, cb: (err?: unknown) => void): void {
    const reqs = parseMessages(datagram);
    this.sent.push(reqs);
    setImmediate(() => {
      cb();
      for (const d of this.kernel(reqs)) this.onDatagram?.(d);
    });
  }
  listen(onDatagram: (b: Buffer) => void, onError: (e: unknown) => void): void {
    this.onDatagram = onDatagram;
    this.onError = onError;
  }
  inject(d: Buffer): void { this.onDatagram?.(d); }
  fail(e: unknown): void { this.onError?.(e); }
  addMembership(): void {}
  dropMembership(): void {}
  ref(): void { this.refs++; }
  unref(): void { this.refs = 0; }
  close(): void { this.closed = true; }
}

function reply(req: NlMessage, type: number, flags: number, payload: Buffer): Buffer {
  return encodeMessage({ type, flags, seq: req.seq, pid: PORT, payload });
}

function ack(req: NlMessage, errno = 0): Buffer {
  return reply(req, NLMSG.ERROR, 0, errPayload(errno, req));
}

t.test('a dump spread over datagrams is collected until NLMSG_DONE', async (t) => {
  const tr = new ScriptedTransport(([req]) => [
    Buffer.concat([reply(req!, RTM.NEWLINK, NLM_F.MULTI, Buffer.from('a')), reply(req!, RTM.NEWLINK, NLM_F.MULTI, Buffer.from('b'))]),
    Buffer.concat([reply(req!, RTM.NEWLINK, NLM_F.MULTI, Buffer.from('c')), reply(req!, NLMSG.DONE, NLM_F.MULTI, Buffer.alloc(4))]),
  ]);
  const r = new NetlinkRequester(tr, 1000);
  const parts = await r.dump(RTM.GETLINK, Buffer.alloc(16), 'list links');
  t.same(parts.map((p) => p.payload.toString()), ['a', 'b', 'c']);
  t.equal(tr.sent[0]![0]!.flags, NLM_F.REQUEST | NLM_F.DUMP, 'dump flags, no ACK');
  t.equal(tr.sent[0]![0]!.pid, PORT, 'our port in the header');
  t.equal(tr.refs, 0, 'unref once idle');
});

t.test('an interrupted dump is retried', async (t) => {
  let calls = 0;
  const tr = new ScriptedTransport(([req]) => {
    calls++;
    const intr = calls === 1 ? NLM_F.DUMP_INTR : 0;
    return [Buffer.concat([reply(req!, RTM.NEWADDR, NLM_F.MULTI | intr, Buffer.from(`try${calls}`)), reply(req!, NLMSG.DONE, NLM_F.MULTI, Buffer.alloc(4))])];
  });
  const r = new NetlinkRequester(tr, 1000);
  const parts = await r.dump(RTM.GETADDR, Buffer.alloc(8), 'list addresses');
  t.equal(calls, 2);
  t.same(parts.map((p) => p.payload.toString()), ['try2']);
});

t.test('a request resolves with its reply and rejects with the kernel errno', async (t) => {
  const tr = new ScriptedTransport(([req]) => req!.payload[0] === 1
    ? [Buffer.concat([reply(req!, RTM.NEWLINK, 0, Buffer.from('link')), ack(req!)])]
    : [ack(req!, 19)]);
  const r = new NetlinkRequester(tr, 1000);
  const got = await r.request(RTM.GETLINK, 0, Buffer.from([1]), 'read link');
  t.same(got.map((m) => m.payload.toString()), ['link']);
  t.equal(tr.sent[0]![0]!.flags, NLM_F.REQUEST | NLM_F.ACK);
  await t.rejects(r.request(RTM.GETLINK, 0, Buffer.from([2]), 'read link nope'), { code: 'ENODEV', errno: 19, message: /read link nope: ENODEV/ });
  const perm = new NetlinkRequester(new ScriptedTransport(([req]) => [ack(req!, 1)]), 1000);
  await t.rejects(perm.request(RTM.NEWADDR, 0, Buffer.alloc(8), 'add'), { code: 'EPERM', message: /CAP_NET_ADMIN/ });
});

t.test('a batch goes out in datagrams of at most MAX_BATCH_MESSAGES and keeps per-request errnos in order', async (t) => {
  // Answer acks in reverse order within a datagram: matching must be by seq, not position.
  const tr = new ScriptedTransport((reqs) => [Buffer.concat(reqs.map((q) => ack(q, q.payload[0]! % 3 === 0 ? 17 : 0)).reverse())]);
  const r = new NetlinkRequester(tr, 1000);
  const n = 2 * MAX_BATCH_MESSAGES + 22;
  const reqs = Array.from({ length: n }, (_, i) => ({ type: RTM.NEWADDR, flags: NLM_F.CREATE | NLM_F.EXCL, payload: Buffer.from([i % 256]) }));
  const errnos = await r.batch(reqs, 'add addresses');
  t.same(tr.sent.map((d) => d.length), [MAX_BATCH_MESSAGES, MAX_BATCH_MESSAGES, 22]);
  t.ok(tr.sent.flat().every((m) => m.flags === (NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL)));
  t.equal(new Set(tr.sent.flat().map((m) => m.seq)).size, n, 'distinct sequence numbers');
  t.same(errnos, reqs.map((q) => (q.payload[0]! % 3 === 0 ? 17 : 0)));
});

t.test('timeouts reject, later transactions still run, and late replies are ignored', async (t) => {
  let first: NlMessage | undefined;
  const unsolicited: NlMessage[] = [];
  const tr = new ScriptedTransport(([req]) => {
    if (!first) { first = req; return []; }
    return [ack(req!)];
  });
  const r = new NetlinkRequester(tr, 50, (m) => unsolicited.push(m));
  const t0 = Date.now();
  await t.rejects(r.request(RTM.NEWADDR, 0, Buffer.alloc(8), 'slow'), { code: 'ETIMEDOUT', retryable: true });
  t.ok(Date.now() - t0 >= 45, 'waited for the timeout');
  tr.inject(ack(first!));
  tr.inject(reply(first!, RTM.NEWLINK, 0, Buffer.from('late')));
  t.same(await r.request(RTM.NEWADDR, 0, Buffer.alloc(8), 'next'), []);
  t.same(unsolicited.map((m) => m.payload.toString()), ['late'], 'late data goes to the unsolicited handler, late acks nowhere');
});

t.test('transactions run one at a time, in order', async (t) => {
  const order: number[] = [];
  const tr = new ScriptedTransport(([req]) => { order.push(req!.payload[0]!); return [ack(req!)]; });
  const r = new NetlinkRequester(tr, 1000);
  await Promise.all([1, 2, 3].map((i) => r.request(RTM.NEWADDR, 0, Buffer.from([i]), `req ${i}`)));
  t.same(order, [1, 2, 3]);
  t.same(tr.sent.map((d) => d.length), [1, 1, 1], 'one datagram each, none overlapping');
});

t.test('a socket error fails the transaction in flight; close fails the rest', async (t) => {
  const tr = new ScriptedTransport(() => []);
  const errors: unknown[] = [];
  const r = new NetlinkRequester(tr, 5000, undefined, (e) => errors.push(e));
  const p = r.request(RTM.NEWADDR, 0, Buffer.alloc(8), 'add');
  await new Promise((res) => setImmediate(res));
  tr.fail(Object.assign(new Error('overrun'), { errno: 105, code: 'ENOBUFS', syscall: 'recvmsg' }));
  await t.rejects(p, { code: 'ENOBUFS', retryable: true });
  t.equal(errors.length, 1);
  const q = r.request(RTM.NEWADDR, 0, Buffer.alloc(8), 'add again');
  await new Promise((res) => setImmediate(res));
  r.close();
  await t.rejects(q, { code: 'ECLOSED' });
  await t.rejects(r.request(RTM.NEWADDR, 0, Buffer.alloc(8), 'after close'), { code: 'ECLOSED' });
});

t.test('an unparsable reply fails the transaction', async (t) => {
  const tr = new ScriptedTransport(() => [Buffer.from([0xff, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])]);
  const r = new NetlinkRequester(tr, 1000);
  await t.rejects(r.request(RTM.NEWADDR, 0, Buffer.alloc(8), 'add'), { code: 'EPROTO' });
});
