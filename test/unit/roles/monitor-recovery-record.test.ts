// The recovery planner: the next step from the record alone (so a resumed monitor takes up where the
// record says), Masakari's four methods as stage orders, spare choice (free, healthy, priority, N-19
// orphans), evacuation retries and confirmation, and the KV txns all opening with check-session.
import t from 'tap';
import {
  applyResult, decodeRecord, markStarted, newRecord, planNext, serverFinished, serverStarted, serverVerdict, spareFree, stagesOf,
  type RecoveryPlanConfig, type RecoveryRecord, type SpareView,
} from '../../../src/roles/monitor/recovery/record';
import { claimSpareOps, finishOps, recordOps, releaseSpareOps } from '../../../src/roles/monitor/recovery/kv';

const cfg: RecoveryPlanConfig = { self: 'mon-a', sparePriority: ['ha-1', 'ha-2'], evacuateConcurrency: 3, evacuateRetries: 1 };
const spare = (name: string, o: Partial<SpareView> = {}): SpareView => ({ name, inUse: false, healthy: true, modifyIndex: 5, ...o });
const both = [spare('ha-1'), spare('ha-2')];

t.test('Masakari\'s four methods (and command) as stage orders', async (t) => {
  t.same(stagesOf('reserved'), ['takeover']);
  t.same(stagesOf('auto'), ['evacuate']);
  t.same(stagesOf('reserved_then_auto'), ['takeover', 'evacuate']);
  t.same(stagesOf('auto_then_reserved'), ['evacuate', 'takeover']);
  t.same(stagesOf('command'), ['command']);
});

t.test('spare freedom: busy, locked, unhealthy, latched and orphaned claims', async (t) => {
  const rows: [string, SpareView, boolean][] = [
    ['free', spare('x'), true],
    ['unhealthy', spare('x', { healthy: false }), false],
    ['locked by a live session', spare('x', { inUse: true, session: 's1', holder: { step: 'claimed' } }), false],
    ['in use after a finished takeover (latch, N-9)', spare('x', { inUse: true, holder: { step: 'taken-over', incident: 'i0' } }), false],
    ['in use by os_nova (no holder record)', spare('x', { inUse: true }), false],
    ['orphan: claimed, holder died before its takeover (N-19)', spare('x', { inUse: true, holder: { step: 'claimed', incident: 'other' } }), true],
    ['our own incident\'s claim, session gone', spare('x', { inUse: true, holder: { step: 'takeover-started', incident: 'i1' } }), true],
  ];
  for (const [what, v, free] of rows) t.equal(spareFree(v, 'i1'), free, what);
});

t.test('takeover: first free spare by priority, then its takeover, then the end', async (t) => {
  let r = newRecord('i1', 'cmp-01', 'reserved');
  let p = planNext(r, both, cfg);
  t.match(p, { kind: 'claimSpare', spare: 'ha-1', resumed: false });
  p = planNext(r, [spare('ha-1', { session: 'other' }), spare('ha-2')], cfg);
  t.match(p, { kind: 'claimSpare', spare: 'ha-2' }, 'a spare held by another session is skipped');
  p = planNext(r, [spare('ha-1', { healthy: false }), spare('ha-2')], cfg);
  t.match(p, { kind: 'claimSpare', spare: 'ha-2' }, 'an unhealthy spare is skipped');
  r = applyResult(r, { kind: 'claimSpare', spare: 'ha-1', ok: true }, 1, 'mon-a');
  p = planNext(r, [spare('ha-1', { inUse: true, session: 's-me' }), spare('ha-2')], cfg);
  t.match(p, { kind: 'takeover', spare: 'ha-1', resumed: false });
  r = markStarted(r, p, 2, 'mon-a');
  t.equal(r.spares['ha-1'], 'takeover-started', 'the intent is recorded before the command runs');
  r = applyResult(r, { kind: 'takeover', spare: 'ha-1', ok: true, detail: 'exit 0' }, 3, 'mon-a');
  t.match(planNext(r, both, cfg), { kind: 'finish', outcome: 'recovered' });
  r = applyResult(r, { kind: 'finish', outcome: 'recovered' }, 4, 'mon-a');
  t.match(planNext(r, both, cfg), { kind: 'done' }, 'a finished recovery is never run again');
  t.same(r.log.map((l) => l.step), ['spare-claimed', 'takeover-started', 'takeover-done', 'recovered']);
});

