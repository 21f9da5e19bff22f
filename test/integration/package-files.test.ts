// The files vigil ships for operators: systemd units (checked with the real
// `systemd-analyze verify`), the logrotate config (run for real by
// logrotate(8) against a file vigil's own logger writes), and the container
// hooks (POSIX sh, executable, strict mode).
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, ROOT, scratchDir } from '../support/vigil';
import { initLog, flushLog, rootLog } from '../../src/log';

const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } }).status === 0;
const UNITS = ['vigil.service', 'vigil@.service'];
const unitText = (name: string) => fs.readFileSync(path.join(ROOT, 'etc', 'systemd', name), 'utf8');

/** `Key=value` lines of a unit, with the section each is in. */
function directives(text: string): { section: string; key: string; value: string; line: number }[] {
  let section = '';
  const out: { section: string; key: string; value: string; line: number }[] = [];
  text.split('\n').forEach((l, i) => {
    const s = /^\[(\w+)\]$/.exec(l);
    if (s) { section = s[1]!; return; }
    const d = /^([A-Za-z]+)=(.*)$/.exec(l);
    if (d) out.push({ section, key: d[1]!, value: d[2]!, line: i });
  });
  return out;
}

t.test('systemd drop-in for vzctl: every directive commented', async (t) => {
  const text = fs.readFileSync(path.join(ROOT, 'etc', 'systemd', 'vigil-vzctl.conf'), 'utf8');
  t.same(uncommented(text), [], 'every directive has a comment');
  t.match(text, /^CapabilityBoundingSet=~$/m, 'all capabilities');
});

/** Directives not preceded (through a run of directive lines) by a comment. */
function uncommented(text: string): string[] {
  const lines = text.split('\n');
  return directives(text).filter((d) => {
    let i = d.line - 1;
    while (i >= 0 && /^[A-Za-z]+=/.test(lines[i]!)) i--;
    return i < 0 || !lines[i]!.startsWith('#');
  }).map((d) => `${d.key} (line ${d.line + 1})`);
}

t.test('systemd units: content', async (t) => {
  for (const name of UNITS) {
    const text = unitText(name);
    const ds = directives(text);
    const one = (k: string) => ds.filter((d) => d.key === k).map((d) => d.value);
    t.same(one('Type'), ['notify'], `${name}: Type=notify`);
    t.same(one('NotifyAccess'), ['main'], `${name}: only the main process notifies`);
    t.same(one('WatchdogSec'), ['30s'], `${name}: WatchdogSec=`);
    t.same(one('Restart'), ['on-failure'], `${name}: Restart=on-failure`);
    t.same(one('NoNewPrivileges'), ['yes'], `${name}: NoNewPrivileges=yes`);
    t.same(one('RestrictAddressFamilies'), ['AF_UNIX AF_INET AF_NETLINK AF_PACKET'], `${name}: address families`);
    const caps = one('CapabilityBoundingSet').join(' ').split(/\s+/);
    t.ok(caps.includes('CAP_NET_RAW') && caps.includes('CAP_NET_ADMIN'), `${name}: the network capabilities`);
    t.notOk(caps.some((c) => ['CAP_SYS_ADMIN', 'CAP_DAC_OVERRIDE', 'CAP_SYS_PTRACE', 'CAP_SETUID'].includes(c)), `${name}: none of the broad ones`);
    t.same(one('KillMode'), ['mixed'], `${name}: TERM to vigil only, so on_slave runs`);
    t.same(one('RuntimeDirectoryPreserve'), ['yes'], `${name}: /run/vigil survives a stop (other instances, hook-started daemons)`);
    const cfg = name === 'vigil.service' ? '/etc/vigil/vigil.yml' : '/etc/vigil/%i.yml';
    t.same(one('ExecStart'), [`/usr/bin/vigil run -c ${cfg}`], `${name}: ExecStart runs ${cfg}`);
    t.same(one('ExecReload'), [`/usr/bin/vigil reload -c ${cfg}`], `${name}: ExecReload`);
    t.same(one('ExecStartPre'), [`/usr/bin/vigil check-config -c ${cfg}`], `${name}: config checked before start`);
    // Every directive is commented: each run of directive lines starts after a comment.
    t.same(uncommented(text), [], `${name}: every directive has a comment`);
  }
});

