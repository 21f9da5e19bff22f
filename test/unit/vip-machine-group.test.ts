// Table tests of the vip machine with `vip.group`: the group activates after
// the takeover (before on_master) and its failure steps down; it deactivates
// before on_slave and the removal, and a failed deactivation keeps the HA IP.
import t from 'tap';
import { initialState, transition, type VipEffect, type VipEvent, type VipMachineConfig, type VipState } from '../../src/roles/vip/machine';
import type { Cidr } from '../../src/util/ip';

const HA: Cidr = { address: '10.9.0.100', prefix: 24 };
const OWN = '02:00:00:00:00:05';
const LOWER = '02:00:00:00:00:01';
const C: VipMachineConfig = {
  haIp: HA, checkIntervalMs: 1000, failureCheckIntervalMs: 200, takeOverAfter: 2, probeTimeoutMs: 200,
  masterCheckIntervalMs: 2000, announce: { count: 3, intervalMs: 1000 }, hasOnMaster: true, hasOnSlave: true, hasGroup: true,
};

function run(s: VipState, ev: VipEvent): { s: VipState; e: VipEffect[] } {
  const step = transition(s, ev, C);
  return { s: step.state, e: step.effects };
}
const types = (e: VipEffect[]) => e.filter((x) => x.type !== 'log' && x.type !== 'cancel' && x.type !== 'roleChanged').map((x) => (x.type === 'group' ? `group ${x.op}` : x.type === 'runCommand' ? x.which : x.type));

/** A slave that takes over: returns the state right after `added`. */
function takeover() {
  let { s } = run(initialState(OWN, HA, C), { type: 'start', nowMs: 0, holdsHaIp: false, present: [] });
  ({ s } = run(s, { type: 'commandDone', nowMs: 1, which: 'on_slave', ok: true, detail: '' }));
  for (let i = 0; i < C.takeOverAfter; i++) {
    ({ s } = run(s, { type: 'timer', nowMs: 10 + i, timer: 'probe' }));
    ({ s } = run(s, { type: 'probed', nowMs: 10 + i, purpose: 'check', result: 'silent' }));
  }
  t.equal(s.phase, 'takeover-add', 'adding the addresses');
  return run(s, { type: 'added', nowMs: 100, added: [HA], failed: [] });
}

/** A master (resumed at start) that loses a conflict: the step-down begins. */
function stepDownStart() {
  let { s, e } = run(initialState(OWN, HA, C), { type: 'start', nowMs: 0, holdsHaIp: true, present: [HA] });
  t.ok(types(e).includes('group activate'), 'a resumed master activates its group (idempotent)');
  ({ s } = run(s, { type: 'groupDone', nowMs: 1, op: 'activate', ok: true, detail: 'already active' }));
  return run(s, { type: 'probed', nowMs: 2, purpose: 'conflict', result: 'answered', mac: LOWER, rttMs: 1 });
}

t.test('takeover: address, announce, then the group, then on_master', async (t) => {
  const a = takeover();
  t.same(types(a.e), ['announce', 'group activate'], 'the group after the HA IP is up and announced; on_master waits');
  t.equal(a.s.role, 'master');
  t.equal(a.s.phase, 'takeover-group');
  const ok = run(a.s, { type: 'groupDone', nowMs: 200, op: 'activate', ok: true, detail: 'exit 0' });
  t.same(types(ok.e), ['on_master', 'schedule'], 'on_master and the master checks once the group runs');
  t.equal(ok.s.phase, 'steady');
});

t.test('a failed group activation steps down: the group (rolled back) first, then on_slave and the removal', async (t) => {
  const a = takeover();
  const f = run(a.s, { type: 'groupDone', nowMs: 200, op: 'activate', ok: false, detail: 'exit 4' });
  t.same(types(f.e), ['group deactivate']);
  t.equal(f.s.phase, 'stepdown-group');
  const d = run(f.s, { type: 'groupDone', nowMs: 300, op: 'deactivate', ok: true, detail: 'exit 0' });
  t.same(types(d.e), ['on_slave']);
  const r = run(d.s, { type: 'commandDone', nowMs: 400, which: 'on_slave', ok: true, detail: '' });
  t.same(types(r.e), ['removeAddresses']);
  const done = run(r.s, { type: 'removed', nowMs: 500, removed: [HA], failed: [] });
  t.equal(done.s.role, 'slave', 'slave again');
});

