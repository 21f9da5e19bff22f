// Ground rule 3: no process spawn in the steady-state loop. The daemon runs
// alone in a fresh PID namespace; the namespace's last allocated PID
// (/proc/sys/kernel/ns_last_pid, read with shell builtins so the reader
// itself forks nothing) must not move while it probes at rest. Threads take
// PIDs too, so this also catches a thread pool growing in the steady state.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { skipUnlessRoot, type LabHost } from '../support/lab';
import { testLab, writeConfig, daemonStatus, waitFor, BIN, sleep, expectedOf, vipTiming, oneMasterBoundMs, fenceTiming, fenceCyclesBoundMs, START_MS, type Witness } from '../support/vigil';
import { consulDoubleCommand, writeAgentConfig } from '../support/consul-double';

if (skipUnlessRoot(t, ['unshare', 'bash'])) process.exit(0);

const VIP = { check_interval: '100ms', failure_check_interval: '50ms', probe_timeout: '50ms', master_check_interval: '100ms' };
const V = vipTiming(VIP);
/** A daemon's output, written to a file by the namespace's shell. */
const fileWitness = (file: string): Witness => ({ logs: () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '') });

/**
 * Run `vigil run -c config` alone in a fresh PID namespace inside `host`;
 * `sample()` reads that namespace's last allocated PID.
 */
function daemonInPidNs(host: LabHost, config: string, out = '/dev/null'): { sample: () => Promise<number> } {
  const script = `${process.execPath} ${BIN} run -c ${config} >${out} 2>&1 & while read -r _; do read -r v < /proc/sys/kernel/ns_last_pid; echo "$v"; done`;
  const proc = host.spawn(['unshare', '--pid', '--fork', 'bash', '-c', script]);
  const lines = readline.createInterface({ input: proc.stdout! });
  const queue: ((v: number) => void)[] = [];
  lines.on('line', (l) => queue.shift()?.(Number(l)));
  return { sample: () => new Promise<number>((resolve) => { queue.push(resolve); proc.stdin!.write('\n'); }) };
}

t.test('a slave and a master probing at rest allocate no PID', async (t) => {
  const { lab, dir } = await testLab(t, ['a', 'b'], 'nospawn');
  const haIp = lab.freeIp(0);
  const watchers: { host: string; sample: () => Promise<number>; pidfile: string }[] = [];
  const outs: Record<string, Witness> = {};
  for (const name of ['a', 'b']) {
    const host = lab.host(name);
    const pidfile = path.join(dir, name, 'vigil.pid');
    fs.mkdirSync(path.dirname(pidfile), { recursive: true, mode: 0o755 });
    const cfg = writeConfig(dir, name, {
      pidfile, state_dir: path.join(dir, name, 'st'), log: { level: 'warn' },
      vip: { interface: host.ifname, address: `${haIp}/24`, ...VIP },
    });
    // The output goes to a file (no more a spawn than /dev/null), for a failed wait to show.
    const out = path.join(dir, name, 'daemon.out');
    outs[name] = fileWitness(out);
    watchers.push({ host: name, pidfile, ...daemonInPidNs(host, cfg, out) });
  }
  await waitFor(async () => {
    const roles = await Promise.all(watchers.map(async (w) => (await daemonStatus(w.pidfile))?.roles?.vip?.role));
    return roles.includes('master') && roles.includes('slave');
  }, START_MS + oneMasterBoundMs(V), expectedOf('one master, one slave', START_MS + oneMasterBoundMs(V), outs));
  await sleep(20 * V.checkIntervalMs); // warm-up, 20 check intervals: thread pool, first timers
  const lastProbeAt = async (w: { pidfile: string }) => {
    const at = (await daemonStatus(w.pidfile))?.roles?.vip?.lastProbe?.at as string | undefined;
    return at ? Date.parse(at) : NaN;
  };
  const probedBefore = await Promise.all(watchers.map(lastProbeAt));
  const before = await Promise.all(watchers.map((w) => w.sample()));
  await sleep(50 * V.checkIntervalMs); // 50 check intervals: ~50 probes per node
  const after = await Promise.all(watchers.map((w) => w.sample()));
  const windowEnd = Date.now();
  const probedAfter = await Promise.all(watchers.map(lastProbeAt));
  for (let i = 0; i < watchers.length; i++) {
    const w = watchers[i]!;
    t.equal(after[i], before[i], `node ${w.host}: last PID ${before[i]} -> ${after[i]} over ${50 * V.checkIntervalMs} ms of probing`);
    // The loop really ran through the window: its last probe moved, and is from its last seconds.
    t.ok(probedAfter[i]! > probedBefore[i]!, `node ${w.host}: the last probe moved during the window (${probedBefore[i]} -> ${probedAfter[i]})`);
    t.ok(probedAfter[i]! >= windowEnd - 1500, `node ${w.host}: still probing at the end of the window (last probe ${windowEnd - probedAfter[i]!} ms before it; one is due every 100 ms)`);
  }
});

