// The per-host incident machine, driven round by round on a fake clock with a fake KV; no sleeps, no I/O.
import t from 'tap';
import {
  initialHostState, mayRecover, monitorTransition, type HostMachineConfig, type HostState, type MonitorEffect, type MonitorEvent, type StoredHostView,
} from '../../../../src/roles/monitor/machine';
import { HOSTHA_MATRIX_2, HOSTHA_MATRIX_3 } from '../../../../src/roles/monitor/matrix';
import type { GuardReport } from '../../../../src/roles/monitor/guards';
import type { Sample, SampleState } from '../../../../src/roles/monitor/samples';

const CFG2: HostMachineConfig = {
  host: 'cmp-01', self: 'ctl-1', networks: ['mgmt', 'tenant'], confirm: 3, matrix: HOSTHA_MATRIX_2, kvPrefix: 'ha_cluster',
  fenceMethod: 'ipmi', bmcProtocol: 'ipmi', fenceEvent: 'fence', powerTimeoutMs: 20_000, powerWaitMs: 2_000, silenceCheck: false,
  lockDelayMs: 15_000, sessionTtlMs: 30_000, maintenance: false,
};
const CFG3: HostMachineConfig = { ...CFG2, networks: ['mgmt', 'tenant', 'storage'], matrix: HOSTHA_MATRIX_3 };
const PASS: GuardReport = { ok: true, results: [{ guard: 'self-isolation', ok: true, detail: 'ok', evidence: {} }] };
const FAIL: GuardReport = { ok: false, results: [{ guard: 'mass-failure', ok: false, detail: '3 of 6 down', evidence: {} }] };
/** An event without its time (the world stamps it): Omit distributed over the union. */
type EventIn = MonitorEvent extends infer E ? (E extends MonitorEvent ? Omit<E, 'nowMs'> : never) : never;
const unb64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString();

function samples(states: Record<string, SampleState>): Record<string, Sample> {
  return Object.fromEntries(Object.entries(states).map(([n, st]) => [n, { host: 'cmp-01', network: n, node: 'cmp-01', state: st, reasons: [`${st} on ${n}`], addr: `192.0.2.${n.length}` }]));
}

/** A tiny world: KV counts with indexes, and a log of every effect. */
class World {
  state: HostState = initialHostState('cmp-01');
  now = 0;
  effects: MonitorEffect[] = [];
  kv: StoredHostView = { counts: {}, failed: false, maintenance: false };
  index = 10;
  constructor(public cfg: HostMachineConfig) {}
  feed(ev: EventIn): MonitorEffect[] {
    const step = monitorTransition(this.state, { ...ev, nowMs: this.now } as MonitorEvent, this.cfg);
    this.state = step.state;
    this.effects.push(...step.effects);
    return step.effects;
  }
  /** One sampling round; the counter write succeeds (or not) and is applied to the fake KV. */
  round(states: Record<string, SampleState>, casOk = true): MonitorEffect[] {
    this.now += 10_000;
    const out = this.feed({ type: 'sampled', samples: samples(states), stored: structuredClone(this.kv) });
    const w = out.find((e) => e.type === 'writeCounter');
    if (w && w.type === 'writeCounter') {
      if (casOk) this.kv.counts = { numberFails: { value: w.numberFails, modifyIndex: ++this.index }, failsByNetwork: { value: w.counts, modifyIndex: ++this.index } };
      out.push(...this.feed({ type: 'counterWritten', ok: casOk }));
    }
    return out;
  }
  count(type: MonitorEffect['type']): number { return this.effects.filter((e) => e.type === type).length; }
  of<T extends MonitorEffect['type']>(type: T): Extract<MonitorEffect, { type: T }>[] { return this.effects.filter((e) => e.type === type) as Extract<MonitorEffect, { type: T }>[]; }
}

const DOWN2 = { mgmt: 'down', tenant: 'down' } as const;
const UP2 = { mgmt: 'up', tenant: 'up' } as const;

/** Drive a host to the point where the fence effect is out (row 00 → ipmi, evacuate). */
function toFencing(cfg = CFG2, states: Record<string, SampleState> = DOWN2): World {
  const w = new World(cfg);
  w.round(states); w.round(states); w.round(states);
  w.feed({ type: 'guards', report: PASS });
  w.feed({ type: 'claimResult', acquired: true, session: 'sess-1' });
  w.feed({ type: 'latchWritten', ok: true });
  return w;
}

