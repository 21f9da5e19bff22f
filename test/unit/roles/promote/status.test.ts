// vigil status lines for the promote role.
import t from 'tap';
import { formatPromoteStatus } from '../../../../src/roles/promote/status';

t.test('promoted with a lease, and stopped for the operator', async (t) => {
  t.same(formatPromoteStatus({
    name: 'mail', site: 'b', mode: 'auto', phase: 'promoted', step: 2, witness: 'ok',
    lease: { session: 's1', lockIndex: 4, remainingMs: 12000 }, lastCheck: { peer: 'down', ready: 'up', at: 'T' },
  }), [
    'promote mail: promoted on site b, mode auto',
    '  witness: ok; lease: held (LockIndex 4, session s1, 12000 ms left)',
    '  last check: peer down, ready up at T',
  ]);
  const stopped = formatPromoteStatus({ name: 'mail', site: 'b', mode: 'manual', phase: 'stopped', step: 1, reason: 'p2 crashed', granted: true });
  t.equal(stopped[1], '  STOPPED, operator needed: p2 crashed');
  t.ok(stopped.includes('  granted by the operator'));
  t.match(formatPromoteStatus({ name: 'mail', site: 'b', mode: 'auto', phase: 'promoting', step: 1 })[0], /promoting \(step 1\)/);
});
