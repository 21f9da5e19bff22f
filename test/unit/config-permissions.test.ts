// Unit (real files under a mkdtemp dir): owner/mode checks of the config, key, IP files and directories.
import t from 'tap';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { ConfigError } from '../../src/errors';
import { checkSecureDir, checkSecureFile, formatMode, readSecureFile } from '../../src/config/permissions';
import { loadConfig } from '../../src/config/load';

const isRoot = process.geteuid?.() === 0;
const root = fs.mkdtempSync(join(tmpdir(), 'vigil-perm-'));
t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));

let n = 0;
/** A fresh file with the given mode (chmod after create, so the umask does not interfere). */
function file(mode: number, text = 'x\n', dir = root): string {
  const p = join(dir, `f${n++}`);
  fs.writeFileSync(p, text);
  fs.chmodSync(p, mode);
  return p;
}
function dir(mode: number): string {
  const p = join(root, `d${n++}`);
  fs.mkdirSync(p);
  fs.chmodSync(p, mode);
  return p;
}

function message(fn: () => unknown): string {
  try { fn(); } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  return '(no error)';
}

const OWNER = isRoot ? 'owner root' : `owner root (or uid ${process.geteuid?.()}, the user running vigil)`;

t.test('formatMode', async (t) => {
  t.equal(formatMode(0o100644), '0644');
  t.equal(formatMode(0o600), '0600');
  t.equal(formatMode(0o41777), '01777');
  t.equal(formatMode(0o007), '0007');
});

t.test('config files: 0644 and stricter pass, group/world-writable is refused', async (t) => {
  for (const mode of [0o644, 0o640, 0o600, 0o400, 0o444]) {
    t.doesNotThrow(() => checkSecureFile(file(mode), 'config'), `mode ${formatMode(mode)} accepted`);
  }
  for (const mode of [0o666, 0o664, 0o646, 0o620, 0o602, 0o777]) {
    const p = file(mode);
    t.equal(message(() => checkSecureFile(p, 'config')),
      `config file ${p} has mode ${formatMode(mode)} (group/world-writable); expected ${OWNER} and mode 0644 or stricter`,
      `mode ${formatMode(mode)} refused`);
  }
});

t.test('IP files follow the config rule', async (t) => {
  t.doesNotThrow(() => checkSecureFile(file(0o644), 'ip-file'));
  const p = file(0o666);
  t.equal(message(() => checkSecureFile(p, 'ip-file')), `IP file ${p} has mode 0666 (group/world-writable); expected ${OWNER} and mode 0644 or stricter`);
});

t.test('key files: 0600 or stricter, no group/other bits at all', async (t) => {
  for (const mode of [0o600, 0o400]) t.doesNotThrow(() => checkSecureFile(file(mode), 'key'), `mode ${formatMode(mode)} accepted`);
  for (const mode of [0o640, 0o644, 0o604, 0o601, 0o610]) {
    const p = file(mode);
    t.equal(message(() => checkSecureFile(p, 'key')),
      `key file ${p} has mode ${formatMode(mode)} (group/world-accessible); expected ${OWNER} and mode 0600 or stricter`,
      `mode ${formatMode(mode)} refused`);
  }
  const p = file(0o644);
  t.match(message(() => checkSecureFile(p, 'key', { label: 'token file (agent a)' })), new RegExp(`^token file \\(agent a\\) ${p} has mode 0644`));
});

t.test('a symlink is refused, even to a good file', async (t) => {
  const target = file(0o600);
  const link = join(root, `link${n++}`);
  fs.symlinkSync(target, link);
  for (const kind of ['config', 'key', 'ip-file'] as const) {
    t.match(message(() => checkSecureFile(link, kind)), new RegExp(`${link} is a symbolic link; expected a regular file`), kind);
  }
  t.match(message(() => readSecureFile(link, 'config')), /is a symbolic link/);
  const dangling = join(root, `dangling${n++}`);
  fs.symlinkSync(join(root, 'nowhere'), dangling);
  t.match(message(() => checkSecureFile(dangling, 'config')), /is a symbolic link/);
});

t.test('a file not owned by root is refused', { skip: isRoot ? false : 'needs root to chown' }, async (t) => {
  const p = file(0o644);
  fs.chownSync(p, 65534, 65534);
  t.equal(message(() => checkSecureFile(p, 'config')), `config file ${p} is owned by uid 65534; expected owner root and mode 0644 or stricter`);
  const k = file(0o600);
  fs.chownSync(k, 65534, 0);
  t.match(message(() => checkSecureFile(k, 'key')), `key file ${k} is owned by uid 65534`);
  // Group ownership alone does not matter while the group cannot write.
  const g = file(0o640);
  fs.chownSync(g, 0, 65534);
  t.doesNotThrow(() => checkSecureFile(g, 'config'));
});