t.test('confirmation: three consecutive downs, then guards; not before', async (t) => {
  const w = new World(CFG2);
  w.round(DOWN2);
  t.equal(w.state.phase, 'suspect');
  w.round(DOWN2);
  t.equal(w.state.phase, 'suspect');
  t.equal(w.count('evaluateGuards'), 0);
  w.round(DOWN2);
  t.equal(w.state.phase, 'awaiting-guards');
  t.same(w.state.decision, { row: '00', description: 'mgmt down, tenant down', actions: ['ipmi', 'evacuate'] });
  t.equal(w.count('writeCounter'), 3, 'one CAS write per round');
  t.same(w.of('writeCounter').map((e) => e.numberFails), [1, 2, 3]);
  t.same(w.of('writeCounter')[0]!.ops.map((o) => o.KV.Index), [0, 0], 'first write creates (cas=0)');
  t.same(w.of('writeCounter')[1]!.ops.map((o) => o.KV.Index), [11, 12], 'later writes quote the read ModifyIndex');
});

t.test('unknown neither counts nor resets; up resets', async (t) => {
  const w = new World(CFG2);
  w.round(DOWN2);
  w.round({ mgmt: 'unknown', tenant: 'unknown' });
  t.same(w.state.counts, { mgmt: 1, tenant: 1 });
  t.equal(w.count('writeCounter'), 1, 'nothing changed: no write');
  w.round(DOWN2);
  w.round(DOWN2);
  t.equal(w.state.phase, 'awaiting-guards', 'down, unknown, down, down confirms');

  const r = new World(CFG2);
  r.round(DOWN2); r.round(DOWN2); r.round(UP2);
  t.same(r.state.counts, { mgmt: 0, tenant: 0 });
  t.equal(r.state.phase, 'healthy');
  r.round(DOWN2); r.round(DOWN2);
  t.equal(r.state.phase, 'suspect', 'the count restarted after up');
});

t.test('a confirmed down with another network unknown holds, with one alarm', async (t) => {
  const w = new World(CFG2);
  w.round(DOWN2); w.round(DOWN2); w.round({ mgmt: 'down', tenant: 'unknown' });
  w.round({ mgmt: 'down', tenant: 'unknown' });
  t.equal(w.state.phase, 'suspect');
  t.equal(w.count('evaluateGuards'), 0);
  // tenant has count 2 (< confirm) and its last sample is unknown: not confirmed either way.
  t.equal(w.of('alarm').length, 1, 'alarm raised once, not every round');
  t.match(w.of('alarm')[0], { reason: 'unconfirmed-network', detail: /confirmed down on mgmt/ });
});

t.test('CAS failure: counts not adopted, no decision; the retry goes through', async (t) => {
  const w = new World(CFG2);
  w.round(DOWN2); w.round(DOWN2);
  w.round(DOWN2, false);
  t.equal(w.state.phase, 'suspect');
  t.equal(w.state.pending, undefined);
  t.same(w.kv.counts.failsByNetwork!.value, { mgmt: 2, tenant: 2 });
  w.round(DOWN2);
  t.equal(w.state.phase, 'awaiting-guards');
});

