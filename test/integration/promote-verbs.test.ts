// vigil promote grant|revoke|status as processes: --force needs the peer's name typed; auto mode refuses grants.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli, scratchDir, writeConfig } from '../support/vigil';

t.test('grant, forced grant, revoke, status', async (t) => {
  const dir = scratchDir('promote-verbs');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const promote = { name: 'mail', site: 'b', peer: 'a', mode: 'manual', journal_dir: path.join(dir, 'journal'), promote_steps: [{ name: 'p1', command: ['/bin/true'] }] };
  const cfg = writeConfig(dir, 'vigil', { node: 'b', pidfile: path.join(dir, 'v.pid'), state_dir: dir, promote });
  const grantFile = path.join(dir, 'journal', 'mail.grant');

  const wrong = await runCli(['promote', 'grant', 'mail', '--force', '-c', cfg], undefined, 'b\n');
  t.equal(wrong.code, 2, 'typing another name than the peer refuses');
  t.match(wrong.stderr, /not the peer's name a: nothing granted/);
  t.notOk(fs.existsSync(grantFile));

  const forced = await runCli(['promote', 'grant', 'mail', '--force', '-c', cfg], undefined, 'a\n');
  t.equal(forced.code, 0, forced.stderr);
  t.same(JSON.parse(fs.readFileSync(grantFile, 'utf8')).force, true);
  t.equal(fs.statSync(grantFile).mode & 0o777, 0o600);

  const st = await runCli(['promote', 'status', '-c', cfg]);
  t.equal(st.code, 0);
  t.match(st.stdout, /promote mail: no journal yet \(standby\); granted/);

  const other = await runCli(['promote', 'grant', 'other', '-c', cfg]);
  t.equal(other.code, 2, 'the name must be the configured promotion');

  const rv = await runCli(['promote', 'revoke', 'mail', '-c', cfg]);
  t.equal(rv.code, 0);
  t.notOk(fs.existsSync(grantFile));

  const auto = writeConfig(dir, 'auto', { node: 'b', pidfile: path.join(dir, 'v.pid'), state_dir: dir, promote: { ...promote, mode: 'auto' } });
  const g = await runCli(['promote', 'grant', 'mail', '-c', auto]);
  t.equal(g.code, 2);
  t.match(g.stderr, /grant and revoke are for mode manual/);
});
