// The group engine over fake members: order, verification, roll-back,
// reverse stop with on_stop_failure, idempotence, preflight, dry run.
import t from 'tap';
import { GroupEngine } from '../../../../src/roles/group/engine';
import { EXIT } from '../../../../src/roles/group/types';
import { deps, fakeMember } from './fakes';

const five = (log: string[], opts: Record<number, Parameters<typeof fakeMember>[2]> = {}) =>
  [1, 2, 3, 4, 5].map((i) => fakeMember(`m${i}`, log, opts[i]));

t.test('activate starts in order, with hooks around', async (t) => {
  const log: string[] = [];
  const ms = five(log);
  const r = await new GroupEngine(deps(ms, log, { cfg: { hooks: { before_start: ['x'], after_start: ['y'] } } })).activate();
  t.equal(r.exit, EXIT.OK);
  t.same(log.filter((l) => !l.startsWith('validate')), ['hook before_start', 'start m1', 'start m2', 'start m3', 'start m4', 'start m5', 'hook after_start']);
  t.equal(r.state, 'active 5/5');
});

t.test('member 3 of 5 fails: 2 and 1 stopped in reverse, exit 4 naming the step and its output', async (t) => {
  const log: string[] = [];
  const ms = five(log, { 3: { failStart: true } });
  const r = await new GroupEngine(deps(ms, log)).activate();
  t.equal(r.exit, EXIT.ROLLED_BACK);
  t.same(log.filter((l) => !l.startsWith('validate')), ['start m1', 'start m2', 'start m3', 'stop m2', 'stop m1']);
  t.match(r.summary, /step 3\/5 \(m3\) failed: m3 broke; output: last words; rolled back/);
  t.notOk(ms.some((m) => m.running));
});

t.test('a start whose monitor does not confirm counts as failed, and that member is stopped too', async (t) => {
  const log: string[] = [];
  const ms = five(log, { 2: { startButNotRunning: true } });
  const r = await new GroupEngine(deps(ms, log)).activate();
  t.equal(r.exit, EXIT.ROLLED_BACK);
  t.match(r.summary, /monitor reports stopped/);
  t.same(log.filter((l) => !l.startsWith('validate')), ['start m1', 'start m2', 'stop m2', 'stop m1']);
});

t.test('a failed roll-back is exit 5', async (t) => {
  const log: string[] = [];
  const ms = five(log, { 1: { failStop: true }, 3: { failStart: true } });
  const r = await new GroupEngine(deps(ms, log)).activate();
  t.equal(r.exit, EXIT.NOT_ROLLED_BACK);
  t.match(r.summary, /roll-back failed for m1/);
});

t.test('activate on an active group does nothing (no hooks, no preflight)', async (t) => {
  const log: string[] = [];
  const ms = five(log, { 1: { running: true }, 2: { running: true }, 3: { running: true }, 4: { running: true }, 5: { running: true } });
  const r = await new GroupEngine(deps(ms, log, { cfg: { hooks: { before_start: ['x'] } } })).activate();
  t.equal(r.exit, EXIT.OK);
  t.same(log, []);
  t.match(r.summary, /already active/);
});

t.test('a partial group is completed without repeating finished members', async (t) => {
  const log: string[] = [];
  const ms = five(log, { 1: { running: true }, 2: { running: true } });
  const e = new GroupEngine(deps(ms, log));
  t.equal((await e.status()).state, 'partial 2/5');
  const r = await e.activate();
  t.equal(r.exit, EXIT.OK);
  t.same(log.filter((l) => l.startsWith('start')), ['start m3', 'start m4', 'start m5']);
});

t.test('preflight refusal: exit 3, nothing started', async (t) => {
  const log: string[] = [];
  const ms = five(log);
  const checks = [{ name: 'probe', run: async () => [{ check: 'arp-probe 10.0.0.1', ok: false, detail: 'address 10.0.0.1 in use by MAC 02:00:00:00:00:01' }] }];
  const r = await new GroupEngine(deps(ms, log, { checks, cfg: { hooks: { before_start: ['x'] } } })).activate();
  t.equal(r.exit, EXIT.REFUSED);
  t.match(r.summary, /in use by MAC 02:00:00:00:00:01/);
  t.notOk(log.some((l) => l.startsWith('start') || l.startsWith('hook')));
});

t.test('a member that fails validation refuses the whole group', async (t) => {
  const log: string[] = [];
  const ms = five(log, { 4: { invalid: 'interface eth9 does not exist' } });
  const r = await new GroupEngine(deps(ms, log)).activate();
  t.equal(r.exit, EXIT.REFUSED);
  t.match(r.summary, /validate m4: interface eth9 does not exist/);
  t.same(log.filter((l) => l.startsWith('validate')).length, 5, 'every member validated before any change');
});

t.test('before_start failing: exit 4, nothing started', async (t) => {
  const log: string[] = [];
  const ms = five(log);
  const d = deps(ms, log, { cfg: { hooks: { before_start: ['x'] } } });
  d.runHook = async () => ({ ok: false, reason: 'exit 1' });
  const r = await new GroupEngine(d).activate();
  t.equal(r.exit, EXIT.ROLLED_BACK);
  t.notOk(log.some((l) => l.startsWith('start')));
});