t.test('the happy path: decision logged before the claim; latch with check-session; confirmed fence → fenced', async (t) => {
  const w = toFencing();
  const kinds = w.effects.map((e) => e.type).filter((k) => k !== 'writeCounter' && k !== 'log');
  t.same(kinds, ['logDecision', 'evaluateGuards', 'logDecision', 'claimIncident', 'writeLatch', 'fence']);
  const claim = w.of('claimIncident')[0]!;
  t.match(claim, { key: 'ha_cluster/compute_nodes/cmp-01/incident', lockDelayMs: 15_000, checks: ['serfHealth'] });
  const latch = w.of('writeLatch')[0]!;
  t.same(latch.ops.map((o) => [o.KV.Verb, o.KV.Key]), [
    ['check-session', 'ha_cluster/compute_nodes/cmp-01/incident'],
    ['set', 'ha_cluster/compute_nodes/cmp-01/status/failed'],
    ['lock', 'ha_cluster/compute_nodes/cmp-01/incident'],
  ]);
  t.equal(latch.ops[0]!.KV.Session, 'sess-1');
  t.equal(unb64(latch.ops[1]!.KV.Value), 'True');
  t.match(w.of('logDecision')[0], { verdict: /confirmed, evaluating guards/, row: '00' });
  t.notOk(w.of('logDecision')[0]!.guards, 'guards not known yet');
  const decision = w.of('logDecision')[1]!;
  t.match(decision, { verdict: /guards pass/, row: '00', actions: ['ipmi', 'evacuate'], samples: { mgmt: { state: 'down' } }, counts: { mgmt: 3 }, guards: PASS });
  t.match(w.of('fence')[0], { method: 'ipmi', protocol: 'ipmi', powerTimeoutMs: 20_000, powerWaitMs: 2_000 });
  t.equal(mayRecover(w.state), false, 'not before the power state is confirmed');
  w.feed({ type: 'fenceResult', outcome: 'off', powerState: 'off', detail: 'Chassis Power is off' });
  t.equal(w.state.phase, 'fenced');
  t.equal(mayRecover(w.state), true);
  const j = w.of('writeLatch')[1]!;
  t.equal(j.step, 'fenced');
  t.equal(j.ops[0]!.KV.Verb, 'check-session');
  t.match(JSON.parse(unb64(j.ops[1]!.KV.Value)), { step: 'fenced', by: 'ctl-1', row: '00' });
});

t.test('BMC unreachable → fence-unconfirmed, alarm, and never recovery', async (t) => {
  for (const outcome of ['error', 'not-off'] as const) {
    const w = toFencing();
    w.feed({ type: 'fenceResult', outcome, detail: 'Error: Unable to establish IPMI v2 / RMCP+ session' });
    t.equal(w.state.phase, 'fence-unconfirmed', outcome);
    t.equal(mayRecover(w.state), false);
    t.match(w.of('alarm'), [{ reason: 'fence-unconfirmed', detail: /not confirmed/ }]);
    t.equal(w.of('writeLatch').at(-1)!.step, 'fence-unconfirmed');
    // Later rounds, even with the host still down, start nothing new.
    const before = w.effects.length;
    w.round(DOWN2); w.round(DOWN2);
    t.same(w.effects.slice(before).filter((e) => ['fence', 'claimIncident', 'writeLatch', 'evaluateGuards'].includes(e.type)), []);
    t.equal(w.state.phase, 'fence-unconfirmed');
  }
});

t.test('power off but still answers → aborted, alarm, no recovery', async (t) => {
  const w = toFencing({ ...CFG2, silenceCheck: true });
  w.feed({ type: 'fenceResult', outcome: 'off', detail: 'off' });
  t.equal(w.state.phase, 'checking-silence');
  t.equal(mayRecover(w.state), false);
  t.same(w.of('checkSilence')[0]!.targets.map((x) => x.network), ['mgmt', 'tenant']);
  t.ok(w.of('checkSilence')[0]!.targets[0]!.addr, 'the last known member address is probed');
  w.feed({ type: 'silenceChecked', answered: [{ network: 'tenant', addr: '192.0.2.6' }], errors: [] });
  t.equal(w.state.phase, 'aborted');
  t.equal(mayRecover(w.state), false);
  t.match(w.of('alarm'), [{ reason: 'still-answers', detail: /still answers on tenant/ }]);

  const e = toFencing({ ...CFG2, silenceCheck: true });
  e.feed({ type: 'fenceResult', outcome: 'off', detail: 'off' });
  e.feed({ type: 'silenceChecked', answered: [], errors: ['EPERM'] });
  t.equal(e.state.phase, 'aborted', 'an error is not silence');
  t.match(e.of('alarm'), [{ reason: 'silence-unverified' }]);

  const ok = toFencing({ ...CFG2, silenceCheck: true });
  ok.feed({ type: 'fenceResult', outcome: 'off', detail: 'off' });
  ok.feed({ type: 'silenceChecked', answered: [], errors: [] });
  t.equal(ok.state.phase, 'fenced');
  t.equal(mayRecover(ok.state), true);
});

