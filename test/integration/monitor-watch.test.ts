// The monitor's rounds with the real I/O against two Consul TEST DOUBLES on loopback: health and
// KV come from blocking-query watches, so an idle round sends no health or KV request; a check
// that turns critical reaches the next round through the health watch; a network whose agent loses
// its servers or stops answering makes every host unknown there (never down) while the other network
// still samples.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startDoubleForTest } from '../support/consul-double';
import { scratchDir, waitFor } from '../support/vigil';
import { normalizeMonitor } from '../../src/roles/monitor/config';
import { MonitorRunner } from '../../src/roles/monitor/runner';
import { createRealIo } from '../../src/roles/monitor/io';
import { rootLog } from '../../src/log';
import type { VigilConfig } from '../../src/config/types';

t.test('watched health and KV: idle rounds, a critical check, an agent that stops answering', async (t) => {
  const dir = scratchDir('mon-watch');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const members = ['h1', 'h2', 'h3'].map((n, i) => ({ name: n, addr: `192.0.2.${10 + i}` }));
  const [mgmt, tenant] = await Promise.all(['mgmt', 'tenant'].map((n) => startDoubleForTest(t, { node_name: `c-${n}`, server: true, double: { clients: members } })));
  const pw = path.join(dir, 'pw');
  fs.writeFileSync(pw, 'watch-test-password\n', { mode: 0o600 });
  const cfg = normalizeMonitor({
    networks: { mgmt: { url: mgmt!.url }, tenant: { url: tenant!.url, checks: ['app'] } },
    inventory: { hosts: members.map((m) => ({ name: m.name, bmc: { ip: '192.0.2.1', user: 'admin', password_file: pw } })) },
    interval: '1s',
  });
  const log = rootLog().child({ module: 'test' });
  log.level = 'silent';
  for (const m of members) await tenant!.setChecks({ Node: m.name, CheckID: 'app', Name: 'app', Status: 'passing' });
  // The BMC address is a documentation one: no presence ping leaves this machine.
  const io = { ...createRealIo({ node: 'mon', monitor: cfg } as unknown as VigilConfig, cfg, log), probeBmc: async () => ({ reachable: 'unknown' as const, atMs: Date.now(), detail: 'not probed in this test' }) };
  const runner = new MonitorRunner(cfg, 'mon', io, log);
  t.teardown(() => runner.stop());
  const samples = (host: string) => runner.status().hosts.find((h) => h.host === host)!.samples as Record<string, { state: string }>;

  await runner.runRound();
  for (const h of ['h1', 'h2', 'h3']) t.match(samples(h), { mgmt: { state: 'up' }, tenant: { state: 'up' } }, `${h} up on both`);

  // Idle: the first round wrote (its counters), so the next one reads KV back directly; then the
  // watches settle into their blocking reads (past their 1 s rate limit), and three rounds are counted.
  await runner.runRound();
  await new Promise((r) => setTimeout(r, 1500));
  for (const d of [mgmt!, tenant!]) await fetch(`${d.url}/_double/requests`, { method: 'DELETE' });
  for (let i = 0; i < 3; i++) await runner.runRound();
  const reqs = [...(await mgmt!.requests()), ...(await tenant!.requests())].map((r) => `${r.method} ${r.path}`);
  t.same(reqs.filter((r) => /health|\/v1\/kv\//.test(r)), [], 'no health or KV request in three idle rounds');
  t.equal(reqs.filter((r) => r.endsWith('/v1/agent/members')).length, 6, 'members: one per network per round');

  // Only the health view says so: h2's configured check on tenant turns critical.
  await tenant!.setChecks({ Node: 'h2', CheckID: 'app', Name: 'app', Status: 'critical' });
  await waitFor(async () => { await runner.runRound(); return samples('h2').tenant?.state === 'down'; }, 5000, 'h2 down on tenant through the health watch within 5 s');
  t.match(samples('h2'), { mgmt: { state: 'up' }, tenant: { state: 'down' } }, 'h2 down on tenant only (app critical)');
  t.match(samples('h1'), { tenant: { state: 'up' } }, 'h1 still up');

  // The tenant agent loses its servers (its gossip marks everyone failed): the held health read has
  // not noticed, so the round reads health directly, which fails: unknown, never a stale view's down.
  await tenant!.setState('servers-lost');
  await runner.runRound();
  for (const h of ['h1', 'h2', 'h3']) t.equal(samples(h).tenant?.state, 'unknown', `${h}: tenant unknown while its agent sees no servers`);
  await tenant!.setState('healthy');
  await waitFor(async () => { await runner.runRound(); return samples('h1').tenant?.state === 'up'; }, 5000, 'h1 up on tenant again within 5 s of the servers coming back');

  // The tenant agent stops answering: every host is unknown there, never down; mgmt still samples.
  await tenant!.stop();
  await runner.runRound();
  for (const h of ['h1', 'h2', 'h3']) {
    t.equal(samples(h).tenant?.state, 'unknown', `${h}: tenant unknown with its agent gone`);
    t.equal(samples(h).mgmt?.state, 'up', `${h}: mgmt still up`);
  }
});