t.test('deactivate stops in reverse with hooks around', async (t) => {
  const log: string[] = [];
  const ms = five(log, { 1: { running: true }, 2: { running: true }, 3: { running: true }, 4: { running: true }, 5: { running: true } });
  const r = await new GroupEngine(deps(ms, log, { cfg: { hooks: { before_stop: ['x'], after_stop: ['y'] } } })).deactivate();
  t.equal(r.exit, EXIT.OK);
  t.same(log, ['hook before_stop', 'stop m5', 'stop m4', 'stop m3', 'stop m2', 'stop m1', 'hook after_stop']);
});

t.test('stop failure with block keeps the earlier members, exit 5', async (t) => {
  const log: string[] = [];
  const all = { running: true };
  const ms = five(log, { 1: all, 2: all, 3: { running: true, failStop: true }, 4: all, 5: all });
  const r = await new GroupEngine(deps(ms, log, { cfg: { hooks: { after_stop: ['y'] } } })).deactivate();
  t.equal(r.exit, EXIT.NOT_ROLLED_BACK);
  t.same(log, ['stop m5', 'stop m4', 'stop m3']);
  t.ok(ms[0]!.running && ms[1]!.running, 'm1 (the address) and m2 stay');
  t.match(r.summary, /m1, m2 kept/);
});

t.test('stop failure with continue stops the rest, still exit 5', async (t) => {
  const log: string[] = [];
  const all = { running: true };
  const ms = five(log, { 1: all, 2: all, 3: { running: true, failStop: true }, 4: all, 5: all });
  const r = await new GroupEngine(deps(ms, log, { cfg: { onStopFailure: 'continue' } })).deactivate();
  t.equal(r.exit, EXIT.NOT_ROLLED_BACK);
  t.same(log, ['stop m5', 'stop m4', 'stop m3', 'stop m2', 'stop m1']);
});

t.test('deactivate on an inactive group does nothing', async (t) => {
  const log: string[] = [];
  const r = await new GroupEngine(deps(five(log), log, { cfg: { hooks: { before_stop: ['x'] } } })).deactivate();
  t.equal(r.exit, EXIT.OK);
  t.same(log, []);
});

t.test('plan lists the effects, runs no start, stop or hook, and reads spawning monitors from the journal', async (t) => {
  const log: string[] = [];
  const ms = five(log, { 1: { running: true }, 4: { spawns: true } });
  ms[3]!.monitor = async () => { log.push('monitor spawned'); return { state: 'stopped' }; };
  const r = await new GroupEngine(deps(ms, log, { cfg: { hooks: { before_start: ['x'], after_start: ['y'] } } })).plan('activate');
  t.equal(r.exit, EXIT.OK);
  t.same(log.filter((l) => !l.startsWith('validate')), [], 'nothing but validation');
  t.same(r.effects!.map((e) => `${e.member} ${e.op}`), [
    '(hook) before_start', 'm1 none', 'm2 start', 'm2 verify', 'm3 start', 'm3 verify', 'm4 start', 'm4 verify', 'm5 start', 'm5 verify', '(hook) after_start']);
  t.equal(r.members![3]!.source, 'journal');
});

t.test('plan reports a refusing preflight with exit 3', async (t) => {
  const log: string[] = [];
  const checks = [{ name: 'probe', run: async () => [{ check: 'arp-probe', ok: false, detail: 'in use' }] }];
  const r = await new GroupEngine(deps(five(log), log, { checks })).plan('activate');
  t.equal(r.exit, EXIT.REFUSED);
  t.equal(r.preflight!.at(-1)!.ok, false);
});

t.test('a member up but journalled as starting (kill -9 mid-start) gets complete(), once', async (t) => {
  const log: string[] = [];
  const ms = five(log, { 1: { running: true } });
  ms[0]!.complete = async () => { log.push('complete m1'); return { ok: true, detail: 'announced' }; };
  const d = deps(ms, log);
  d.record('m1', 'starting');
  const r = await new GroupEngine(d).activate();
  t.equal(r.exit, EXIT.OK);
  t.same(log.filter((l) => !l.startsWith('validate')), ['complete m1', 'start m2', 'start m3', 'start m4', 'start m5']);
  t.equal(d.recorded('m1'), 'running');
});

t.test('monitor(name) reads one member now', async (t) => {
  const log: string[] = [];
  const ms = five(log, { 2: { running: true } });
  const e = new GroupEngine(deps(ms, log));
  t.same(await e.monitor('m2'), { state: 'running' });
  t.match(await e.monitor('zz'), { state: 'failed', reason: /no member 'zz'/ });
  ms[0]!.monitor = async () => { throw new Error('netlink gone'); };
  t.match(await e.monitor('m1'), { state: 'failed', reason: /netlink gone/ });
});

t.test('OpQueue runs operations one at a time in order, past failures', async (t) => {
  const { OpQueue } = await import('../../../../src/roles/group/queue');
  const q = new OpQueue();
  const log: string[] = [];
  const op = (name: string, ms: number, fail = false) => async () => {
    log.push(`begin ${name}`);
    await new Promise((r) => setTimeout(r, ms));
    log.push(`end ${name}`);
    if (fail) throw new Error(name);
    return name;
  };
  const results = await Promise.allSettled([q.run(op('activate', 30)), q.run(op('deactivate', 5, true)), q.run(op('activate2', 1))]);
  t.same(log, ['begin activate', 'end activate', 'begin deactivate', 'end deactivate', 'begin activate2', 'end activate2']);
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  t.equal(q.size, 0);
});
