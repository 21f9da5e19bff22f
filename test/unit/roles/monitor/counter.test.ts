// Counter semantics: down counts, up resets, unknown neither counts nor resets; the CAS write quotes the read index.
import t from 'tap';
import { applySamples, confirmStates, counterWrite, hostCount, storedCounts, MAX_COUNT } from '../../../../src/roles/monitor/counter';
import type { SampleState } from '../../../../src/roles/monitor/samples';

const NETS = ['mgmt', 'tenant'];
const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString();

/** Run a sequence of mgmt samples (tenant up) and return the mgmt count after each. */
function run(seq: SampleState[], start = 0): number[] {
  let c: Record<string, number> = { mgmt: start, tenant: 0 };
  return seq.map((s) => (c = applySamples(c, { mgmt: s, tenant: 'up' }, NETS)).mgmt!);
}

t.test('count table', async (t) => {
  const table: [SampleState[], number[]][] = [
    [['down', 'down', 'down'], [1, 2, 3]],
    [['down', 'up', 'down'], [1, 0, 1]],
    [['down', 'unknown', 'down'], [1, 1, 2]],
    [['unknown', 'unknown'], [0, 0]],
    [['down', 'down', 'unknown', 'unknown', 'down'], [1, 2, 2, 2, 3]],
    [['up'], [0]],
  ];
  for (const [seq, want] of table) t.same(run(seq), want, seq.join(','));
  t.same(run(['unknown', 'up'], 2), [2, 0], 'unknown keeps a stored count, up resets it');
});

t.test('a network without a sample is unknown', async (t) => {
  t.same(applySamples({ mgmt: 2, tenant: 1 }, { mgmt: 'down' }, NETS), { mgmt: 3, tenant: 1 });
});

t.test('counts are capped', async (t) => {
  t.equal(applySamples({ mgmt: MAX_COUNT }, { mgmt: 'down' }, ['mgmt']).mgmt, MAX_COUNT);
});

t.test('confirmStates', async (t) => {
  const table: [number, SampleState, string][] = [
    [3, 'down', 'down'], [2, 'down', 'pending'], [0, 'up', 'up'], [0, 'unknown', 'unknown'],
    [3, 'unknown', 'down'], [1, 'unknown', 'unknown'], [5, 'up', 'up'],
  ];
  for (const [count, sample, want] of table) {
    t.equal(confirmStates({ mgmt: count }, { mgmt: sample }, ['mgmt'], 3).mgmt, want, `${count} + ${sample}`);
  }
});

t.test('storedCounts: per-network JSON wins; os_nova number_fails alone credits no network', async (t) => {
  t.same(storedCounts({ failsByNetwork: { value: { mgmt: 2 }, modifyIndex: 5 } }, NETS), { mgmt: 2, tenant: 0 });
  t.same(storedCounts({ numberFails: { value: 7, modifyIndex: 5 } }, NETS), { mgmt: 0, tenant: 0 });
  t.equal(hostCount({ mgmt: 2, tenant: 3 }), 3);
  t.equal(hostCount({}), 0);
});

t.test('counterWrite quotes the read ModifyIndex (0 = create only)', async (t) => {
  const w = counterWrite('ha_cluster', 'cmp-01', { numberFails: { value: 2, modifyIndex: 87 }, failsByNetwork: { value: { mgmt: 2, tenant: 0 }, modifyIndex: 88 } }, { mgmt: 3, tenant: 0 })!;
  t.equal(w.numberFails, 3);
  t.same(w.ops.map((o) => [o.KV.Verb, o.KV.Key, o.KV.Index]), [
    ['cas', 'ha_cluster/compute_nodes/cmp-01/internal/number_fails', 87],
    ['cas', 'ha_cluster/compute_nodes/cmp-01/internal/number_fails_by_network', 88],
  ]);
  t.equal(w.ops[0]!.KV.Value, b64('3'), 'os_nova reads it with int()');
  t.same(JSON.parse(unb64(w.ops[1]!.KV.Value)), { mgmt: 3, tenant: 0 });

  const fresh = counterWrite('p', 'h', {}, { mgmt: 1 })!;
  t.same(fresh.ops.map((o) => o.KV.Index), [0, 0]);
});

t.test('counterWrite: nothing to write when unchanged', async (t) => {
  t.equal(counterWrite('p', 'h', { numberFails: { value: 0, modifyIndex: 1 }, failsByNetwork: { value: { mgmt: 0 }, modifyIndex: 2 } }, { mgmt: 0 }), undefined);
  t.ok(counterWrite('p', 'h', { numberFails: { value: 0, modifyIndex: 1 } }, { mgmt: 0 }), 'the per-network key is missing: write it');
});

t.test('two monitors interleaving through CAS never lose an update', async (t) => {
  // A tiny CAS store: each monitor reads, computes, writes with the read index; on conflict it re-reads and retries.
  const store = { value: { mgmt: 0 } as Record<string, number>, index: 1, nf: 0, nfIndex: 1 };
  const read = () => ({ numberFails: { value: store.nf, modifyIndex: store.nfIndex }, failsByNetwork: { value: { ...store.value }, modifyIndex: store.index } });
  const commit = (ops: ReturnType<typeof counterWrite>) => {
    if (!ops) return true;
    if (ops.ops[0]!.KV.Index !== store.nfIndex || ops.ops[1]!.KV.Index !== store.index) return false;
    store.value = ops.counts; store.nf = ops.numberFails; store.index += 2; store.nfIndex += 2;
    return true;
  };
  let rounds = 0;
  for (let i = 0; i < 200; i++) {
    // Both read before either writes: the second write must fail and retry.
    const a = read(); const b = read();
    const wa = counterWrite('p', 'h', a, applySamples(storedCounts(a, ['mgmt']), { mgmt: 'down' }, ['mgmt']));
    const wb = counterWrite('p', 'h', b, applySamples(storedCounts(b, ['mgmt']), { mgmt: 'down' }, ['mgmt']));
    t.equal(commit(wa), true);
    if (!commit(wb)) {
      const b2 = read();
      t.equal(commit(counterWrite('p', 'h', b2, applySamples(storedCounts(b2, ['mgmt']), { mgmt: 'down' }, ['mgmt']))), true);
    }
    rounds += 2;
  }
  t.equal(store.value.mgmt, rounds, 'every down sample counted once');
  t.equal(store.nf, rounds);
});
