// Table tests of the pure HA IP state machine, driven by a fake clock.
import t from 'tap';
import {
  initialState, transition, keepsOnConflict, type VipEffect, type VipEvent, type VipMachineConfig,
  type VipState, type ProbeOutcome, type TimerName, carrierReleaseMs, takeoverWindowMs,
} from '../../src/roles/vip/machine';
import type { Cidr } from '../../src/util/ip';

import { HA, EXTRA, OWN, cfg, Sim } from '../support/vip-sim';

t.test('start without the HA IP: slave, on_slave once, then probes', async (t) => {
  const sim = new Sim(cfg());
  t.same(sim.roles(), ['slave']);
  t.equal(sim.effects('runCommand').length, 1);
  t.match(sim.effects('runCommand')[0]!.eff, { which: 'on_slave' });
  sim.run(10_000);
  t.equal(sim.state.role, 'slave');
  // ~1 probe per check_interval while the master answers.
  const probes = sim.effects('probe').length;
  t.ok(probes >= 9 && probes <= 11, `probes=${probes}`);
  t.equal(sim.effects('addAddresses').length, 0);
});

t.test('start holding the HA IP: resumes as master, no on_slave, no failover', async (t) => {
  const sim = new Sim(cfg(), true);
  sim.probe = () => ({ result: 'silent' });
  t.same(sim.roles(), ['master']);
  sim.run(5000);
  t.equal(sim.state.role, 'master');
  t.equal(sim.effects('runCommand').length, 0, 'neither on_slave nor on_master');
  t.equal(sim.effects('addAddresses').length, 0);
  t.ok(sim.effects('reconcile').length >= 1);
});

t.test('takeover after exactly take_over_after silent probes, at failure_check_interval', async (t) => {
  const sim = new Sim(cfg());
  sim.run(3000);
  sim.probe = () => ({ result: 'silent' });
  const faultAt = sim.now;
  sim.run(20_000);
  const add = sim.effects('addAddresses');
  t.equal(add.length, 1);
  t.same((add[0]!.eff as { addresses: Cidr[] }).addresses, [HA]);
  // first silent probe starts within check_interval; then 2 more at 200 ms + timeout.
  const took = add[0]!.at - faultAt;
  t.ok(took <= 1000 + 3 * 200 + 2 * 200 + 50, `took ${took} ms`);
  t.same(sim.roles(), ['slave', 'master']);
  const order = sim.trace.filter((x) => x.at >= add[0]!.at).map((x) => x.eff.type);
  t.ok(order.indexOf('announce') < order.indexOf('runCommand'), 'announce before on_master');
  t.match(sim.effects('runCommand').at(-1)!.eff, { which: 'on_master' });
});

t.test('an answer resets the count', async (t) => {
  const sim = new Sim(cfg());
  let n = 0;
  // silent, silent, answered, silent, silent, answered... never 3 in a row
  sim.probe = () => (++n % 3 === 0 ? { result: 'answered', mac: '02:00:00:00:00:09', rttMs: 1 } : { result: 'silent' });
  sim.run(30_000);
  t.equal(sim.state.role, 'slave');
  t.equal(sim.effects('addAddresses').length, 0);
});

t.test('probe errors are unknown: they never count toward a takeover', async (t) => {
  const sim = new Sim(cfg());
  sim.probe = () => ({ result: 'error', error: 'ENETDOWN' });
  sim.run(30_000);
  t.equal(sim.state.role, 'slave');
  t.equal(sim.effects('addAddresses').length, 0);
  // errors between silent probes hold the count rather than reset it
  const sim2 = new Sim(cfg());
  let n = 0;
  sim2.probe = () => (++n % 2 === 0 ? { result: 'error', error: 'EAGAIN' } : { result: 'silent' });
  sim2.run(30_000);
  t.equal(sim2.state.role, 'master', 'three silent probes with errors between still take over');
});