t.test('systemd units: systemd-analyze verify', async (t) => {
  // Required, not optional: .ci/run installs systemd (for systemd-analyze).
  if (!t.ok(has('systemd-analyze'), 'systemd-analyze is installed (.ci/run installs systemd)')) return;
  const dir = scratchDir('units');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // verify checks that ExecStart= exists: point the copies at this checkout's bin/vigil.
  const copy = (name: string, as = name, edit: (s: string) => string = (s) => s) => {
    const f = path.join(dir, as);
    fs.writeFileSync(f, edit(unitText(name).split('/usr/bin/vigil').join(BIN)));
    return f;
  };
  const verify = (file: string) => spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8', cwd: dir });
  for (const [name, as] of [['vigil.service', 'vigil.service'], ['vigil@.service', 'vigil@.service'], ['vigil@.service', 'vigil@ct-101.service']] as const) {
    const r = verify(copy(name, as));
    t.equal(r.status, 0, `${as}: verify exits 0`);
    t.equal(r.stderr.trim(), '', `${as}: no warning at all`);
  }
  // Controls: verify does flag what the checks above would have to catch.
  const typo = verify(copy('vigil.service', 'typo.service', (s) => s.replace('KillMode=mixed', 'KillMode=mixed\nKilMode=mixed')));
  t.match(typo.stderr, /Unknown key 'KilMode'/, 'control: a misspelt directive is reported');
  const family = verify(copy('vigil.service', 'family.service', (s) => s.replace('AF_NETLINK AF_PACKET\n', 'AF_NETLINK AF_PAKET\n')));
  t.match(family.stderr, /address family/i, 'control: a misspelt address family is reported');
  const exe = verify(copy('vigil.service', 'exe.service', (s) => s.split(BIN).join('/nonexistent/vigil')));
  t.not(exe.status, 0, 'control: a missing ExecStart program fails verify');

  // The vzctl drop-in, installed for one instance as the README says.
  const unitDir = path.join(dir, 'units');
  fs.mkdirSync(path.join(unitDir, 'vigil@ct-101.service.d'), { recursive: true });
  fs.copyFileSync(path.join(dir, 'vigil@.service'), path.join(unitDir, 'vigil@.service'));
  fs.copyFileSync(path.join(ROOT, 'etc', 'systemd', 'vigil-vzctl.conf'), path.join(unitDir, 'vigil@ct-101.service.d', 'vzctl.conf'));
  const env = { ...process.env, SYSTEMD_UNIT_PATH: `${unitDir}:` };
  const dropin = spawnSync('systemd-analyze', ['verify', 'vigil@ct-101.service'], { encoding: 'utf8', env });
  t.equal(dropin.status, 0, 'vigil@ct-101 with the vzctl drop-in: verify exits 0');
  t.equal(dropin.stderr.trim(), '', 'no warning');
  const sec = (unit: string) => spawnSync('systemd-analyze', ['security', '--offline=true', unit], { encoding: 'utf8', env }).stdout;
  const line = (out: string, what: string) => out.split('\n').find((l) => l.includes(what)) ?? '';
  const widened = sec('vigil@ct-101.service');
  const plain = sec('vigil@ct-102.service');
  if (/Overall exposure/.test(plain)) {
    t.match(line(plain, 'CapabilityBoundingSet=~CAP_SYS_ADMIN'), /^✓/, 'without the drop-in: no CAP_SYS_ADMIN');
    t.match(line(widened, 'CapabilityBoundingSet=~CAP_SYS_ADMIN'), /^✗/, 'with it: CAP_SYS_ADMIN, as vzctl needs');
    t.match(line(widened, 'SystemCallFilter=~@mount'), /^✗/, 'and no system call filter');
  }
});

