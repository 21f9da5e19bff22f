// Self-fencing end to end: the real daemon in a lab host, supervising Consul
// TEST DOUBLES (not Consul: no Consul binary can be installed here) on the
// host's loopback, with real link cuts and a marker-file fence action.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createLab, skipUnlessRoot, type Lab, type LabHost } from '../support/lab';
import { scratchDir, writeConfig, startDaemon, daemonStatus, waitFor, BIN, logsMatching, type Daemon } from '../support/vigil';
import { consulDoubleCommand, writeAgentConfig, type AgentConfigFile } from '../support/consul-double';

if (skipUnlessRoot(t)) process.exit(0);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CHECK_MS = 300;

/** An HTTP request made from inside a lab host (the doubles listen on its loopback). */
async function nsHttp(host: LabHost, method: string, url: string, body?: string): Promise<{ status: number; body: string }> {
  const script = `const http=require('http');const r=http.request(process.argv[1],{method:process.argv[2],timeout:3000},(res)=>{let b='';res.on('data',(c)=>b+=c);res.on('end',()=>{process.stdout.write(JSON.stringify({status:res.statusCode,body:b}))})});r.on('timeout',()=>r.destroy(new Error('timeout')));r.on('error',(e)=>{process.stdout.write(JSON.stringify({status:0,body:String(e)}))});r.end(process.argv[3]||undefined)`;
  const r = await host.exec([process.execPath, '-e', script, url, method, body ?? ''], { timeoutMs: 10_000 });
  return JSON.parse(r.stdout || '{"status":0,"body":"no output"}') as { status: number; body: string };
}

interface Agent { name: string; port: number; url: string; dir: string }

interface Setup {
  lab: Lab; cmp: LabHost; peer: LabHost; dir: string; marker: string; pidfile: string; config: string; daemon: Daemon; agents: Agent[];
}

/**
 * A lab with the compute host `cmp` (vigil + its supervised Consul doubles)
 * and `peer` (a neighbour that is also the Consul server address).
 */
