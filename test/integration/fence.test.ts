// Self-fencing end to end: the real daemon in a lab host, supervising Consul
// TEST DOUBLES (not Consul: no Consul binary can be installed here) on the
// host's loopback, with real link cuts and a marker-file fence action.
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createLab, skipUnlessRoot, type Lab, type LabHost } from '../support/lab';
import { scratchDir, writeConfig, startDaemon, daemonStatus, waitFor, BIN, logsMatching, expectedOf, SLACK_MS, START_MS, type Daemon } from '../support/vigil';
import { consulDoubleCommand, writeAgentConfig, type AgentConfigFile } from '../support/consul-double';

if (skipUnlessRoot(t)) process.exit(0);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CHECK_MS = 300;
const REQUEST_TIMEOUT_MS = 150;
const NEIGHBOUR_PROBE_TIMEOUT_MS = 100;
/**
 * The longest one check cycle can take: every agent's request timeout, then
 * the network check (the server address and at most 16 neighbours, each up
 * to the probe timeout).
 */
const CYCLE_MAX_MS = CHECK_MS + REQUEST_TIMEOUT_MS + 17 * NEIGHBOUR_PROBE_TIMEOUT_MS;
/** By when a fence must have run once `confirm` isolated cycles can count: one cycle to notice, `confirm` to count. */
const fenceBoundMs = (confirm: number) => (confirm + 1) * CYCLE_MAX_MS + SLACK_MS;
/** By when a healthy agent's servers show in the status: two cycles. */
const SEEN_MS = 2 * CYCLE_MAX_MS + SLACK_MS;

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
async function setup(t: Test, opts: { agents?: number; double?: AgentConfigFile['double']; server?: boolean; dryRun?: boolean; confirmCycles?: number; agentStartDelayS?: number } = {}): Promise<Setup> {
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
  // An agent that is slow to start (a delay, then the double): its process runs while its port refuses.
  const command = (adir: string) => (opts.agentStartDelayS
    ? ['/bin/sh', '-c', `sleep ${opts.agentStartDelayS}; exec "$0" "$@"`, ...consulDoubleCommand(adir)]
    : consulDoubleCommand(adir));
  const config = writeConfig(dir, 'vigil', {
    node: 'cmp-01', pidfile, state_dir: path.join(dir, 'state'), log: { level: 'debug' },
    fence: {
      agents: agents.map((a) => ({ name: a.name, url: a.url, command: command(a.dir) })),
      interfaces: [cmp.ifname], check_interval: `${CHECK_MS}ms`, confirm_cycles: opts.confirmCycles ?? 2, request_timeout: `${REQUEST_TIMEOUT_MS}ms`,
      neighbour_probe_timeout: `${NEIGHBOUR_PROBE_TIMEOUT_MS}ms`, actions: [['/bin/sh', '-c', `date +%s%N >> ${marker}`]], dry_run: opts.dryRun ?? false,
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
  // Wait until every agent answers and the first cycles have run: start-up, an agent's start delay, two cycles.
  const answeringMs = START_MS + (opts.agentStartDelayS ?? 0) * 1000 + SEEN_MS;
  await waitFor(async () => {
    const st = await daemonStatus(pidfile);
    const ags = (st?.roles?.fence?.agents ?? []) as { state: { kind: string } }[];
    return ags.length === agents.length && ags.every((a) => a.state.kind !== 'unknown' && a.state.kind !== 'not polled yet');
  }, answeringMs, expectedOf('all agents answering (start-up, the agents\' start delay, two cycles)', answeringMs, { vigil: daemon }));
  return { lab, cmp, peer, dir, marker, pidfile, config, daemon, agents };
}

/** What a wait expected by when, and the daemon's last log lines (read at the failure). */
const expected = (s: Setup, what: string, ms: number) => () => `${what} within ${ms} ms; the daemon's last lines:\n${s.daemon.logs().split('\n').slice(-12).join('\n')}`;
const fenceStatus = async (s: Setup) => (await daemonStatus(s.pidfile))?.roles?.fence as Record<string, any>;
const fenced = (s: Setup) => fs.existsSync(s.marker);
/** The daemon's JSON log lines. */
const jsonLines = (text: string) => text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);
const setState = (s: Setup, a: Agent, state: string) => nsHttp(s.cmp, 'PUT', `${a.url}/_double/state`, JSON.stringify({ state }));
/** Let `cycles` check cycles pass. */
const cycles = (n: number) => sleep(n * CHECK_MS + 200);

t.test('servers lost while a neighbour answers: no fence, a join attempted', async (t) => {
  const s = await setup(t, { double: { healOnJoin: false } });
  await waitFor(async () => (await fenceStatus(s))?.seenServers, SEEN_MS, expected(s, 'servers seen (two check cycles)', SEEN_MS));
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
  await waitFor(async () => (await fenceStatus(s))?.seenServers, SEEN_MS, expected(s, 'servers seen (two check cycles)', SEEN_MS));
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
  // The status may be read while a cycle is between its agent and network checks.
  const st = await waitFor(async () => { const x = await fenceStatus(s); return /not isolated/.test(String(x?.verdict)) ? x : undefined; }, CYCLE_MAX_MS + SLACK_MS, 'a finished cycle').catch(() => undefined) ?? await fenceStatus(s);
  t.match(st.verdict, /not isolated/);
  const obs = (st.lastNetwork as { iface: string; probed: string[]; answeredBy?: { ip: string } }[]).find((o) => o.iface === s.cmp.ifname)!;
  t.equal(obs.answeredBy?.ip, s.peer.ip, 'the live server answered ARP');
  t.equal(obs.probed[0], s.peer.ip, 'probed first');
  t.ok(obs.probed.length <= 17, `bounded: ${obs.probed.length} probed (the server + at most 16 neighbours)`);
});

t.test('servers lost and the link cut: fence after confirm_cycles', async (t) => {
  const s = await setup(t);
  await waitFor(async () => (await fenceStatus(s))?.seenServers, SEEN_MS, expected(s, 'servers seen (two check cycles)', SEEN_MS));
  // The link goes first, as in a real isolation (the agent loses its servers
  // only after Serf's timeouts). The other order is a race the test must not
  // run: a cycle between the two would find the network working and rejoin,
  // which heals the double's agent, so no fence would ever come.
  await s.cmp.cutLink();
  const lostAt = Date.now();
  await setState(s, s.agents[0]!, 'servers-lost');
  const bound = fenceBoundMs(2);
  await waitFor(() => fenced(s), bound, expected(s, 'the fence marker (confirm_cycles 2)', bound));
  const tookMs = Date.now() - lostAt;
  t.ok(tookMs >= CHECK_MS, `fenced ${tookMs} ms after the servers were lost (>= one cycle: confirm_cycles is 2)`);
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

t.test('agent gone while the host is isolated: restarted; its unknown cycles never count and reset the count', async (t) => {
  // The agent comes back slowly (3 s: ~10 cycles of 300 ms, far more than
  // confirm_cycles), so the host is isolated for many cycles in which the
  // agent's state is unknown. Were those counted, the host would be fenced
  // while the agent is gone; were they merely skipped, the count from before
  // would carry on once it is back.
  const CONFIRM = 4;
  const s = await setup(t, { confirmCycles: CONFIRM, agentStartDelayS: 3, double: { healOnJoin: false } });
  const a = s.agents[0]!;
  await waitFor(async () => (await fenceStatus(s))?.seenServers, SEEN_MS, expected(s, 'servers seen (two check cycles)', SEEN_MS));
  // The restarted agent comes up with its servers lost, as the first one has them now.
  fs.writeFileSync(path.join(a.dir, 'zz-servers-lost.json'), JSON.stringify({ double: { state: 'servers-lost' } }));
  await setState(s, a, 'servers-lost');
  await s.cmp.cutLink();
  // Isolated cycles start counting; kill the agent before confirm_cycles of them.
  await waitFor(async () => ((await fenceStatus(s))?.fenceCount ?? 0) >= 1, fenceBoundMs(1), expected(s, 'a first isolated cycle counted', fenceBoundMs(1)));
  const pid = (await fenceStatus(s)).agents[0].process.pid as number;
  const countAtKill = (await fenceStatus(s)).fenceCount as number;
  const logMark = s.daemon.logs().length;
  process.kill(pid, 'SIGKILL');
  const killedAt = Date.now();
  t.ok(countAtKill >= 1 && countAtKill < CONFIRM, `killed at isolation count ${countAtKill}/${CONFIRM}`);
  t.notOk(fenced(s), 'not fenced before the agent went away');

  // While it is gone: unknown cycles, and no fence.
  await waitFor(async () => (await fenceStatus(s)).agents[0].process.restarts >= 1, 10_000, 'the agent restarted');
  // (A fence stops the loop, so the status would never show the agent back: stop waiting then too.)
  const back = (await waitFor(async () => {
    const st = await fenceStatus(s);
    return st.agents[0].state.kind === 'client' || fenced(s) ? st : undefined;
  }, 15_000, 'the agent answering again'))!;
  const goneMs = Date.now() - killedAt;
  t.notOk(fenced(s), 'no fence while the agent was gone');
  if (fenced(s)) return;
  t.ok(back.agents[0].process.pid !== pid && back.agents[0].process.running, `restarted by vigil (pid ${pid} -> ${back.agents[0].process.pid})`);
  const unknownLines = jsonLines(s.daemon.logs().slice(logMark)).filter((l) => /^agent state unknown: this cycle does not count toward fencing/.test(l.msg));
  t.ok(unknownLines.length >= CONFIRM, `${unknownLines.length} unknown cycles while the agent was gone (${goneMs} ms), at least confirm_cycles (${CONFIRM})`);
  t.equal(back.agents[0].state.knownServers, 0, 'it came back without servers: the host is still isolated');
  t.ok(unknownLines[0]?.count >= 1, `the first unknown cycle found the count from before the kill (${unknownLines[0]?.count})...`);
  t.same(unknownLines.slice(1).map((l) => l.count), unknownLines.slice(1).map(() => 0), '...and reset it: every later unknown cycle found 0');

  // Back, still isolated: a fresh run of confirm_cycles isolated cycles, then the fence.
  await waitFor(() => fenced(s), fenceBoundMs(CONFIRM), expected(s, `the fence once the agent is back and the host still isolated (confirm_cycles ${CONFIRM})`, fenceBoundMs(CONFIRM)));
  const fencing = jsonLines(s.daemon.logs()).find((l) => /^FENCING/.test(l.msg))!;
  t.equal(fencing.evidence.count, CONFIRM, `fenced at count ${CONFIRM}`);
  const lastUnknown = s.daemon.logs().lastIndexOf('agent state unknown');
  const counted = jsonLines(s.daemon.logs().slice(lastUnknown)).filter((l) => /^isolated:/.test(l.msg)).map((l) => l.evidence.count as number);
  t.same(counted, Array.from({ length: CONFIRM - 1 }, (_, i) => i + 1), `after the agent came back the count started again at 1: ${counted.join(', ')}, then the fence`);
});

t.test('agent hung, servers lost, link cut: no fence', async (t) => {
  const s = await setup(t);
  await waitFor(async () => (await fenceStatus(s))?.seenServers, SEEN_MS, expected(s, 'servers seen (two check cycles)', SEEN_MS));
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
  await waitFor(async () => (await fenceStatus(s))?.seenServers, SEEN_MS, expected(s, 'servers seen (two check cycles)', SEEN_MS));
  await setState(s, s.agents[0]!, 'servers-lost');
  await setState(s, s.agents[2]!, 'servers-lost');
  await s.cmp.cutLink();
  await cycles(6);
  t.notOk(fenced(s));
  // ...and once the third one loses its servers too, the host is fenced.
  await setState(s, s.agents[1]!, 'servers-lost');
  const bound = fenceBoundMs(2);
  await waitFor(() => fenced(s), bound, expected(s, 'the fence once all three lost their servers (confirm_cycles 2)', bound));
  t.pass('fenced once all agents lost every server');
});

t.test('dry run: "would fence", no action', async (t) => {
  const s = await setup(t, { dryRun: true });
  await waitFor(async () => (await fenceStatus(s))?.seenServers, SEEN_MS, expected(s, 'servers seen (two check cycles)', SEEN_MS));
  await s.cmp.cutLink(); // first: see 'servers lost and the link cut'
  await setState(s, s.agents[0]!, 'servers-lost');
  const bound = fenceBoundMs(2);
  await waitFor(() => /would fence/.test(s.daemon.logs()), bound, expected(s, '"would fence" in the log (confirm_cycles 2)', bound));
  await cycles(3);
  t.notOk(fenced(s), 'no action ran');
  // Between its agent and network checks a cycle shows 'checking-network': wait for a finished one.
  const st = await waitFor(async () => { const x = await fenceStatus(s); return x?.phase !== 'checking-network' ? x : undefined; }, CYCLE_MAX_MS + SLACK_MS, expected(s, 'a finished cycle (one cycle)', CYCLE_MAX_MS + SLACK_MS));
  t.equal(st.phase, 'running', 'the loop goes on');
});

t.test('vigil leave: every agent leaves (PUT /v1/agent/leave), then vigil stops', async (t) => {
  const s = await setup(t, { agents: 2 });
  const r = await s.cmp.exec([process.execPath, BIN, 'leave', '-c', s.config], { timeoutMs: 30_000 });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /"ok":true/);
  t.match(r.stdout, /^vigil stopped \(pid \d+\)$/m, 'the CLI waited for the daemon to stop by itself');
  const code = await Promise.race([s.daemon.exited, sleep(10_000).then(() => 'still running')]);
  t.equal(code, 0, 'vigil stopped with exit 0', { logs: s.daemon.logs().split('\n').slice(-30) });
  for (const a of s.agents) {
    // A graceful leave shuts the agent down: its port no longer answers.
    const res = await nsHttp(s.cmp, 'GET', `${a.url}/v1/agent/self`);
    t.equal(res.status, 0, `agent ${a.name} left and shut down`);
  }
  t.notOk(fenced(s));
});
