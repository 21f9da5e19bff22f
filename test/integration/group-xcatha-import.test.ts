// `vigil config import xcatha` as a process, golden-file tested: three
// shared-storage trees (test/fixtures/xcatha/*/HA: cfgloc and console.lock
// as xcatha leaves them) and their expected group sections (the fixture
// path written as @PATH@). Each output loads as a vigil config and passes
// `vigil group check-config`; bad arguments exit 2 naming the option.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parse } from 'yaml';
import { BIN, scratchDir } from '../support/vigil';
import { normalizeGroups } from '../../src/roles/group/config';
import { maskToPrefix } from '../../src/roles/group/xcatha';

const FIX = path.join(__dirname, '..', 'fixtures', 'xcatha');
const vigil = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });

const CASES: [string, string[]][] = [
  ['pg-goconserver', ['-v', '10.0.0.100', '-i', 'eth0:0', '-n', 'mn.cluster.net']],
  ['sqlite-bare', ['-v', '192.168.5.10', '-i', 'ens3', '-m', '255.255.0.0']],
  ['mariadb-conserver', ['-v', '10.1.0.100', '-i', 'bond0', '-n', 'mgmt', '-t', 'mariadb']],
];

for (const [name, args] of CASES) {
  t.test(`golden: ${name}`, async (t) => {
    const shared = path.join(FIX, name, 'HA');
    const r = vigil(['config', 'import', 'xcatha', '-p', shared, ...args]);
    t.equal(r.status, 0, 'exit 0', { stderr: r.stderr });
    const got = r.stdout.split(shared).join('@PATH@');
    t.equal(got, fs.readFileSync(path.join(FIX, name, 'expected.yml'), 'utf8'), `output equals test/fixtures/xcatha/${name}/expected.yml`);
    // It is a group section vigil loads, and the CLI accepts it.
    const groups = normalizeGroups(parse(r.stdout).group);
    t.same([...groups.keys()], ['xcat']);
    const members = groups.get('xcat')!.members;
    t.equal(members[0]!.type, 'address', 'the VIP first');
    const dir = scratchDir('xcatha');
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'vigil.yml');
    fs.writeFileSync(file, r.stdout, { mode: 0o600 });
    const check = vigil(['group', 'check-config', '-c', file]);
    t.equal(check.status, 0, 'vigil group check-config accepts it', { stdout: check.stdout, stderr: check.stderr });
  });
}

t.test('xcatha order: VIP, hostname, shared dirs, DB, xcatd, named, dhcpd, ntpd, console', async (t) => {
  const r = vigil(['config', 'import', 'xcatha', '-p', path.join(FIX, 'pg-goconserver', 'HA'), '-v', '10.0.0.100', '-i', 'eth0', '-n', 'mn']);
  const names = normalizeGroups(parse(r.stdout).group).get('xcat')!.members.map((m) => m.name);
  t.same(names, ['vip', 'hostname', 'install', 'etc-xcat', 'root-xcat', 'var-lib-pgsql', 'tftpboot', 'db', 'xcatd', 'named', 'dhcpd', 'ntpd', 'console']);
});

t.test('bad arguments: exit 2 naming the option', async (t) => {
  const shared = path.join(FIX, 'sqlite-bare', 'HA');
  const cases: [string[], RegExp][] = [
    [['-v', '10.0.0.1', '-i', 'eth0'], /-p required/],
    [['-p', shared, '-v', '10.0.0.300', '-i', 'eth0'], /-v "10\.0\.0\.300" is not an IPv4 address/],
    [['-p', shared, '-v', '10.0.0.1', '-i', 'eth0', '-m', '255.0.255.0'], /-m "255\.0\.255\.0" is not a netmask/],
    [['-p', shared, '-v', '10.0.0.1', '-i', 'eth0', '-t', 'oracle'], /-t "oracle" is not a database type/],
    [['-p', '/nonexistent/HA', '-v', '10.0.0.1', '-i', 'eth0'], /-p "\/nonexistent\/HA" is not a directory/],
  ];
  for (const [args, want] of cases) {
    const r = vigil(['config', 'import', 'xcatha', ...args]);
    t.equal(r.status, 2, `exit 2: ${args.join(' ')}`);
    t.match(r.stderr, want);
    t.equal(r.stdout, '', 'nothing on stdout');
  }
  t.equal(maskToPrefix('255.255.255.255'), 32);
  t.equal(maskToPrefix('255.255.254.0'), 23);
  t.equal(maskToPrefix('0.0.0.0'), undefined);
});
