// vigil config import habeat: golden files for the seed's sample and a bgp variant, the output loads,
// values going into commands are validated, and the CLI's exit codes.
import t from 'tap';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { importHabeat } from '../../../../src/roles/promote/habeat';
import { parseConfigText } from '../../../../src/config/load';
import { dispatch } from '../../../../src/cli/main';
import { capture } from '../../../support/capture';

const FIX = join(__dirname, '../../../fixtures/promote');
// Set VIGIL_UPDATE_GOLDEN=1 to rewrite the golden files, then review the diff.
const UPDATE = process.env.VIGIL_UPDATE_GOLDEN === '1';

for (const name of ['habeat-seed', 'habeat-bgp']) {
  t.test(`${name}.yml → ${name}.golden.yml`, async (t) => {
    const { yaml } = importHabeat(readFileSync(join(FIX, `${name}.yml`), 'utf8'));
    const golden = join(FIX, `${name}.golden.yml`);
    if (UPDATE) writeFileSync(golden, yaml);
    t.equal(yaml, readFileSync(golden, 'utf8'));
    const cfg = parseConfigText(`node: x\n${yaml}`, '/etc/vigil/imported.yml') as any;
    t.equal(cfg.promote.site, 'secondary');
    t.equal(cfg.promote.peer, 'primary');
    t.equal(cfg.promote.mode, 'manual', 'manual until the witness spans three sites');
  });
}

t.test('the deativate typo and deactivate are both accepted; argv, not shell, where possible', async (t) => {
  const text = readFileSync(join(FIX, 'habeat-bgp.yml'), 'utf8');
  const a = parseConfigText(`node: x\n${importHabeat(text).yaml}`, '/x.yml') as any;
  const b = parseConfigText(`node: x\n${importHabeat(text.replace('deativate:', 'deactivate:')).yaml}`, '/x.yml') as any;
  t.same(a.promote.demoteSteps, b.promote.demoteSteps);
  t.same(a.promote.demoteSteps[0].command, ['/usr/local/sbin/proxy-withdraw', '192.0.2.0/24']);
  t.same(a.promote.promoteSteps[0].command, ['/opt/zextras/bin/carbonio', '--sync', 'ha', 'promoteAccounts', 'source_mail_host', 'mbox1.example.com', 'threads', '8']);
  t.same(a.promote.peerProbes.map((p: any) => p.host), ['10.1.0.21', '10.1.0.20']);
});

t.test('values that go into commands are validated first', async (t) => {
  const text = readFileSync(join(FIX, 'habeat-bgp.yml'), 'utf8');
  t.throws(() => importHabeat(text.replace('appserver_vmname: mbox1.example.com', "appserver_vmname: 'x; rm -rf /'")), /primary\.appserver_vmname: .* is not a host name/);
  t.throws(() => importHabeat(text.replace('threads: 8', 'threads: "5; reboot"')), /local\.threads/);
  t.throws(() => importHabeat(text.replace('dc_check: "primary"', 'dc_check: "secondary"')), /local\.dc_check/);
});

t.test('vigil config import habeat: exit codes', async (t) => {
  const ok = await capture(() => dispatch(['config', 'import', 'habeat', join(FIX, 'habeat-seed.yml')]));
  t.equal(ok.code, 0);
  t.equal(ok.stdout, readFileSync(join(FIX, 'habeat-seed.golden.yml'), 'utf8'));
  t.match(ok.stderr, /review: primary\.appserver_ip: 'delete'|review: primary\.appserver_ip: "delete"/);
  const dir = mkdtempSync(join(tmpdir(), 'vigil-habeat-'));
  writeFileSync(join(dir, 'bad.yml'), 'local: 3\n');
  const bad = await capture(() => dispatch(['config', 'import', 'habeat', join(dir, 'bad.yml')]));
  t.equal(bad.code, 2);
  t.equal(bad.stderr.trim().split('\n').length, 1);
  const missing = await capture(() => dispatch(['config', 'import', 'habeat', join(dir, 'none.yml')]));
  t.equal(missing.code, 2);
});
