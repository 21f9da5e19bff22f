// Unit: the pure monitoring policy (migration_threshold within failure_timeout).
import t from 'tap';
import { onMonitorResult, type FailureLog } from '../../../../src/roles/group/monitor';

const P = { migrationThreshold: 2, failureTimeoutMs: 60_000 };

t.test('restarts up to migration_threshold, then deactivates', async (t) => {
  let log: FailureLog = {};
  const step = (state: 'running' | 'stopped' | 'failed', at: number, member = 'b') => {
    const r = onMonitorResult(log, member, state === 'failed' ? { state, reason: 'exit 3' } : { state }, at, P);
    log = r.log;
    return r.effect;
  };
  t.same(step('running', 0), { kind: 'none' }, 'running: nothing');
  t.match(step('stopped', 1000), { kind: 'restart', member: 'b', attempt: 1, reason: 'stopped' });
  t.match(step('failed', 2000), { kind: 'restart', attempt: 2, reason: 'failed: exit 3' });
  t.match(step('stopped', 3000, 'a'), { kind: 'restart', member: 'a', attempt: 1 }, 'counted per member');
  t.match(step('stopped', 4000), { kind: 'deactivate', reason: /b stopped: failure 3 within 60000 ms exceeds migration_threshold 2/ });
});

t.test('failures older than failure_timeout are forgotten', async (t) => {
  let log: FailureLog = {};
  for (const at of [0, 10_000]) log = onMonitorResult(log, 'b', { state: 'stopped' }, at, P).log;
  t.match(onMonitorResult(log, 'b', { state: 'stopped' }, 65_000, P).effect, { kind: 'restart', attempt: 2 }, 'the one at 0 expired');
  t.match(onMonitorResult(log, 'b', { state: 'stopped' }, 59_000, P).effect, { kind: 'deactivate' }, 'none expired yet');
});

t.test('migration_threshold 0: the first failure deactivates', async (t) => {
  t.match(onMonitorResult({}, 'b', { state: 'stopped' }, 0, { ...P, migrationThreshold: 0 }).effect, { kind: 'deactivate' });
});
