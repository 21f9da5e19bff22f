// A role's fence section in the operator's words → typed method and timing;
// every refusal names the key and what was expected.
import t from 'tap';
import { parseFenceSection } from '../../src/actions/bmc/config';
import { ConfigError } from '../../src/errors';

t.test('ipmi with every key', async (t) => {
  const r = parseFenceSection({
    method: 'ipmi', ip: '10.1.0.21', port: 6230, user: 'fence', password_file: '/etc/vigil/bmc/cmp-01.pw', password_via: 'file',
    program: '/usr/bin/ipmitool', cipher_suite: 3, retries: 2, retry_timeout: 1, command_timeout: '8s', power_timeout: '20s', power_wait: 2,
  });
  t.same(r, {
    method: { method: 'ipmi', ip: '10.1.0.21', port: 6230, user: 'fence', passwordFile: '/etc/vigil/bmc/cmp-01.pw', passwordVia: 'file',
      program: '/usr/bin/ipmitool', cipherSuite: 3, retries: 2, tryTimeoutS: 1, commandTimeoutMs: 8000 },
    timing: { powerTimeoutMs: 20_000, powerWaitMs: 2000 },
  });
});

t.test('redfish and command (confirmed by a BMC)', async (t) => {
  t.same(parseFenceSection({ method: 'redfish', ip: '10.1.0.22', user: 'fence', password_file: '/p', fingerprint: 'ab'.repeat(32), request_timeout: '3s' }).method,
    { method: 'redfish', ip: '10.1.0.22', user: 'fence', passwordFile: '/p', fingerprint: 'ab'.repeat(32), requestTimeoutMs: 3000 });
  const c = parseFenceSection({ method: 'command', argv: ['/usr/local/sbin/pdu-off', 'cmp-01'], confirm: { method: 'ipmi', ip: '10.1.0.21', user: 'fence', password_file: '/p' } });
  t.same(c, { method: { method: 'command', argv: ['/usr/local/sbin/pdu-off', 'cmp-01'], confirm: { method: 'ipmi', ip: '10.1.0.21', user: 'fence', passwordFile: '/p' } }, timing: {} });
});

t.test('refusals name the key', async (t) => {
  const bad: [unknown, RegExp][] = [
    [{ ip: '10.0.0.1' }, /fence.method is missing/],
    [{ method: 'ssh' }, /fence.method: "ssh" is not one of ipmi, redfish, command/],
    [{ method: 'ipmi', ip: '10.0.0.1', user: 'u', password_file: '/p', password: 'x' }, /fence.password is not a key of the ipmi method/],
    [{ method: 'ipmi', ip: '10.0.0.1', user: 'u' }, /fence.password_file is missing/],
    [{ method: 'ipmi', ip: '10.0.0.1', user: 'u', password_file: '/p', power_wait: 'soon' }, /fence.power_wait: "soon" is not a duration/],
    [{ method: 'ipmi', ip: '10.0.0.1', user: 'u', password_file: '/p', port: 70000 }, /fence.port: 70000 is not an integer from 1 to 65535/],
    [{ method: 'command', argv: '/bin/off' }, /fence.argv: expected a list of strings/],
    [{ method: 'command' }, /fence.argv is missing/],
    [{ method: 'command', argv: ['/a'], confirm: { method: 'command', argv: ['/b'] } }, /a command cannot confirm a command/],
    [{ method: 'redfish', ip: '10.0.0.1', user: 'u', password_file: '/p', auth: 'digest' }, /fence.auth: "digest" is not one of session, basic/],
  ];
  for (const [section, re] of bad) t.throws(() => parseFenceSection(section), re, JSON.stringify(section));
  t.throws(() => parseFenceSection(null), ConfigError);
});