t.test('lost claim → no latch write, no fence', async (t) => {
  // Claim refused: observing, nothing written.
  const a = new World(CFG2);
  a.round(DOWN2); a.round(DOWN2); a.round(DOWN2);
  a.feed({ type: 'guards', report: PASS });
  a.feed({ type: 'claimResult', acquired: false, holder: 'sess-other', reason: 'lock held' });
  t.equal(a.state.phase, 'observing');
  t.equal(a.count('writeLatch'), 0);

  // Claim lost while the latch txn is out: its result is not acted on.
  const b = new World(CFG2);
  b.round(DOWN2); b.round(DOWN2); b.round(DOWN2);
  b.feed({ type: 'guards', report: PASS });
  b.feed({ type: 'claimResult', acquired: true, session: 'sess-1' });
  b.feed({ type: 'claimLost', reason: 'session invalidated' });
  t.equal(b.state.phase, 'observing');
  b.feed({ type: 'latchWritten', ok: true });
  t.equal(b.count('fence'), 0);

  // The latch txn itself fails its check-session.
  const c = new World(CFG2);
  c.round(DOWN2); c.round(DOWN2); c.round(DOWN2);
  c.feed({ type: 'guards', report: PASS });
  c.feed({ type: 'claimResult', acquired: true, session: 'sess-1' });
  c.feed({ type: 'latchWritten', ok: false, detail: 'failed session check for key' });
  t.equal(c.state.phase, 'observing');
  t.equal(c.count('fence'), 0);
  t.match(c.of('alarm'), [{ reason: 'claim-lost' }]);

  // Lost during the fence: the result is not recorded and recovery is impossible.
  const d = toFencing();
  d.feed({ type: 'claimLost', reason: 'renew failed' });
  d.feed({ type: 'fenceResult', outcome: 'off', detail: 'off' });
  t.equal(d.state.phase, 'observing');
  t.equal(mayRecover(d.state), false);
  t.equal(d.of('writeLatch').length, 1, 'only the latch written while the claim was held');
});

t.test('guards fail → held, logged with the guards, one alarm across rounds; pass later → claim', async (t) => {
  const w = new World(CFG2);
  w.round(DOWN2); w.round(DOWN2); w.round(DOWN2);
  w.feed({ type: 'guards', report: FAIL });
  t.equal(w.state.phase, 'held');
  t.match(w.of('logDecision')[1], { verdict: /held by guards/, guards: FAIL });
  w.round(DOWN2);
  t.equal(w.state.phase, 'awaiting-guards');
  w.feed({ type: 'guards', report: FAIL });
  t.equal(w.of('alarm').length, 1);
  t.equal(w.count('claimIncident'), 0);
  w.round(DOWN2);
  w.feed({ type: 'guards', report: PASS });
  t.equal(w.state.phase, 'claiming');
});

t.test('rows without fencing: degraded, decision logged once, notify on email', async (t) => {
  const w = new World(CFG2);
  for (let i = 0; i < 5; i++) w.round({ mgmt: 'up', tenant: 'down' });
  t.equal(w.state.phase, 'degraded');
  t.equal(w.of('logDecision').length, 1);
  t.match(w.of('logDecision')[0], { row: '10', actions: ['migrate'] });
  t.equal(w.count('notify'), 0, 'K-20 row 10 has no email');
  t.equal(w.count('claimIncident') + w.count('evaluateGuards'), 0);

  const e = new World(CFG2);
  for (let i = 0; i < 3; i++) e.round({ mgmt: 'down', tenant: 'up' });
  t.match(e.of('notify'), [{ row: '01' }]);
});

t.test('K-19 rows through the machine: fencing rows ask for guards, others do not', async (t) => {
  const table: [Record<string, SampleState>, boolean][] = [
    [{ mgmt: 'up', tenant: 'up', storage: 'down' }, true],
    [{ mgmt: 'up', tenant: 'down', storage: 'up' }, false],
    [{ mgmt: 'down', tenant: 'up', storage: 'up' }, false],
    [{ mgmt: 'down', tenant: 'down', storage: 'down' }, true],
  ];
  for (const [states, fences] of table) {
    const w = new World(CFG3);
    w.round(states); w.round(states); w.round(states);
    t.equal(w.count('evaluateGuards') > 0, fences, JSON.stringify(states));
  }
});

t.test('a fencing row with email: the decision is logged before the notification, once per row', async (t) => {
  const w = new World(CFG3);
  const st = { mgmt: 'up', tenant: 'up', storage: 'down' } as const;
  w.round(st); w.round(st); w.round(st);
  const kinds = w.effects.map((e) => e.type).filter((k) => k === 'logDecision' || k === 'notify' || k === 'evaluateGuards');
  t.same(kinds, ['logDecision', 'notify', 'evaluateGuards']);
  w.feed({ type: 'guards', report: FAIL });
  w.round(st);
  t.equal(w.count('notify'), 1, 'not repeated while the row stays');
});

