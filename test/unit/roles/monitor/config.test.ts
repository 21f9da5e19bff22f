// The monitor: section: defaults, normalization, and every cross-key error naming its key, value and expectation.
import t from 'tap';
import { ConfigError } from '../../../../src/errors';
import { checkPasswordText, monitorSection, normalizeMonitor, parseFraction, type MonitorConfigProblem } from '../../../../src/roles/monitor/config';
import { HOSTHA_MATRIX_2, HOSTHA_MATRIX_3 } from '../../../../src/roles/monitor/matrix';

type Obj = Record<string, any>;

function minimal(): Obj {
  return {
    networks: { mgmt: { url: 'http://127.0.0.1:8500' }, tenant: { url: 'http://127.0.0.1:8501/' } },
    inventory: { hosts: [{ name: 'cmp-01', bmc: { ip: '192.0.2.101', user: 'admin', password_file: '/etc/vigil/bmc/cmp-01' } }] },
  };
}

function problemsOf(raw: unknown): MonitorConfigProblem[] {
  try { normalizeMonitor(raw); } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.detail!.problems as MonitorConfigProblem[];
  }
  return [];
}
function linesOf(raw: unknown): string[] {
  try { normalizeMonitor(raw); } catch (e) { return (e as ConfigError).detail!.errors as string[]; }
  return [];
}

t.test('every default', async (t) => {
  const c = normalizeMonitor(minimal());
  t.same(c, {
    networks: [{ name: 'mgmt', url: 'http://127.0.0.1:8500', checks: [] }, { name: 'tenant', url: 'http://127.0.0.1:8501', checks: [] }],
    inventory: { source: 'config', hosts: [{ name: 'cmp-01', nodes: { mgmt: 'cmp-01', tenant: 'cmp-01' }, bmc: { method: 'ipmi', protocol: 'ipmi', ip: '192.0.2.101', user: 'admin', passwordFile: '/etc/vigil/bmc/cmp-01' }, maintenance: false }] },
    kvNetwork: 'mgmt',
    kvPrefix: 'ha_cluster',
    intervalMs: 10_000,
    confirm: 3,
    matrix: HOSTHA_MATRIX_2,
    guards: { maxDownFraction: 1 / 3, maxConcurrentRecoveries: 1 },
    fence: { method: 'ipmi', powerTimeoutMs: 20_000, powerWaitMs: 2_000, silenceCheck: false, event: 'fence', ipmitool: '/usr/bin/ipmitool' },
    lockDelayMs: 15_000,
    sessionTtlMs: 30_000,
  });
  t.equal(monitorSection.key, 'monitor');
  t.equal(monitorSection.normalize, normalizeMonitor);
});

t.test('three hostha networks get K-19; per-network node names; explicit values', async (t) => {
  const raw = minimal();
  raw.networks.storage = { url: 'https://10.0.0.1:8500', token_file: '/etc/vigil/st.token', ca_file: '/etc/vigil/ca.pem', checks: ['storage-ping'] };
  raw.inventory.hosts[0].nodes = { storage: 'cmp-01-st' };
  raw.inventory.hosts[0].bmc.method = 'event';
  Object.assign(raw, { kv_network: 'storage', interval: '5s', confirm: 2, guards: { max_down_fraction: 0.25, max_down: 3, max_concurrent_recoveries: 2 }, lock_delay: '30s', session_ttl: '20s' });
  const c = normalizeMonitor(raw);
  t.equal(c.matrix, HOSTHA_MATRIX_3);
  t.same(c.inventory.hosts[0]!.nodes, { mgmt: 'cmp-01', tenant: 'cmp-01', storage: 'cmp-01-st' });
  t.match(c.inventory.hosts[0]!.bmc, { method: 'event', protocol: 'ipmi' });
  t.match(c.networks[2], { name: 'storage', tokenFile: '/etc/vigil/st.token', caFile: '/etc/vigil/ca.pem', checks: ['storage-ping'] });
  t.same(c.guards, { maxDownFraction: 0.25, maxDown: 3, maxConcurrentRecoveries: 2 });
  t.equal(c.lockDelayMs, 30_000);
  t.equal(c.kvNetwork, 'storage');
});

