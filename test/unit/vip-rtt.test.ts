// The learnt probe timeout (src/roles/vip/rtt.ts) and the confirmation burst, through the pure machine.
import t from 'tap';
import { addRttSample, learntTimeoutMs } from '../../src/roles/vip/rtt';
import { carrierReleaseMs, probeTimeoutFor, type VipEffect } from '../../src/roles/vip/machine';
import { cfg, Sim } from '../support/vip-sim';

const timeouts = (sim: Sim) => sim.effects('probe').map((x) => (x.eff as Extract<VipEffect, { type: 'probe' }>).timeoutMs);

t.test('estimator: RFC 6298 gains, clamped to [min, max], max before any sample', async (t) => {
  t.equal(learntTimeoutMs(undefined, 20, 200), 200, 'no answer yet: the ceiling');
  const one = addRttSample(undefined, 10)!;
  t.same(one, { srttMs: 10, rttvarMs: 5, samples: 1 }, 'first sample: srtt = r, rttvar = r/2');
  t.equal(learntTimeoutMs(one, 20, 200), 30, 'srtt + 4 × rttvar = 10 + 20');
  const two = addRttSample(one, 2)!;
  t.equal(two.srttMs, 10 * 7 / 8 + 2 / 8, 'srtt moves by 1/8');
  t.equal(two.rttvarMs, 5 * 3 / 4 + 8 / 4, 'rttvar moves by 1/4 of the error');
  t.equal(learntTimeoutMs(addRttSample(undefined, 0.2), 20, 200), 20, 'a LAN round trip: the floor');
  t.equal(learntTimeoutMs(addRttSample(undefined, 150), 20, 200), 200, 'a slow link: the ceiling');
  t.equal(learntTimeoutMs(addRttSample(undefined, 0.2), 200, 200), 200, 'min = max: a fixed timeout');
  t.equal(addRttSample(one, -1), one, 'a negative sample is ignored');
  t.equal(addRttSample(one, Number.NaN), one, 'a non-finite sample is ignored');
});

t.test('the slave probes with the ceiling until an answer, then with the learnt timeout', async (t) => {
  const sim = new Sim(cfg({ probeTimeoutMinMs: 20 }));
  sim.run(5_000);
  const ts = timeouts(sim);
  t.equal(ts[0], 200, 'first probe: probe_timeout (nothing learnt yet)');
  t.ok(ts.slice(1).every((x) => x === 20), `later probes: the floor for a 0.3 ms round trip (${ts.join(', ')})`);
  t.equal(sim.state.rtt?.samples, ts.length, 'every answer is a sample');
});

t.test('a slower peer: the timeout follows its round trip within the bounds', async (t) => {
  const sim = new Sim(cfg({ probeTimeoutMinMs: 20 }));
  sim.probe = () => ({ result: 'answered', mac: '02:00:00:00:00:09', rttMs: 40 });
  sim.run(20_000);
  const last = timeouts(sim).at(-1)!;
  t.ok(last >= 40 && last < 200, `learnt ${last} ms for a steady 40 ms round trip (srtt 40, rttvar decaying)`);
  t.equal(probeTimeoutFor(sim.state, sim.c), last, 'status shows the timeout the next probe uses');
});

t.test('without probeTimeoutMinMs the machine keeps a fixed timeout', async (t) => {
  const sim = new Sim(cfg());
  sim.run(5_000);
  t.ok(timeouts(sim).every((x) => x === 200), 'probe_timeout every time');
});

t.test('confirmation burst: failure_check_interval 0 sends each confirming probe when the last timed out', async (t) => {
  const c = cfg({ checkIntervalMs: 200, failureCheckIntervalMs: 0, probeTimeoutMs: 50, probeTimeoutMinMs: 20, takeOverAfter: 3 });
  const sim = new Sim(c);
  sim.run(2_000);
  t.equal(sim.state.role, 'slave');
  const cut = sim.now;
  sim.probe = () => ({ result: 'silent' });
  sim.run(cut + 1_000);
  t.equal(sim.state.role, 'master', 'took over');
  const add = sim.effects('addAddresses')[0]!;
  const probes = sim.trace.filter((x) => x.eff.type === 'probe' && x.at > cut);
  const first = probes[0]!.at;
  t.same(probes.slice(0, 3).map((p) => p.at - first), [0, 20, 40], 'three probes back to back, each after the last one\'s 20 ms');
  t.equal(add.at - first, 60, 'takeover 3 × the learnt timeout after the first silent probe went out');
  t.ok(first - cut <= c.checkIntervalMs, 'the first silent probe within one check interval of the cut');
});

t.test('carrier release counts a peer\'s learnt timeout at its floor', async (t) => {
  const fixed = cfg({ failureCheckIntervalMs: 200, probeTimeoutMs: 200 });
  const learnt = cfg({ failureCheckIntervalMs: 200, probeTimeoutMs: 200, probeTimeoutMinMs: 20 });
  t.equal(carrierReleaseMs(fixed), 2 * 400 - 200);
  t.equal(carrierReleaseMs(learnt), 2 * 220 - 20, 'a peer with the floor can take over after 2 × (200 + 20) + 20 ms');
  // The earliest a peer with the floor timeout can take over after the cut: take_over_after
  // probes at the floor, failure_check_interval apart. The release must come first.
  const earliestPeer = learnt.takeOverAfter * 20 + (learnt.takeOverAfter - 1) * learnt.failureCheckIntervalMs;
  t.ok(carrierReleaseMs(learnt) < earliestPeer, `release ${carrierReleaseMs(learnt)} ms < earliest peer takeover ${earliestPeer} ms`);
  const burst = cfg({ failureCheckIntervalMs: 0, probeTimeoutMs: 50, probeTimeoutMinMs: 20 });
  t.ok(carrierReleaseMs(burst) < burst.takeOverAfter * 20, 'also with a burst');
});
