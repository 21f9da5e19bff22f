// Unit: the metrics section of the config, the bounded labels, the registry's
// transitions, the listener's HTTP surface, and that a process which never
// enables metrics never loads prom-client.
import t from 'tap';
import * as http from 'node:http';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseConfigText } from '../../src/config/load';
import { isLoopbackListen, parseListen } from '../../src/config/kinds';
import { endpointOf, render, resetMetrics, setRoleState, countConsulRequest, countCommand } from '../../src/metrics/registry';
import { serveMetrics } from '../../src/metrics/server';

const VIP = 'vip:\n  interface: eth0\n  address: 10.0.0.100\n';

t.test('listen addresses', async (t) => {
  t.same(parseListen('127.0.0.1:9469'), { kind: 'tcp', host: '127.0.0.1', port: 9469 });
  t.same(parseListen('[::1]:9469'), { kind: 'tcp', host: '::1', port: 9469 });
  t.same(parseListen('/run/vigil/metrics.sock'), { kind: 'unix', path: '/run/vigil/metrics.sock' });
  for (const bad of ['localhost:9469', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', '300.0.0.1:80', '[zz]:80', 'run/x.sock', '/run/', 9469, ':9469', `/${'x'.repeat(120)}`]) {
    t.equal(parseListen(bad), undefined, `${JSON.stringify(bad)} refused`);
  }
  t.ok(isLoopbackListen(parseListen('127.0.0.1:1')!));
  t.ok(isLoopbackListen(parseListen('127.9.9.9:1')!));
  t.ok(isLoopbackListen(parseListen('[::1]:1')!));
  t.ok(isLoopbackListen(parseListen('/tmp/m.sock')!));
  t.notOk(isLoopbackListen(parseListen('10.0.0.1:9469')!));
  t.notOk(isLoopbackListen(parseListen('0.0.0.0:9469')!));
  t.notOk(isLoopbackListen(parseListen('[::]:9469')!));
});

t.test('the metrics section', async (t) => {
  const cfg = parseConfigText(`${VIP}metrics:\n  listen: 127.0.0.1:9469\n`, '/etc/vigil/vigil.yml');
  t.same(cfg.metrics, { listen: { kind: 'tcp', host: '127.0.0.1', port: 9469 }, allowRemote: false });
  t.equal(parseConfigText(VIP, '/etc/vigil/vigil.yml').metrics, undefined, 'off unless configured');
  t.throws(() => parseConfigText(`${VIP}metrics:\n  listen: 0.0.0.0:9469\n`, '/x.yml'),
    /metrics\.listen: '0\.0\.0\.0:9469' is not a loopback address .*metrics\.allow_remote: true/, 'a remote listener must be asked for');
  const remote = parseConfigText(`${VIP}metrics:\n  listen: 0.0.0.0:9469\n  allow_remote: true\n`, '/x.yml');
  t.equal(remote.metrics?.allowRemote, true);
  t.throws(() => parseConfigText(`${VIP}metrics:\n  listen: localhost:9469\n`, '/x.yml'), /is not a listen address/);
  t.throws(() => parseConfigText(`${VIP}metrics: {}\n`, '/x.yml'), /listen/, 'listen is required');
  t.throws(() => parseConfigText(`${VIP}metrics:\n  listen: 127.0.0.1:9469\n  port: 1\n`, '/x.yml'), /port/, 'unknown keys refused');
});

t.test('Consul paths become bounded route templates', async (t) => {
  t.equal(endpointOf('/v1/kv/ha_cluster/compute_nodes/n1/status/failed'), '/v1/kv/:key');
  t.equal(endpointOf('/v1/health/node/compute-17'), '/v1/health/node/:node');
  t.equal(endpointOf('/v1/session/renew/3f1c-aa'), '/v1/session/renew/:id');
  t.equal(endpointOf('/v1/agent/members'), '/v1/agent/members');
  t.equal(endpointOf('/v1/txn'), '/v1/txn');
  t.equal(endpointOf('/v1/kv/'), 'other', 'a route without its name is not a key');
  t.equal(endpointOf('/v1/something/new/10.0.0.7'), 'other', 'an unknown path never becomes a label of its own');
});

t.test('state gauge, transitions and counters in the exposition', async (t) => {
  resetMetrics();
  setRoleState('vip', 'slave');
  setRoleState('vip', 'slave');
  setRoleState('vip', 'master');
  setRoleState('vip', 'slave');
  countConsulRequest('GET', '/v1/health/node/n1', '2xx');
  countConsulRequest('GET', '/v1/health/node/n2', '2xx');
  countCommand('on_master', 'timeout');
  const { text, contentType } = await render();
  t.match(contentType, /^text\/plain/);
  t.match(text, /vigil_role_state\{role="vip",state="slave"\} 1/);
  t.match(text, /vigil_role_state\{role="vip",state="master"\} 0/);
  t.match(text, /vigil_role_transitions_total\{role="vip",from="slave",to="master"\} 1/);
  t.match(text, /vigil_role_transitions_total\{role="vip",from="master",to="slave"\} 1/);
  t.notMatch(text, /from="slave",to="slave"/, 'staying in a state is not a transition');
  t.match(text, /vigil_consul_requests_total\{endpoint="\/v1\/health\/node\/:node",method="GET",result="2xx"\} 2/);
  t.match(text, /vigil_commands_total\{command="on_master",result="timeout"\} 1/);
});

t.test('the listener: GET and HEAD of /metrics, 404 and 405 otherwise, nothing left after close', async (t) => {
  const srv = await serveMetrics({ kind: 'tcp', host: '127.0.0.1', port: 0 });
  const port = Number(srv.address.split(':').pop());
  const req = (method: string, path: string) => new Promise<{ status: number; body: string }>((resolve, reject) => {
    http.request({ host: '127.0.0.1', port, method, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject).end();
  });
  const ok = await req('GET', '/metrics');
  t.equal(ok.status, 200);
  t.match(ok.body, /# TYPE vigil_role_state gauge/);
  t.equal((await req('GET', '/metrics?x=1')).status, 200);
  t.equal((await req('HEAD', '/metrics')).body, '');
  t.equal((await req('GET', '/admin')).status, 404);
  t.equal((await req('PUT', '/metrics')).status, 405);
  await srv.close();
  await t.rejects(req('GET', '/metrics'), /ECONNREFUSED/);
  await t.rejects(serveMetrics({ kind: 'unix', path: __filename }), { code: 'EMETRICSLISTEN' }, 'never replaces a file that is not a socket');
});

t.test('a process that does not enable metrics never loads prom-client', async (t) => {
  const root = join(__dirname, '..', '..');
  const out = execFileSync(process.execPath, ['-e', `
    const m = require('./dist/src/metrics');
    require('./dist/src/consul/client');
    require('./dist/src/actions/commands');
    m.countConsulRequest('GET', '/v1/agent/self', '2xx');
    const loaded = () => Object.keys(require.cache).some((k) => k.includes('prom-client'));
    const before = loaded();
    m.enableMetrics().then(() => console.log(JSON.stringify({ before, after: loaded() })));
  `], { cwd: root, encoding: 'utf8' });
  t.same(JSON.parse(out), { before: false, after: true });
});

t.test('the shipped alert rules name only metrics, labels and states vigil exports', async (t) => {
  const { readFileSync } = await import('node:fs');
  const { parse } = await import('yaml');
  const root = join(__dirname, '..', '..');
  const rules = parse(readFileSync(join(root, 'etc/prometheus/vigil-alerts.yml'), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
  const scrape = parse(readFileSync(join(root, 'etc/prometheus/vigil-scrape.yml'), 'utf8')) as { scrape_configs: { metrics_path: string }[] };
  t.equal(scrape.scrape_configs[0]!.metrics_path, '/metrics');
  const { registry } = await import('../../src/metrics/registry');
  const names = new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
  // The states each role reports (the machines' own types, spelled out so a renamed state breaks this test).
  const states: Record<string, string[]> = {
    vip: ['inactive', 'slave', 'master', 'stopping', 'stopped'],
    fence: ['waiting', 'armed', 'suspect', 'checking-network', 'fencing', 'fenced', 'stopped'],
  };
  const alerts = rules.groups.flatMap((g) => g.rules);
  t.ok(alerts.length >= 3);
  for (const a of alerts) {
    for (const [, name] of a.expr.matchAll(/\b(vigil_[a-z_]+)/g)) t.ok(names.has(name!), `${a.alert}: ${name} is exported`);
    const role = /role="([^"]+)"/.exec(a.expr)?.[1];
    const state = /state=~?"([^"]+)"/.exec(a.expr)?.[1];
    if (role && state) for (const s of state.split('|')) t.ok(states[role]?.includes(s), `${a.alert}: ${role} has a state ${s}`);
  }
  t.ok(alerts.some((a) => /state="master"\}\) < 1/.test(a.expr)), 'no master');
  t.ok(alerts.some((a) => /state="master"\}\) > 1/.test(a.expr)), 'two masters');
  t.ok(alerts.some((a) => /role="fence", state="suspect"/.test(a.expr)), 'self-fence armed without servers');
});

t.test('the fence role\'s metric state', async (t) => {
  const { fenceMetricState } = await import('../../src/roles/fence/runner');
  const { initialFenceState } = await import('../../src/roles/fence/machine');
  const s = initialFenceState();
  t.equal(fenceMetricState(s), 'waiting', 'nothing can be lost before servers were seen');
  t.equal(fenceMetricState({ ...s, seenServers: true }), 'armed');
  t.equal(fenceMetricState({ ...s, seenServers: true, count: 1 }), 'suspect');
  t.equal(fenceMetricState({ ...s, seenServers: true, count: 1, phase: 'checking-network' }), 'checking-network');
  t.equal(fenceMetricState({ ...s, phase: 'fenced' }), 'fenced');
});
