// The ipmitool driver with a fake runner: the argv it builds, the
// environment that carries the password, output parsing, and the
// credential rules (os_nova's default refused, group/other-readable
// password files refused through src/config/permissions.ts).
import t from 'tap';
import pino from 'pino';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IpmiTool } from '../../src/actions/bmc/ipmitool';
import type { CommandResult, RunOptions } from '../../src/actions/commands';
import { ConfigError } from '../../src/errors';
import { logLines } from '../support/log-lines';
import { scratchDir } from '../support/vigil';

const SECRET = 'Vigil-ipmi-5ecret';

function scratch(t: { teardown(fn: () => void): void }): string {
  const d = scratchDir('bmc');
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

function pwFile(dir: string, content: string, mode = 0o600): string {
  const f = path.join(dir, `pw-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(f, content, { mode });
  fs.chmodSync(f, mode);
  return f;
}

function recorder(reply: Partial<CommandResult>) {
  const calls: { argv: readonly string[]; opts: RunOptions }[] = [];
  const run = async (argv: readonly string[], opts: RunOptions): Promise<CommandResult> => {
    calls.push({ argv, opts });
    const code = reply.code === undefined ? 0 : reply.code;
    return { argv, code, signal: null, timedOut: false, stdout: '', stderr: '', durationMs: 5, ok: code === 0 && !reply.timedOut && !reply.spawnError, ...reply };
  };
  return { calls, run };
}

t.test('argv: -E, explicit cipher suite and retries, no password; the password only in the env', async (t) => {
  const dir = scratch(t);
  const { calls, run } = recorder({ stdout: 'Chassis Power is on\n' });
  const { lines, log } = logLines();
  const ipmi = new IpmiTool({ ip: '10.0.0.9', user: 'fence', passwordFile: pwFile(dir, `${SECRET}\nsecond line ignored\n`), program: '/opt/ipmitool' }, { run, log });
  t.same(await ipmi.powerStatus(), { state: 'on', detail: 'Chassis Power is on', durationMs: 5 });
  const { argv, opts } = calls[0]!;
  t.same(argv, ['/opt/ipmitool', '-I', 'lanplus', '-H', '10.0.0.9', '-p', '623', '-U', 'fence', '-E', '-C', '17', '-N', '1', '-R', '2', 'chassis', 'power', 'status']);
  t.notOk(argv.join(' ').includes(SECRET), 'password not in argv');
  t.equal(opts.env?.IPMITOOL_PASSWORD, SECRET, '-E reads IPMITOOL_PASSWORD first');
  t.equal(opts.env?.IPMI_PASSWORD, SECRET);
  t.same(Object.keys(opts.env ?? {}).sort(), ['IPMITOOL_PASSWORD', 'IPMI_PASSWORD', 'LC_ALL', 'PATH'], 'a minimal environment, nothing inherited');
  t.equal(opts.timeoutMs, 10_000);
  t.ok(lines.length > 0, 'the run is logged');
  t.notOk(lines.join('').includes(SECRET), 'password not in the log');
});

t.test('password_via file: -f with the checked file, no password in the env', async (t) => {
  const dir = scratch(t);
  const f = pwFile(dir, SECRET);
  const { calls, run } = recorder({ stdout: 'Chassis Power Control: Down/Off\n' });
  const ipmi = new IpmiTool({ ip: '10.0.0.9', port: 6230, user: 'fence', passwordFile: f, passwordVia: 'file', cipherSuite: 3 }, { run, log: pino({ level: 'silent' }) });
  t.same(await ipmi.power('off'), { ok: true, detail: 'Chassis Power Control: Down/Off', durationMs: 5 });
  t.match(calls[0]!.argv.join(' '), `/usr/bin/ipmitool -I lanplus -H 10.0.0.9 -p 6230 -U fence -f ${f} -C 3`);
  t.notOk(JSON.stringify(calls[0]!.opts.env).includes(SECRET));
});

t.test('anything but "Chassis Power is on|off" with exit 0 is unknown', async (t) => {
  const dir = scratch(t);
  const f = pwFile(dir, SECRET);
  const table: [Partial<CommandResult>, string | RegExp, string][] = [
    [{ code: 1, stderr: 'Error: Unable to establish IPMI v2 / RMCP+ session\n' }, /exit 1: Error: Unable to establish/, 'EBMCSESSION'],
    [{ code: 1, stderr: 'Could not open socket!\nError: Unable to establish IPMI v2 / RMCP+ session\n' }, /Could not open socket/, 'EBMCUNREACHABLE'],
    [{ code: 0, stdout: 'Chassis Power is offline\n' }, /exit 0: Chassis Power is offline/, 'EBMCOUTPUT'],
    [{ code: 1, stdout: 'Chassis Power is off\n' }, /exit 1/, 'EBMCREFUSED'],
    [{ code: null, timedOut: true }, 'ipmitool killed after 10000 ms', 'EBMCTIMEOUT'],
    [{ code: null, spawnError: 'ENOENT' }, 'ipmitool could not start: ENOENT', 'EBMCSPAWN'],
    [{ code: 1, stderr: `echo of ${SECRET} by a broken wrapper` }, /\[redacted\]/, 'EBMCREFUSED'],
  ];
  for (const [reply, detail, code] of table) {
    const { run } = recorder(reply);
    const r = await new IpmiTool({ ip: '10.0.0.9', user: 'fence', passwordFile: f }, { run, log: pino({ level: 'silent' }) }).powerStatus();
    t.equal(r.state, 'unknown', JSON.stringify(reply));
    t.match(r.detail, detail);
    t.equal(r.code, code);
    t.notOk(r.detail.includes(SECRET));
  }
  const { run } = recorder({ code: 1, stderr: 'Set Chassis Power Control to Cycle failed: Invalid data field in request' });
  const a = await new IpmiTool({ ip: '10.0.0.9', user: 'fence', passwordFile: f }, { run, log: pino({ level: 'silent' }) }).power('cycle');
  t.equal(a.ok, false);
  t.match(a.detail, /Invalid data field/);
});

t.test("os_nova's default credentials and loose password files are refused", async (t) => {
  const dir = scratch(t);
  const mk = (o: { user?: string; passwordFile: string }) => () => new IpmiTool({ ip: '10.0.0.9', user: o.user ?? 'fence', passwordFile: o.passwordFile }, { run: recorder({}).run });
  t.throws(mk({ user: 'test', passwordFile: pwFile(dir, 'Test123.\n') }), { name: 'ConfigError', message: /os_nova's default password \(with its default user, N-18\)/ });
  t.throws(mk({ user: 'admin', passwordFile: pwFile(dir, 'Test123.') }), /default password/, 'the default password with any user');
  const err = (() => { try { mk({ passwordFile: pwFile(dir, 'Test123.') })(); } catch (e) { return e as ConfigError; } return undefined; })();
  t.notOk(err?.message.includes('Test123.'), 'the message never repeats the password');
  t.throws(mk({ passwordFile: pwFile(dir, SECRET, 0o640) }), /mode 0640 \(group\/world-accessible\)/, 'group-readable refused');
  t.throws(mk({ passwordFile: pwFile(dir, SECRET, 0o604) }), /mode 0604/, 'world-readable refused');
  t.throws(mk({ passwordFile: path.join(dir, 'missing') }), /does not exist/);
  t.throws(mk({ passwordFile: pwFile(dir, '\n') }), /is empty/);
  t.throws(mk({ passwordFile: pwFile(dir, 'x'.repeat(21)) }), /longer than IPMI's 20 bytes/);
  t.throws(mk({ user: '-P', passwordFile: pwFile(dir, SECRET) }), /not a valid BMC user name/);
  t.throws(() => new IpmiTool({ ip: 'bmc.example', user: 'fence', passwordFile: pwFile(dir, SECRET) }), /not an IPv4 address/);
  t.throws(() => new IpmiTool({ ip: '10.0.0.9', user: 'fence', passwordFile: pwFile(dir, SECRET), program: 'ipmitool' }), /absolute path/);
  const link = path.join(dir, 'link');
  fs.symlinkSync(pwFile(dir, SECRET), link);
  t.throws(mk({ passwordFile: link }), /symbolic link/);
});