t.test('missing files, directories and FIFOs', async (t) => {
  const missing = join(root, 'missing.yml');
  t.equal(message(() => checkSecureFile(missing, 'config')), `config file ${missing} does not exist`);
  const d = dir(0o755);
  t.equal(message(() => checkSecureFile(d, 'config')), `config file ${d} is not a regular file; expected a regular file`);
  const fifo = join(root, `fifo${n++}`);
  execFileSync('mkfifo', ['-m', '0600', fifo]);
  // Must answer at once rather than block opening the FIFO.
  t.match(message(() => readSecureFile(fifo, 'config')), /is not a regular file/);
  const notDir = join(file(0o644), 'x');
  t.match(message(() => checkSecureFile(notDir, 'config')), /does not exist/);
});

t.test('the directory holding a trusted file must not be writable by others', async (t) => {
  const open = dir(0o777);
  const p = file(0o644, 'x', open);
  t.equal(message(() => checkSecureFile(p, 'config')),
    `config file ${p} is in directory ${open} with mode 0777 (group/world-writable); expected a directory owned by root that only root can write`);
  const sticky = dir(0o1777);
  t.doesNotThrow(() => checkSecureFile(file(0o644, 'x', sticky), 'config'), 'a sticky directory (like /tmp) is fine: only the owner can replace the file');
  if (isRoot) {
    const theirs = dir(0o755);
    const q = file(0o644, 'x', theirs);
    fs.chownSync(theirs, 65534, 65534);
    t.match(message(() => checkSecureFile(q, 'config')), `is in directory ${theirs} owned by uid 65534`);
  }
});

t.test('readSecureFile reads what it checked, within a size bound', async (t) => {
  const p = file(0o600, 'secret\n');
  t.equal(readSecureFile(p, 'key'), 'secret\n');
  const big = file(0o644, 'x'.repeat(2048));
  t.equal(message(() => readSecureFile(big, 'config', { maxBytes: 1024 })), `config file ${big} is 2048 bytes; expected at most 1024`);
  const bad = file(0o666, 'x');
  t.match(message(() => readSecureFile(bad, 'config')), /has mode 0666/);
});

t.test('checkSecureDir', async (t) => {
  t.doesNotThrow(() => checkSecureDir(dir(0o755)));
  t.doesNotThrow(() => checkSecureDir(dir(0o700)));
  for (const mode of [0o777, 0o775, 0o1777, 0o757]) {
    const d = dir(mode);
    t.equal(message(() => checkSecureDir(d, 'PID file directory')),
      `PID file directory ${d} has mode ${formatMode(mode)} (group/world-writable); expected a directory with ${OWNER} and mode 0755 or stricter`,
      `mode ${formatMode(mode)} refused`);
  }
  const target = dir(0o755);
  const link = join(root, `dlink${n++}`);
  fs.symlinkSync(target, link);
  t.match(message(() => checkSecureDir(link, 'state_dir')), new RegExp(`^state_dir ${link} is a symbolic link`));
  const missing = join(root, 'nodir');
  t.equal(message(() => checkSecureDir(missing)), `directory ${missing} does not exist`);
  t.match(message(() => checkSecureDir(file(0o644))), /is not a directory/);
  if (isRoot) {
    const d = dir(0o755);
    fs.chownSync(d, 65534, 65534);
    t.match(message(() => checkSecureDir(d)), `directory ${d} is owned by uid 65534`);
  }
});

t.test('loadConfig checks the config file and the files it names', async (t) => {
  const vip = 'vip: { interface: eth0, address: 10.0.0.1 }\n';
  const good = file(0o644, vip);
  t.equal(loadConfig(good).vip?.address.address, '10.0.0.1');

  const loose = file(0o666, vip);
  t.match(message(() => loadConfig(loose)), `config file ${loose} has mode 0666`);
  t.equal(loadConfig(loose, { checkPermissions: false }).vip?.interface, 'eth0', 'checkPermissions: false skips the checks');
  t.equal(message(() => loadConfig(join(root, 'absent.yml'), { checkPermissions: false })), `config file ${join(root, 'absent.yml')} does not exist`);

  const key = file(0o644, 'k');
  const withKey = file(0o644, `fence_handler: { key_file: ${key} }\n`);
  t.match(message(() => loadConfig(withKey)), `key file ${key} has mode 0644 (group/world-accessible)`);
  fs.chmodSync(key, 0o600);
  t.equal(loadConfig(withKey).fenceHandler?.keyFile, key);
  const missingKey = file(0o644, `fence_handler: { key_file: ${join(root, 'nokey')} }\n`);
  t.match(message(() => loadConfig(missingKey)), /key file .*nokey does not exist/);

  const tok = file(0o640, 't');
  const withTok = file(0o644, `fence: { agents: [ { name: lan, url: "http://127.0.0.1:8500", token_file: ${tok} } ] }\n`);
  t.match(message(() => loadConfig(withTok)), `token file (agent lan) ${tok} has mode 0640`);

  const ips = join(root, `ips${n++}`);
  const withIps = file(0o644, `vip: { interface: eth0, address: 10.0.0.1, ip_file: ${ips} }\n`);
  t.doesNotThrow(() => loadConfig(withIps), 'a missing IP file is allowed (the HA IP only)');
  fs.writeFileSync(ips, '10.0.0.2\n');
  fs.chmodSync(ips, 0o666);
  t.match(message(() => loadConfig(withIps)), `IP file ${ips} has mode 0666`);
});
