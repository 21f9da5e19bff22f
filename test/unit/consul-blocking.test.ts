// The blocking-query rules (src/consul/blocking.ts) and the read query/deadline (src/consul/wire.ts),
// with a fake clock and a fake read: no sockets, no sleeps.
import t from 'tap';
import { BlockingQuery, TokenBucket, nextQueryIndex } from '../../src/consul/blocking';
import { parseMeta, readQuery, type Read, type ReadOptions } from '../../src/consul/wire';

t.test('index rules: backwards resets to 0, ≤ 0 becomes 1, missing keeps', async (t) => {
  t.equal(nextQueryIndex(0, 42), 42);
  t.equal(nextQueryIndex(42, 43), 43);
  t.equal(nextQueryIndex(42, 42), 42, 'unchanged (wait expired)');
  t.equal(nextQueryIndex(42, 7), 0, 'rule 1: lower than before');
  t.equal(nextQueryIndex(0, 0), 1, 'rule 2: never loop with 0');
  t.equal(nextQueryIndex(5, undefined), 5);
});

t.test('token bucket: burst 2, then one per refill period', async (t) => {
  let now = 0;
  const b = new TokenBucket(2, 15_000, () => now);
  t.equal(b.take(), 0);
  t.equal(b.take(), 0);
  t.equal(b.take(), 15_000);
  now = 7_500;
  t.equal(b.take(), 7_500);
  now = 15_000;
  t.equal(b.take(), 0);
  now = 1_000_000;
  t.equal(b.take(), 0);
  t.equal(b.take(), 0);
  t.equal(b.take(), 15_000, 'refill is capped at the burst');
});

t.test('BlockingQuery: sends the index it learnt, sleeps only when the bucket is empty, keeps the index over errors', async (t) => {
  let now = 0;
  const slept: number[] = [];
  const sent: ReadOptions[] = [];
  const answers: (number | Error)[] = [10, 12, 12, new Error('boom'), 3, 0, 20];
  const read = async (o: ReadOptions): Promise<Read<string>> => {
    sent.push(o);
    const a = answers.shift()!;
    if (a instanceof Error) throw a;
    return { value: `v${a}`, meta: { index: a, knownLeader: true, lastContactMs: 0 } };
  };
  const q = new BlockingQuery(read, { waitMs: 30_000, now: () => now, sleep: async (ms) => { slept.push(ms); now += ms; } });
  await q.next();
  await q.next();
  await q.next();
  await t.rejects(q.next(), /boom/);
  t.equal(q.index, 12, 'an error keeps the index');
  await q.next();
  t.equal(q.index, 0, 'went backwards: reset');
  await q.next();
  t.equal(q.index, 1, '0 is never sent back as 0');
  await q.next();
  t.same(sent.map((o) => o.index), [0, 10, 12, 12, 12, 0, 1]);
  t.ok(sent.every((o) => o.waitMs === 30_000));
  t.same(slept, [15_000, 15_000, 15_000, 15_000, 15_000], 'burst of 2, then one request per 15 s');
});

t.test('readQuery: index+wait only when blocking; the deadline covers wait × 17/16', async (t) => {
  const tr = { timeoutMs: 2000, request: async () => { throw new Error('unused'); } };
  t.same(readQuery(tr, {}), { query: {}, timeoutMs: 2000 });
  t.same(readQuery(tr, { index: 0, waitMs: 1000 }), { query: {}, timeoutMs: 2000 }, 'index 0 does not block');
  t.same(readQuery(tr, { index: 7, waitMs: 16_000, consistency: 'stale' }), { query: { stale: '', index: '7', wait: '16000ms' }, timeoutMs: 2000 + 17_000 });
  t.same(readQuery(tr, { index: 7, waitMs: 3_600_000 }).query.wait, '600000ms', 'capped at max_query_time');
  t.same(readQuery(tr, { index: 7 }).timeoutMs, 2000 + 318_750, 'default wait 5 min');
  t.same(readQuery(tr, { consistency: 'consistent' }).query, { consistent: '' });
  t.throws(() => readQuery(tr, { index: 1, waitMs: -5 }), { code: 'EVIGILCONFIG' });
});

t.test('parseMeta: headers to numbers, strict index', async (t) => {
  t.same(parseMeta({ 'x-consul-index': '123', 'x-consul-knownleader': 'true', 'x-consul-lastcontact': '0' }), { index: 123, knownLeader: true, lastContactMs: 0 });
  t.same(parseMeta({}), { index: undefined, knownLeader: undefined, lastContactMs: undefined });
  t.same(parseMeta({ 'x-consul-knownleader': 'false', 'x-consul-lastcontact': '4500' }).lastContactMs, 4500);
  t.throws(() => parseMeta({ 'x-consul-index': '-1' }), { code: 'ECONSULBADRESPONSE' });
  t.throws(() => parseMeta({ 'x-consul-index': '99999999999999999999' }), { code: 'ECONSULBADRESPONSE' });
});
