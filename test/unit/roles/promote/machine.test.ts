// The promote machine, table-driven with a fake clock: who may attempt, the lease deadline, steps, fence, failback.
import t from 'tap';
import { giveUpAtMs, initialState } from '../../../../src/roles/promote/machine';
import { cfgOf, Drive } from './fixtures';

const HOLD = { session: 's1', lockIndex: 7 };

function promoted(d: Drive, at = 1000): void {
  d.check(at);
  d.on({ type: 'acquired', nowMs: at, sentMs: at, hold: HOLD });
  d.on({ type: 'stepDone', nowMs: at, list: 'promote', index: 0 });
  d.on({ type: 'stepDone', nowMs: at, list: 'promote', index: 1 });
}

t.test('who may attempt: a table of check inputs', async (t) => {
  const rows: [string, Parameters<Drive['check']>[1], Partial<ReturnType<typeof cfgOf>>, boolean][] = [
    ['all clear', {}, {}, true],
    ['witness unreachable', { witness: 'unreachable' }, {}, false],
    ['peer up', { peer: 'up' }, {}, false],
    ['peer unknown holds', { peer: 'unknown' }, {}, false],
    ['ready down', { ready: 'down' }, {}, false],
    ['ready unknown', { ready: 'unknown' }, {}, false],
    ['prereq not met', { prereq: false }, {}, false],
    ['prereq met', { prereq: true }, {}, true],
    ['the peer holds the lease', { leaseHeldByOther: true }, {}, false],
    ['auto_promote false', {}, { autoPromote: false }, false],
    ['manual without grant', {}, { mode: 'manual' }, false],
  ];
  for (const [name, inputs, over, attempts] of rows) {
    const d = new Drive(cfgOf(over));
    const fx = d.check(1000, inputs);
    t.equal(Drive.acts(fx).includes('acquire'), attempts, name);
    t.equal(d.s.phase, attempts ? 'candidate' : 'standby', `${name}: phase`);
  }
});

t.test('no decision before the first successful witness contact; witness-unknown is logged', async (t) => {
  const d = new Drive(cfgOf());
  t.same(Drive.logs(d.check(0, { witness: 'unreachable' })), ['witness-unknown']);
  t.equal(d.s.witnessSeen, false);
  d.check(5000);
  t.equal(d.s.witnessSeen, true);
});

t.test('manual mode: grant lets this site attempt, revoke demotes', async (t) => {
  const d = new Drive(cfgOf({ mode: 'manual' }));
  t.same(Drive.acts(d.check(0)), []);
  d.on({ type: 'grant', nowMs: 0 });
  promoted(d, 1000);
  t.equal(d.s.phase, 'promoted');
  t.same(Drive.acts(d.on({ type: 'revoke', nowMs: 2000 })), ['demote:0']);
  t.equal(d.s.phase, 'demoting');
});

t.test('promotion runs each step once, in order, then promoted', async (t) => {
  const d = new Drive(cfgOf());
  d.check(1000);
  t.same(Drive.acts(d.on({ type: 'acquired', nowMs: 1000, sentMs: 990, hold: HOLD })), ['promote:0']);
  t.same(Drive.acts(d.on({ type: 'stepDone', nowMs: 1100, list: 'promote', index: 0 })), ['promote:1']);
  t.same(Drive.acts(d.on({ type: 'stepDone', nowMs: 1100, list: 'promote', index: 0 })), [], 'a repeated done does not rerun');
  d.on({ type: 'stepDone', nowMs: 1200, list: 'promote', index: 1 });
  t.equal(d.s.phase, 'promoted');
  t.same(Drive.acts(d.fx).filter((a) => a.startsWith('promote:')), ['promote:0', 'promote:1']);
});

