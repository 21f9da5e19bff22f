// Inventory glue: hosts from config or KV, per-host machine config, the fleet view for the guards.
import t from 'tap';
import { normalizeMonitor } from '../../../../src/roles/monitor/config';
import { decodeInventory, type RawKvEntry } from '../../../../src/roles/monitor/kvschema';
import { guardInputFor, hostMachineConfig, hostsFromConfig, hostsFromKv } from '../../../../src/roles/monitor/inventory';
import { initialHostState, type HostState } from '../../../../src/roles/monitor/machine';
import { evaluateGuards } from '../../../../src/roles/monitor/guards';

const base = {
  networks: { mgmt: { url: 'http://127.0.0.1:8500' }, tenant: { url: 'http://127.0.0.1:8501' } },
  inventory: { hosts: [
    { name: 'cmp-01', nodes: { tenant: 'cmp-01-t' }, bmc: { method: 'event', ip: '192.0.2.101', user: 'admin', password_file: '/etc/vigil/bmc/1' } },
    { name: 'cmp-02', bmc: { method: 'redfish', ip: '192.0.2.102', user: 'admin', password_file: '/etc/vigil/bmc/2' }, maintenance: true },
  ] },
};
const b64 = (s: string) => Buffer.from(s).toString('base64');
const kv = (k: string, v: string): RawKvEntry => ({ Key: `ha_cluster/compute_nodes/${k}`, Value: b64(v), ModifyIndex: 5 });

t.test('hosts from config and their machine config', async (t) => {
  const cfg = normalizeMonitor(base);
  const hosts = hostsFromConfig(cfg);
  t.match(hosts[0], { name: 'cmp-01', nodes: { mgmt: 'cmp-01', tenant: 'cmp-01-t' }, bmc: { method: 'event', protocol: 'ipmi', passwordFrom: 'file' }, maintenance: false, source: 'config' });
  t.match(hosts[1], { maintenance: true, bmc: { method: 'redfish', protocol: 'redfish' } });
  const mc = hostMachineConfig(cfg, hosts[0]!, 'ctl-1');
  t.match(mc, { host: 'cmp-01', self: 'ctl-1', networks: ['mgmt', 'tenant'], confirm: 3, fenceMethod: 'event', bmcProtocol: 'ipmi', lockDelayMs: 15_000, maintenance: false });
  t.equal(mc.matrix, cfg.matrix);
});

t.test('hosts from KV: BMC from config/bmc/*, maintenance from status/maintenance, no BMC → never fenced', async (t) => {
  const cfg = normalizeMonitor({ ...base, inventory: { source: 'kv' }, fence: { method: 'redfish' } });
  const inv = decodeInventory([
    kv('cmp-02/config/bmc/ip', '192.0.2.102'), kv('cmp-02/config/bmc/user', 'admin'), kv('cmp-02/config/bmc/password', 'pw'),
    kv('cmp-02/status/maintenance', 'True'),
    kv('cmp-01/config/bmc/ip', ''), kv('cmp-01/status/failed', 'False'),
  ]);
  const { hosts, problems } = hostsFromKv(cfg, inv);
  t.same(hosts.map((h) => h.name), ['cmp-01', 'cmp-02']);
  t.notOk(hosts[0]!.bmc);
  t.match(problems, [{ host: 'cmp-01', text: /config\/bmc\/ip, config\/bmc\/user, config\/bmc\/password empty or absent/ }]);
  t.match(hosts[1], { nodes: { mgmt: 'cmp-02', tenant: 'cmp-02' }, bmc: { method: 'redfish', protocol: 'redfish', ip: '192.0.2.102', passwordFrom: 'kv' }, maintenance: true, source: 'kv' });
  t.notMatch(JSON.stringify(hosts), /"pw"/);
});

t.test('guardInputFor: fleet states, open incidents from machines and KV, maintenance', async (t) => {
  const st = (host: string, phase: HostState['phase'], confirmed: HostState['confirmed']): HostState => ({ ...initialHostState(host), phase, confirmed });
  const all = [
    st('a', 'awaiting-guards', { mgmt: 'down', tenant: 'down' }),
    st('b', 'fenced', { mgmt: 'down', tenant: 'down' }),
    st('c', 'healthy', { mgmt: 'up', tenant: 'up' }),
    st('d', 'maintenance', {}),
  ];
  const inp = guardInputFor(all[0]!, all, { mgmt: { server: false, knownServers: 1 }, tenant: { server: false, knownServers: 1 } }, new Set(), new Set(['e']));
  t.same([...inp.openIncidents].sort(), ['b', 'e']);
  t.ok(inp.maintenance.has('d'));
  t.same(inp.targetStates, { mgmt: 'down', tenant: 'down' });
  const r = evaluateGuards(inp, { maxDownFraction: 0.9, maxConcurrentRecoveries: 1 });
  t.match(r.results.find((g) => g.guard === 'concurrency'), { ok: false });
  t.match(evaluateGuards(inp, { maxDownFraction: 0.9, maxConcurrentRecoveries: 3 }), { ok: true });
});
