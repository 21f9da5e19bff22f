// The incident machine's part-2 transitions: a fenced incident with an open recovery is resumed by a new
// claimer without re-fencing (its claim and latch keep the journal at `fenced`), the recovery's end moves to
// recovered / recovery-failed and releases the claim, a latched end is never acted on again, and without
// recovery configured a fenced journal stays latched as in part 1.
import t from 'tap';
import { initialHostState, mayRecover, monitorTransition, type HostMachineConfig, type HostState, type MonitorEffect, type MonitorEvent, type StoredHostView } from '../../../src/roles/monitor/machine';
import { HOSTHA_MATRIX_2 } from '../../../src/roles/monitor/matrix';
import type { GuardReport } from '../../../src/roles/monitor/guards';
import type { Sample, SampleState } from '../../../src/roles/monitor/samples';

const CFG: HostMachineConfig = {
  host: 'cmp-01', self: 'ctl-2', networks: ['mgmt', 'tenant'], confirm: 2, matrix: HOSTHA_MATRIX_2, kvPrefix: 'ha_cluster',
  fenceMethod: 'ipmi', bmcProtocol: 'ipmi', fenceEvent: 'fence', powerTimeoutMs: 20_000, powerWaitMs: 2_000, silenceCheck: false,
  lockDelayMs: 15_000, sessionTtlMs: 30_000, maintenance: false, recovery: true,
};
const PASS: GuardReport = { ok: true, results: [] };
const DOWN = { mgmt: 'down', tenant: 'down' } as const;
const unb64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString();
const samples = (st: Record<string, SampleState>): Record<string, Sample> => Object.fromEntries(Object.entries(st).map(([n, x]) => [n, { host: 'cmp-01', network: n, node: 'cmp-01', state: x, reasons: [] }]));

/** What an earlier claimer left: failed latched, journal at `fenced`, its session gone. */
const fencedJournal = { id: 'cmp-01-1000', step: 'fenced', by: 'ctl-1', atMs: 1000, row: '00', actions: ['ipmi', 'evacuate'], fence: { method: 'ipmi', outcome: 'off' } };

function drive(cfg: HostMachineConfig, stored: StoredHostView): { s: HostState; effects: MonitorEffect[] } {
  let s = initialHostState('cmp-01');
  const effects: MonitorEffect[] = [];
  let now = 10_000;
  const feed = (ev: Omit<MonitorEvent, 'nowMs'>) => { const r = monitorTransition(s, { ...ev, nowMs: (now += 1000) } as MonitorEvent, cfg); s = r.state; effects.push(...r.effects); return r.effects; };
  for (let i = 0; i < 3 && s.phase !== 'awaiting-guards' && s.phase !== 'latched'; i++) {
    const out = feed({ type: 'sampled', samples: samples(DOWN), stored: { ...stored, counts: { failsByNetwork: { value: { mgmt: i, tenant: i }, modifyIndex: 5 + i } } } });
    if (out.some((e) => e.type === 'writeCounter')) feed({ type: 'counterWritten', ok: true });
  }
  if (s.phase === 'awaiting-guards') {
    feed({ type: 'guards', report: PASS });
    feed({ type: 'claimResult', acquired: true, session: 's-new' });
    feed({ type: 'latchWritten', ok: true });
  }
  return { s, effects };
}

t.test('resume after a dead claimer: claimed again, latch keeps `fenced`, no fence effect, recovery may run', async (t) => {
  const { s, effects } = drive(CFG, { counts: {}, failed: true, maintenance: false, incident: { journal: fencedJournal } });
  t.equal(s.phase, 'fenced');
  t.ok(mayRecover(s), 'recovery may act under the new claim');
  t.equal(s.incidentId, 'cmp-01-1000', 'the same incident (so its recovery record is resumed)');
  t.equal(effects.filter((e) => e.type === 'fence').length, 0, 'the fence is not repeated');
  const claim = effects.find((e) => e.type === 'claimIncident') as Extract<MonitorEffect, { type: 'claimIncident' }>;
  t.match(JSON.parse(claim.value), { step: 'fenced', id: 'cmp-01-1000' }, 'the lock\'s value keeps the step at fenced');
  const latch = effects.find((e) => e.type === 'writeLatch') as Extract<MonitorEffect, { type: 'writeLatch' }>;
  t.equal(latch.step, 'fenced');
  t.match(JSON.parse(unb64(latch.ops[2]!.KV.Value)), { step: 'fenced', fence: { outcome: 'off' } }, 'the fence evidence is carried');
  t.ok(effects.some((e) => e.type === 'log' && /fence is not repeated/.test(e.msg)), 'logged why');
});

