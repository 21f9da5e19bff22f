// The ipmi method for real: Debian's ipmi_sim as host `bmc`'s BMC on its
// lab address (UDP 623), driven from host `ctl` by the real ipmitool (through
// a wrapper that records its argv and environment names) and probed by
// vigil's own UDP 623 prober.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { skipUnlessRoot } from '../support/lab';
import { testLab, waitFor } from '../support/vigil';
import { recordingIpmitool, startIpmiSim } from '../support/ipmi-sim';
import { probeBmc } from '../../src/net/bmc/prober';
import { powerOffConfirmed, type IpmiMethod } from '../../src/actions/bmc/fence';
import { IpmiTool } from '../../src/actions/bmc/ipmitool';
import { logLines } from '../support/log-lines';

// As root a missing tool throws (fails the file), never skips: .ci/run installs openipmi and ipmitool.
if (skipUnlessRoot(t, ['ipmi_sim', 'ipmitool'])) process.exit(0);

const USER = 'vigilfence';

t.test('ipmi_sim in the lab: presence, confirmed power-off, unreachable BMC', async (t) => {
  const { lab, dir } = await testLab(t, ['bmc', 'ctl'], 'bmc');
  const bmc = lab.host('bmc');
  const ctl = lab.host('ctl');
  // 16 hex chars: under IPMI's 20-byte limit, and unique to this run so a grep finds only leaks.
  const secret = randomBytes(8).toString('hex');
  const pwFile = path.join(dir, 'bmc.pw');
  fs.writeFileSync(pwFile, `${secret}\n`, { mode: 0o600 });
  const sim = startIpmiSim(bmc, dir, USER, secret);
  const wrapper = recordingIpmitool(dir, ctl);
  // Per-try 300 ms × 3 tries: the prober's own bound is 900 ms.
  const probe = { tryTimeoutMs: 300, tries: 3 };
  const probeBoundMs = probe.tryTimeoutMs * probe.tries + 200;

  const up = await waitFor(async () => {
    const r = await ctl.inNetns(() => probeBmc(sim.ip, probe));
    return r.status === 'up' ? r : undefined;
  }, 5000, `ipmi_sim answering on ${sim.ip}:623 (output: ${sim.output()})`);
  t.equal(up.status, 'up', 'presence: up');
  t.equal(up.ipmi20, true, 'ipmi_sim announces IPMI 2.0 in Auth-Cap');
  t.ok((up.latencyMs ?? 1e9) < probe.tryTimeoutMs * probe.tries, `latency ${up.latencyMs} ms`);
  const pong = await ctl.inNetns(() => probeBmc(sim.ip, { ...probe, authCap: false }));
  t.match(pong, { status: 'up', pong: true, detail: 'Presence Pong answered' }, 'ipmi_sim answers the ASF Presence Ping');
  const capOnly = await ctl.inNetns(() => probeBmc(sim.ip, { ...probe, ping: false }));
  t.match(capOnly, { status: 'up', detail: 'Auth-Cap answered', ipmi20: true }, 'and Auth-Cap alone');

  const { lines, log } = logLines();
  const timing = { powerTimeoutMs: 6000, powerWaitMs: 500 };
  const method: IpmiMethod = { method: 'ipmi', ip: sim.ip, user: USER, passwordFile: pwFile, program: wrapper.program, cipherSuite: 3, retries: 1, commandTimeoutMs: 4000 };
  const status = new IpmiTool(method, { log });
  t.equal((await status.powerStatus()).state, 'on', 'ipmitool reads Chassis Power is on');

  const fenced = await powerOffConfirmed(method, timing, { log });
  t.equal(fenced.outcome, 'off', JSON.stringify(fenced.evidence));
  t.match(fenced.evidence[0], { step: 'action', ok: true, detail: 'Chassis Power Control: Down/Off' });
  t.match(fenced.evidence.at(-1), { step: 'status', state: 'off', detail: 'Chassis Power is off' });
  t.equal(sim.power(), '0', 'the simulator was told power 0');

  // What reached ipmitool: never the secret in argv; the secret only by env name.
  const runs = wrapper.runs();
  t.ok(runs.length >= 3, `${runs.length} ipmitool runs recorded`);
  for (const r of runs) {
    t.notOk(r.cmdline.join(' ').includes(secret), `argv has no password: ${r.cmdline.slice(1).join(' ')}`);
    t.ok(r.cmdline.includes('-E'), '-E: password from the environment');
    t.ok(r.envNames.includes('IPMITOOL_PASSWORD'), 'IPMITOOL_PASSWORD set for the child');
  }
  t.notOk(lines.join('').includes(secret), 'password not in any log line');
  t.ok(lines.some((l) => l.includes('fence confirmed')), 'the decision was logged');

  // password_via file: ipmitool reads the checked file with -f; nothing in the env.
  sim.setPower(true);
  const viaFile = await powerOffConfirmed({ ...method, passwordVia: 'file' }, timing, { log });
  t.equal(viaFile.outcome, 'off', JSON.stringify(viaFile.evidence));
  const last = wrapper.runs().filter((r) => r.cmdline.includes('-f'));
  t.ok(last.length > 0 && last.every((r) => !r.envNames.includes('IPMITOOL_PASSWORD') && !r.cmdline.join(' ').includes(secret)), '-f runs: no env password, no argv password');

  // A wrong password is a refusal, not "off".
  const badPw = path.join(dir, 'bad.pw');
  fs.writeFileSync(badPw, 'not-the-password\n', { mode: 0o600 });
  sim.setPower(true);
  const refused = await powerOffConfirmed({ ...method, passwordFile: badPw }, { powerTimeoutMs: 1000, powerWaitMs: 500 }, { log });
  t.equal(refused.outcome, 'unconfirmed');
  t.match(refused.evidence[0], { code: 'EBMCSESSION', detail: /Unable to establish IPMI v2 \/ RMCP\+ session/ });
  t.equal(sim.power(), '1', 'still on');

  // No simulator: the address answers with ICMP port unreachable → down at once.
  sim.proc.kill('SIGKILL');
  await new Promise((r) => sim.proc.once('exit', r));
  const t0 = Date.now();
  const refusedProbe = await ctl.inNetns(() => probeBmc(sim.ip, probe));
  t.equal(refusedProbe.status, 'down', `no simulator: ${refusedProbe.detail}`);
  t.ok(Date.now() - t0 <= probeBoundMs, `expected down by ${probeBoundMs} ms`);

  // The BMC's link cut: silence (or failed ARP) → down within the probe's bound; fence unconfirmed.
  await bmc.cutLink();
  const t1 = Date.now();
  const gone = await ctl.inNetns(() => probeBmc(sim.ip, probe));
  const tookProbe = Date.now() - t1;
  t.equal(gone.status, 'down', `link cut: ${gone.detail}`);
  t.ok(tookProbe <= probeBoundMs, `expected presence down by ${probeBoundMs} ms (${probe.tries} × ${probe.tryTimeoutMs} ms), took ${tookProbe} ms`);

  const fenceTiming = { powerTimeoutMs: 2000, powerWaitMs: 1000 };
  // The action and each read are bounded by command_timeout (+ the kill grace);
  // the last read may start just before power_timeout ends.
  const fenceBoundMs = (method.commandTimeoutMs! + 500) * 2 + fenceTiming.powerTimeoutMs + 1000;
  const t2 = Date.now();
  const unconfirmed = await powerOffConfirmed(method, fenceTiming, { log });
  const tookFence = Date.now() - t2;
  t.equal(unconfirmed.outcome, 'unconfirmed', 'a BMC that does not answer is never fenced');
  t.ok(unconfirmed.evidence.every((e) => e.state !== 'off'));
  t.ok(unconfirmed.evidence.filter((e) => e.step !== 'timeout').every((e) => e.code === 'EBMCSESSION' || e.code === 'EBMCTIMEOUT'), `every step says why: ${unconfirmed.evidence.map((e) => e.code).join(', ')}`);
  t.ok(tookFence <= fenceBoundMs, `expected fence-unconfirmed by ${fenceBoundMs} ms (command_timeout ${method.commandTimeoutMs} ms, power_timeout ${fenceTiming.powerTimeoutMs} ms), took ${tookFence} ms`);
  t.notOk(lines.join('').includes(secret), 'still no password in the log');
});