t.test('add failure rolls back what was added and stays slave', async (t) => {
  const sim = new Sim(cfg());
  sim.feed({ type: 'desired', nowMs: 0, addresses: [HA, EXTRA] });
  sim.probe = () => ({ result: 'silent' });
  sim.addFails = true;
  sim.run(2500);
  const rm = sim.effects('removeAddresses');
  t.ok(rm.length >= 1);
  t.same((rm[0]!.eff as { addresses: Cidr[] }).addresses, [HA], 'removes exactly what was added');
  t.notOk(sim.roles().includes('master'));
  t.equal(sim.effects('runCommand').filter((x) => (x.eff as { which: string }).which === 'on_master').length, 0, 'on_master never ran');
});

t.test('conflict: the lower MAC keeps, the higher steps down (on_slave before removal)', async (t) => {
  t.ok(keepsOnConflict('02:00:00:00:00:05', '02:00:00:00:00:09'));
  t.notOk(keepsOnConflict('02:00:00:00:00:09', '02:00:00:00:00:05'));
  t.notOk(keepsOnConflict('0a:00:00:00:00:00', '02:ff:ff:ff:ff:ff'), 'numeric, not by string length');
  // We are 02:..:05; the other is lower → we lose.
  const lose = new Sim(cfg(), true);
  lose.probe = () => ({ result: 'answered', mac: '02:00:00:00:00:01', rttMs: 0.2 });
  lose.run(3000);
  t.same(lose.roles(), ['master', 'slave']);
  const types = lose.trace.map((x) => x.eff.type);
  const cmd = lose.trace.findIndex((x) => x.eff.type === 'runCommand' && (x.eff as { which: string }).which === 'on_slave');
  t.ok(cmd >= 0 && cmd < types.indexOf('removeAddresses'), 'on_slave runs before the addresses go');
  // The other is higher → we keep and re-announce.
  const keep = new Sim(cfg(), true);
  keep.probe = () => ({ result: 'answered', mac: '02:00:00:00:00:09', rttMs: 0.2 });
  keep.run(3000);
  t.same(keep.roles(), ['master']);
  t.ok(keep.effects('announce').length >= 1);
  t.equal(keep.effects('removeAddresses').length, 0);
});

t.test('stop: on_slave, remove held addresses (HA IP last), exit 0', async (t) => {
  const sim = new Sim(cfg(), true);
  sim.feed({ type: 'desired', nowMs: 0, addresses: [HA, EXTRA] });
  sim.run(100);
  sim.feed({ type: 'stop', nowMs: sim.now });
  sim.run(1000);
  t.equal(sim.state.role, 'stopped');
  t.equal(sim.exitCode, 0);
  const rm = sim.effects('removeAddresses').at(-1)!.eff as { addresses: Cidr[] };
  t.equal(rm.addresses.at(-1)!.address, HA.address, 'HA IP removed last');
  t.equal(rm.addresses.length, 2);
});

t.test('stop during a takeover finishes the takeover, then releases everything', async (t) => {
  // Stop exactly when the add is issued.
  const sim2 = new Sim(cfg());
  sim2.probe = () => ({ result: 'silent' });
  while (sim2.effects('addAddresses').length === 0) sim2.run(sim2.now + 10);
  sim2.feed({ type: 'stop', nowMs: sim2.now });
  sim2.run(sim2.now + 5000);
  t.equal(sim2.state.role, 'stopped');
  t.equal(sim2.exitCode, 0);
  t.same(sim2.state.held, []);
  t.equal(sim2.effects('runCommand').filter((x) => (x.eff as { which: string }).which === 'on_master').length, 0, 'on_master not started on the way out');
});

t.test('IP file changes reach a master immediately; dropped addresses are removed', async (t) => {
  const sim = new Sim(cfg(), true);
  sim.probe = () => ({ result: 'silent' });
  sim.run(100);
  sim.feed({ type: 'desired', nowMs: sim.now, addresses: [HA, EXTRA] });
  const rec = sim.effects('reconcile').at(-1)!.eff as { desired: Cidr[]; remove: Cidr[] };
  t.same(rec.desired.map((c) => c.address), [HA.address, EXTRA.address]);
  sim.run(200);
  sim.feed({ type: 'desired', nowMs: sim.now, addresses: [HA] });
  const rec2 = sim.effects('reconcile').at(-1)!.eff as { desired: Cidr[]; remove: Cidr[] };
  t.same(rec2.remove.map((c) => c.address), [EXTRA.address]);
});