t.test('logrotate config: rotates a file vigil\'s logger appends to, losing nothing', async (t) => {
  if (!t.ok(has('logrotate'), 'logrotate is installed (.ci/run installs it)')) return;
  const dir = scratchDir('logrotate');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const logDir = path.join(dir, 'var', 'log', 'vigil');
  fs.mkdirSync(logDir, { recursive: true, mode: 0o700 });
  const conf = path.join(dir, 'vigil.logrotate');
  // The shipped file with its paths moved under the scratch directory.
  const shipped = fs.readFileSync(path.join(ROOT, 'etc', 'logrotate.d', 'vigil'), 'utf8');
  fs.writeFileSync(conf, shipped.replace(/^(\/var\/log\/vigil\/\*\.log) .* \{$/m, `${logDir}/*.log {`), { mode: 0o644 });
  t.match(fs.readFileSync(conf, 'utf8'), new RegExp(`^${logDir}/\\*\\.log \\{$`, 'm'), 'paths substituted');
  const file = path.join(logDir, 'vigil.log');
  initLog({ level: 'info', file, node: 'logrotate-test' });
  const log = rootLog();
  for (let i = 0; i < 50; i++) log.info({ i }, 'before rotation');
  flushLog();
  const r = spawnSync('logrotate', ['-f', '-s', path.join(dir, 'state'), conf], { encoding: 'utf8' });
  t.equal(r.status, 0, `logrotate exits 0 ${r.stderr.trim()}`);
  t.ok(fs.existsSync(`${file}.1`), 'rotated to vigil.log.1 (compression delayed one cycle)');
  t.equal(fs.readFileSync(`${file}.1`, 'utf8').trim().split('\n').length, 50, 'the rotated file has every line written before');
  for (let i = 0; i < 3; i++) log.info({ i }, 'after rotation');
  flushLog();
  const after = fs.readFileSync(file);
  t.equal(after.indexOf(0), -1, 'no NUL hole: the logger appends, so copytruncate is safe');
  t.equal(after.toString().trim().split('\n').length, 3, 'new lines go on in the same file');
  const dry = spawnSync('logrotate', ['-d', path.join(ROOT, 'etc', 'logrotate.d', 'vigil')], { encoding: 'utf8' });
  t.equal(dry.status, 0, 'the shipped file parses (logrotate -d)');
  t.notMatch(dry.stderr, /error/i, 'without errors');
});

t.test('container hooks: POSIX sh, executable, strict', async (t) => {
  for (const name of ['mount', 'umount']) {
    const file = path.join(ROOT, 'scripts', 'vz', name);
    const st = fs.statSync(file);
    t.equal(st.mode & 0o777, 0o755, `${name}: mode 0755`);
    const text = fs.readFileSync(file, 'utf8');
    t.match(text, /^#!\/bin\/sh\n/, `${name}: #!/bin/sh`);
    t.match(text, /^set -eu$/m, `${name}: set -eu`);
    // Debian's /bin/sh (dash) and bash in POSIX mode, both always there; shellcheck from .ci/run.
    for (const sh of ['dash', 'bash']) {
      const argv = sh === 'bash' ? ['--posix', '-n', file] : ['-n', file];
      const r = spawnSync(sh, argv, { encoding: 'utf8' });
      t.equal(r.status, 0, `${name}: parses with ${sh}${r.stderr ? `: ${r.stderr}` : ''}`);
    }
    const r = spawnSync('shellcheck', ['-s', 'sh', file], { encoding: 'utf8' });
    t.equal(r.status, 0, `${name}: shellcheck -s sh (.ci/run installs shellcheck) ${r.stdout}${r.error ? String(r.error) : ''}`);
  }
});

t.test('vigil --help lists the verbs, and each verb has --help', async (t) => {
  const top = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
  t.equal(top.status, 0, 'vigil --help exits 0');
  const verbs = top.stdout.split('\n').map((l) => /^ {2}([a-z][a-z-]+) {2,}\S/.exec(l)?.[1]).filter((v): v is string => v !== undefined);
  t.ok(verbs.length >= 10, `verbs listed: ${verbs.join(', ')}`);
  for (const verb of verbs) {
    const r = spawnSync(process.execPath, [BIN, verb, '--help'], { encoding: 'utf8' });
    t.ok(r.status === 0 && /^usage: vigil /im.test(r.stdout), `vigil ${verb} --help (exit ${r.status})`);
  }
  const v = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8' });
  t.match(v.stdout, /^vigil \d+\.\d+\.\d+\n$/, 'vigil --version');
});
