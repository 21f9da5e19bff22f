// vigil config import hostha: golden files for the seed's hostha.conf and a
// two-network variant; the output loads as a vigil config with the values
// hostha used; the list-valued options are parsed as data, never evaluated;
// bad input is one line on stderr and exit 2.
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { importHostha, parsePyLiteral } from '../../../src/roles/monitor/hostha';
import { parseConfigText } from '../../../src/config/load';
import { dispatch } from '../../../src/cli/main';
import { capture } from '../../support/capture';

const FIX = join(__dirname, '../../fixtures/hostha');
// Set VIGIL_UPDATE_GOLDEN=1 to rewrite the golden files, then review the diff.
const UPDATE = process.env.VIGIL_UPDATE_GOLDEN === '1';
const CASES: [string, string[]][] = [['seed', []], ['two-net', ['--controller', '10.20.0.12']]];

for (const [name, extra] of CASES) {
  t.test(`golden: ${name}`, async (t) => {
    const r = await capture(() => dispatch(['config', 'import', 'hostha', join(FIX, name, 'hostha.conf'), ...extra]));
    t.equal(r.code, 0, 'exit 0', { stderr: r.stderr });
    const golden = join(FIX, name, 'expected.yml');
    if (UPDATE) writeFileSync(golden, r.stdout);
    t.equal(r.stdout, readFileSync(golden, 'utf8'), `output equals test/fixtures/hostha/${name}/expected.yml`);
    // It is a monitor section vigil loads.
    const cfg = parseConfigText(`node: x\n${r.stdout}`, '/etc/vigil/imported.yml') as any;
    t.equal(cfg.monitor.inventory.source, 'kv');
  });
}

t.test('the seed: three networks from the first entry, hostha\'s timing, no secret copied', async (t) => {
  const text = readFileSync(join(FIX, 'seed', 'hostha.conf'), 'utf8');
  const { yaml, warnings } = importHostha(text);
  const m = (parseConfigText(`node: x\n${yaml}`, '/x.yml') as any).monitor;
  t.same(m.networks.map((n: any) => [n.name, n.url.replace(/\/$/, '')]), [['mgmt', 'http://37.47.10.10:8500'], ['tenant', 'http://5.150.12.10:8500'], ['storage', 'http://6.150.12.10:8500']]);
  t.equal(m.intervalMs, 10_000, 'host_check_interval');
  t.equal(m.confirm, 3, 'host_check_retry');
  t.equal(m.guards.maxDown, 3, 'max_evacuation');
  t.equal(m.fence.method, 'event');
  t.equal(m.fence.powerTimeoutMs, 60_000, '3 s × 20 tries');
  t.equal(m.recovery.method, 'auto');
  t.equal(m.recovery.evacuate.authUrl, 'http://37.47.10.206:45357/v3');
  t.equal(m.recovery.evacuate.user, 'cloudultra');
  t.equal(m.recovery.evacuate.retries, 2, 'evacuate_retry_count 3 = 1 try + 2 retries');
  t.notMatch(yaml, /Passw0rd|cloudadmin|openstack:/, 'no password or database URL in the output');
  t.match(warnings.join('\n'), /--controller/);
  const second = importHostha(text, { controller: '5.150.12.13' }).yaml;
  t.match(second, /url: http:\/\/37\.47\.10\.13:8500/, '--controller picks the entry that holds the address');
});

t.test('list-valued options are parsed as data, never evaluated', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-hostha-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const marker = join(dir, 'ran');
  t.same(parsePyLiteral("[('10.0.0.1', \"10.0.1.1\"),]", 'x'), [['10.0.0.1', '10.0.1.1']]);
  for (const evil of [`__import__('os').system('touch ${marker}')`, `[open('${marker}','w')]`, `[['10.0.0.1'] * 2]`, `[[1+1]]`]) {
    t.throws(() => importHostha(`[compute_ha]\nconsul_servers = ${evil}\n`), /consul_servers: .* is not a list literal .*never evaluated/, evil);
  }
  t.notOk(existsSync(marker), 'nothing ran');
});

t.test('bad input: one line on stderr, exit 2', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-hostha-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cases: [string, RegExp, string[]?][] = [
    ['[DEFAULT]\ndebug = 1\n', /\[compute_ha\] is missing/],
    ['[compute_ha]\nhost_check_retry = 3\n', /consul_servers is missing/],
    ["[compute_ha]\nconsul_servers = [['10.0.0.1']]\n", /consul_servers\[0\]: .* is not a list of 2 or 3 IPv4 addresses/],
    ["[compute_ha]\nconsul_servers = [['10.0.0.1', '10.0.0.300']]\n", /consul_servers\[0\]/],
    ["[compute_ha]\nconsul_servers = [['10.0.0.1', '10.0.1.1']]\nconsul_ports = [8500, 70000]\n", /consul_ports: .* is not a list of 2 or 3 ports/],
    ["[compute_ha]\nconsul_servers = [['10.0.0.1', '10.0.1.1', '10.0.2.1']]\nconsul_ports = [8500, 8500]\n", /2 ports for 3 networks/],
    ["[compute_ha]\nconsul_servers = [['10.0.0.1', '10.0.1.1']]\nhost_check_interval = ten\n", /host_check_interval: "ten" is not an integer/],
    ["[compute_ha]\nconsul_servers = [['10.0.0.1', '10.0.1.1']]\n", /--controller "10\.9\.9\.9" is in no compute_ha\.consul_servers entry/, ['--controller', '10.9.9.9']],
    ["consul_servers = [['10.0.0.1', '10.0.1.1']]\n", /line 1: .* is not an option line/],
    ["[compute_ha]\nconsul_servers = [['10.0.0.1', '10.0.1.1']]\n[keystone_authtoken]\nauth_url = http://u:p@k:5000\nusername = a\nproject_name = b\n", /auth_url: .* is not an http\(s\) URL without credentials/],
  ];
  for (const [i, [text, want, extra]] of cases.entries()) {
    const file = join(dir, `bad${i}.conf`);
    writeFileSync(file, text);
    const r = await capture(() => dispatch(['config', 'import', 'hostha', file, ...(extra ?? [])]));
    t.equal(r.code, 2, `exit 2: ${want}`);
    t.match(r.stderr, want);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    t.equal(r.stdout, '', 'nothing on stdout');
  }
  const missing = await capture(() => dispatch(['config', 'import', 'hostha', join(dir, 'none.conf')]));
  t.equal(missing.code, 2);
  t.match(missing.stderr, /none\.conf: cannot be read \(ENOENT\)/);
});
