// Table tests of the pure self-fencing machine, cycle by cycle on a fake clock.
import t from 'tap';
import {
  fenceTransition, initialFenceState, type AgentObservation, type FenceEffect, type FenceState,
  type InterfaceObservation,
} from '../../src/roles/fence/machine';

const client = (name: string, knownServers: number): AgentObservation => ({ name, kind: 'client', knownServers });
const unknown = (name: string): AgentObservation => ({ name, kind: 'unknown', reason: 'ECONNREFUSED' });
const server = (name: string): AgentObservation => ({ name, kind: 'server' });
const dead: InterfaceObservation = { iface: 'eth0', carrier: false, probed: [], reason: 'no carrier' };
const silent: InterfaceObservation = { iface: 'eth1', carrier: true, probed: ['10.0.0.1'], reason: 'none answered' };
const alive: InterfaceObservation = { iface: 'eth1', carrier: true, probed: ['10.0.0.1'], answeredBy: { ip: '10.0.0.1', mac: '02:00:00:00:00:01', rttMs: 0.2 } };

/**
 * Run cycles: each entry is what the agents say that cycle and, if the
 * machine asks for a network check, what the network check finds.
 */
function run(cycles: { agents: AgentObservation[]; net?: InterfaceObservation[] }[], dryRun = false, confirmCycles = 2) {
  let s: FenceState = initialFenceState();
  const all: FenceEffect[] = [];
  let now = 0;
  for (const c of cycles) {
    now += 5000;
    let step = fenceTransition(s, { type: 'observed', nowMs: now, agents: c.agents }, { confirmCycles, dryRun });
    s = step.state;
    all.push(...step.effects);
    if (step.effects.some((e) => e.type === 'checkNetwork')) {
      step = fenceTransition(s, { type: 'networkChecked', nowMs: now + 10, interfaces: c.net ?? [dead] }, { confirmCycles, dryRun });
      s = step.state;
      all.push(...step.effects);
    }
    if (s.phase === 'fencing') {
      step = fenceTransition(s, { type: 'fenceDone', nowMs: now + 20, results: [] }, { confirmCycles, dryRun });
      s = step.state;
      all.push(...step.effects);
    }
  }
  return { state: s, effects: all, fences: all.filter((e) => e.type === 'fence').length };
}

const healthy = { agents: [client('mgmt', 3)] };
const lost = (net?: InterfaceObservation[]) => ({ agents: [client('mgmt', 0)], ...(net ? { net } : {}) });

t.test('servers lost and the network dead for confirm_cycles: fence once, then stop', async (t) => {
  const r = run([healthy, lost(), lost(), lost()]);
  t.equal(r.fences, 1);
  t.equal(r.state.phase, 'fenced');
  const fence = r.effects.find((e) => e.type === 'fence') as Extract<FenceEffect, { type: 'fence' }>;
  t.equal(fence.evidence.count, 2);
  t.same(fence.evidence.interfaces, [dead], 'the evidence names the interfaces');
  const logIdx = r.effects.findIndex((e) => e.type === 'log' && e.level === 'fatal');
  t.ok(logIdx >= 0 && logIdx < r.effects.indexOf(fence), 'evidence logged before the fence');
});

t.test('one isolated cycle is not enough', async (t) => {
  t.equal(run([healthy, lost()]).fences, 0);
  t.equal(run([healthy, lost(), healthy, lost()]).fences, 0, 'a healthy cycle resets the count');
});

t.test('never had servers: no fence', async (t) => {
  const r = run([lost(), lost(), lost(), lost()]);
  t.equal(r.fences, 0);
  t.equal(r.effects.filter((e) => e.type === 'checkNetwork').length, 0, 'the network is not even checked');
});

t.test('servers lost while a neighbour answers: no fence, a rejoin', async (t) => {
  const r = run([healthy, lost([dead, alive]), lost([dead, alive]), lost([dead, alive])]);
  t.equal(r.fences, 0);
  t.equal(r.effects.filter((e) => e.type === 'rejoin').length, 3);
  t.equal(r.state.count, 0);
});

t.test('carrier without an answering neighbour is not a working interface', async (t) => {
  t.equal(run([healthy, lost([silent]), lost([silent])]).fences, 1);
});

t.test('an unknown agent never counts, and resets the count', async (t) => {
  const r = run([healthy, lost(), { agents: [unknown('mgmt')] }, { agents: [unknown('mgmt')] }]);
  t.equal(r.fences, 0);
  t.equal(r.state.count, 0, 'reset: isolated cycles on either side of an unknown one are not consecutive');
  const split = run([healthy, lost(), { agents: [unknown('mgmt')] }, lost()]);
  t.equal(split.fences, 0, 'isolated, unknown, isolated: not two consecutive isolated cycles');
  t.equal(split.state.count, 1, 'the count starts again after the unknown cycle');
  t.equal(run([healthy, lost(), { agents: [unknown('mgmt')] }, lost(), lost()]).fences, 1, 'two consecutive isolated cycles after it do fence');
  const r2 = run([healthy, { agents: [client('a', 0), unknown('b')] }, { agents: [client('a', 0), unknown('b')] }, { agents: [client('a', 0), unknown('b')] }]);
  t.equal(r2.fences, 0, 'one unknown agent among lost ones: no fence');
});

