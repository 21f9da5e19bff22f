// SLOW (about 15-60 s, needs the npm registry): the packed tarball installs
// into a scratch prefix with `npm install -g`, the native addon is built on
// install, and the installed `vigil` runs. This is the README's install
// command, run as written (with --prefix added). Skipped with a reason when
// the registry cannot be reached.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { ROOT, scratchDir } from '../support/vigil';

t.setTimeout(300_000);

/** Run a command to completion, collecting its output (spawnSync would block tap's timers). */
function run(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    p.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 240_000);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

const ping = spawnSync('npm', ['ping'], { encoding: 'utf8', timeout: 30_000 });
if (ping.status !== 0) {
  t.plan(0, `the npm registry is not reachable (npm ping: ${(ping.stderr || 'timeout').trim().split('\n').pop()}): cannot install dependencies`);
  process.exit(0);
}

t.test('npm pack → npm install -g → vigil runs', async (t) => {
  const dir = scratchDir('pack');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  // A copy of this checkout without build products; its node_modules (for
  // the `prepare` build) is this checkout's, so nothing is installed here.
  const tar = spawnSync('sh', ['-c', `tar -C "${ROOT}" --exclude=./node_modules --exclude=./dist --exclude=./build --exclude=./tmp --exclude=./.git -cf - . | tar -C "${src}" -xf -`]);
  t.equal(tar.status, 0, 'source copied');
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(src, 'node_modules'));

  const pack = await run('npm', ['pack', '--pack-destination', dir], { cwd: src });
  t.equal(pack.code, 0, `npm pack ${pack.code === 0 ? '' : pack.stderr.slice(-2000)}`);
  const tgz = path.join(dir, pack.stdout.trim().split('\n').pop()!);
  t.ok(fs.existsSync(tgz), `tarball ${path.basename(tgz)}`);

  const list = spawnSync('tar', ['-tvzf', tgz], { encoding: 'utf8' }).stdout.split('\n');
  const entry = (p: string) => list.find((l) => l.endsWith(` package/${p}`));
  for (const p of ['bin/vigil', 'dist/src/cli/main.js', 'native/vigil.c', 'binding.gyp', 'scripts/vz/mount', 'scripts/vz/umount',
    'etc/systemd/vigil.service', 'etc/systemd/vigil@.service', 'etc/systemd/vigil-vzctl.conf', 'etc/logrotate.d/vigil', 'etc/vigil.example.yml']) {
    t.ok(entry(p), `the tarball has ${p}`);
  }
  for (const p of ['bin/vigil', 'scripts/vz/mount', 'scripts/vz/umount']) t.match(entry(p) ?? '', /^-rwxr-xr-x/, `${p} is executable in the tarball`);
  t.notOk(list.some((l) => / package\/(test|node_modules|build)\//.test(l)), 'no tests, node_modules or build products');

  // The README's command. npm >= 11 warns about (and with --strict-allow-scripts
  // refuses) install scripts it was not told to allow: vigil's own (node-gyp
  // for the addon, named by the tarball's absolute path, its resolved identity)
  // and its two native dependencies. Older npm ignores both options.
  const prefix = path.join(dir, 'prefix');
  fs.mkdirSync(path.join(prefix, 'lib'), { recursive: true }); // npm 11.19 --strict-allow-scripts needs it to exist
  const install = await run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund',
    '--strict-allow-scripts', `--allow-scripts=${tgz},netlink,raw-socket`, tgz]);
  t.equal(install.code, 0, `npm install -g ${install.code === 0 ? '' : install.stderr.slice(-3000)}`);
  t.notMatch(install.stderr, /install-scripts/, 'no install script left unallowed');

  const vigil = path.join(prefix, 'bin', 'vigil');
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const version = await run(vigil, ['--version']);
  t.equal(version.code, 0, 'vigil --version exits 0');
  t.equal(version.stdout, `vigil ${pkg.version}\n`, 'and prints the package version');
  const help = await run(vigil, ['--help']);
  t.match(help.stdout, /usage: vigil <verb>/, 'vigil --help');
  for (const verb of ['run', 'start', 'stop', 'reload', 'status', 'check-config']) {
    const r = await run(vigil, [verb, '--help']);
    t.ok(r.code === 0 && /usage: vigil /i.test(r.stdout), `vigil ${verb} --help`);
  }
  const installed = path.join(prefix, 'lib', 'node_modules', 'vigil');
  t.ok(fs.existsSync(path.join(installed, 'build', 'Release', 'vigil.node')), 'the native addon was built on install');
  const addon = await run(process.execPath, ['-e', `process.stdout.write(String(require(${JSON.stringify(path.join(installed, 'dist', 'src', 'native.js'))}).native().monotonicNs() > 0n))`]);
  t.equal(addon.stdout, 'true', `the installed addon loads and answers ${addon.stderr}`);
  t.equal(fs.statSync(path.join(installed, 'scripts', 'vz', 'mount')).mode & 0o777, 0o755, 'the hooks are installed executable');
});
