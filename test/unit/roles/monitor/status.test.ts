// Status document and text rendering, from machine states (no I/O).
import t from 'tap';
import { buildStatus, renderStatusText, type StatusInput } from '../../../../src/roles/monitor/status';
import { initialHostState, type HostState } from '../../../../src/roles/monitor/machine';
import { HOSTHA_MATRIX_2 } from '../../../../src/roles/monitor/matrix';

function input(hosts: HostState[]): StatusInput {
  return {
    self: 'ctl-1', nowMs: 100_000, intervalMs: 10_000, confirm: 3,
    networks: [{ name: 'mgmt', url: 'http://127.0.0.1:8500' }, { name: 'tenant', url: 'http://127.0.0.1:8501' }],
    selfViews: { mgmt: { server: false, knownServers: 3 }, tenant: { error: 'ECONNREFUSED' } },
    matrix: HOSTHA_MATRIX_2,
    hosts,
    bmc: { 'cmp-02': { reachable: false, atMs: 90_000, detail: 'no pong' } },
    kvProblems: [{ key: 'ha_cluster/compute_nodes/cmp-03/status/failed', message: 'ha_cluster/compute_nodes/cmp-03/status/failed: "x" does not parse' }],
  };
}

const fenced: HostState = {
  ...initialHostState('cmp-02', 40_000), phase: 'fence-unconfirmed', counts: { mgmt: 3, tenant: 3 }, confirmed: { mgmt: 'down', tenant: 'down' },
  samples: { mgmt: { host: 'cmp-02', network: 'mgmt', node: 'cmp-02', state: 'down', reasons: ['member Status 4 (failed)'] } },
  decision: { row: '00', description: 'mgmt down, tenant down', actions: ['ipmi', 'evacuate'] },
  session: 'sess-1', incidentId: 'cmp-02-40000', fence: { method: 'ipmi', outcome: 'error: timeout' }, lastAlarm: 'fence-unconfirmed:power off not confirmed',
};

t.test('the JSON document', async (t) => {
  const st = buildStatus(input([initialHostState('cmp-01'), fenced]));
  t.equal(st.role, 'monitor');
  t.same(st.networks.map((n) => [n.name, n.agent.ok]), [['mgmt', true], ['tenant', false]]);
  t.same(st.matrix.rows.map((r) => [r.row, r.actions]), [['11', []], ['10', ['migrate']], ['01', ['email']], ['00', ['ipmi', 'evacuate']]]);
  t.same(st.incidents, [{ host: 'cmp-02', phase: 'fence-unconfirmed', id: 'cmp-02-40000' }]);
  const h = st.hosts[1]!;
  t.match(h, { host: 'cmp-02', counts: { mgmt: 3 }, incident: { held: true, fence: { method: 'ipmi', outcome: 'error: timeout' } }, bmc: { reachable: false } });
  t.same(st.hosts[0]!.bmc, { reachable: 'unknown' });
  t.notOk('session' in h, 'the session id is not exposed as such');
  t.equal(st.kvProblems.length, 1);
  t.doesNotThrow(() => JSON.parse(JSON.stringify(st)));
});

t.test('the text rendering', async (t) => {
  const text = renderStatusText(buildStatus(input([initialHostState('cmp-01'), fenced])));
  t.match(text, /^monitor on ctl-1: 2 hosts, interval 10s, confirm 3\n/);
  t.match(text, /network tenant \(http:\/\/127\.0\.0\.1:8501\): NOT OK, agent error: ECONNREFUSED/);
  t.match(text, /incidents: cmp-02 fence-unconfirmed/);
  t.match(text, /cmp-02 +fence-unconfirmed +down 3\/3 .*DOWN .*60s; row 00 \[ipmi,evacuate\]; ALARM/);
  t.match(text, /KV problems \(last good state kept\):\n {2}ha_cluster\/compute_nodes\/cmp-03/);
  t.match(renderStatusText(buildStatus(input([initialHostState('cmp-01')]))), /incidents: none/);
});