t.test('a network check that could not be carried out is unknown, never isolation', async (t) => {
  const probeFailed: InterfaceObservation = { iface: 'eth1', carrier: true, probed: ['10.0.0.1'], reason: 'none answered', error: '1 of 1 ARP probes could not be made: EPERM' };
  const carrierUnread: InterfaceObservation = { iface: 'eth0', carrier: false, probed: [], reason: 'carrier not read', error: 'carrier read failed: ENOBUFS' };
  const table: { name: string; net: InterfaceObservation[]; fences: number; verdict: RegExp }[] = [
    { name: 'every probe failed', net: [probeFailed], fences: 0, verdict: /^unknown/ },
    { name: 'carrier not read', net: [carrierUnread], fences: 0, verdict: /^unknown/ },
    { name: 'one interface down (evidence), the other failed to probe', net: [dead, probeFailed], fences: 0, verdict: /^unknown/ },
    { name: 'one interface silent (evidence), the other failed to read', net: [silent, carrierUnread], fences: 0, verdict: /^unknown/ },
    { name: 'an error elsewhere does not hide a working interface', net: [carrierUnread, alive], fences: 0, verdict: /not isolated/ },
    { name: 'no carrier and silence are evidence', net: [dead, silent], fences: 1, verdict: /^fenced$/ },
  ];
  for (const row of table) {
    const r = run([healthy, lost(row.net), lost(row.net), lost(row.net)]);
    t.equal(r.fences, row.fences, `${row.name}: ${row.fences} fence(s)`);
    t.match(r.state.lastVerdict, row.verdict, `${row.name}: verdict ${r.state.lastVerdict}`);
  }
  const failing = run([healthy, lost([probeFailed])]);
  const log = failing.effects.find((e) => e.type === 'log' && /inconclusive/.test(e.msg)) as Extract<FenceEffect, { type: 'log' }> | undefined;
  t.ok(log, 'the log says why the cycle did not count');
  t.same((log?.data as { failed?: unknown[] } | undefined)?.failed, [{ iface: 'eth1', error: probeFailed.error }], 'naming the interface and its error');
  t.equal(failing.effects.filter((e) => e.type === 'rejoin').length, 0, 'no rejoin: the network is not known to work');
  t.equal(failing.effects.filter((e) => e.type === 'scheduleCycle').length, 2, 'the loop goes on');
  const reset = run([healthy, lost([dead]), lost([probeFailed]), lost([dead])]);
  t.equal(reset.fences, 0, 'isolated, unknown, isolated: no fence');
  t.equal(reset.state.count, 1, 'the unknown network cycle reset the count');
});

t.test('a server agent never fences its host', async (t) => {
  t.equal(run([healthy, { agents: [server('s')] }, { agents: [server('s')] }, { agents: [server('s')] }]).fences, 0);
  t.equal(run([healthy, { agents: [client('a', 0), server('s')] }, { agents: [client('a', 0), server('s')] }]).fences, 0);
});

t.test('one of three agents still has servers: no fence', async (t) => {
  const three = (n: number) => ({ agents: [client('mgmt', 0), client('tenant', n), client('storage', 0)] });
  t.equal(run([three(3), three(1), three(1), three(1)]).fences, 0);
  t.equal(run([three(3), three(0), three(0)]).fences, 1, 'all three lost: fence');
});

t.test('dry run: would fence, no action, and goes on', async (t) => {
  const r = run([healthy, lost(), lost(), lost(), lost()], true);
  t.equal(r.fences, 0);
  t.equal(r.state.wouldFence, 2);
  t.equal(r.state.phase, 'running');
  t.ok(r.effects.some((e) => e.type === 'log' && /would fence/.test(e.msg)));
});

t.test('the watchdog is petted on every cycle that completes, never while fencing', async (t) => {
  const r = run([healthy, healthy, lost(), lost()]);
  const pets = r.effects.filter((e) => e.type === 'petWatchdog').length;
  t.equal(pets, 3, 'two healthy cycles and the first isolated one');
});

t.test('confirm_cycles 1 fences on the first isolated cycle', async (t) => {
  t.equal(run([healthy, lost()], false, 1).fences, 1);
});

t.test('stop: exit 0; a stray network result is ignored', async (t) => {
  const s = initialFenceState();
  const st = fenceTransition(s, { type: 'stop', nowMs: 1 }, { confirmCycles: 2, dryRun: false });
  t.same(st.effects, [{ type: 'exit', code: 0 }]);
  const stray = fenceTransition(s, { type: 'networkChecked', nowMs: 1, interfaces: [dead] }, { confirmCycles: 2, dryRun: false });
  t.same(stray.effects, []);
});
