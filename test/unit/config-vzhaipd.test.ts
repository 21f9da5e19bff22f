// Unit: vzhaipd.conf import as data (never run), its mapping, and the `vigil config` CLI.
import t from 'tap';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { ConfigError } from '../../src/errors';
import { importVzhaipd, parseVzhaipdConf } from '../../src/roles/vip/vzhaipd';
import { parseConfigText } from '../../src/config/load';
import { run } from '../../src/cli/config';
import { capture } from '../support/capture';

const FIXTURES = join(__dirname, '../fixtures/config');
const dir = fs.mkdtempSync(join(tmpdir(), 'vigil-vzhaipd-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The fixture with its marker placeholder pointing at a fresh, random path. */
function fixtureWithMarker(): { file: string; marker: string } {
  const marker = join(dir, `PWNED-${randomBytes(6).toString('hex')}`);
  const text = fs.readFileSync(join(FIXTURES, 'vzhaipd.conf'), 'utf8').split('@MARKER@').join(marker);
  const file = join(dir, `vzhaipd-${randomBytes(4).toString('hex')}.conf`);
  fs.writeFileSync(file, text);
  return { file, marker };
}

const markers = (marker: string) => ['', '.2', '.3', '.4', '.5'].filter((s) => fs.existsSync(marker + s));

t.test('control: sourcing such a line in a shell does run it', { skip: fs.existsSync('/bin/bash') ? false : 'no bash' }, async (t) => {
  const marker = join(dir, `control-${randomBytes(6).toString('hex')}`);
  const file = join(dir, 'control.conf');
  fs.writeFileSync(file, `HA_CLUSTER_IP=10.0.0.1\ntouch ${marker}\n`);
  spawnSync('/bin/bash', ['-c', `source ${file}`]);
  t.ok(fs.existsSync(marker), 'vzhaipd-style sourcing creates the marker, so its absence below means something');
});

t.test('the fixture imports as data; its shell code never runs', async (t) => {
  const { file, marker } = fixtureWithMarker();
  const r = await capture(() => run(['import-vzhaipd', file, '--ctid', '101']));
  t.equal(r.code, 0, r.stderr);
  t.same(markers(marker), [], 'no marker file was created');
  for (const line of [24, 25, 28, 29, 30, 31, 32, 33, 34]) {
    t.match(r.stderr, new RegExp(`vigil: warning: ${file.replace(/[.]/g, '\\.')}:${line}: skipped: `), `line ${line} reported as skipped`);
  }
  t.match(r.stderr, /:21: unknown key WEB_TEAM_PAGER not imported/);
  t.match(r.stdout, /^# not imported: WEB_TEAM_PAGER=ops@example\.com \(line 21: not a vzhaipd key vigil knows\)$/m);
  t.match(r.stdout, /^# not imported: USE_ACCURATE_TIME=true/m);
  t.match(r.stdout, /^#   line 25: touch /m, 'skipped lines are listed as comments');

  const cfg = parseConfigText(r.stdout, join(dir, 'out.yml'));
  t.same(cfg.vip, {
    interface: 'eth1',
    address: { address: '10.20.30.40', prefix: 32 },
    ipFile: '/etc/vzhaipd/web.cips',
    checkIntervalMs: 10_000,
    failureCheckIntervalMs: 2000,
    takeOverAfter: 4,
    probeTimeoutMs: 1000,
    probeTimeoutMinMs: 1000, // fixed, as vzhaipd's arpsend -w 1
    masterCheckIntervalMs: 90_000,
    ipFileCheckIntervalMs: 60_000,
    announce: { count: 3, intervalMs: 1000 },
    onMaster: ['vzctl', 'exec', '101', 'svc', '-u', '/service/haproxy'],
    onSlave: ['vzctl', 'exec', '101', 'svc', '-d', '/service/haproxy'],
    commandTimeoutMs: 30_000,
    backend: 'vzctl',
    container: '101',
    vzctl: '/usr/sbin/vzctl',
    vzlist: '/usr/sbin/vzlist',
    containerSettleMs: 30_000,
  });
  t.same(cfg.log, { level: 'info', file: '/var/log/vzhaipd/web.log' }, 'LOG_LEVEL 30 → info');
  t.equal(cfg.pidfile, '/var/run/vzhaipd.web.pid');
  // Each mapped value names its source key in a comment.
  for (const key of ['HA_CLUSTER_IP', 'HA_INTERFACE', 'HA_IP_FILE', 'START_CMD', 'STOP_CMD', 'LOG_LEVEL', 'LOG_FILE', 'DAEMON_PIDFILE',
    'HA_CLUSTER_IP_CHECK_INTERVAL', 'HA_IP_FILE_CHECK_INTERVAL', 'ON_FAILURE_CHECK_INTERVAL', 'ON_FAILURE_TAKE_OVER_AFTER',
    'MASTER_FRESHNESS_CHECK_INTERVAL', 'CMD_VZCTL', 'CMD_VZLIST']) {
    t.match(r.stdout, new RegExp(`# ${key}[= ]`), `comment names ${key}`);
  }
  t.same(markers(marker), [], 'still no marker after parsing the output');
});

t.test('keys not set get vzhaipd defaults', async (t) => {
  const r = importVzhaipd(fs.readFileSync(join(FIXTURES, 'vzhaipd-minimal.conf'), 'utf8'));
  const v = r.config.vip!;
  t.equal(v.address.address, '172.16.224.1');
  t.equal(v.interface, 'bond0');
  t.equal(v.checkIntervalMs, 15_000);
  t.equal(v.failureCheckIntervalMs, 3000);
  t.equal(v.takeOverAfter, 5);
  t.equal(v.masterCheckIntervalMs, 120_000);
  t.equal(v.ipFileCheckIntervalMs, 300_000);
  t.equal(v.backend, 'netlink', 'without --ctid the container backend cannot be imported');
  t.equal(v.onMaster, undefined, "the default START_CMD names the container; not imported without it");
  t.equal(r.config.log.level, 'debug', 'LOG_LEVEL default 99 → debug');
  t.equal(r.config.log.file, undefined, "vzhaipd's default log file (inside the container root) is not imported");
  t.match(r.yaml, /# HA_INTERFACE \(vzhaipd default\)/);
  t.match(r.yaml, /pass --ctid CTID/);
  t.same(r.warnings, []);

  const c = importVzhaipd('HA_CLUSTER_IP=10.0.0.7\n', { ctid: '204' });
  t.same(c.config.vip?.onMaster, ['vzctl', 'exec', '204', 'svc', '-u', '/service/protobalance']);
  t.same(c.config.vip?.onSlave, ['vzctl', 'exec', '204', 'svc', '-d', '/service/protobalance']);
  t.equal(c.config.vip?.ipFile, '/vz/root/204/etc/vzhaipd.cips');
  t.match(c.yaml, /ip_file lies inside the container root/);
  t.equal(c.config.vip?.container, '204');
  t.equal(c.config.pidfile, '/run/vigil/ct-204.pid');
});

t.test('what counts as data', async (t) => {
  const p = parseVzhaipdConf([
    'A=plain',
    "B='single $NOT expanded'",
    'C="double $A and ${A}"',
    'D=$A/x  # trailing comment',
    'E=',
    'F=a#b',
    'G="x"#y',
    'H=~/x',
    'I=$UNKNOWN',
    'J=a b',
    'K=1 L=2',
    'export M=1',
    'N+=1',
    '  O=indented',
    'P="unterminated',
    'Q=inside-string',
    '"',
    'cat <<EOF',
    'R=heredoc',
    'EOF',
    'S=after',
    'for x in 1; do T=loop; done',
    'U=after-loop',
    'V=\\x',
    'W=$(id)',
    'X=`id`',
  ].join('\n'));
  const got = Object.fromEntries(p.assignments.map((a) => [a.key, a.value]));
  t.same(got, {
    A: 'plain',
    B: 'single $NOT expanded',
    C: 'double plain and plain',
    D: 'plain/x',
    E: '',
    O: 'indented',
    S: 'after',
    U: 'after-loop',
  });
  const skippedLines = p.skipped.map((s) => s.line);
  t.same(skippedLines, [6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 18, 19, 20, 22, 24, 25, 26]);
  t.match(p.skipped.find((s) => s.line === 9)!.reason, /refers to \$UNKNOWN/);
  t.match(p.skipped.find((s) => s.line === 16)!.reason, /inside a quoted string/);
  t.match(p.skipped.find((s) => s.line === 19)!.reason, /here-document/);
});

t.test('a mapped key set by skipped code is an error, not a silent default', async (t) => {
  const text = 'HA_CLUSTER_IP=10.0.0.1\nif [ -e /x ]; then\n  HA_INTERFACE=eth7\nfi\n';
  let err: unknown;
  try { importVzhaipd(text, { source: 'c.conf' }); } catch (e) { err = e; }
  t.ok(err instanceof ConfigError);
  t.match((err as ConfigError).message, /^c\.conf:3: HA_INTERFACE is assigned on a line that was skipped \(is inside an if\/for\/while\/case block/);
  t.match(importVzhaipd('START_CMD="vzctl exec $CONTAINER_ID svc -u /s"\n', { ctid: '7' }).config.vip?.onMaster, ['vzctl', 'exec', '7', 'svc', '-u', '/s']);
  t.throws(() => importVzhaipd('START_CMD="vzctl exec $CONTAINER_ID svc -u /s"\n'), /START_CMD is assigned on a line that was skipped \(refers to \$CONTAINER_ID/);
});

t.test('bad values are errors naming the key', async (t) => {
  const cases: [string, RegExp][] = [
    ['HA_CLUSTER_IP=10.0.0.300\n', /^x\.conf:1: HA_CLUSTER_IP: "10\.0\.0\.300" is not an IPv4 address \(expected/],
    ['HA_INTERFACE=eth0:1\n', /^x\.conf:1: HA_INTERFACE: "eth0:1" is not an interface name/],
    ['HA_CLUSTER_IP_CHECK_INTERVAL=soon\n', /HA_CLUSTER_IP_CHECK_INTERVAL: "soon" is not a positive duration/],
    ['MASTER_FRESHNESS_CHECK_INTERVAL=0\n', /MASTER_FRESHNESS_CHECK_INTERVAL: "0" is not a positive duration/],
    ['ON_FAILURE_TAKE_OVER_AFTER=0\n', /ON_FAILURE_TAKE_OVER_AFTER: "0" is out of range/],
    ['ON_FAILURE_TAKE_OVER_AFTER=two\n', /ON_FAILURE_TAKE_OVER_AFTER: "two" is not an integer/],
    ['LOG_LEVEL=loud\n', /LOG_LEVEL: "loud" is not a vzhaipd log level/],
    ['LOG_FILE=relative.log\n', /LOG_FILE: "relative\.log" is not an absolute file path/],
    // Two unquoted words are shell (a command run with an env var): skipped, and as a mapped key, refused.
    ['CMD_VZCTL=/usr/sbin/vzctl --quiet\n', /CMD_VZCTL is assigned on a line that was skipped/],
    ['CMD_VZCTL="vzctl --quiet"\n', /CMD_VZCTL: "vzctl --quiet" is not a program name/],
  ];
  for (const [text, want] of cases) {
    let msg = '(no error)';
    try { importVzhaipd(text, { source: 'x.conf', ctid: '1' }); } catch (e) { msg = (e as Error).message; }
    t.match(msg, want, text);
  }
  t.throws(() => importVzhaipd('', { ctid: '-rf' }), /--ctid "-rf" is not a container ID/);
});

t.test('a failure interval longer than the check interval is clamped, with a warning naming both keys', async (t) => {
  // vzhaipd accepted it (the re-checks after a failure then came slower than the
  // normal ones); vigil requires failure_check_interval <= check_interval.
  const r = importVzhaipd('HA_CLUSTER_IP_CHECK_INTERVAL=2\nON_FAILURE_CHECK_INTERVAL=30\n', { source: 'x.conf', ctid: '1' });
  t.equal(r.config.vip!.failureCheckIntervalMs, 2000);
  t.equal(r.config.vip!.checkIntervalMs, 2000);
  t.match(r.warnings.join('\n'), /x\.conf:2: ON_FAILURE_CHECK_INTERVAL \(30s\) is longer than HA_CLUSTER_IP_CHECK_INTERVAL \(2s\): imported as 2s/);
  t.notMatch(r.yaml, /\/dev\/stdin/);
});

t.test('quotes in commands are passed literally, with a warning', async (t) => {
  const r = importVzhaipd(`START_CMD="svc -u '/service/a b'"\n`, { source: 'q.conf' });
  t.same(r.config.vip?.onMaster, ['svc', '-u', "'/service/a", "b'"], 'word-split exactly as vzhaipd did');
  t.match(r.warnings.join('\n'), /q\.conf:1: START_CMD holds quotes/);
});

t.test('config CLI: exit codes and usage', async (t) => {
  const missing = await capture(() => run(['import-vzhaipd', join(dir, 'nope.conf')]));
  t.equal(missing.code, 2);
  t.equal(missing.stderr, `vigil: cannot read ${join(dir, 'nope.conf')}: ENOENT\n`);
  t.equal(missing.stdout, '');
  const isDir = await capture(() => run(['import-vzhaipd', dir]));
  t.equal(isDir.code, 2);
  t.match(isDir.stderr, /not a regular file/);
  const bad = join(dir, 'bad.conf');
  fs.writeFileSync(bad, 'HA_CLUSTER_IP=nope\n');
  const badR = await capture(() => run(['import-vzhaipd', bad]));
  t.equal(badR.code, 2);
  t.match(badR.stderr, /HA_CLUSTER_IP: "nope" is not an IPv4 address/);
  t.equal(badR.stdout, '', 'no YAML is printed for a file that cannot be imported');
  t.equal((await capture(() => run([]))).code, 2);
  t.equal((await capture(() => run(['export']))).code, 2);
  t.equal((await capture(() => run(['import-vzhaipd']))).code, 2);
  t.equal((await capture(() => run(['import-vzhaipd', bad, '--bogus']))).code, 2);
  const help = await capture(() => run(['--help']));
  t.equal(help.code, 0);
  t.match(help.stdout, /usage: vigil config import-vzhaipd FILE/);
  t.equal((await capture(() => run(['import-vzhaipd', '--help']))).code, 0);
  const min = await capture(() => run(['import-vzhaipd', join(FIXTURES, 'vzhaipd-minimal.conf')]));
  t.equal(min.code, 0);
  t.equal(min.stderr, '');
  t.equal(parseConfigText(min.stdout, '/x.yml').vip?.address.address, '172.16.224.1');
});