t.test('fence method event: on a network where the host is still up; none up → BMC', async (t) => {
  const cfg = { ...CFG3, fenceMethod: 'event' as const };
  const w = toFencing(cfg, { mgmt: 'up', tenant: 'up', storage: 'down' });
  t.match(w.of('fence')[0], { method: 'event', network: 'mgmt', event: 'fence', protocol: 'ipmi' });
  const all = toFencing(cfg, { mgmt: 'down', tenant: 'down', storage: 'down' });
  t.match(all.of('fence')[0], { method: 'ipmi' }, 'row 000 says ipmi');
  const redfish = toFencing({ ...CFG2, bmcProtocol: 'redfish', fenceMethod: 'redfish' });
  t.match(redfish.of('fence')[0], { method: 'redfish', protocol: 'redfish' });
});

t.test('maintenance: from KV or config, nothing counted or done; the verb event', async (t) => {
  const w = new World(CFG2);
  w.kv.maintenance = true;
  for (let i = 0; i < 5; i++) w.round(DOWN2);
  t.equal(w.state.phase, 'maintenance');
  t.equal(w.count('writeCounter') + w.count('evaluateGuards'), 0);
  w.kv.maintenance = false;
  w.round(DOWN2);
  t.equal(w.state.phase, 'suspect', 'counting starts again');

  const c = new World({ ...CFG2, maintenance: true });
  c.round(DOWN2); c.round(DOWN2); c.round(DOWN2);
  t.equal(c.count('evaluateGuards'), 0);

  const v = new World(CFG2);
  v.feed({ type: 'maintenance', on: true });
  t.equal(v.state.phase, 'maintenance');
  v.feed({ type: 'maintenance', on: false });
  t.equal(v.state.phase, 'healthy');
  const f = toFencing();
  f.feed({ type: 'maintenance', on: true });
  t.equal(f.state.phase, 'fencing', 'not while a fence is in flight');
});

t.test('latched and observed hosts: nothing done; a dead claimer\'s unfinished incident resumes', async (t) => {
  const l = new World(CFG2);
  l.kv.failed = true;
  l.round(DOWN2); l.round(DOWN2); l.round(DOWN2);
  t.equal(l.state.phase, 'latched');
  t.equal(l.count('evaluateGuards') + l.count('writeCounter'), 0);

  const o = new World(CFG2);
  o.kv.incident = { session: 'sess-other', journal: { step: 'fencing' } };
  o.round(DOWN2); o.round(DOWN2); o.round(DOWN2);
  t.equal(o.state.phase, 'observing');
  t.equal(o.count('claimIncident'), 0);

  const r = new World(CFG2);
  r.kv.failed = true;
  r.kv.incident = { journal: { step: 'fencing', by: 'ctl-2' } };
  r.round(DOWN2); r.round(DOWN2); r.round(DOWN2);
  t.equal(r.state.phase, 'awaiting-guards', 'the released claim is taken up again (N-19)');
});

t.test('operator reset', async (t) => {
  const w = toFencing();
  w.feed({ type: 'operatorReset' });
  t.equal(w.state.phase, 'fencing', 'refused mid-fence');
  w.feed({ type: 'fenceResult', outcome: 'error', detail: 'timeout' });
  w.feed({ type: 'operatorReset' });
  t.equal(w.state.phase, 'healthy');
  t.match(w.of('releaseClaim'), [{ key: 'ha_cluster/compute_nodes/cmp-01/incident', session: 'sess-1' }]);
  t.same(w.state.counts, {});
});

t.test('stray results are ignored', async (t) => {
  const w = new World(CFG2);
  for (const ev of [
    { type: 'guards', report: PASS }, { type: 'claimResult', acquired: true, session: 's' }, { type: 'latchWritten', ok: true },
    { type: 'fenceResult', outcome: 'off', detail: '' }, { type: 'silenceChecked', answered: [], errors: [] }, { type: 'counterWritten', ok: true },
    { type: 'claimLost', reason: 'x' },
  ] as const) {
    w.feed(ev as never);
    t.equal(w.state.phase, 'healthy', ev.type);
  }
  t.equal(w.effects.filter((e) => e.type !== 'log').length, 0);
});