t.test('a failed takeover releases the spare and the next spare tries; none left fails the stage', async (t) => {
  let r = newRecord('i1', 'cmp-01', 'reserved');
  r = applyResult(r, { kind: 'claimSpare', spare: 'ha-1', ok: true }, 1, 'a');
  r = applyResult(r, { kind: 'takeover', spare: 'ha-1', ok: false, detail: 'exit 3' }, 2, 'a');
  t.match(planNext(r, both, cfg), { kind: 'releaseSpare', spare: 'ha-1' });
  r = applyResult(r, { kind: 'releaseSpare', spare: 'ha-1' }, 3, 'a');
  t.match(planNext(r, [spare('ha-1'), spare('ha-2')], cfg), { kind: 'claimSpare', spare: 'ha-2' }, 'a spare tried once is not tried again');
  r = applyResult(r, { kind: 'claimSpare', spare: 'ha-2', ok: false, detail: 'index changed' }, 4, 'a');
  t.match(planNext(r, both, cfg), { kind: 'finish', outcome: 'failed' }, 'no spare left: failed');
  const rt = { ...r, stages: stagesOf('reserved_then_auto') };
  t.match(planNext(rt, both, cfg), { kind: 'nextStage' }, 'reserved_then_auto moves to evacuation');
  const moved = applyResult(rt, { kind: 'nextStage', why: 'x' }, 5, 'a');
  t.match(planNext(moved, both, cfg), { kind: 'forceDown' });
});

t.test('resume: a claimed spare whose session is gone is taken again; a started takeover is re-run, told so', async (t) => {
  let r = newRecord('i1', 'cmp-01', 'reserved');
  r = applyResult(r, { kind: 'claimSpare', spare: 'ha-1', ok: true }, 1, 'a');
  r = markStarted(r, { kind: 'takeover', spare: 'ha-1', resumed: false, why: '' }, 2, 'a');
  const stored = decodeRecord(JSON.parse(JSON.stringify(r)), 'i1')!;
  t.ok(stored, 'the record round-trips through JSON');
  t.equal(decodeRecord(JSON.parse(JSON.stringify(r)), 'i2'), undefined, 'another incident\'s record is not resumed');
  const released = [spare('ha-1', { inUse: true, holder: { step: 'claimed', incident: 'i1' } }), spare('ha-2')];
  t.match(planNext(stored, released, cfg), { kind: 'claimSpare', spare: 'ha-1', resumed: true });
  const again = applyResult(stored, { kind: 'claimSpare', spare: 'ha-1', ok: true }, 3, 'b');
  t.equal(again.spares['ha-1'], 'takeover-started', 're-claiming keeps the step');
  t.match(planNext(again, [spare('ha-1', { inUse: true, session: 's-b' })], cfg), { kind: 'takeover', spare: 'ha-1', resumed: true });
});

t.test('evacuation: force-down first, list, evacuate, retries bounded, failure keeps the stage failed', async (t) => {
  let r = newRecord('i1', 'cmp-01', 'auto');
  t.match(planNext(r, [], cfg), { kind: 'forceDown' }, 'nothing is evacuated before the force-down');
  r = applyResult(r, { kind: 'forceDown', ok: true, detail: 'ok' }, 1, 'a');
  t.match(planNext(r, [], cfg), { kind: 'listServers' });
  r = applyResult(r, { kind: 'listServers', ok: true, servers: ['s2', 's1'], detail: '' }, 2, 'a');
  t.match(planNext(r, [], cfg), { kind: 'evacuate', servers: ['s1', 's2'] });
  r = serverStarted(r, 's1', 3, 'a');
  r = serverStarted(r, 's2', 3, 'a');
  r = serverFinished(r, 's1', true, 'ok', 4, 'a', 'cmp-02');
  r = serverFinished(r, 's2', false, 'ERROR', 4, 'a');
  t.match(planNext(r, [], cfg), { kind: 'evacuate', servers: ['s2'] }, 'a failed server is retried');
  r = serverStarted(r, 's2', 5, 'a');
  t.equal(r.nova.servers['s2']!.attempts, 2);
  r = serverFinished(r, 's2', false, 'ERROR', 6, 'a');
  const p = planNext(r, [], cfg);
  t.match(p, { kind: 'finish', outcome: 'failed' }, `retries (${cfg.evacuateRetries}) exhausted: failed, reported`);
  t.match((p as { why: string }).why, /s2.*stays forced down/);
  const none = applyResult(applyResult(newRecord('i', 'h', 'auto'), { kind: 'forceDown', ok: true, detail: '' }, 1, 'a'), { kind: 'listServers', ok: true, servers: [], detail: '' }, 2, 'a');
  t.match(planNext(none, [], cfg), { kind: 'finish', outcome: 'recovered' }, 'no servers: recovered');
  const fd = applyResult(newRecord('i', 'h', 'auto'), { kind: 'forceDown', ok: false, detail: 'HTTP 500' }, 1, 'a');
  t.match(planNext(fd, [], cfg), { kind: 'finish', outcome: 'failed' }, 'force-down failed: no evacuation, failed');
});

