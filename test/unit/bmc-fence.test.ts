// The confirmed power-off, table-driven with a fake clock and fake BMC
// drivers: no sleeps, no sockets. "Off" only when the BMC reads off;
// everything else — refusal, silence, a lie caught by the host check, a
// timeout — is `unconfirmed`, with its evidence.
import t from 'tap';
import pino from 'pino';
import { CommandPower, fenceTiming, powerOffConfirmed, type Clock, type HostCheck } from '../../src/actions/bmc/fence';
import type { CommandResult } from '../../src/actions/commands';
import type { ActionOutcome, PowerDriver, PowerReading, PowerState } from '../../src/actions/bmc/types';
import { ConfigError } from '../../src/errors';
import { logLines } from '../support/log-lines';
import { scratchDir } from '../support/vigil';
import * as fs from 'node:fs';
import * as path from 'node:path';

function fakeClock(): Clock & { sleeps: number[] } {
  let now = 0;
  const sleeps: number[] = [];
  return { sleeps, now: () => now, sleep: async (ms) => { sleeps.push(ms); now += ms; } };
}

/** A driver whose reads follow `states` (the last repeats); each read costs `readMs` on the fake clock. */
function fakeDriver(clock: Clock & { sleeps: number[] }, action: Partial<ActionOutcome>, states: PowerState[], readMs = 0): PowerDriver & { reads: number } {
  let i = 0;
  const d = {
    method: 'fake', target: 'bmc-under-test', reads: 0,
    power: async (): Promise<ActionOutcome> => ({ ok: true, detail: 'accepted', durationMs: 0, ...action }),
    powerStatus: async (): Promise<PowerReading> => {
      d.reads++;
      await clock.sleep(readMs);
      const state = states[Math.min(i++, states.length - 1)]!;
      return { state, detail: `reads ${state}`, durationMs: readMs };
    },
  };
  return d;
}

const quiet = pino({ level: 'silent' });

const cases: { name: string; action?: Partial<ActionOutcome>; states: PowerState[]; readMs?: number; hostCheck?: Awaited<ReturnType<HostCheck>>['state']; outcome: 'off' | 'unconfirmed'; reads: number; endsBy: number }[] = [
  { name: 'off at the first read', states: ['off'], outcome: 'off', reads: 1, endsBy: 0 },
  { name: 'on, on, then off', states: ['on', 'on', 'off'], outcome: 'off', reads: 3, endsBy: 4000 },
  { name: 'never off: unconfirmed at power_timeout', states: ['on'], outcome: 'unconfirmed', reads: 11, endsBy: 20_000 },
  { name: 'BMC does not answer (unknown) is never off', action: { ok: false, detail: 'no answer' }, states: ['unknown'], outcome: 'unconfirmed', reads: 11, endsBy: 20_000 },
  { name: 'action refused but the BMC reads off: confirmed by the read', action: { ok: false, detail: 'HTTP 409' }, states: ['off'], outcome: 'off', reads: 1, endsBy: 0 },
  { name: 'unknown then off', states: ['unknown', 'off'], outcome: 'off', reads: 2, endsBy: 2000 },
  { name: 'slow reads count against power_timeout', states: ['on'], readMs: 3000, outcome: 'unconfirmed', reads: 5, endsBy: 23_000 },
  { name: 'BMC says off but the host still answers (a lie)', states: ['off'], hostCheck: 'answers', outcome: 'unconfirmed', reads: 1, endsBy: 0 },
  { name: 'BMC says off, host check cannot tell', states: ['off'], hostCheck: 'unknown', outcome: 'unconfirmed', reads: 1, endsBy: 0 },
  { name: 'BMC says off and the host is silent', states: ['on', 'off'], hostCheck: 'silent', outcome: 'off', reads: 2, endsBy: 2000 },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const clock = fakeClock();
    const driver = fakeDriver(clock, c.action ?? {}, c.states, c.readMs ?? 0);
    const hostCheck: HostCheck | undefined = c.hostCheck ? async () => ({ state: c.hostCheck!, detail: `host ${c.hostCheck}` }) : undefined;
    const r = await powerOffConfirmed(driver, { powerTimeoutMs: 20_000, powerWaitMs: 2000 }, { clock, log: quiet, ...(hostCheck ? { hostCheck } : {}) });
    t.equal(r.outcome, c.outcome);
    t.equal(driver.reads, c.reads, 'power-state reads');
    t.ok(r.durationMs <= c.endsBy, `ended by ${c.endsBy} ms on the fake clock (took ${r.durationMs})`);
    t.ok(clock.sleeps.every((s) => s === 2000 || s === (c.readMs ?? 0)), 'waits are power_wait');
    t.equal(r.evidence[0]!.step, 'action', 'the action comes first in the evidence');
    if (c.outcome === 'unconfirmed' && !c.hostCheck) t.equal(r.evidence.at(-1)!.step, 'timeout');
    if (c.hostCheck) t.equal(r.evidence.at(-1)!.step, 'host-check');
  });
}