async function setup(t: Tap.Test, opts: { agents?: number; double?: AgentConfigFile['double']; server?: boolean; dryRun?: boolean } = {}): Promise<Setup> {
  const lab = await createLab({ hosts: ['cmp', 'peer'] });
  const dir = scratchDir('fence');
  const cmp = lab.host('cmp');
  const peer = lab.host('peer');
  const marker = path.join(dir, 'FENCED');
  const pidfile = path.join(dir, 'run', 'vigil.pid');
  fs.mkdirSync(path.dirname(pidfile), { recursive: true, mode: 0o755 });
  const agents: Agent[] = [];
  for (let i = 0; i < (opts.agents ?? 1); i++) {
    const port = 18500 + i;
    const adir = path.join(dir, `agent${i}`);
    writeAgentConfig(adir, {
      node_name: 'cmp-01', server: opts.server ?? false, addresses: { http: '127.0.0.1' }, ports: { http: port },
      retry_join: [peer.ip], double: { state: 'healthy', servers: [{ name: 'ctrl-01', addr: peer.ip }], ...(opts.double ?? {}) },
    });
    agents.push({ name: `net${i}`, port, url: `http://127.0.0.1:${port}`, dir: adir });
  }
  const config = writeConfig(dir, 'vigil', {
    node: 'cmp-01', pidfile, state_dir: path.join(dir, 'state'), log: { level: 'debug' },
    fence: {
      agents: agents.map((a) => ({ name: a.name, url: a.url, command: consulDoubleCommand(a.dir) })),
      interfaces: [cmp.ifname], check_interval: `${CHECK_MS}ms`, confirm_cycles: 2, request_timeout: '150ms',
      neighbour_probe_timeout: '100ms', actions: [['/bin/sh', '-c', `date +%s%N >> ${marker}`]], dry_run: opts.dryRun ?? false,
    },
  });
  const daemon = startDaemon(cmp, config, pidfile);
  t.teardown(async () => {
    daemon.proc.kill('SIGTERM');
    await Promise.race([daemon.exited, sleep(5000)]);
    // Supervised agents outlive vigil by design (a vigil restart must not take Consul down): kill them here.
    for (const a of agents) await cmp.exec(['pkill', '-f', a.dir]);
    await lab.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  // Wait until every agent answers and the first cycles have run.
  await waitFor(async () => {
    const st = await daemonStatus(pidfile);
    const ags = (st?.roles?.fence?.agents ?? []) as { state: { kind: string } }[];
    return ags.length === agents.length && ags.every((a) => a.state.kind !== 'unknown' && a.state.kind !== 'not polled yet');
  }, 15_000, 'all agents answering');
  return { lab, cmp, peer, dir, marker, pidfile, config, daemon, agents };
}

const fenceStatus = async (s: Setup) => (await daemonStatus(s.pidfile))?.roles?.fence as Record<string, any>;
const fenced = (s: Setup) => fs.existsSync(s.marker);
const setState = (s: Setup, a: Agent, state: string) => nsHttp(s.cmp, 'PUT', `${a.url}/_double/state`, JSON.stringify({ state }));
/** Let `cycles` check cycles pass. */
const cycles = (n: number) => sleep(n * CHECK_MS + 200);

t.test('servers lost while a neighbour answers: no fence, a join attempted', async (t) => {
  const s = await setup(t, { double: { healOnJoin: false } });
  await waitFor(async () => (await fenceStatus(s))?.seenServers, 5000, 'servers seen');
  await setState(s, s.agents[0]!, 'servers-lost');
  await cycles(6);
  t.notOk(fenced(s), 'no fence');
  const joins = JSON.parse((await nsHttp(s.cmp, 'GET', `${s.agents[0]!.url}/_double/joins`)).body) as { addr: string; method: string }[];
  t.ok(joins.length >= 1, `join attempted (${joins.length} times)`);
  t.equal(joins[0]?.addr, s.peer.ip, 'to the server member seen while healthy');
  t.equal(joins[0]?.method, 'PUT', 'with PUT (Consul >= 1.0 refuses GET)');
  t.match(await logsMatching(s.daemon.logs, /not isolated/), /not isolated/);
});

t.test('20 dead stale neighbours do not crowd out the live server: not isolated', async (t) => {
  const s = await setup(t, { double: { healOnJoin: false } });
  await waitFor(async () => (await fenceStatus(s))?.seenServers, 5000, 'servers seen');
  // More dead entries than the per-interface neighbour bound, at lab addresses nobody holds.
  const dead = Array.from({ length: 20 }, (_, i) => s.lab.freeIp(i));
  for (const [i, ip] of dead.entries()) {
    const r = await s.cmp.exec(['ip', 'neigh', 'add', ip, 'lladdr', `02:00:00:00:ee:${i.toString(16).padStart(2, '0')}`, 'nud', 'stale', 'dev', s.cmp.ifname]);
    t.equal(r.code, 0, `ip neigh add ${ip}: ${r.stderr.trim()}`);
  }
  // The live server must reach the probe list as a server address, not as a lucky neighbour entry.
  await s.cmp.exec(['ip', 'neigh', 'del', s.peer.ip, 'dev', s.cmp.ifname]);
  const table = (await s.cmp.exec(['ip', '-4', 'neigh', 'show', 'dev', s.cmp.ifname])).stdout;
  t.equal(dead.filter((ip) => table.includes(`${ip} `)).length, 20, 'the 20 stale entries are in the table');
  t.notOk(table.includes(`${s.peer.ip} `), 'the live server is not');
  await setState(s, s.agents[0]!, 'servers-lost');
  await cycles(6);
  t.notOk(fenced(s), 'no fence');
  const st = await fenceStatus(s);
  t.match(st.verdict, /not isolated/);
  const obs = (st.lastNetwork as { iface: string; probed: string[]; answeredBy?: { ip: string } }[]).find((o) => o.iface === s.cmp.ifname)!;
  t.equal(obs.answeredBy?.ip, s.peer.ip, 'the live server answered ARP');
  t.equal(obs.probed[0], s.peer.ip, 'probed first');
  t.ok(obs.probed.length <= 17, `bounded: ${obs.probed.length} probed (the server + at most 16 neighbours)`);
});

t.test('servers lost and the link cut: fence after confirm_cycles', async (t) => {
  const s = await setup(t);
  await waitFor(async () => (await fenceStatus(s))?.seenServers, 5000, 'servers seen');
  await setState(s, s.agents[0]!, 'servers-lost');
  const cutAt = Date.now();
  await s.cmp.cutLink();
  await waitFor(() => fenced(s), 10_000, 'the fence marker');
  const tookMs = Date.now() - cutAt;
  t.ok(tookMs >= CHECK_MS, `fenced ${tookMs} ms after the cut (>= one cycle: confirm_cycles is 2)`);
  await cycles(4);
  t.equal(fs.readFileSync(s.marker, 'utf8').trim().split('\n').length, 1, 'fenced exactly once, then the loop stopped');
  t.equal((await fenceStatus(s))?.phase, 'fenced');
  const logs = s.daemon.logs();
  t.ok(logs.indexOf('FENCING') >= 0 && logs.indexOf('FENCING') < logs.indexOf('fence action run'), 'evidence logged before the action');
  t.match(logs, /"reason":"no carrier"/, 'the evidence names the dead interface');
  const lines = logs.split('\n').filter((l) => l.startsWith('{')).map((l) => ({ l, roles: l.match(/"role":"[^"]*"/g) ?? [] }));
  t.same(lines.filter((x) => x.roles.length !== 1 || x.roles[0] !== '"role":"fence"').map((x) => x.l), [], 'every line (fence, daemon, netlink) says role fence, once');
});

t.test('never had servers: no fence', async (t) => {
  const s = await setup(t, { double: { state: 'never-had-servers' } });
  await s.cmp.cutLink();
  await cycles(6);
  t.notOk(fenced(s));
  t.equal((await fenceStatus(s))?.seenServers, false);
});

t.test('agent killed: restarted, no fence', async (t) => {
  const s = await setup(t);
  const before = (await fenceStatus(s)).agents[0].process;
  t.ok(before.pid, 'vigil started the agent');
  process.kill(before.pid, 'SIGKILL');
  await waitFor(async () => {
    const p = (await fenceStatus(s)).agents[0];
    return p.process.restarts >= 1 && p.process.running && p.state.kind === 'client';
  }, 10_000, 'agent restarted and answering');
  t.pass('restarted');
  t.notOk(fenced(s));
  t.match(s.daemon.logs(), /does not count toward fencing/, 'the unknown cycle did not count');
});

t.test('agent hung, servers lost, link cut: no fence', async (t) => {
  const s = await setup(t);
  await waitFor(async () => (await fenceStatus(s))?.seenServers, 5000, 'servers seen');
  await setState(s, s.agents[0]!, 'hung');
  await s.cmp.cutLink();
  await cycles(6);
  t.notOk(fenced(s));
  t.equal((await fenceStatus(s)).agents[0].state.kind, 'unknown');
});

t.test('a server agent never fences its host', async (t) => {
  const s = await setup(t, { server: true });
  await s.cmp.cutLink();
  await cycles(6);
  t.notOk(fenced(s));
  t.match((await fenceStatus(s)).verdict, /server/);
});

t.test('one of three agents still has servers: no fence', async (t) => {
  const s = await setup(t, { agents: 3 });
  await waitFor(async () => (await fenceStatus(s))?.seenServers, 5000, 'servers seen');
  await setState(s, s.agents[0]!, 'servers-lost');
  await setState(s, s.agents[2]!, 'servers-lost');
  await s.cmp.cutLink();
  await cycles(6);
  t.notOk(fenced(s));
  // ...and once the third one loses its servers too, the host is fenced.
  await setState(s, s.agents[1]!, 'servers-lost');
  await waitFor(() => fenced(s), 10_000, 'fence once all three lost their servers');
  t.pass('fenced once all agents lost every server');
});

t.test('dry run: "would fence", no action', async (t) => {
  const s = await setup(t, { dryRun: true });
  await waitFor(async () => (await fenceStatus(s))?.seenServers, 5000, 'servers seen');
  await setState(s, s.agents[0]!, 'servers-lost');
  await s.cmp.cutLink();
  await waitFor(() => /would fence/.test(s.daemon.logs()), 10_000, '"would fence" in the log');
  await cycles(3);
  t.notOk(fenced(s), 'no action ran');
  t.equal((await fenceStatus(s)).phase, 'running', 'the loop goes on');
});

t.test('vigil leave: every agent leaves (PUT /v1/agent/leave), then vigil stops', async (t) => {
  const s = await setup(t, { agents: 2 });
  const r = await s.cmp.exec([process.execPath, BIN, 'leave', '-c', s.config], { timeoutMs: 30_000 });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /"ok":true/);
  const code = await Promise.race([s.daemon.exited, sleep(10_000).then(() => 'still running')]);
  t.equal(code, 0, 'vigil stopped with exit 0');
  for (const a of s.agents) {
    // A graceful leave shuts the agent down: its port no longer answers.
    const res = await nsHttp(s.cmp, 'GET', `${a.url}/v1/agent/self`);
    t.equal(res.status, 0, `agent ${a.name} left and shut down`);
  }
  t.notOk(fenced(s));
});
