// The group section: defaults, list and map forms, errors naming the key.
import t from 'tap';
import { normalizeGroups, groupSection } from '../../../../src/roles/group/config';
import { ConfigError } from '../../../../src/errors';

const err = (raw: unknown): string[] => {
  try { normalizeGroups(raw); } catch (e) { if (e instanceof ConfigError) return (e.detail?.errors as string[]); throw e; }
  return [];
};

t.test('defaults are filled in (map form)', async (t) => {
  const g = normalizeGroups({ db: { members: [
    { type: 'address', address: '10.0.0.100/24', interface: 'eth0' },
    { type: 'command', name: 'svc', start: ['svc', 'start'] },
  ] } }).get('db')!;
  t.equal(g.onStopFailure, 'block');
  t.equal(g.stateDir, '/var/lib/vigil/group');
  t.equal(g.lockTimeoutMs, 60_000);
  t.same(g.probe, { count: 3, intervalMs: 100, timeoutMs: 200 });
  t.same(g.members[0], { type: 'address', name: 'address1', cidr: { address: '10.0.0.100', prefix: 24 }, interface: 'eth0', arp: { count: 5, intervalMs: 200, unicast: [] } });
  t.match(g.members[1], { name: 'svc', timeoutMs: 30_000, stopTimeoutMs: 30_000, killGraceMs: 5000 });
  t.equal(groupSection.key, 'group');
});

t.test('list form needs names', async (t) => {
  t.same([...normalizeGroups([{ name: 'a', members: [{ type: 'symlink', link: '/x', target: '/y' }] }]).keys()], ['a']);
  t.match(err([{ members: [{ type: 'symlink', link: '/x', target: '/y' }] }])[0], /^group\[0\]\.name: is required/);
});

t.test('errors name the key, the value and the expectation', async (t) => {
  t.match(err({ db: { members: [{ type: 'address', address: '10.0.0.300', interface: 'eth0' }] } })[0],
    /^group\.db\.members\[0\]\.address: '10\.0\.0\.300' is not an IPv4 address \(expected/);
  t.match(err({ db: { members: [{ type: 'tape' }] } })[0], /^group\.db\.members\[0\]\.type: 'tape' is not a member type \(expected one of address, unit, symlink, hostname, command\)/);
  t.match(err({ db: { members: [{ type: 'command', start: 'x', stop_timout: '1s' }] } })[0], /^group\.db\.members\[0\]\.stop_timout: unknown key/);
  t.match(err({ db: { members: [{ type: 'command' }] } })[0], /^group\.db\.members\[0\]\.start: is required but missing/);
  t.match(err({ db: { members: [] } })[0], /^group\.db\.members: /);
  t.match(err({ db: { on_stop_failure: 'fence', members: [{ type: 'command', start: 'x' }] } })[0], /^group\.db\.on_stop_failure: 'fence' is not a valid choice \(expected one of block, continue\)/);
  t.match(err(5)[0] ?? '', '');
});

t.test('cross-key rules', async (t) => {
  const e = err({ db: { members: [
    { type: 'address', address: '10.0.0.1', interface: 'eth0' },
    { type: 'address', name: 'again', address: '10.0.0.1/24', interface: 'eth1' },
    { type: 'hostname', hostname: 'mn', nameservers: ['10.0.0.1'] },
    { type: 'command', start: 'x', stop_timeout: '1s', kill_grace: '2s' },
  ] } });
  t.match(e, [
    /members\[1\]\.address: address 10\.0\.0\.1 is also managed by members\[0\]/,
    /members\[2\]\.nameservers: needs resolv_conf/,
    /members\[2\]\.address: is required for the \/etc\/hosts line/,
    /members\[3\]\.kill_grace: is longer than stop_timeout/,
  ]);
});

t.test('the whole section that is not a list or mapping', async (t) => {
  t.throws(() => normalizeGroups(5), /group: 5 is not a list or a mapping/);
});

t.test('an interface name too long for the address label is refused', async (t) => {
  t.match(err({ db: { members: [{ type: 'address', address: '10.0.0.1', interface: 'averylongname0' }] } })[0],
    /members\[0\]\.interface: 'averylongname0' is too long for vigil's address label/);
});

t.test('sample.yml is a valid group section, and its commented defaults are the defaults', async (t) => {
  const fs = await import('node:fs');
  const path = await import('node:path');
  const { parse } = await import('yaml');
  const text = fs.readFileSync(path.join(__dirname, '../../../../src/roles/group/sample.yml'), 'utf8');
  const sample = normalizeGroups(parse(text).group).get('xcat')!;
  t.equal(sample.members.length, 5);
  const minimal = normalizeGroups({ xcat: { members: [{ type: 'command', start: 'x' }] } }).get('xcat')!;
  for (const k of ['stateDir', 'lockTimeoutMs', 'onStopFailure', 'hookTimeoutMs', 'probe'] as const) t.same(sample[k], minimal[k], k);
});