t.test('a host check that throws is unknown, so unconfirmed', async (t) => {
  const clock = fakeClock();
  const r = await powerOffConfirmed(fakeDriver(clock, {}, ['off']), {}, { clock, log: quiet, hostCheck: async () => { throw new Error('EPERM on the ARP socket'); } });
  t.equal(r.outcome, 'unconfirmed');
  t.match(r.evidence.at(-1), { step: 'host-check', state: 'unknown', detail: /EPERM/ });
});

t.test('timing is checked', async (t) => {
  t.same(fenceTiming(), { powerTimeoutMs: 20_000, powerWaitMs: 2000 }, "fence_ipmilan's defaults");
  t.throws(() => fenceTiming({ powerWaitMs: 0 }), ConfigError);
  t.throws(() => fenceTiming({ powerTimeoutMs: 1000, powerWaitMs: 2000 }), /power_timeout 1000 ms is shorter than power_wait 2000 ms/);
});

t.test('the decision is logged with its evidence', async (t) => {
  const { lines, log } = logLines();
  const clock = fakeClock();
  await powerOffConfirmed(fakeDriver(clock, {}, ['unknown']), { powerTimeoutMs: 4000, powerWaitMs: 2000 }, { clock, log });
  const last = JSON.parse(lines.at(-1)!) as { msg: string; outcome: string; evidence: unknown[]; method: string };
  t.equal(last.msg, 'fence-unconfirmed');
  t.equal(last.method, 'fake');
  t.equal(last.evidence.length, 5, 'action, 3 reads, timeout');
});

/** A runner that answers by argv[0] and records what it ran. */
function fakeRunner(answers: Record<string, Partial<CommandResult>>) {
  const ran: string[][] = [];
  const run = async (argv: readonly string[]): Promise<CommandResult> => {
    ran.push([...argv]);
    const a = answers[argv[0]!] ?? {};
    return { argv, code: 0, signal: null, timedOut: false, stdout: '', stderr: '', durationMs: 1, ok: (a.code ?? 0) === 0 && !a.timedOut, ...a };
  };
  return { ran, run };
}

t.test('command method: action argv, confirmed by a status argv', async (t) => {
  const { ran, run } = fakeRunner({ '/opt/fence': {}, '/opt/status': { stdout: 'checking\nChassis Power is off\n' } });
  const clock = fakeClock();
  const r = await powerOffConfirmed({ method: 'command', argv: ['/opt/fence', 'cmp-01'], statusArgv: ['/opt/status', 'cmp-01'] }, {}, { clock, run, log: quiet });
  t.equal(r.outcome, 'off');
  t.same(ran, [['/opt/fence', 'cmp-01'], ['/opt/status', 'cmp-01']]);
});

t.test('command method without a way to confirm is never off', async (t) => {
  const { run } = fakeRunner({ '/opt/fence': {} });
  const clock = fakeClock();
  const r = await powerOffConfirmed({ method: 'command', argv: ['/opt/fence'] }, { powerTimeoutMs: 2000, powerWaitMs: 1000 }, { clock, run, log: quiet });
  t.equal(r.outcome, 'unconfirmed');
  t.match(r.evidence[1]!.detail, /cannot be confirmed/);
});

t.test('command method: a failing status command is unknown, not off', async (t) => {
  const { run } = fakeRunner({ '/opt/fence': {}, '/opt/status': { code: 1, stdout: 'off' } });
  const p = new CommandPower({ argv: ['/opt/fence'], statusArgv: ['/opt/status'] }, { run });
  t.equal((await p.powerStatus()).state, 'unknown');
  t.throws(() => new CommandPower({ argv: ['fence'] }), /absolute path/);
  t.equal((await p.power('on')).ok, false, 'only off');
});

t.test('command method confirmed by an ipmi BMC: the status read goes through ipmitool', async (t) => {
  const dir = scratchDir('bmc-fence');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pw = path.join(dir, 'pw');
  fs.writeFileSync(pw, 'a-real-secret\n', { mode: 0o600 });
  const { ran, run } = fakeRunner({ '/opt/pdu-off': {}, '/usr/bin/ipmitool': { stdout: 'Chassis Power is off\n' } });
  const clock = fakeClock();
  const r = await powerOffConfirmed({ method: 'command', argv: ['/opt/pdu-off', 'outlet-7'], confirm: { method: 'ipmi', ip: '10.0.0.9', user: 'fence', passwordFile: pw } }, {}, { clock, run, log: quiet });
  t.equal(r.outcome, 'off');
  t.equal(r.method, 'command');
  t.same(ran.map((a) => a[0]), ['/opt/pdu-off', '/usr/bin/ipmitool']);
  t.same(ran[1]!.slice(-3), ['chassis', 'power', 'status']);
});
