// The neighbour gate's resolution (vip.neighbours): configured list, the
// default gateway when on the HA interface's subnet, else none with a reason.
import t from 'tap';
import { defaultGateways, inSubnet, resolveNeighbours } from '../../src/roles/vip/neighbours';
import { ConfigError } from '../../src/errors';
import { parseConfigText } from '../../src/config/load';

const ROUTE = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
`;

t.test('default gateways are read from /proc/net/route', async (t) => {
  t.same(defaultGateways(ROUTE), [{ iface: 'eth0', gateway: '10.0.0.1' }]);
  t.same(defaultGateways(ROUTE.replace('0003', '0001')), [], 'a default route without RTF_GATEWAY is no gateway');
  t.same(defaultGateways('Iface\tDestination\n'), []);
});

t.test('subnet membership', async (t) => {
  t.ok(inSubnet('10.0.0.1', { address: '10.0.0.20', prefix: 24 }));
  t.notOk(inSubnet('10.0.1.1', { address: '10.0.0.20', prefix: 24 }));
  t.ok(inSubnet('192.168.7.7', { address: '10.0.0.1', prefix: 0 }));
});

t.test('resolution: config, default gateway on the subnet, else none with the reason', async (t) => {
  const on = [{ address: '10.0.0.20', prefix: 24 }];
  t.match(resolveNeighbours(['10.0.0.7'], 'eth0', on, ROUTE), { ips: ['10.0.0.7'], source: 'config' });
  t.match(resolveNeighbours([], 'eth0', on, ROUTE), { ips: [], source: 'none', note: /empty/ });
  t.match(resolveNeighbours(undefined, 'eth0', on, ROUTE), { ips: ['10.0.0.1'], source: 'default gateway', note: /10\.0\.0\.1/ });
  t.match(resolveNeighbours(undefined, 'eth0', [{ address: '10.9.0.20', prefix: 24 }], ROUTE),
    { ips: [], source: 'none', note: /10\.0\.0\.1 is not on eth0's subnet/ });
  t.match(resolveNeighbours(undefined, 'eth0', [{ address: '10.0.0.20', prefix: 32 }], ROUTE), { ips: [], source: 'none' }, 'a /32 is no subnet');
  t.match(resolveNeighbours(undefined, 'eth0', on, undefined), { ips: [], source: 'none', note: /no default gateway/ });
});

t.test('vip.neighbours in the config: a list of IPv4 addresses; errors name the key', async (t) => {
  const base = 'vip:\n  interface: eth0\n  address: 10.0.0.100/24\n';
  const c = parseConfigText(`${base}  neighbours: [10.0.0.1, 10.0.0.2]\n`, '/etc/vigil/t.yml');
  t.same(c.vip?.neighbours, ['10.0.0.1', '10.0.0.2']);
  t.equal(parseConfigText(base, '/etc/vigil/t.yml').vip?.neighbours, undefined, 'default: resolved at start');
  t.same(parseConfigText(`${base}  neighbours: []\n`, '/etc/vigil/t.yml').vip?.neighbours, [], 'empty: gate off');
  let msg = '';
  try { parseConfigText(`${base}  neighbours: [10.0.0.300]\n`, '/etc/vigil/t.yml'); } catch (e) { if (e instanceof ConfigError) msg = e.message; else throw e; }
  t.match(msg, /vip\.neighbours/, `the error names the key: ${msg}`);
});
