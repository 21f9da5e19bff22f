// The machine's `watch` effect (the native steady-state probe loop) through the
// pure machine: what it asks for, what its end does, and that a role driven by
// watches decides exactly what the same role probing one check at a time does.
import t from 'tap';
import { watchRounds, WATCH_SPAN_MS, type VipEffect } from '../../src/roles/vip/machine';
import { cfg, Sim, HA } from '../support/vip-sim';

type Watch = Extract<VipEffect, { type: 'watch' }>;
const watches = (sim: Sim) => sim.effects('watch').map((x) => x.eff as Watch);
const HOLDER = '02:00:00:00:00:09';

t.test('watchRounds: as many rounds as fit in the span, 1..1000', async (t) => {
  t.equal(watchRounds(1000), WATCH_SPAN_MS / 1000);
  t.equal(watchRounds(200), WATCH_SPAN_MS / 200);
  t.equal(watchRounds(1), 1000, 'capped at the native loop\'s bound');
  t.equal(watchRounds(60_000), 1, 'a period longer than the span: one round (the timer)');
});

t.test('a slave that heard the holder watches it; a master after a clean check watches for silence', async (t) => {
  const sim = new Sim(cfg({ probeTimeoutMinMs: 20 }));
  sim.watchMode = 'native';
  sim.run(3_000);
  const w = watches(sim)[0]!;
  t.ok(w, 'a watch after the first answer');
  t.match(w, { timer: 'probe', purpose: 'check', ip: HA.address, expectMac: HOLDER, everyMs: 1000, rounds: watchRounds(1000) });
  t.equal(w.timeoutMs, 20, 'with the timeout learnt from the first answer');
  t.equal(sim.effects('probe').length, 1, 'no probe of the runner\'s own while the watch runs');

  const m = new Sim(cfg({ probeTimeoutMinMs: 20 }), true);
  m.watchMode = 'native';
  m.probe = () => ({ result: 'silent' });
  m.run(3_000);
  t.equal(m.state.role, 'master');
  t.match(watches(m)[0], { timer: 'master-check', purpose: 'conflict', everyMs: 2000 });
  t.notOk(watches(m)[0]!.expectMac, 'a master expects silence');
});

t.test('a watch\'s end: the samples are learnt, the last probe is the holder, the timer it stood for fires', async (t) => {
  const sim = new Sim(cfg({ probeTimeoutMinMs: 20 }));
  sim.watchMode = 'native';
  const span = WATCH_SPAN_MS + 2_000;
  sim.run(span);
  const rounds = watchRounds(1000);
  t.equal(sim.effects('probe').length, 2, 'one probe to start, one after the first watch ended');
  t.equal(sim.state.rtt?.samples, 1 + rounds + 1, 'every round\'s answer is a sample');
  t.equal(sim.state.lastProbe?.result, 'answered');
  t.equal(watches(sim).length, 2, 'and a new watch after the check');
});

t.test('the group keeps a master on the timer (its check runs at every master check)', async (t) => {
  const m = new Sim(cfg({ hasGroup: true }), true);
  m.watchMode = 'native';
  m.probe = () => ({ result: 'silent' });
  m.run(10_000);
  t.equal(watches(m).length, 0, 'no watch with vip.group');
});

t.test('a master watch stops at a competitor: the conflict is settled as after a probe', async (t) => {
  const m = new Sim(cfg(), true);
  m.watchMode = 'native';
  m.probe = (now) => now < 5_000 ? { result: 'silent' } : { result: 'answered', mac: '02:00:00:00:00:01', rttMs: 0.3 };
  m.run(12_000);
  t.equal(m.state.lastConflict?.mac, '02:00:00:00:00:01', 'the competitor was seen');
  t.equal(m.state.role, 'slave', 'the lower MAC keeps the IP: this master stepped down');
});

t.test('watches change nothing a role decides: the same takeover at the same moment as one probe at a time', async (t) => {
  for (const c of [cfg({ probeTimeoutMinMs: 20 }), cfg({ checkIntervalMs: 200, failureCheckIntervalMs: 0, probeTimeoutMs: 50, probeTimeoutMinMs: 20 })]) {
    const run = (mode: 'timer' | 'native') => {
      const sim = new Sim(c);
      sim.watchMode = mode;
      sim.probe = (now) => now < 23_456 ? { result: 'answered', mac: HOLDER, rttMs: 0.3 } : { result: 'silent' };
      sim.run(40_000);
      const add = sim.effects('addAddresses')[0];
      return { role: sim.state.role, addAt: add?.at, probes: sim.effects('probe').length };
    };
    const timer = run('timer');
    const native = run('native');
    t.equal(native.role, 'master', `took over (check ${c.checkIntervalMs} ms)`);
    t.equal(timer.role, 'master');
    t.ok(native.addAt !== undefined && timer.addAt !== undefined && Math.abs(native.addAt - timer.addAt) <= c.checkIntervalMs,
      `the takeover at ${native.addAt} ms with watches, ${timer.addAt} ms one probe at a time (within one check interval: the rounds drift by the answers' latency)`);
    t.ok(native.probes * 4 < timer.probes, `the runner probed ${native.probes} times with watches, ${timer.probes} without`);
  }
});

t.test('checkSoon turns a watch into a check at once', async (t) => {
  const sim = new Sim(cfg());
  sim.watchMode = 'native';
  sim.run(1_500);
  // A carrier flap while a probe is out asks for a check as soon as it returns.
  const before = sim.effects('probe').length;
  sim.feed({ type: 'timer', nowMs: sim.now, timer: 'probe' });
  sim.feed({ type: 'link', nowMs: sim.now, up: true });
  t.ok(sim.state.probeInFlight, 'a probe is out');
  sim.run(sim.now + 50);
  t.ok(sim.effects('probe').length >= before + 2, 'the probe returned and the check ran at once, not after a watch');
});