t.test('track: a failing check blocks takeover and makes a master step down', async (t) => {
  const c = cfg({ track: { fall: 3, rise: 2 } });
  const sim = new Sim(c);
  sim.probe = () => ({ result: 'silent' });
  sim.run(5000);
  t.equal(sim.state.role, 'slave', 'never passed rise: no takeover');
  sim.feed({ type: 'track', nowMs: sim.now, ok: true, detail: '' });
  sim.feed({ type: 'track', nowMs: sim.now, ok: true, detail: '' });
  sim.run(sim.now + 2000);
  t.equal(sim.state.role, 'master', 'rise passes: takes over');
  for (let i = 0; i < 2; i++) sim.feed({ type: 'track', nowMs: sim.now, ok: false, detail: 'exit 1' });
  sim.run(sim.now + 100);
  t.equal(sim.state.role, 'master', 'fall-1 failures: still master');
  sim.feed({ type: 'track', nowMs: sim.now, ok: false, detail: 'exit 1' });
  sim.run(sim.now + 1000);
  t.equal(sim.state.role, 'slave', 'fall failures: stepped down');
});

t.test('a stale timer or stray event is ignored', async (t) => {
  const sim = new Sim(cfg(), true);
  const before = sim.state;
  const step = transition(before, { type: 'timer', nowMs: 1, timer: 'probe' }, sim.c);
  t.same(step.effects, [], 'probe timer ignored while master');
  const step2 = transition(before, { type: 'added', nowMs: 1, added: [HA], failed: [] }, sim.c);
  t.same(step2.effects, [], 'added ignored when no takeover is under way');
});

t.test('own link down while master: released after a peer takeover window, kept if it comes back sooner', async (t) => {
  const c = cfg();
  const sim = new Sim(c, true);
  sim.probe = () => ({ result: 'error', error: 'no carrier on eth0', linkDown: true });
  sim.run(1000);
  t.equal(sim.state.role, 'master', 'not at once');
  sim.run(2000 + 1000 + 3 * 400 + 1000);
  t.equal(sim.state.role, 'slave', 'released after the window');
  t.ok(sim.effects('removeAddresses').length >= 1);
  const sim2 = new Sim(c, true);
  let down = true;
  sim2.probe = () => (down ? { result: 'error', error: 'no carrier', linkDown: true } : { result: 'silent' });
  sim2.run(2500);
  down = false;
  sim2.run(10_000);
  t.equal(sim2.state.role, 'master', 'a short blip does not release');
  t.equal(sim2.state.linkDownSinceMs, undefined);
});

t.test('a new slave waits its initial probe delay before the first probe', async (t) => {
  const c = cfg();
  const step = transition(initialState(OWN, HA, c), { type: 'start', nowMs: 0, holdsHaIp: false, present: [], initialProbeDelayMs: 730 }, { ...c, hasOnSlave: false });
  t.match(step.effects.find((e) => e.type === 'schedule'), { timer: 'probe', afterMs: 730 });
});