t.test('server verdicts (spec §3e)', async (t) => {
  const v = (o: Partial<Parameters<typeof serverVerdict>[0]>) => serverVerdict({ id: 'x', status: 'ACTIVE', host: 'cmp-01', taskState: null, ...o }, 'cmp-01');
  t.equal(v({}), 'idle-on-source');
  t.equal(v({ taskState: 'rebuilding', status: 'REBUILD' }), 'in-progress');
  t.equal(v({ host: 'cmp-02' }), 'done');
  t.equal(v({ host: 'cmp-02', taskState: 'rebuild_spawning' }), 'in-progress', 'host changes before the rebuild ends: not done yet');
  t.equal(v({ status: 'ERROR', host: 'cmp-02' }), 'failed');
  t.equal(v({ migration: 'failed' }), 'failed');
  t.equal(v({ migration: 'done', taskState: 'x' }), 'done');
});

t.test('command method: started is re-run on resume, done finishes', async (t) => {
  let r: RecoveryRecord = newRecord('i1', 'h', 'command');
  t.match(planNext(r, [], cfg), { kind: 'command', resumed: false });
  r = markStarted(r, planNext(r, [], cfg), 1, 'a');
  t.match(planNext(r, [], cfg), { kind: 'command', resumed: true });
  r = applyResult(r, { kind: 'command', ok: true, detail: 'exit 0' }, 2, 'a');
  t.match(planNext(r, [], cfg), { kind: 'finish', outcome: 'recovered' });
});

t.test('every recovery txn opens with check-session on the incident key', async (t) => {
  const r = newRecord('i1', 'cmp-01', 'reserved');
  const all = [
    recordOps('ha_cluster', 'cmp-01', 's1', r),
    claimSpareOps('ha_cluster', 'cmp-01', 's1', spare('ha-1'), r, 'a'),
    releaseSpareOps('ha_cluster', 'cmp-01', 's1', spare('ha-1', { session: 's1' }), r),
    finishOps('ha_cluster', 'cmp-01', 's1', { ...r, outcome: 'recovered' }, { step: 'recovered' }),
  ];
  for (const ops of all) t.same(ops[0], { KV: { Verb: 'check-session', Key: 'ha_cluster/compute_nodes/cmp-01/incident', Session: 's1' } });
  const claim = all[1]!;
  t.same(claim.map((o) => o.KV.Verb), ['check-session', 'check-index', 'lock', 'set', 'set'], 'claim: unchanged since read, locked by the incident session');
  t.equal(claim[1]!.KV.Index, 5);
  t.equal(claimSpareOps('p', 'h', 's', spare('ha-1', { modifyIndex: 0 }), r, 'a')[1]!.KV.Verb, 'check-not-exists');
  const fin = all[3]!;
  t.ok(fin.some((o) => o.KV.Key.endsWith('status/recovered')), 'recovered latch written with the end');
  t.notOk(finishOps('p', 'h', 's', { ...r, outcome: 'failed' }, {}).some((o) => o.KV.Key.endsWith('status/recovered')), 'no recovered latch on failure');
  t.equal(fin[fin.length - 1]!.KV.Verb, 'unlock', 'the journal\'s end (incident unlocked) is in the same txn');
});