t.test('step-down: the group deactivates before on_slave; a failed deactivation keeps the HA IP and the master role', async (t) => {
  const sd = stepDownStart();
  t.same(types(sd.e), ['group deactivate'], 'the group first, nothing removed yet');
  t.equal(sd.s.phase, 'stepdown-group');
  const fail = run(sd.s, { type: 'groupDone', nowMs: 10, op: 'deactivate', ok: false, detail: 'exit 5: stop of db failed' });
  t.same(types(fail.e), ['schedule'], 'no on_slave, no removal: only the next master check');
  t.equal(fail.s.role, 'master', 'still master');
  t.equal(fail.s.phase, 'steady');
  t.same(fail.s.held, [HA], 'the HA IP is kept');
});

t.test('stop of a master: the group deactivates first, then on_slave and the removal', async (t) => {
  let { s } = run(initialState(OWN, HA, C), { type: 'start', nowMs: 0, holdsHaIp: true, present: [HA] });
  ({ s } = run(s, { type: 'groupDone', nowMs: 1, op: 'activate', ok: true, detail: '' }));
  const st = run(s, { type: 'stop', nowMs: 2 });
  t.same(types(st.e), ['group deactivate']);
  t.equal(st.s.phase, 'stop-group');
  const ok = run(st.s, { type: 'groupDone', nowMs: 3, op: 'deactivate', ok: true, detail: '' });
  t.same(types(ok.e), ['on_slave']);
  const bad = run(st.s, { type: 'groupDone', nowMs: 3, op: 'deactivate', ok: false, detail: 'exit 5' });
  t.same(types(bad.e), ['exit'], 'a failed deactivation on stop: nothing removed, exit');
  t.same(bad.e.find((x) => x.type === 'exit'), { type: 'exit', code: 1 }, 'exit 1: the HA IP is still held');
});

t.test('without a group nothing changes: on_master right after the takeover', async (t) => {
  const c2 = { ...C, hasGroup: false };
  let s = initialState(OWN, HA, c2);
  s = transition(s, { type: 'start', nowMs: 0, holdsHaIp: false, present: [] }, c2).state;
  s = transition(s, { type: 'commandDone', nowMs: 1, which: 'on_slave', ok: true, detail: '' }, c2).state;
  for (let i = 0; i < c2.takeOverAfter; i++) {
    s = transition(s, { type: 'timer', nowMs: 10 + i, timer: 'probe' }, c2).state;
    s = transition(s, { type: 'probed', nowMs: 10 + i, purpose: 'check', result: 'silent' }, c2).state;
  }
  const a = transition(s, { type: 'added', nowMs: 100, added: [HA], failed: [] }, c2);
  t.same(types(a.effects), ['announce', 'on_master', 'schedule']);
});

t.test('a group given up by its monitor while master: step down (the group, on_slave, the removal)', async (t) => {
  const a = takeover();
  // During the takeover the group is ours to change: a lost group is not acted on.
  t.same(run(a.s, { type: 'groupLost', nowMs: 150, detail: 'group g: m1 stopped' }).e, [], 'ignored before the group is up');
  const ok = run(a.s, { type: 'groupDone', nowMs: 200, op: 'activate', ok: true, detail: 'exit 0' });
  const lost = run(ok.s, { type: 'groupLost', nowMs: 3000, detail: 'group g: m1 stopped' });
  t.same(types(lost.e), ['group deactivate'], 'the (idempotent) deactivate first, as in every step-down');
  t.equal(lost.s.phase, 'stepdown-group');
  t.ok(lost.e.some((x) => x.type === 'roleChanged' || (x.type === 'log' && /no longer active/.test(x.msg))), 'logged with the reason');
  const d = run(lost.s, { type: 'groupDone', nowMs: 3100, op: 'deactivate', ok: true, detail: 'exit 0' });
  t.same(types(d.e), ['on_slave']);
  // A slave ignores it.
  const slave = run(initialState(OWN, HA, C), { type: 'start', nowMs: 0, holdsHaIp: false, present: [] });
  t.same(run(slave.s, { type: 'groupLost', nowMs: 1, detail: 'x' }).e, []);
  // Without vip.group nothing can be lost.
  t.same(transition(ok.s, { type: 'groupLost', nowMs: 3000, detail: 'x' }, { ...C, hasGroup: false }).effects, []);
});
