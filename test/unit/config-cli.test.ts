// Unit (real files under a mkdtemp dir, CLI run in-process): `vigil check-config` output and exit codes.
import t from 'tap';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/cli/check-config';
import { capture } from '../support/capture';

const dir = fs.mkdtempSync(join(tmpdir(), 'vigil-check-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

let n = 0;
function write(text: string, mode = 0o644): string {
  const p = join(dir, `c${n++}.yml`);
  fs.writeFileSync(p, text);
  fs.chmodSync(p, mode);
  return p;
}

const piddir = join(dir, 'run');
fs.mkdirSync(piddir, { mode: 0o755 });
const GOOD = `pidfile: ${piddir}/vigil.pid
state_dir: ${dir}/state
vip: { interface: eth0, address: 10.0.0.100/24 }
fence: { agents: [ { name: lan, url: "http://127.0.0.1:8500" } ] }
`;

t.test('a valid config: one line on stdout, exit 0', async (t) => {
  const f = write(GOOD);
  const r = await capture(() => run(['-c', f]));
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `config OK: ${f} (roles: vip, fence)\n`);
  t.equal(r.stderr, '');
  const h = await capture(() => run(['--config', write('fence_handler:\n')]));
  t.equal(h.code, 0, h.stderr);
  t.match(h.stdout, /\(roles: fence_handler\)\n$/);
});

t.test('a bad value: one line on stderr naming key, value and expectation, exit 2', async (t) => {
  const f = write('vip:\n  interface: eth0\n  address: 10.0.0.1\n  check_interval: 5x\n  take_over_after: 0\n');
  const r = await capture(() => run(['-c', f]));
  t.equal(r.code, 2);
  t.equal(r.stdout, '');
  t.equal(r.stderr, `vigil: ${f}:4: vip.check_interval: '5x' is not a duration (expected a duration such as '200ms', '1s', '2m' or a number of seconds, from 10ms to 24h) (and 1 more error)\n`);
  const all = await capture(() => run(['-c', f, '--all']));
  t.equal(all.code, 2);
  const lines = all.stderr.trimEnd().split('\n');
  t.equal(lines.length, 2);
  t.match(lines[1], /^vigil: .*:5: vip\.take_over_after: 0 is out of range \(expected an integer from 1 to 1000\)$/);
});

t.test('permissions are checked: file mode, key file, PID directory', async (t) => {
  const loose = write(GOOD, 0o666);
  const r = await capture(() => run(['-c', loose]));
  t.equal(r.code, 2);
  t.match(r.stderr, new RegExp(`^vigil: config file ${loose} has mode 0666 \\(group/world-writable\\); expected owner root`));
  t.equal(r.stderr.split('\n').length, 2, 'one line');

  const key = join(dir, 'fence.key');
  fs.writeFileSync(key, 'k');
  fs.chmodSync(key, 0o640);
  const k = await capture(() => run(['-c', write(`fence_handler: { key_file: ${key} }\n`)]));
  t.equal(k.code, 2);
  t.equal(k.stderr.split('\n').length, 2, 'one line');
  t.match(k.stderr, `vigil: key file ${key} has mode 0640`);

  const open = join(dir, 'openrun');
  fs.mkdirSync(open);
  fs.chmodSync(open, 0o777);
  const p = await capture(() => run(['-c', write(`pidfile: ${open}/vigil.pid\nfence_handler:\n`)]));
  t.equal(p.code, 2);
  t.match(p.stderr, `vigil: PID file directory ${open} has mode 0777 (group/world-writable)`);

  const link = join(dir, 'link.yml');
  fs.symlinkSync(write(GOOD), link);
  const l = await capture(() => run(['-c', link]));
  t.equal(l.code, 2);
  t.match(l.stderr, /is a symbolic link/);
});

t.test('missing file, bad flags, help', async (t) => {
  const missing = join(dir, 'missing.yml');
  const m = await capture(() => run(['-c', missing]));
  t.equal(m.code, 2);
  t.equal(m.stderr, `vigil: config file ${missing} does not exist\n`);
  const b = await capture(() => run(['--bogus']));
  t.equal(b.code, 2);
  t.match(b.stderr, /^vigil: check-config: /);
  const extra = await capture(() => run(['-c', write(GOOD), 'extra']));
  t.equal(extra.code, 2);
  const h = await capture(() => run(['--help']));
  t.equal(h.code, 0);
  t.match(h.stdout, /usage: vigil check-config \[-c FILE\]/);
  t.match(h.stdout, /default \/etc\/vigil\/vigil\.yml/);
});

t.test('the default path is /etc/vigil/vigil.yml', { skip: fs.existsSync('/etc/vigil/vigil.yml') ? 'a real config exists here' : false }, async (t) => {
  const r = await capture(() => run([]));
  t.equal(r.code, 2);
  t.equal(r.stderr, 'vigil: config file /etc/vigil/vigil.yml does not exist\n');
});
