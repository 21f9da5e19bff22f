// /v1/txn encoding and the 409 error value (src/consul/txn.ts), without a server.
import t from 'tap';
import { ConsulTxnConflict, encodeTxn } from '../../src/consul/txn';
import { VigilError } from '../../src/errors';

t.test('encodeTxn: one KV element per op, values base64 (standard, padded), only the fields a verb takes', async (t) => {
  const body = JSON.parse(encodeTxn([
    { verb: 'check-session', key: 'ha/leader', session: 'adf4238a-882b-9ddc-4a9d-5b6758e4159e' },
    { verb: 'cas', key: 'ha/fence/cmp-01', value: 'fence@ctrl-01', index: 87, flags: 0 },
    { verb: 'set', key: 'ha/fence/cmp-01/at', value: Buffer.from('1700000000') },
    { verb: 'delete-tree', key: '' },
    { verb: 'check-session', key: 'ha/leader', session: '' },
  ]));
  t.same(body, [
    { KV: { Verb: 'check-session', Key: 'ha/leader', Session: 'adf4238a-882b-9ddc-4a9d-5b6758e4159e' } },
    { KV: { Verb: 'cas', Key: 'ha/fence/cmp-01', Value: 'ZmVuY2VAY3RybC0wMQ==', Flags: 0, Index: 87 } },
    { KV: { Verb: 'set', Key: 'ha/fence/cmp-01/at', Value: 'MTcwMDAwMDAwMA==' } },
    { KV: { Verb: 'delete-tree', Key: '' } },
    { KV: { Verb: 'check-session', Key: 'ha/leader', Session: '' } },
  ], 'the spec §3g request, byte for byte; Session "" kept (passes only while unlocked)');
  t.throws(() => encodeTxn([{ verb: 'get', key: '' }]), { code: 'EVIGILCONFIG' }, 'Must provide key, caught before sending');
});

t.test('ConsulTxnConflict: a VigilError with a stable code and every failing op', async (t) => {
  const e = new ConsulTxnConflict([{ opIndex: 1, what: 'failed to set key "ha/fence/cmp-01", index is stale' }, { opIndex: 2, what: 'key "x" exists' }]);
  t.ok(e instanceof VigilError);
  t.match(e, { code: 'ECONSULTXNCONFLICT', retryable: false, name: 'ConsulTxnConflict' });
  t.equal(e.message, 'consul txn rolled back: op 1: failed to set key "ha/fence/cmp-01", index is stale; op 2: key "x" exists');
  t.same(e.detail, { errors: e.errors });
});
