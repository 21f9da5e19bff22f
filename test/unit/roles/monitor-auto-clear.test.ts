// auto_clear_after: off by default; with N, a latched host up on every network for N consecutive
// samples gets the reset txn (latches and counters, as `vigil monitor reset`) behind the same guard on
// the incident key; a sample not all-up starts the count again; never while a fence or a recovery is
// in flight. Pure machine, fake clock; plus the config key.
import t from 'tap';
import { initialHostState, monitorTransition, type HostMachineConfig, type HostState, type MonitorEffect, type StoredHostView } from '../../../src/roles/monitor/machine';
import { HOSTHA_MATRIX_2 } from '../../../src/roles/monitor/matrix';
import { normalizeMonitor } from '../../../src/roles/monitor/config';
import { resetTxn } from '../../../src/roles/monitor/kvschema';
import type { Sample, SampleState } from '../../../src/roles/monitor/samples';

const CFG: HostMachineConfig = {
  host: 'cmp-01', self: 'ctl-1', networks: ['mgmt', 'tenant'], confirm: 3, matrix: HOSTHA_MATRIX_2, kvPrefix: 'ha_cluster',
  fenceMethod: 'ipmi', bmcProtocol: 'ipmi', fenceEvent: 'fence', powerTimeoutMs: 20_000, powerWaitMs: 2_000, silenceCheck: false,
  lockDelayMs: 15_000, sessionTtlMs: 30_000, maintenance: false,
};
const UP = { mgmt: 'up', tenant: 'up' } as const;
const HALF = { mgmt: 'up', tenant: 'down' } as const;

function samples(states: Record<string, SampleState>): Record<string, Sample> {
  return Object.fromEntries(Object.entries(states).map(([n, st]) => [n, { host: 'cmp-01', network: n, node: 'cmp-01', state: st, reasons: [], addr: '192.0.2.1' }]));
}

function drive(cfg: HostMachineConfig, kv: StoredHostView, rounds: Record<string, SampleState>[], start: HostState = initialHostState('cmp-01')): { state: HostState; effects: MonitorEffect[][] } {
  let state = start;
  const effects: MonitorEffect[][] = [];
  rounds.forEach((r, i) => {
    const step = monitorTransition(state, { type: 'sampled', nowMs: (i + 1) * 10_000, samples: samples(r), stored: structuredClone(kv) }, cfg);
    state = step.state;
    effects.push(step.effects);
  });
  return { state, effects };
}
const clears = (effects: MonitorEffect[][]) => effects.flat().filter((e) => e.type === 'autoClear');
const FINISHED = { failed: true, counts: {}, maintenance: false, incident: { journal: { step: 'fenced', id: 'inc-1', actions: ['ipmi', 'evacuate'] }, modifyIndex: 42 } } satisfies StoredHostView;

t.test('off by default: a latched host stays latched however long it is healthy', async (t) => {
  const r = drive(CFG, FINISHED, Array(50).fill(UP));
  t.equal(r.state.phase, 'latched');
  t.equal(clears(r.effects).length, 0);
});

t.test('N consecutive healthy samples: the reset txn behind check-index on the incident, logged', async (t) => {
  const cfg = { ...CFG, autoClearAfter: 3 };
  // the first sample latches, then 3 healthy ones clear
  const r = drive(cfg, FINISHED, [UP, UP, UP, UP]);
  const c = clears(r.effects);
  t.equal(c.length, 1, 'one clear');
  t.equal(r.effects.findIndex((e) => e.some((x) => x.type === 'autoClear')), 3, 'at the 3rd healthy sample after latching, not before');
  const eff = c[0]! as Extract<MonitorEffect, { type: 'autoClear' }>;
  t.same(eff.ops[0], { KV: { Verb: 'check-index', Key: 'ha_cluster/compute_nodes/cmp-01/incident', Index: 42 } }, 'the same guard as vigil monitor reset');
  t.same(eff.ops.slice(1), resetTxn('ha_cluster', 'cmp-01'), 'the same ops as vigil monitor reset');
  const log = r.effects[3]!.find((e) => e.type === 'log');
  t.match(log, { level: 'warn', msg: /auto_clear_after: 3 consecutive healthy samples/ }, 'logged before it is done');
  // no incident key at all: check-not-exists
  const bare = drive(cfg, { failed: true, counts: {}, maintenance: false }, [UP, UP, UP, UP]);
  t.same((clears(bare.effects)[0] as Extract<MonitorEffect, { type: 'autoClear' }>).ops[0], { KV: { Verb: 'check-not-exists', Key: 'ha_cluster/compute_nodes/cmp-01/incident' } });
});

t.test('a sample not up on every network starts the count again', async (t) => {
  const cfg = { ...CFG, autoClearAfter: 3 };
  const r = drive(cfg, FINISHED, [UP, UP, UP, HALF, UP, UP]);
  t.equal(clears(r.effects).length, 0, 'never 3 in a row');
  const r2 = drive(cfg, FINISHED, [UP, UP, UP, HALF, UP, UP, UP]);
  t.equal(clears(r2.effects).length, 1, '3 in a row after the break');
});

t.test('never while an incident is in flight or a recovery runs (the reset guard)', async (t) => {
  const cfg = { ...CFG, autoClearAfter: 2, recovery: true };
  // held by a live claimer that finished the fence and whose row evacuates: recovery running → refused, logged
  const held = { ...FINISHED, incident: { ...FINISHED.incident, session: 'sess-1' } };
  const fenced: HostState = { ...initialHostState('cmp-01'), phase: 'fenced', session: 'sess-1' };
  const r = drive(cfg, held, [UP, UP, UP, UP], fenced);
  t.equal(clears(r.effects).length, 0, 'not cleared');
  t.match(r.effects.flat().find((e) => e.type === 'log'), { msg: /not cleared: a monitor holds .*recovery running/ });
  // the same, recovered and released: cleared
  const done = { ...FINISHED, incident: { journal: { step: 'recovered', id: 'inc-1', actions: ['ipmi', 'evacuate'] }, modifyIndex: 50 } };
  const r2 = drive(cfg, done, [UP, UP], { ...initialHostState('cmp-01'), phase: 'recovered' });
  t.equal(clears(r2.effects).length, 1, 'a finished recovery is cleared');
  // a fence in flight: samples are not even looked at
  const r3 = drive(cfg, held, [UP, UP, UP], { ...initialHostState('cmp-01'), phase: 'fencing', session: 'sess-1' });
  t.equal(clears(r3.effects).length, 0);
});

t.test('config: auto_clear_after is optional, 1 to 10000', async (t) => {
  const base = { networks: { mgmt: { url: 'http://127.0.0.1:8500' }, tenant: { url: 'http://127.0.0.1:8501' } }, inventory: { source: 'kv' } };
  t.equal(normalizeMonitor(base).autoClearAfter, undefined, 'off by default');
  t.equal(normalizeMonitor({ ...base, auto_clear_after: 6 }).autoClearAfter, 6);
  t.throws(() => normalizeMonitor({ ...base, auto_clear_after: 0 }), /auto_clear_after/);
  t.throws(() => normalizeMonitor({ ...base, auto_clear_after: 'soon' }), /auto_clear_after/);
});
