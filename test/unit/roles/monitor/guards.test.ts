// Guards before acting on another host: self-isolation, mass failure (fraction, absolute), concurrency, maintenance.
import t from 'tap';
import { evaluateGuards, failedGuards, selfSeesServers, selfViewFrom, type GuardConfig, type GuardInput, type SelfView } from '../../../../src/roles/monitor/guards';
import type { ConfirmState } from '../../../../src/roles/monitor/counter';

const CFG: GuardConfig = { maxDownFraction: 1 / 3, maxConcurrentRecoveries: 1 };
const healthy = { mgmt: 'up', tenant: 'up' } as Record<string, ConfirmState>;
const dead = { mgmt: 'down', tenant: 'down' } as Record<string, ConfirmState>;
const client = (n: number): SelfView => ({ server: false, knownServers: n });

/** Six hosts, cmp-1 dead, own agents fine. */
function input(over: Partial<GuardInput> = {}): GuardInput {
  const fleet: Record<string, Record<string, ConfirmState>> = {};
  for (let i = 1; i <= 6; i++) fleet[`cmp-${i}`] = healthy;
  fleet['cmp-1'] = dead;
  return {
    target: 'cmp-1', targetStates: dead, self: { mgmt: client(3), tenant: client(3) }, fleet,
    maintenance: new Set(), openIncidents: new Set(), ...over,
  };
}
const result = (inp: GuardInput, guard: string, cfg = CFG) => evaluateGuards(inp, cfg).results.find((r) => r.guard === guard)!;

t.test('all guards pass: every result is reported', async (t) => {
  const r = evaluateGuards(input(), CFG);
  t.equal(r.ok, true);
  t.same(r.results.map((g) => [g.guard, g.ok]), [['self-isolation', true], ['mass-failure', true], ['concurrency', true], ['maintenance', true]]);
  t.equal(failedGuards(r), '');
});

t.test('self-isolation', async (t) => {
  const table: [string, Record<string, SelfView>, boolean, RegExp][] = [
    ['known servers on both', { mgmt: client(3), tenant: client(1) }, true, /see servers/],
    ['no servers on tenant', { mgmt: client(3), tenant: client(0) }, false, /on tenant/],
    ['agent error', { mgmt: { error: 'ECONNREFUSED' }, tenant: client(3) }, false, /on mgmt/],
    ['agent missing', { mgmt: client(3) }, false, /on tenant/],
    ['server with leader', { mgmt: { server: true, leaderKnown: true }, tenant: client(3) }, true, /see servers/],
    ['server without leader', { mgmt: { server: true, leaderKnown: false }, tenant: client(3) }, false, /on mgmt/],
  ];
  for (const [name, self, ok, re] of table) {
    const g = result(input({ self }), 'self-isolation');
    t.equal(g.ok, ok, name);
    t.match(g.detail, re, name);
  }
  // Only accusing networks matter: a target down on mgmt alone does not need the tenant agent.
  const g = result(input({ targetStates: { mgmt: 'down', tenant: 'up' }, self: { mgmt: client(2), tenant: client(0) } }), 'self-isolation');
  t.equal(g.ok, true);
  t.same(g.evidence.accused, ['mgmt']);
  t.match(selfSeesServers(undefined), { ok: false });
});

t.test('mass failure: fraction (strictly more than 1/3) and absolute cap, per network', async (t) => {
  const fleetWith = (downHosts: number, total: number, net = 'mgmt') => {
    const f: Record<string, Record<string, ConfirmState>> = {};
    for (let i = 1; i <= total; i++) f[`cmp-${i}`] = i <= downHosts ? { ...healthy, [net]: 'down' } : healthy;
    return f;
  };
  const table: [number, number, number | undefined, boolean][] = [
    [1, 3, undefined, true],   // 1/3 is not more than 1/3
    [2, 3, undefined, false],
    [2, 6, undefined, true],
    [3, 6, undefined, false],
    [3, 12, 3, true],          // 3 is not more than max_down 3 (hostha: > max_evacuation)
    [4, 12, 3, false],
    [4, 12, undefined, true],
  ];
  for (const [down, total, maxDown, ok] of table) {
    const cfg = { ...CFG, ...(maxDown !== undefined ? { maxDown } : {}) };
    const g = result(input({ fleet: fleetWith(down, total) }), 'mass-failure', cfg);
    t.equal(g.ok, ok, `${down}/${total} max_down ${maxDown}`);
  }
  const storage = result(input({ fleet: fleetWith(5, 6, 'storage') }), 'mass-failure');
  t.equal(storage.ok, false, 'a whole network down (a switch) trips it');
  t.match(storage.detail, /storage: 5 of 6 down/);
});

t.test('mass failure ignores hosts in maintenance', async (t) => {
  const fleet = { a: dead, b: dead, c: healthy, d: healthy, e: healthy };
  t.equal(result(input({ target: 'a', fleet }), 'mass-failure').ok, false, '2 of 5 > 1/3');
  t.equal(result(input({ target: 'a', fleet, maintenance: new Set(['b']) }), 'mass-failure').ok, true, '1 of 4');
});

t.test('concurrency', async (t) => {
  t.equal(result(input({ openIncidents: new Set(['cmp-2']) }), 'concurrency').ok, false);
  t.equal(result(input({ openIncidents: new Set(['cmp-1']) }), 'concurrency').ok, true, 'its own incident');
  t.equal(result(input({ openIncidents: new Set(['cmp-2']) }), 'concurrency', { ...CFG, maxConcurrentRecoveries: 2 }).ok, true);
});

t.test('maintenance', async (t) => {
  const r = evaluateGuards(input({ maintenance: new Set(['cmp-1']) }), CFG);
  t.equal(r.ok, false);
  t.match(failedGuards(r), /maintenance: cmp-1 is in maintenance/);
});

t.test('selfViewFrom: agent/self info → SelfView', async (t) => {
  t.same(selfViewFrom({ server: false, knownServers: 3 }), { server: false, knownServers: 3 });
  t.same(selfViewFrom({ server: false, knownServers: undefined }), { server: false, knownServers: 0 });
  t.same(selfViewFrom({ server: true, leaderAddr: '10.1.10.12:8300' }), { server: true, leaderKnown: true });
  t.same(selfViewFrom({ server: true, leaderAddr: '' }), { server: true, leaderKnown: false });
  t.same(selfViewFrom({ server: true }), { server: true, leaderKnown: false });
  t.same(selfViewFrom({ error: 'No known Consul servers' }), { error: 'No known Consul servers' });
});

t.test('mass failure counts hosts down but not yet confirmed (pending)', async (t) => {
  // Hosts cut at the same moment may be confirmed a round apart: the first must not go alone.
  const fleet = { ...input().fleet, 'cmp-2': { mgmt: 'pending', tenant: 'pending' } as Record<string, ConfirmState>, 'cmp-3': { mgmt: 'pending', tenant: 'up' } as Record<string, ConfirmState> };
  const g = result(input({ fleet }), 'mass-failure');
  t.equal(g.ok, false, '1 down + 2 pending of 6 on mgmt is more than 1/3');
  t.same((g.evidence.down as Record<string, string[]>).mgmt, ['cmp-1', 'cmp-2', 'cmp-3']);
  t.equal(result(input({ fleet: { ...input().fleet, 'cmp-2': { mgmt: 'pending', tenant: 'up' } } }), 'mass-failure').ok, true, '2 of 6 is not more than 1/3');
});
