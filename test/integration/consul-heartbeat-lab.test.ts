// The Consul TEST DOUBLE in a network-namespace lab: the double runs in host w, heartbeat senders in a and b
// send over the lab bridge. Cutting b's veth (inside the lab only) stops its heartbeats, so after the
// suspicion timeout b is `failed` (Status 4), its serfHealth critical, and a session bound to it invalidated.
import t from 'tap';
import * as path from 'node:path';
import { startConsulDouble, writeAgentConfig, heartbeatCommand, childEnv, doubleRequest } from '../support/consul-double';
import { skipUnlessRoot } from '../support/lab';
import { testLab, waitFor } from '../support/vigil';

const SUSPICION_MS = 1500;

t.test('a cut veth turns the member failed after the suspicion timeout and invalidates its session', async (t) => {
  if (skipUnlessRoot(t)) return;
  const { lab, dir } = await testLab(t, ['w', 'a', 'b'], 'consul-hb');
  const w = lab.host('w');
  const sock = path.join(dir, 'double.sock');
  const configDir = writeAgentConfig(path.join(dir, 'w'), {
    node_name: 'w', server: true, double: { heartbeat: { port: 8301, suspicionTimeoutMs: SUSPICION_MS }, autoRegisterNodes: false },
  });
  const d = await startConsulDouble({ configDir, host: w.ip, port: 8500, unixSocket: sock,
    spawn: (argv) => w.spawn(argv, { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] }) });
  t.teardown(() => d.stop());
  t.equal(d.heartbeatPort, 8301);
  for (const name of ['a', 'b']) {
    const h = lab.host(name);
    h.spawn(heartbeatCommand(name, { host: w.ip, port: 8301 }, { addr: h.ip, intervalMs: 200 }), { env: childEnv(), stdio: 'ignore' });
  }
  const api = (method: string, p: string, body?: string) => doubleRequest({ url: d.url, socketPath: sock }, method, p, body);
  const status = async (name: string) => (await d.members()).find((m) => m.Name === name)?.Status as number | undefined;

  await waitFor(async () => (await status('a')) === 1 && (await status('b')) === 1, 5000, 'a and b alive from their heartbeats');
  t.match((await d.members()).find((m) => m.Name === 'b'), { Addr: lab.host('b').ip, Status: 1 });
  const sid = JSON.parse((await api('PUT', '/v1/session/create', JSON.stringify({ Node: 'b', Name: 'b-claim', LockDelay: '1s' }))).body).ID as string;
  t.equal((await api('PUT', `/v1/kv/vigil/peer/b/incident?acquire=${sid}`, 'b')).body, 'true');

  await lab.host('b').cutLink();
  const cut = Date.now();
  await waitFor(async () => (await status('b')) === 4, SUSPICION_MS + 3000, 'b failed');
  const failedAfter = Date.now() - cut;
  t.ok(failedAfter >= SUSPICION_MS - 250,
    `expected b alive for the suspicion timeout (${SUSPICION_MS} ms after its last beat, beats every 200 ms), it failed after ${failedAfter} ms`);
  t.ok(failedAfter <= SUSPICION_MS + 1500, `expected b failed within ${SUSPICION_MS + 1500} ms of the cut, took ${failedAfter} ms`);
  t.equal(await status('a'), 1, 'a, still beating, stays alive');
  t.same(JSON.parse((await api('GET', `/v1/session/info/${sid}`)).body), [], 'the session bound to b\'s serfHealth is gone');
  const key = JSON.parse((await api('GET', '/v1/kv/vigil/peer/b/incident')).body)[0];
  t.notOk('Session' in key, 'its lock was released');
  const checks = JSON.parse((await api('GET', '/v1/health/node/b')).body);
  t.match(checks, [{ CheckID: 'serfHealth', Status: 'critical', Output: 'Agent not live or unreachable' }]);
  const create = await api('PUT', '/v1/session/create', JSON.stringify({ Node: 'b' }));
  t.same([create.status, create.body], [500, "Check 'serfHealth' is in critical state"]);
  const ev = await d.sessions();
  t.match(ev.invalidations, [{ id: sid, node: 'b', why: 'check serfHealth of b critical' }]);

  await lab.host('b').restoreLink();
  await waitFor(async () => (await status('b')) === 1, 5000, 'b alive again once its heartbeats get through');
  t.match(JSON.parse((await api('GET', '/v1/health/node/b')).body), [{ Status: 'passing' }]);
});