t.test('track: a master that resumed after a restart steps down on fall failures (its check never passed)', async (t) => {
  // A resumed master starts with track.ok false (it has not passed `rise` times):
  // `fall` failures in a row must still make it step down.
  const c = cfg({ track: { fall: 3, rise: 2 } });
  const sim = new Sim(c, true);
  sim.probe = () => ({ result: 'silent' });
  sim.run(100);
  t.equal(sim.state.role, 'master', 'resumed as master');
  t.equal(sim.state.track?.ok, false, 'its check has not passed yet');
  for (let i = 0; i < 2; i++) sim.feed({ type: 'track', nowMs: sim.now, ok: false, detail: 'exit 1' });
  sim.run(sim.now + 100);
  t.equal(sim.state.role, 'master', 'fall-1 failures: still master');
  sim.feed({ type: 'track', nowMs: sim.now, ok: false, detail: 'exit 1' });
  t.match(sim.trace.at(-1)?.eff ?? {}, { type: 'runCommand', which: 'on_slave' }, 'the fall-th failure starts the step-down');
  sim.run(sim.now + 1000);
  t.equal(sim.state.role, 'slave', 'stepped down');
  t.ok(sim.effects('removeAddresses').length >= 1, 'its addresses removed');
  t.equal(sim.state.stepDowns, 1);
  // A passing check in between restarts the count.
  const sim2 = new Sim(c, true);
  sim2.probe = () => ({ result: 'silent' });
  for (const ok of [false, false, true, false, false]) sim2.feed({ type: 'track', nowMs: sim2.now, ok, detail: '' });
  sim2.run(1000);
  t.equal(sim2.state.role, 'master', 'never fall failures in a row: still master');
});

t.test('conflict: the decision uses the MAC our probes go out with now (interface re-created)', async (t) => {
  // We started as 02:..:05 and the other answers as 02:..:07: we keep. Then our
  // interface comes back as 02:..:09: now the other is lower, and it keeps it
  // too, so we must step down, or both stay master for good.
  const OTHER = '02:00:00:00:00:07';
  const sim = new Sim(cfg(), true);
  let mine = OWN;
  sim.probe = () => ({ result: 'answered', mac: OTHER, rttMs: 0.2, ownMac: mine });
  sim.run(3000);
  t.same(sim.roles(), ['master'], 'the lower MAC keeps');
  t.equal(sim.state.lastConflict?.kept, true);
  mine = '02:00:00:00:00:09';
  sim.run(8000);
  t.equal(sim.state.ownMac, '02:00:00:00:00:09', 'the new MAC is in the state');
  t.same(sim.roles(), ['master', 'slave'], 'with the new, higher MAC it steps down');
  t.equal(sim.state.lastConflict?.kept, false);
  t.ok(sim.effects('log').some((x) => /own MAC changed/.test((x.eff as { msg: string }).msg)), 'the change is logged');
  // A probe whose own answer comes back with the new MAC is not a conflict.
  const self = new Sim(cfg(), true);
  self.probe = () => ({ result: 'answered', mac: '02:00:00:00:00:0a', rttMs: 0.1, ownMac: '02:00:00:00:00:0A' });
  self.run(5000);
  t.same(self.roles(), ['master'], 'our own (new) MAC answering is no conflict');
  t.equal(self.state.lastConflict, undefined);
});

t.test('a master re-adding missing addresses announces them', async (t) => {
  const sim = new Sim(cfg(), true);
  sim.probe = () => ({ result: 'silent' });
  sim.run(100);
  const before = sim.effects('announce').length;
  sim.feed({ type: 'reconciled', nowMs: sim.now, held: [HA, EXTRA], added: [EXTRA], errors: [] });
  const ann = sim.effects('announce');
  t.equal(ann.length, before + 1, 'one announcement');
  t.match(ann.at(-1)!.eff, { addresses: [EXTRA], count: 3, intervalMs: 1000 }, 'of what was put back, like a takeover');
  sim.feed({ type: 'reconciled', nowMs: sim.now, held: [HA, EXTRA], added: [], errors: [] });
  t.equal(sim.effects('announce').length, before + 1, 'nothing put back: nothing announced');
});

t.test('release notice from the holder: one silent probe confirms, then take over at once', async (t) => {
  const HOLDER = '02:00:00:00:00:09'; // what Sim's default probe answers with
  const sim = new Sim(cfg());
  sim.run(3000);
  t.equal(sim.state.lastProbe?.result, 'answered');
  // The master stops: its notice arrives, and from now on nobody answers.
  sim.probe = () => ({ result: 'silent' });
  const at = sim.now;
  sim.feed({ type: 'released', nowMs: at, mac: HOLDER.toUpperCase(), probeDelayMs: 30 });
  t.equal(sim.state.failures, 2, 'one short of take_over_after');
  t.match(sim.trace.at(-1)!.eff, { type: 'schedule', timer: 'probe', afterMs: 30 }, 'probe after the spread, not at check_interval');
  sim.run(at + 5000);
  const add = sim.effects('addAddresses');
  t.equal(add.length, 1, 'took over');
  t.ok(add[0]!.at - at <= 30 + 200 + 1, `after one probe timeout (${add[0]!.at - at} ms), not take_over_after of them`);
  t.equal(sim.effects('probe').filter((x) => x.at >= at && (x.eff as { purpose: string }).purpose === 'check').length, 1, 'exactly one confirming probe');
});