t.test('the fence role\'s loop against a Consul double allocates no PID (healthy, then servers lost)', async (t) => {
  const { lab, dir } = await testLab(t, ['cmp', 'peer'], 'nospawn');
  const cmp = lab.host('cmp');
  const peer = lab.host('peer');
  // The Consul TEST DOUBLE runs in cmp's network namespace but outside the
  // daemon's PID namespace (its own threads are not the daemon's); not
  // supervised (no command), so vigil never has a reason to start it.
  const port = 18500;
  const adir = path.join(dir, 'agent');
  writeAgentConfig(adir, {
    node_name: 'cmp-01', addresses: { http: '127.0.0.1' }, ports: { http: port }, retry_join: [peer.ip],
    double: { state: 'healthy', servers: [{ name: 'ctrl-01', addr: peer.ip }], healOnJoin: false },
  });
  const agent = cmp.spawn(consulDoubleCommand(adir));
  agent.stdout!.resume(); agent.stderr!.resume();
  const pidfile = path.join(dir, 'run', 'vigil.pid');
  fs.mkdirSync(path.dirname(pidfile), { recursive: true, mode: 0o755 });
  const fenceCfg = {
    agents: [{ name: 'net0', url: `http://127.0.0.1:${port}` }], interfaces: [cmp.ifname],
    check_interval: '300ms', confirm_cycles: 2, request_timeout: '150ms', neighbour_probe_timeout: '100ms',
    actions: [['/bin/sh', '-c', `touch ${path.join(dir, 'FENCED')}`]],
  };
  const F = fenceTiming(fenceCfg);
  const cfg = writeConfig(dir, 'vigil', { node: 'cmp-01', pidfile, state_dir: path.join(dir, 'st'), log: { level: 'warn' }, fence: fenceCfg });
  // The daemon's output goes to a file (a pipe read by this process is no spawn either way).
  const out = path.join(dir, 'daemon.out');
  const w = daemonInPidNs(cmp, cfg, out);
  const logs = () => (fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '');
  t.teardown(() => { if (t.passing()) return; t.comment(`daemon output:\n${logs()}`); });
  const fence = async () => (await daemonStatus(pidfile))?.roles?.fence as Record<string, any> | undefined;
  const ds = { vigil: fileWitness(out) };
  // Seen after two cycles (fence.test's SEEN_MS).
  await waitFor(async () => (await fence())?.seenServers === true, START_MS + fenceCyclesBoundMs(F, 2), expectedOf('the agent answering with servers (start-up, two cycles)', START_MS + fenceCyclesBoundMs(F, 2), ds));

  const windows = [
    { name: 'healthy', verdict: /^healthy$/ },
    { name: 'servers lost, the network works (netlink, ARP, rejoin)', verdict: /not isolated/ },
  ];
  for (const [i, win] of windows.entries()) {
    if (i === 1) agent.kill('SIGUSR1'); // the double loses its servers
    // The next finished cycle after the change says so: two cycles at most.
    await waitFor(async () => win.verdict.test(String((await fence())?.verdict)), fenceCyclesBoundMs(F, 2), expectedOf(`verdict ${win.verdict} (two cycles)`, fenceCyclesBoundMs(F, 2), ds));
    await sleep(7 * F.checkIntervalMs); // warm-up, 7 check intervals: sockets and threads the new path opens
    const cyclesBefore = (await fence())!.cycles as number;
    const before = await w.sample();
    await sleep(17 * F.checkIntervalMs); // 17 check intervals: ~16 cycles
    const after = await w.sample();
    // Read a finished cycle, not one caught between its agent and network checks.
    const st = await waitFor(async () => { const f = await fence(); return f && f.phase !== 'checking-network' ? f : undefined; }, fenceCyclesBoundMs(F, 1), expectedOf('a finished cycle', fenceCyclesBoundMs(F, 1), ds));
    t.equal(after, before, `${win.name}: last PID ${before} -> ${after} over ${17 * F.checkIntervalMs} ms of cycles`);
    t.ok(st.cycles - cyclesBefore >= 5, `${win.name}: the loop ran ${st.cycles - cyclesBefore} cycles meanwhile`);
    t.match(st.verdict, win.verdict, `${win.name}: verdict "${st.verdict}"`);
  }
  t.notOk(fs.existsSync(path.join(dir, 'FENCED')), 'no fence');
});