t.test('lease deadline: give up at last renewal send + renew_interval × (retries + 1)', async (t) => {
  const cfg = cfgOf();
  const d = new Drive(cfg);
  promoted(d, 1000);
  d.on({ type: 'renewed', nowMs: 4100, sentMs: 4000 });
  t.equal(giveUpAtMs(d.s, cfg), 4000 + 9000);
  t.same(Drive.acts(d.check(12_999)), [], 'just before: still promoted');
  t.equal(d.s.phase, 'promoted');
  t.same(Drive.acts(d.check(13_000)), ['demote:0'], 'at the give-up point: demote');
  // demote steps then release, all before the lease deadline (4000 + 15000): the config rule guarantees the time.
  t.same(Drive.acts(d.on({ type: 'stepDone', nowMs: 14_000, list: 'demote', index: 0 })), ['release']);
  d.on({ type: 'released', nowMs: 14_100 });
  t.equal(d.s.phase, 'standby');
  t.equal(d.s.hold, undefined);
});

t.test('a renewal cannot move the deadline back, nor count when sent after it', async (t) => {
  const cfg = cfgOf();
  const d = new Drive(cfg);
  promoted(d, 1000);
  d.on({ type: 'renewed', nowMs: 5000, sentMs: 4000 });
  d.on({ type: 'renewed', nowMs: 5000, sentMs: 3000 });
  t.equal(d.s.lastRenewSentMs, 4000);
  d.on({ type: 'renewed', nowMs: 30_000, sentMs: 19_000 });
  t.equal(d.s.lastRenewSentMs, 4000, 'sent at or after send + ttl: the lease had ended');
});

t.test('witness unreachable while holding: no renewal, demote at the give-up point even though nobody can be told', async (t) => {
  const d = new Drive(cfgOf());
  promoted(d, 1000);
  t.same(Drive.acts(d.check(5000, { witness: 'unreachable' })), []);
  t.same(Drive.acts(d.check(10_000, { witness: 'unreachable' })), ['demote:0']);
});

t.test('ready failing while holding: release and demote at that check', async (t) => {
  const d = new Drive(cfgOf());
  promoted(d, 1000);
  t.same(Drive.acts(d.check(2000, { ready: 'down' })), ['demote:0']);
  t.match(d.s.reason, /ready/);
});

t.test('lease lost mid-promotion: demote, and a late stepDone does not continue the promotion', async (t) => {
  const d = new Drive(cfgOf());
  d.check(1000);
  d.on({ type: 'acquired', nowMs: 1000, sentMs: 1000, hold: HOLD });
  t.same(Drive.acts(d.on({ type: 'leaseLost', nowMs: 1500, why: 'session-invalidated' })), ['demote:0']);
  t.same(Drive.acts(d.on({ type: 'stepDone', nowMs: 1600, list: 'promote', index: 0 })), []);
  t.equal(d.s.phase, 'demoting');
});

t.test('a failed promote step demotes and stops for the operator', async (t) => {
  const d = new Drive(cfgOf());
  d.check(1000);
  d.on({ type: 'acquired', nowMs: 1000, sentMs: 1000, hold: HOLD });
  t.same(Drive.acts(d.on({ type: 'stepFailed', nowMs: 1100, list: 'promote', index: 0, error: 'exit 1' })), ['demote:0']);
  d.on({ type: 'stepFailed', nowMs: 1200, list: 'demote', index: 0, error: 'exit 1' });
  t.same(Drive.acts(d.fx).at(-1), 'release', 'a failed demote step still releases');
  d.on({ type: 'released', nowMs: 1300 });
  t.equal(d.s.phase, 'stopped');
  t.same(Drive.acts(d.check(9000)), [], 'stopped: no attempt until the operator acts');
});

t.test('acquire_after: the first step waits while holding', async (t) => {
  const d = new Drive(cfgOf({ acquireAfterMs: 2000 }));
  d.check(1000);
  t.same(Drive.acts(d.on({ type: 'acquired', nowMs: 1000, sentMs: 1000, hold: HOLD })), []);
  t.same(Drive.acts(d.check(2999)), []);
  t.same(Drive.acts(d.check(3000)), ['promote:0']);
});