t.test('release notice: an answer to the confirming probe cancels it; other MACs and other roles ignore it', async (t) => {
  const sim = new Sim(cfg());
  sim.run(3000);
  const at = sim.now;
  // Forged or stale: the holder still answers.
  sim.feed({ type: 'released', nowMs: at, mac: '02:00:00:00:00:09', probeDelayMs: 0 });
  sim.run(at + 3000);
  t.equal(sim.state.role, 'slave');
  t.equal(sim.state.failures, 0, 'the answer reset the count');
  t.equal(sim.effects('addAddresses').length, 0);

  const before = sim.trace.length;
  sim.feed({ type: 'released', nowMs: sim.now, mac: '02:00:00:00:00:77', probeDelayMs: 0 });
  t.equal(sim.state.failures, 0, 'a MAC that is not the holder we heard changes nothing');
  t.notOk(sim.trace.slice(before).some((x) => x.eff.type === 'schedule'), 'and schedules nothing');

  const master = new Sim(cfg(), true);
  master.run(1000);
  const st = master.state;
  master.feed({ type: 'released', nowMs: master.now, mac: '02:00:00:00:00:09', probeDelayMs: 0 });
  t.same(master.state, st, 'a master ignores it');
});

t.test('a master that lets the HA IP go sends a release notice after removing it', async (t) => {
  const sim = new Sim(cfg(), true);
  sim.probe = () => ({ result: 'silent' });
  sim.run(1000);
  sim.feed({ type: 'stop', nowMs: sim.now });
  sim.run(sim.now + 1000);
  const types = sim.trace.map((x) => x.eff.type);
  const removeAt = types.lastIndexOf('removeAddresses');
  const releaseAt = types.indexOf('release');
  t.ok(releaseAt > removeAt && removeAt >= 0, 'release after the removal');
  t.match(sim.trace[releaseAt]!.eff, { type: 'release', ip: HA.address });
  t.ok(releaseAt < types.indexOf('exit'), 'before the exit');

  // Step-down on a lost conflict releases too (harmless: the keeper answers the confirming probes).
  const loser = new Sim(cfg(), true);
  loser.probe = (_now, purpose) => (purpose === 'conflict' ? { result: 'answered', mac: '02:00:00:00:00:01', rttMs: 0.2 } : { result: 'silent' });
  loser.run(1000);
  t.equal(loser.state.role, 'slave');
  t.equal(loser.effects('release').length, 1);

  // A slave that never held it never sends one.
  const slave = new Sim(cfg());
  slave.run(3000);
  slave.feed({ type: 'stop', nowMs: slave.now });
  slave.run(slave.now + 1000);
  t.equal(slave.effects('release').length, 0);
});

t.test('carrier lost on the master: release timer at once, released before the earliest peer takeover', async (t) => {
  const c = cfg();
  const sim = new Sim(c, true);
  sim.run(500);
  sim.probe = () => ({ result: 'error', error: 'no carrier on eth0', linkDown: true });
  sim.feed({ type: 'link', nowMs: sim.now, up: false });
  t.equal(sim.timers.get('link-release'), 500 + carrierReleaseMs(c), 'release timer armed at the event');
  t.ok(carrierReleaseMs(c) < (c.takeOverAfter - 1) * (c.failureCheckIntervalMs + c.probeTimeoutMs), 'before the earliest peer takeover');
  t.ok(carrierReleaseMs(c) < takeoverWindowMs(c), 'sooner than the probe-based release');
  sim.run(500 + carrierReleaseMs(c) + 100);
  t.equal(sim.state.role, 'slave', 'released');
  t.equal(sim.state.held.length, 0, 'addresses removed');
});

