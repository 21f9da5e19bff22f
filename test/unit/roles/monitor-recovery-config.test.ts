// monitor.recovery: defaults, each method's required settings, schema errors naming the key.
import t from 'tap';
import { ConfigError } from '../../../src/errors';
import { normalizeMonitor, type MonitorConfigProblem } from '../../../src/roles/monitor/config';

const base = () => ({
  networks: { mgmt: { url: 'http://127.0.0.1:8500' }, tenant: { url: 'http://127.0.0.1:8501' } },
  inventory: { hosts: [{ name: 'cmp-01', bmc: { ip: '192.0.2.101', user: 'admin', password_file: '/etc/vigil/bmc/cmp-01' } }] },
});
const EVAC = { auth_url: 'http://keystone:5000/v3', user: 'vigil', project: 'admin', password_file: '/etc/vigil/nova.pw' };

function problems(recovery: unknown): MonitorConfigProblem[] {
  try { normalizeMonitor({ ...base(), recovery }); } catch (e) {
    if (e instanceof ConfigError) return e.detail!.problems as MonitorConfigProblem[];
    throw e;
  }
  return [];
}

t.test('absent: no recovery (part 1 behaviour)', async (t) => {
  t.equal(normalizeMonitor(base()).recovery, undefined);
});

t.test('auto with evacuate: defaults filled', async (t) => {
  const c = normalizeMonitor({ ...base(), recovery: { evacuate: EVAC } }).recovery!;
  t.equal(c.method, 'auto');
  t.match(c.evacuate, { authUrl: 'http://keystone:5000/v3', userDomain: 'Default', projectDomain: 'Default', interface: 'public', concurrency: 3, retries: 2, serverTimeoutMs: 300_000, pollMs: 2000, requestTimeoutMs: 10_000, callRetries: 3 });
});

t.test('reserved_then_auto with both; spares kept in order', async (t) => {
  const c = normalizeMonitor({ ...base(), recovery: { method: 'reserved_then_auto', spares: ['ha-2', 'ha-1'], takeover: { command: ['/usr/local/sbin/take-over'], timeout: '2m' }, evacuate: EVAC } }).recovery!;
  t.same(c.spares, ['ha-2', 'ha-1']);
  t.same(c.takeover, { argv: ['/usr/local/sbin/take-over'], timeoutMs: 120_000 });
});

t.test('each method needs its settings', async (t) => {
  t.match(problems({ method: 'auto' }), [{ code: 'ECONFLICT', path: ['recovery', 'evacuate'] }]);
  t.match(problems({ method: 'reserved' }), [{ code: 'ECONFLICT', path: ['recovery', 'takeover', 'command'] }]);
  t.match(problems({ method: 'auto_then_reserved', evacuate: EVAC }), [{ code: 'ECONFLICT', path: ['recovery', 'takeover', 'command'] }]);
  t.match(problems({ method: 'command' }), [{ code: 'ECONFLICT', path: ['recovery', 'command', 'argv'] }]);
  t.same(problems({ method: 'command', command: { argv: ['/bin/true'] } }), []);
});

t.test('schema errors name the key', async (t) => {
  t.match(problems({ method: 'rh_priority' }), [{ code: 'ESCHEMA', path: ['recovery', 'method'] }]);
  t.match(problems({ evacuate: { ...EVAC, password: 'x' } }), [{ code: 'ESCHEMA', path: ['recovery', 'evacuate', 'password'] }], 'no inline password');
  t.match(problems({ evacuate: { ...EVAC, concurrency: 0 } }), [{ code: 'ESCHEMA', path: ['recovery', 'evacuate', 'concurrency'] }]);
  t.match(problems({ evacuate: { ...EVAC, poll: '50s', server_timeout: '30s' } }), [{ code: 'ECONFLICT', path: ['recovery', 'evacuate', 'poll'] }]);
});