t.test('fence before the first step: unconfirmed → no promotion', async (t) => {
  const d = new Drive(cfgOf({ fence: { kind: 'wait', waitMs: 100 } }));
  d.check(1000);
  t.same(Drive.acts(d.on({ type: 'acquired', nowMs: 1000, sentMs: 1000, hold: HOLD })), ['fence']);
  t.same(Drive.acts(d.on({ type: 'fenced', nowMs: 1200, confirmed: false, evidence: 'bmc silent' })), ['demote:0']);
  t.notOk(Drive.acts(d.fx).includes('promote:0'));
  const e = new Drive(cfgOf({ fence: { kind: 'wait', waitMs: 100 } }));
  e.check(1000);
  e.on({ type: 'acquired', nowMs: 1000, sentMs: 1000, hold: HOLD });
  t.same(Drive.acts(e.on({ type: 'fenced', nowMs: 1200, confirmed: true, evidence: 'waited' })), ['promote:0']);
  t.equal(e.s.fenced, true);
});

t.test('failback auto: N consecutive healthy checks over at least T; a flapping peer never fails back', async (t) => {
  const cfg = cfgOf({ failback: { mode: 'auto', healthyChecks: 3, healthyForMs: 10_000 } });
  const flap = new Drive(cfg);
  promoted(flap, 0);
  for (let i = 1; i <= 30; i++) {
    flap.on({ type: 'renewed', nowMs: i * 5000, sentMs: i * 5000 - 10 });
    flap.check(i * 5000, { peer: i % 3 === 0 ? 'up' : 'down' }); // up 1 check in 3
  }
  t.equal(flap.s.phase, 'promoted', 'flapping: still promoted');
  t.notOk(Drive.logs(flap.fx).includes('failback'));

  const steady = new Drive(cfg);
  promoted(steady, 0);
  const phases: string[] = [];
  for (let i = 1; i <= 4; i++) {
    steady.on({ type: 'renewed', nowMs: i * 5000, sentMs: i * 5000 - 10 });
    steady.check(i * 5000, { peer: 'up' });
    phases.push(steady.s.phase);
  }
  // checks at 5s, 10s, 15s: 3 checks but only 10s since the first → failback at the third (15s - 5s = 10s)
  t.same(phases, ['promoted', 'promoted', 'demoting', 'demoting']);
  t.equal(steady.s.yielded, true, 'yields: no new attempt until the peer holds the lease');
  steady.on({ type: 'stepDone', nowMs: 21_000, list: 'demote', index: 0 });
  steady.on({ type: 'released', nowMs: 21_000 });
  t.same(Drive.acts(steady.check(25_000, { peer: 'down' })), [], 'yielded: no attempt');
  steady.check(30_000, { leaseHeldByOther: true });
  t.equal(steady.s.yielded, false);
});

t.test('failback: never after a fence, and not in none or manual mode', async (t) => {
  for (const [name, over, fence] of [['after a fence', { failback: { mode: 'auto', healthyChecks: 1, healthyForMs: 0 }, fence: { kind: 'wait', waitMs: 1 } }, true],
    ['mode none', {}, false], ['mode manual', { failback: { mode: 'manual', healthyChecks: 1, healthyForMs: 0 } }, false]] as const) {
    const d = new Drive(cfgOf(over as any));
    d.check(0);
    d.on({ type: 'acquired', nowMs: 0, sentMs: 0, hold: HOLD });
    if (fence) d.on({ type: 'fenced', nowMs: 0, confirmed: true, evidence: 'w' });
    d.on({ type: 'stepDone', nowMs: 0, list: 'promote', index: 0 });
    d.on({ type: 'stepDone', nowMs: 0, list: 'promote', index: 1 });
    for (let i = 1; i < 5; i++) { d.on({ type: 'renewed', nowMs: i * 1000, sentMs: i * 1000 }); d.check(i * 1000, { peer: 'up' }); }
    t.equal(d.s.phase, 'promoted', name);
  }
});

t.test('an acquire answered after giving up is released at once', async (t) => {
  const d = new Drive(cfgOf(), initialState());
  t.same(Drive.acts(d.on({ type: 'acquired', nowMs: 0, sentMs: 0, hold: HOLD })), ['release']);
});
