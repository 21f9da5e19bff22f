// Seeded random event sequences through the incident machine; safety invariants checked after every step.
import t from 'tap';
import {
  initialHostState, mayRecover, monitorTransition, type HostMachineConfig, type HostState, type MonitorEvent, type StoredHostView,
} from '../../../../src/roles/monitor/machine';
import { HOSTHA_MATRIX_3 } from '../../../../src/roles/monitor/matrix';
import type { Sample, SampleState } from '../../../../src/roles/monitor/samples';
import { seededRandom as rng } from '../../../../bench/lib/stats'; // mulberry32, seeded so a failure reproduces

const CFG: HostMachineConfig = {
  host: 'cmp-01', self: 'ctl-1', networks: ['mgmt', 'tenant', 'storage'], confirm: 3, matrix: HOSTHA_MATRIX_3, kvPrefix: 'ha_cluster',
  fenceMethod: 'event', bmcProtocol: 'ipmi', fenceEvent: 'fence', powerTimeoutMs: 20_000, powerWaitMs: 2_000, silenceCheck: true,
  lockDelayMs: 15_000, sessionTtlMs: 30_000, maintenance: false,
};


const STATES: SampleState[] = ['up', 'down', 'down', 'down', 'unknown'];

function randomEvent(r: () => number, nowMs: number, stored: StoredHostView, phase: HostState['phase']): MonitorEvent {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  // Half the time, the result the phase waits for (random outcome), so runs get deep; otherwise anything.
  if (r() < 0.5) {
    if (phase === 'awaiting-guards') return { type: 'guards', nowMs, report: { ok: r() < 0.8, results: [] } };
    if (phase === 'claiming') return { type: 'claimResult', nowMs, acquired: true, session: 'sess-1' };
    if (phase === 'latching') return { type: 'latchWritten', nowMs, ok: r() < 0.9 };
    if (phase === 'fencing') return { type: 'fenceResult', nowMs, outcome: pick(['off', 'off', 'not-off', 'error'] as const), detail: '' };
    if (phase === 'checking-silence') return { type: 'silenceChecked', nowMs, answered: r() < 0.3 ? [{ network: 'mgmt', addr: '192.0.2.1' }] : [], errors: [] };
  }
  const k = r();
  if (k < 0.45) {
    const samples: Record<string, Sample> = {};
    for (const n of CFG.networks) samples[n] = { host: 'cmp-01', network: n, node: 'cmp-01', state: pick(STATES), reasons: [] };
    return { type: 'sampled', nowMs, samples, stored };
  }
  return pick<MonitorEvent>([
    { type: 'counterWritten', nowMs, ok: r() < 0.8 },
    { type: 'guards', nowMs, report: { ok: r() < 0.7, results: [] } },
    { type: 'claimResult', nowMs, acquired: true, session: 'sess-1' },
    { type: 'claimResult', nowMs, acquired: false, reason: 'held' },
    { type: 'claimLost', nowMs, reason: 'invalidated' },
    { type: 'latchWritten', nowMs, ok: r() < 0.8 },
    { type: 'fenceResult', nowMs, outcome: pick(['off', 'not-off', 'error'] as const), detail: '' },
    { type: 'silenceChecked', nowMs, answered: r() < 0.3 ? [{ network: 'mgmt', addr: '192.0.2.1' }] : [], errors: r() < 0.1 ? ['EPERM'] : [] },
    { type: 'operatorReset', nowMs },
    { type: 'maintenance', nowMs, on: r() < 0.5 },
  ]);
}

t.test('invariants over 400 seeded runs of 200 events', async (t) => {
  let fences = 0;
  let recoverable = 0;
  for (let seed = 1; seed <= 400; seed++) {
    const r = rng(seed);
    let s: HostState = initialHostState('cmp-01');
    let stored: StoredHostView = { counts: {}, failed: false, maintenance: false };
    let offSinceFence = false;
    let silentSinceOff = false;
    for (let i = 0; i < 200; i++) {
      const ev = randomEvent(r, i * 1000, stored, s.phase);
      const before = s;
      const step = monitorTransition(s, ev, CFG);
      s = step.state;
      const where = `seed ${seed} step ${i} ${ev.type} in ${before.phase}`;
      for (const e of step.effects) {
        if (e.type === 'fence') {
          fences++;
          // A fence only right after our latch was written under a held claim.
          if (!(before.phase === 'latching' && ev.type === 'latchWritten' && ev.ok && before.session !== undefined && !before.claimLost)) t.fail(`fence without claim+latch: ${where}`);
          offSinceFence = false; silentSinceOff = false;
        }
        if (e.type === 'writeLatch' && e.ops[0]!.KV.Verb !== 'check-session') t.fail(`latch without check-session: ${where}`);
        if (e.type === 'claimIncident') {
          const i2 = step.effects.indexOf(e);
          if (!step.effects.slice(0, i2).some((x) => x.type === 'logDecision')) t.fail(`claim before the decision was logged: ${where}`);
        }
        if (e.type === 'writeCounter') stored = { ...stored, counts: { numberFails: { value: e.numberFails, modifyIndex: i + 1 }, failsByNetwork: { value: e.counts, modifyIndex: i + 1 } } };
      }
      if (ev.type === 'fenceResult' && before.phase === 'fencing') offSinceFence = ev.outcome === 'off';
      if (ev.type === 'silenceChecked' && before.phase === 'checking-silence') silentSinceOff = ev.answered.length === 0 && ev.errors.length === 0;
      if (mayRecover(s)) {
        recoverable++;
        if (!offSinceFence || (CFG.silenceCheck && !silentSinceOff)) t.fail(`recovery allowed without a confirmed, silent power-off: ${where}`);
      }
      if (s.phase === 'fence-unconfirmed' || s.phase === 'aborted') {
        if (mayRecover(s)) t.fail(`recovery from ${s.phase}: ${where}`);
      }
    }
  }
  t.ok(fences > 0, `the runs reached fencing (${fences} fences)`);
  t.ok(recoverable > 0, `the runs reached fenced (${recoverable} steps)`);
});