t.test('without recovery configured a fenced journal stays latched (part 1)', async (t) => {
  const { s, effects } = drive({ ...CFG, recovery: false }, { counts: {}, failed: true, maintenance: false, incident: { journal: fencedJournal } });
  t.equal(s.phase, 'latched');
  t.notOk(effects.some((e) => e.type === 'claimIncident'));
});

t.test('a row that does not recover (no evacuate) is not resumed', async (t) => {
  const { s } = drive(CFG, { counts: {}, failed: true, maintenance: false, incident: { journal: { ...fencedJournal, actions: ['ipmi'] } } });
  t.equal(s.phase, 'latched');
});

t.test('recovered / recovery-failed journals stay latched: never acted on again (N-9)', async (t) => {
  for (const step of ['recovered', 'recovery-failed']) {
    const { s, effects } = drive(CFG, { counts: {}, failed: true, maintenance: false, incident: { journal: { ...fencedJournal, step } } });
    t.equal(s.phase, 'latched', step);
    t.ok(effects.some((e) => e.type === 'log' && /latched/.test(e.msg)), `${step}: reason logged`);
    t.notOk(effects.some((e) => e.type === 'claimIncident'), `${step}: no claim`);
  }
});

t.test('the recovery\'s end: recovered or failed, the claim released; ignored without the claim', async (t) => {
  const { s } = drive(CFG, { counts: {}, failed: true, maintenance: false, incident: { journal: fencedJournal } });
  const ok = monitorTransition(s, { type: 'recoveryEnded', nowMs: 99_000, outcome: 'recovered', detail: 'evacuate: 3 servers' }, CFG);
  t.equal(ok.state.phase, 'recovered');
  t.equal(ok.state.session, undefined);
  t.match(ok.effects.find((e) => e.type === 'releaseClaim'), { key: 'ha_cluster/compute_nodes/cmp-01/incident', session: 's-new' });
  const bad = monitorTransition(s, { type: 'recoveryEnded', nowMs: 99_000, outcome: 'failed', detail: 's2 failed' }, CFG);
  t.equal(bad.state.phase, 'recovery-failed');
  t.match(bad.effects.find((e) => e.type === 'alarm'), { reason: 'recovery-failed', detail: /s2 failed.*stays fenced/ });
  const again = monitorTransition(ok.state, { type: 'recoveryEnded', nowMs: 99_500, outcome: 'recovered', detail: '' }, CFG);
  t.equal(again.state.phase, 'recovered');
  t.notOk(again.effects.some((e) => e.type === 'releaseClaim'), 'no claim, nothing released');
  const sampled = monitorTransition(ok.state, { type: 'sampled', nowMs: 100_000, samples: samples(DOWN), stored: { counts: {}, failed: true, maintenance: false } }, CFG);
  t.equal(sampled.state.phase, 'recovered', 'samples do not re-decide a recovered host');
  t.same(sampled.effects, []);
});

t.test('fence-unconfirmed never leads to recovery', async (t) => {
  let s = initialHostState('cmp-01');
  let now = 0;
  const feed = (ev: Omit<MonitorEvent, 'nowMs'>) => { const r = monitorTransition(s, { ...ev, nowMs: (now += 1000) } as MonitorEvent, CFG); s = r.state; return r.effects; };
  for (let i = 0; i < 3 && s.phase !== 'awaiting-guards'; i++) {
    if (feed({ type: 'sampled', samples: samples(DOWN), stored: { counts: { failsByNetwork: { value: { mgmt: i, tenant: i }, modifyIndex: 5 + i } }, failed: false, maintenance: false } }).some((e) => e.type === 'writeCounter')) feed({ type: 'counterWritten', ok: true });
  }
  feed({ type: 'guards', report: PASS });
  feed({ type: 'claimResult', acquired: true, session: 's1' });
  feed({ type: 'latchWritten', ok: true });
  t.equal(s.phase, 'fencing');
  feed({ type: 'fenceResult', outcome: 'error', detail: 'BMC unreachable' });
  t.equal(s.phase, 'fence-unconfirmed');
  t.notOk(mayRecover(s));
  t.equal(monitorTransition(s, { type: 'recoveryEnded', nowMs: now + 1, outcome: 'recovered', detail: '' }, CFG).state.phase, 'fence-unconfirmed', 'no recovery end accepted either');
});
