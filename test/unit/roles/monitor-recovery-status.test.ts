// The recovery lines of `vigil monitor status` (text): hosts with stage, outcome, servers and failed
// evacuations, spares with their holders; nothing without a recovery section.
import t from 'tap';
import { recoveryLines } from '../../../src/roles/monitor/recovery/status';

t.test('recovery lines', async (t) => {
  t.same(recoveryLines({ hosts: [] }), [], 'no recovery section: no lines');
  const lines = recoveryLines({ recovery: {
    method: 'auto', running: ['cmp-02'],
    hosts: {
      'cmp-01': { stage: 'evacuate', outcome: 'failed', forcedDown: true, servers: { total: 3, done: 2, failed: 1 }, evacuations: { s1: { step: 'done', attempts: 1 }, s2: { step: 'failed', attempts: 3, error: 'ERROR on cmp-03' } }, lastStep: 'failed' },
      'cmp-02': { stage: 'takeover', outcome: 'running', spare: 'ha-1' },
    },
    spares: [{ name: 'ha-1', inUse: true, holderSession: 'abc' }, { name: 'ha-2', inUse: false }],
  } });
  t.same(lines, [
    '',
    'recovery (method auto): running for cmp-02',
    '  cmp-01: failed, stage evacuate, forced down, servers 2/3 done, 1 failed (last step failed)',
    '    s2: failed after 3 attempt(s): ERROR on cmp-03',
    '  cmp-02: running, stage takeover, spare ha-1',
    '  spare ha-1: in use (held by session abc)',
    '  spare ha-2: free',
  ]);
});
