// The pure parts composed the way a runner will: answers → samples → machines → guards → effects, with a fake executor.
// Scenarios from next-roles.md §3c: a partition must not fence the other side; one dead host is fenced exactly once.
import t from 'tap';
import { normalizeMonitor } from '../../../../src/roles/monitor/config';
import { guardInputFor, hostMachineConfig, hostsFromConfig } from '../../../../src/roles/monitor/inventory';
import { evaluateGuards, type SelfView } from '../../../../src/roles/monitor/guards';
import { initialHostState, mayRecover, monitorTransition, type HostState, type MonitorEffect, type MonitorEvent, type StoredHostView } from '../../../../src/roles/monitor/machine';
import { sampleRound, type NetworkAnswer } from '../../../../src/roles/monitor/samples';

const NETS = ['mgmt', 'tenant', 'storage'];
const HOSTS = ['cmp-1', 'cmp-2', 'cmp-3', 'cmp-4', 'cmp-5', 'cmp-6'];

const cfg = normalizeMonitor({
  networks: Object.fromEntries(NETS.map((n, i) => [n, { url: `http://127.0.0.1:${8500 + i}` }])),
  inventory: { hosts: HOSTS.map((h, i) => ({ name: h, bmc: { ip: `192.0.2.${101 + i}`, user: 'admin', password_file: `/etc/vigil/bmc/${h}` } })) },
});

/** A fake cluster: which (host, network) members are failed, what our own agents see, whether BMCs answer. */
interface World { failed: Set<string>; self: Record<string, SelfView>; bmcOk: boolean }

function run(world: World, rounds: number) {
  const hosts = hostsFromConfig(cfg);
  const mcs = Object.fromEntries(hosts.map((h) => [h.name, hostMachineConfig(cfg, h, 'ctl-1')]));
  let states: Record<string, HostState> = Object.fromEntries(HOSTS.map((h) => [h, initialHostState(h)]));
  const kv: Record<string, StoredHostView> = Object.fromEntries(HOSTS.map((h) => [h, { counts: {}, failed: false, maintenance: false }]));
  const effects: MonitorEffect[] = [];
  let now = 0;
  const feed = (h: string, ev: MonitorEvent) => {
    const step = monitorTransition(states[h]!, ev, mcs[h]!);
    states = { ...states, [h]: step.state };
    effects.push(...step.effects);
    // The fake executor: every effect succeeds at once, except the BMC when it is down.
    for (const e of step.effects) {
      if (e.type === 'writeCounter') {
        kv[h] = { ...kv[h]!, counts: { numberFails: { value: e.numberFails, modifyIndex: now + 1 }, failsByNetwork: { value: e.counts, modifyIndex: now + 2 } } };
        feed(h, { type: 'counterWritten', nowMs: now, ok: true });
      } else if (e.type === 'claimIncident') feed(h, { type: 'claimResult', nowMs: now, acquired: true, session: `sess-${h}` });
      else if (e.type === 'writeLatch') {
        if (e.step === 'claimed') kv[h] = { ...kv[h]!, failed: true, incident: { session: `sess-${h}`, journal: { step: 'claimed' } } };
        feed(h, { type: 'latchWritten', nowMs: now, ok: true });
      } else if (e.type === 'fence') {
        feed(h, world.bmcOk ? { type: 'fenceResult', nowMs: now, outcome: 'off', powerState: 'off', detail: 'Chassis Power is off' } : { type: 'fenceResult', nowMs: now, outcome: 'error', detail: 'Unable to establish IPMI v2 / RMCP+ session' });
      }
    }
  };
  for (let r = 0; r < rounds; r++) {
    now += cfg.intervalMs;
    const answers: Record<string, NetworkAnswer> = {};
    for (const n of NETS) {
      answers[n] = 'error' in (world.self[n] ?? {}) ? { error: 'ECONNREFUSED' }
        : { members: HOSTS.map((h) => ({ Name: h, Addr: '192.0.2.1', Status: world.failed.has(`${h}/${n}`) ? 4 : 1 })) };
    }
    const samples = sampleRound(hosts, cfg.networks, answers);
    for (const h of HOSTS) feed(h, { type: 'sampled', nowMs: now, samples: samples[h]!, stored: structuredClone(kv[h]!) });
    // Guards are evaluated once every host has been sampled, on the fleet as it now stands.
    for (const h of HOSTS) {
      if (states[h]!.phase !== 'awaiting-guards') continue;
      const held = new Set(HOSTS.filter((x) => kv[x]!.incident?.session !== undefined));
      const report = evaluateGuards(guardInputFor(states[h]!, Object.values(states), world.self, new Set(), held), cfg.guards);
      feed(h, { type: 'guards', nowMs: now, report });
    }
  }
  return { states, effects, fences: effects.filter((e) => e.type === 'fence') };
}