t.test('kv inventory needs no hosts', async (t) => {
  const raw = minimal();
  raw.inventory = { source: 'kv' };
  t.same(normalizeMonitor(raw).inventory, { source: 'kv', hosts: [] });
});

t.test('a custom matrix', async (t) => {
  const raw = minimal();
  raw.networks = { a: { url: 'http://127.0.0.1:8500' } };
  raw.matrix = [{ when: { a: 'up' }, actions: [] }, { when: { a: 'down' }, actions: ['email', 'ipmi', 'evacuate'] }];
  t.same(normalizeMonitor(raw).matrix.rows, { 1: [], 0: ['email', 'ipmi', 'evacuate'] });
});

t.test('errors: code, key, value and expectation', async (t) => {
  const table: [string, (r: Obj) => void, string, RegExp][] = [
    ['inline password', (r) => { r.inventory.hosts[0].bmc.password = 'x'; }, 'EINLINEPASSWORD', /^monitor\.inventory\.hosts\[0\]\.bmc\.password: a password is never written in the config \(expected password_file/],
    ['default BMC user', (r) => { r.inventory.hosts[0].bmc.user = 'test'; }, 'EDEFAULTCRED', /bmc\.user: 'test' is os_nova's default BMC user/],
    ['no password file', (r) => { delete r.inventory.hosts[0].bmc.password_file; }, 'ESCHEMA', /bmc\.password_file: is required but missing \(expected an absolute path/],
    ['relative password file', (r) => { r.inventory.hosts[0].bmc.password_file = 'pw'; }, 'ESCHEMA', /password_file: 'pw' is not an absolute file path/],
    ['no bmc', (r) => { delete r.inventory.hosts[0].bmc; }, 'ENOBMC', /hosts\[0\]\.bmc: is required but missing/],
    ['lock_delay too short', (r) => { r.lock_delay = '5s'; }, 'ELOCKDELAY', /^monitor\.lock_delay: '5s' is out of range \(expected from 15s to 60s/],
    ['lock_delay too long', (r) => { r.lock_delay = '2m'; }, 'ELOCKDELAY', /lock_delay: '2m' is out of range/],
    ['unknown kv_network', (r) => { r.kv_network = 'storage'; }, 'EUNKNOWNNETWORK', /^monitor\.kv_network: 'storage' is not a configured network \(expected one of mgmt, tenant\)/],
    ['unknown network in nodes', (r) => { r.inventory.hosts[0].nodes = { storage: 'x' }; }, 'EUNKNOWNNETWORK', /nodes\.storage: 'storage' is not a configured network \(expected one of mgmt, tenant\)/],
    ['matrix row missing', (r) => { r.matrix = [{ when: { mgmt: 'up', tenant: 'up' }, actions: [] }]; }, 'EMATRIX', /^monitor\.matrix: row 10 .* is not covered/],
    ['matrix unknown action', (r) => { r.matrix = [{ when: { mgmt: 'up', tenant: 'up' }, actions: ['reboot'] }]; }, 'ESCHEMA', /matrix\[0\]\.actions\[0\]: 'reboot' is not a valid choice \(expected one of email, fence/],
    ['matrix unknown network', (r) => { r.matrix = [{ when: { mgmt: 'up', public: 'up' }, actions: [] }]; }, 'EMATRIX', /matrix\[0\]\.when\.public: 'public' is not a configured network/],
    ['no default matrix for other names', (r) => { r.networks = { a: { url: 'http://127.0.0.1:8500' } }; }, 'ENOMATRIX', /^monitor\.matrix: is required for the networks a/],
    ['duplicate host', (r) => { r.inventory.hosts.push({ ...r.inventory.hosts[0] }); }, 'EDUPLICATE', /hosts\[1\]\.name: 'cmp-01' is listed twice/],
    ['hosts with kv source', (r) => { r.inventory.source = 'kv'; }, 'ECONFLICT', /inventory\.hosts: is given but inventory\.source is kv/],
    ['no hosts with config source', (r) => { r.inventory = {}; }, 'ENOHOSTS', /inventory\.hosts: is required/],
    ['bad fraction', (r) => { r.guards = { max_down_fraction: 1.5 }; }, 'ERANGE', /guards\.max_down_fraction: 1\.5 is not a fraction/],
    ['bad fraction text', (r) => { r.guards = { max_down_fraction: 'half' }; }, 'ERANGE', /'half' is not a fraction/],
    ['power_wait ≥ power_timeout', (r) => { r.fence = { power_wait: '20s' }; }, 'ECONFLICT', /fence\.power_wait: '20s' is not shorter than fence\.power_timeout \(20s\)/],
    ['command method without command', (r) => { r.fence = { method: 'command' }; }, 'ECONFLICT', /fence\.command: is required but missing with method command/],
    ['protocol disagrees', (r) => { r.inventory.hosts[0].bmc.method = 'redfish'; r.inventory.hosts[0].bmc.protocol = 'ipmi'; }, 'ECONFLICT', /bmc\.protocol: 'ipmi' disagrees with method redfish/],
    ['session_ttl below 2 intervals', (r) => { r.session_ttl = '15s'; }, 'ECONFLICT', /session_ttl: '15s' is shorter than twice interval \(10s\)/],
    ['bad url', (r) => { r.networks.mgmt.url = 'http://u:p@h:1'; }, 'ESCHEMA', /networks\.mgmt\.url: 'http:\/\/u:p@h:1' is not an agent URL/],
    ['unknown key', (r) => { r.intervall = '5s'; }, 'ESCHEMA', /^monitor\.intervall: unknown key/],
    ['too many networks', (r) => { Object.assign(r.networks, { a: { url: 'http://h:1' }, b: { url: 'http://h:2' } }); }, 'ERANGE', /has 4 networks/],
    ['bad network name', (r) => { r.networks['bad name'] = { url: 'http://h:1' }; }, 'ESCHEMA', /is not a network name/],
    ['confirm 0', (r) => { r.confirm = 0; }, 'ESCHEMA', /^monitor\.confirm: 0 is out of range \(expected an integer from 1 to 100\)/],
  ];
  for (const [name, mutate, code, re] of table) {
    const raw = minimal();
    mutate(raw);
    const problems = problemsOf(raw);
    const lines = linesOf(raw);
    t.ok(problems.some((p) => p.code === code), `${name}: code ${code} in ${problems.map((p) => p.code).join(',')}`);
    t.ok(lines.some((l) => re.test(l)), `${name}: ${lines.join(' | ')}`);
  }
});

t.test('all problems are reported at once; the message counts them', async (t) => {
  const raw = minimal();
  raw.lock_delay = '1s';
  raw.inventory.hosts[0].bmc.user = 'test';
  try { normalizeMonitor(raw); t.fail('should throw'); } catch (e) {
    t.ok(e instanceof ConfigError);
    t.match((e as ConfigError).message, /\(and 1 more error\)$/);
    t.equal(((e as ConfigError).detail!.errors as string[]).length, 2);
  }
});

t.test('the config is not mutated', async (t) => {
  const raw = minimal();
  const before = JSON.stringify(raw);
  normalizeMonitor(raw);
  t.equal(JSON.stringify(raw), before);
});

t.test('parseFraction', async (t) => {
  t.equal(parseFraction('1/3'), 1 / 3);
  t.equal(parseFraction(' 1 / 4 '), 0.25);
  t.equal(parseFraction(0.5), 0.5);
  t.equal(parseFraction('0.2'), 0.2);
  for (const v of [0, 1, '3/2', '1/0', 'x', -0.1, null]) t.equal(parseFraction(v), undefined, String(v));
});

t.test('checkPasswordText: default and empty refused, content never quoted', async (t) => {
  t.match(checkPasswordText('Test123.\n', '/etc/vigil/bmc/a'), /os_nova's default password/);
  t.match(checkPasswordText('\n', '/f'), /is empty/);
  t.equal(checkPasswordText('good-secret\n', '/f'), undefined);
  t.notMatch(checkPasswordText('Test123.', '/f') ?? '', /Test123/);
});