t.test('carrier flap shorter than the release: still master, and a conflict probe at once', async (t) => {
  const c = cfg({ masterCheckIntervalMs: 60_000 });
  const sim = new Sim(c, true);
  sim.run(1000);
  sim.feed({ type: 'link', nowMs: sim.now, up: false });
  sim.run(1100);
  const probes = sim.effects('probe').length;
  sim.feed({ type: 'link', nowMs: sim.now, up: true });
  t.equal(sim.timers.has('link-release'), false, 'release timer cancelled');
  t.equal(sim.effects('probe').length, probes + 1, 'conflict probe at once');
  t.equal(sim.state.linkDownSinceMs, undefined);
  sim.run(5000);
  t.equal(sim.state.role, 'master');
});

t.test('carrier back while a probe is out: the next check runs as soon as it returns', async (t) => {
  const c = cfg({ masterCheckIntervalMs: 60_000 });
  const sim = new Sim(c, true);
  sim.probe = () => ({ result: 'silent' }); // no competing owner: the probe is out for its whole timeout
  sim.run(10); // the initial master check is out
  t.equal(sim.state.probeInFlight, true);
  sim.feed({ type: 'link', nowMs: sim.now, up: false });
  sim.feed({ type: 'link', nowMs: sim.now, up: true });
  t.equal(sim.state.checkSoon, true);
  const probes = sim.effects('probe').length;
  sim.run(500);
  t.equal(sim.effects('probe').length, probes + 1, 'a second check within one probe timeout, not after 60 s');
});

t.test('an address of ours removed behind our back: reconcile at once; others and non-masters ignored', async (t) => {
  const c = cfg({ masterCheckIntervalMs: 60_000 });
  const sim = new Sim(c, true);
  sim.run(1000);
  const rec = sim.effects('reconcile').length;
  sim.feed({ type: 'addressLost', nowMs: sim.now, address: HA });
  t.equal(sim.effects('reconcile').length, rec + 1, 'reconciled at once');
  t.match(sim.effects('log').map((x) => (x.eff as { msg: string }).msg).join('\n'), /not by vigil/);
  sim.run(2000);
  const step = transition(sim.state, { type: 'addressLost', nowMs: sim.now, address: EXTRA }, c);
  t.same(step.effects, [], 'an address we do not hold is ignored');
  const slave = new Sim(cfg());
  slave.run(1000);
  t.same(transition(slave.state, { type: 'addressLost', nowMs: 1000, address: HA }, slave.c).effects, [], 'a slave ignores it');
});

t.test('carrier back on a slave: its first probe after the runner\'s spread, not at once', async (t) => {
  const sim = new Sim(cfg());
  sim.run(1000);
  t.equal(sim.state.role, 'slave');
  sim.run(sim.now + 5); // let any probe in flight finish
  sim.feed({ type: 'link', nowMs: sim.now, up: false });
  const probes = sim.effects('probe').length;
  const at = sim.now;
  sim.feed({ type: 'link', nowMs: sim.now, up: true, probeDelayMs: 700 });
  t.equal(sim.effects('probe').length, probes, 'no probe at once');
  t.equal(sim.state.probeInFlight, false, 'no probe was out');
  t.equal(sim.timers.get('probe'), at + 700, 'the probe is scheduled after the spread');
  t.match(sim.effects('log').map((x) => (x.eff as { msg: string }).msg).join('\n'), /carrier back: probing after a random spread/);
  // Without a spread (0): at once, as before.
  const now = new Sim(cfg());
  now.run(1000);
  now.feed({ type: 'link', nowMs: now.now, up: false });
  const p0 = now.effects('probe').length;
  now.feed({ type: 'link', nowMs: now.now, up: true, probeDelayMs: 0 });
  t.ok(now.effects('probe').length > p0 || now.state.checkSoon === true, 'probe at once (or as soon as the one out returns)');
});