const client = (n: number): SelfView => ({ server: false, knownServers: n });
const ALL_OK = { mgmt: client(3), tenant: client(3), storage: client(3) };
const allNets = (h: string) => NETS.map((n) => `${h}/${n}`);

t.test('one host dead on every network: confirmed after 3 rounds, fenced once, recoverable', async (t) => {
  const r = run({ failed: new Set(allNets('cmp-3')), self: ALL_OK, bmcOk: true }, 6);
  t.equal(r.fences.length, 1);
  t.match(r.fences[0], { host: 'cmp-3', method: 'ipmi' }, 'row 000 → ipmi');
  t.equal(r.states['cmp-3']!.phase, 'fenced');
  t.equal(mayRecover(r.states['cmp-3']!), true);
  t.same(HOSTS.filter((h) => h !== 'cmp-3').map((h) => r.states[h]!.phase), Array(5).fill('healthy'));
  const first = r.effects.findIndex((e) => e.type === 'fence');
  t.ok(r.effects.slice(0, first).some((e) => e.type === 'logDecision' && e.host === 'cmp-3' && e.guards?.ok), 'decision with guards logged before the fence');
});

t.test('two rounds are not enough', async (t) => {
  t.equal(run({ failed: new Set(allNets('cmp-3')), self: ALL_OK, bmcOk: true }, 2).fences.length, 0);
});

t.test('the storage switch dies (every host storage=down): mass failure, nobody fenced', async (t) => {
  const r = run({ failed: new Set(HOSTS.map((h) => `${h}/storage`)), self: ALL_OK, bmcOk: true }, 8);
  t.equal(r.fences.length, 0);
  t.equal(r.effects.filter((e) => e.type === 'claimIncident').length, 0);
  t.same(HOSTS.map((h) => r.states[h]!.phase), Array(6).fill('held'));
  t.ok(r.effects.some((e) => e.type === 'alarm' && /mass-failure/.test(e.detail)));
});

t.test('this monitor is cut off from storage: self-isolation holds, nobody fenced', async (t) => {
  // Our own storage agent lost its servers; it still lists one member as failed (its stale view).
  const r = run({ failed: new Set(['cmp-2/storage']), self: { ...ALL_OK, storage: client(0) }, bmcOk: true }, 8);
  t.equal(r.fences.length, 0);
  t.equal(r.states['cmp-2']!.phase, 'held');
  t.ok(r.effects.some((e) => e.type === 'alarm' && /self-isolation/.test(e.detail)));
});

t.test('our storage agent does not answer: unknown, never down; nobody fenced, no counts', async (t) => {
  const r = run({ failed: new Set(HOSTS.map((h) => `${h}/storage`)), self: { ...ALL_OK, storage: { error: 'ECONNREFUSED' } }, bmcOk: true }, 8);
  t.equal(r.fences.length, 0);
  t.same(HOSTS.map((h) => r.states[h]!.phase), Array(6).fill('suspect'));
  t.same(r.states['cmp-1']!.counts, { mgmt: 0, tenant: 0, storage: 0 });
});

t.test('two hosts dead, one recovery at a time: the second is held by the concurrency guard', async (t) => {
  const r = run({ failed: new Set([...allNets('cmp-1'), ...allNets('cmp-4')]), self: ALL_OK, bmcOk: true }, 8);
  t.equal(r.fences.length, 1);
  t.same([r.states['cmp-1']!.phase, r.states['cmp-4']!.phase].sort(), ['fenced', 'held']);
});

t.test('BMC unreachable: fence-unconfirmed, no recovery, no second attempt', async (t) => {
  const r = run({ failed: new Set(allNets('cmp-5')), self: ALL_OK, bmcOk: false }, 10);
  t.equal(r.fences.length, 1);
  t.equal(r.states['cmp-5']!.phase, 'fence-unconfirmed');
  t.equal(mayRecover(r.states['cmp-5']!), false);
  t.ok(r.effects.some((e) => e.type === 'alarm' && e.reason === 'fence-unconfirmed'));
});
