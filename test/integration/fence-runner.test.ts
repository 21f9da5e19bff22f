// The self-fencing runner's wiring against a Consul TEST DOUBLE on loopback,
// with the network and the hardware watchdog injected (a real /dev/watchdog
// would reset this machine if a test stopped petting it).
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startConsulDouble, tempAgentConfig, freeLoopbackPort } from '../support/consul-double';
import { FenceRunner, type FenceNet, type WatchdogOps } from '../../src/roles/fence/runner';
import type { FenceConfig } from '../../src/roles/fence/config';
import { initLog, moduleLog } from '../../src/log';
import { waitFor, sleep, fenceCyclesBoundMs, type FenceTiming } from '../support/vigil';

initLog({ level: 'silent' });

function fakeNet(over: Partial<FenceNet> = {}): FenceNet {
  return {
    carrier: async () => true,
    addresses: async () => [{ address: '10.1.0.5', prefix: 24 }],
    interfaceOf: async () => 'eth0',
    neighbours: async () => [{ ip: '10.1.0.1', state: ['STALE'] }],
    probe: async () => ({ status: 'answered', mac: '02:00:00:00:00:01', rttMs: 0.1 }),
    ping: async () => ({ status: 'silent' }),
    close: () => {},
    ...over,
  };
}

function fakeWatchdog() {
  const calls: string[] = [];
  const ops: WatchdogOps = {
    open: (path, s) => { calls.push(`open ${path} ${s}`); return 42; },
    pet: (fd) => { calls.push(`pet ${fd}`); },
    close: (fd, disarm) => { calls.push(`close ${fd} ${disarm ? 'magic' : 'plain'}`); },
  };
  return { ops, calls };
}

const cfgFor = (url: string, over: Partial<FenceConfig> = {}): FenceConfig => ({
  agents: [{ name: 'mgmt', url }], interfaces: ['eth0'], checkIntervalMs: 100, confirmCycles: 2, requestTimeoutMs: 50,
  neighbourProbeTimeoutMs: 20, actions: [['true']], actionTimeoutMs: 5000, dryRun: false,
  watchdog: { device: '/dev/watchdog-fake', timeoutMs: 10_000 }, ...over,
});

/** The runner's timings from the config the test gave it. */
const timing = (c: FenceConfig): FenceTiming => ({
  checkIntervalMs: c.checkIntervalMs, confirmCycles: c.confirmCycles, requestTimeoutMs: c.requestTimeoutMs, neighbourProbeTimeoutMs: c.neighbourProbeTimeoutMs, agents: c.agents.length,
});
/** The bound for `n` cycles of the runner, and a message that says what was expected by when and the runner's status at the failure. */
function cyclesBound(r: FenceRunner, c: FenceConfig, n: number, what: string): [number, () => string] {
  const ms = fenceCyclesBoundMs(timing(c), n);
  return [ms, () => `${what} within ${ms} ms (${n} cycles); the runner's status: ${JSON.stringify(r.status())}`];
}

t.test('the watchdog is armed, petted each cycle, and disarmed with the magic close on stop', async (t) => {
  const port = await freeLoopbackPort();
  const d = await startConsulDouble({ configDir: tempAgentConfig({ ports: { http: port }, double: { servers: ['10.1.0.1'] } }), host: '127.0.0.1', port });
  t.teardown(() => d.stop());
  const wd = fakeWatchdog();
  const cfg = cfgFor(d.url);
  const r = new FenceRunner(cfg, fakeNet(), moduleLog('fence-test'), wd.ops);
  const started = performance.now();
  await r.start();
  const petCount = () => wd.calls.filter((c) => c.startsWith('pet')).length;
  // Generous: a loaded CI machine may run late, never early.
  await waitFor(() => petCount() >= 3, ...cyclesBound(r, cfg, 3, 'three pets'));
  const pets = petCount();
  const cycles = (performance.now() - started) / 100;
  t.equal(wd.calls[0], 'open /dev/watchdog-fake 10');
  t.ok(pets <= cycles + 2, `petted ${pets} times in ${cycles.toFixed(1)} cycles: once per cycle, not more`);
  r.stop();
  t.equal(await r.done, 0);
  t.equal(wd.calls.at(-1), 'close 42 magic');
});

t.test('a hung agent does not stop the watchdog pets: the loop itself is healthy', async (t) => {
  const port = await freeLoopbackPort();
  const d = await startConsulDouble({ configDir: tempAgentConfig({ ports: { http: port } }), host: '127.0.0.1', port, state: 'hung' });
  t.teardown(() => d.stop());
  const wd = fakeWatchdog();
  const cfg = cfgFor(d.url);
  const r = new FenceRunner(cfg, fakeNet(), moduleLog('fence-test'), wd.ops);
  await r.start();
  await waitFor(() => wd.calls.filter((c) => c.startsWith('pet')).length >= 2, ...cyclesBound(r, cfg, 2, 'two pets')).catch(() => undefined);
  r.stop();
  await r.done;
  t.ok(wd.calls.filter((c) => c.startsWith('pet')).length >= 2, 'the loop is alive even when the agent is not');
  t.equal((r.status().agents as { state: { kind: string } }[])[0]!.state.kind, 'unknown');
});

t.test('a routed server that answers ICMP keeps the host out of isolation', async (t) => {
  const port = await freeLoopbackPort();
  // The only known server is off every local subnet: ARP cannot reach it, ICMP can.
  const d = await startConsulDouble({ configDir: tempAgentConfig({ ports: { http: port }, double: { servers: ['192.168.77.7'] } }), host: '127.0.0.1', port });
  t.teardown(() => d.stop());
  const pinged: string[] = [];
  const net = fakeNet({ carrier: async () => false, ping: async (ip) => { pinged.push(ip); return { status: 'answered', rttMs: 1 }; } });
  const cfg = cfgFor(d.url, { watchdog: undefined });
  const r = new FenceRunner(cfg, net, moduleLog('fence-test'));
  await r.start();
  await waitFor(() => r.status().seenServers, ...cyclesBound(r, cfg, 2, 'servers seen'));
  await d.setState('servers-lost', { healOnJoin: false });
  await waitFor(() => pinged.includes('192.168.77.7') && /not isolated/.test(String(r.status().verdict)), ...cyclesBound(r, cfg, 2, 'a verdict after the ping')).catch(() => undefined);
  await sleep(3 * cfg.checkIntervalMs); // three more check intervals: still not fenced
  await waitFor(() => r.status().phase !== 'checking-network', ...cyclesBound(r, cfg, 1, 'a finished cycle')).catch(() => undefined);
  const st = r.status();
  r.stop();
  await r.done;
  t.ok(pinged.includes('192.168.77.7'), 'the routed server address was pinged');
  t.equal(st.phase, 'running', 'not fenced');
  t.match(st.verdict as string, /not isolated/);
});

/** Servers seen, then every server lost (joins fail: the network is what failed); returns the runner's state after `cycles` more cycles. */
async function lostWith(t: Test, net: FenceNet, cycles = 8): Promise<Record<string, unknown>> {
  const port = await freeLoopbackPort();
  const d = await startConsulDouble({ configDir: tempAgentConfig({ ports: { http: port }, double: { servers: ['10.1.0.1'] } }), host: '127.0.0.1', port });
  t.teardown(() => d.stop());
  const cfg = cfgFor(d.url, { watchdog: undefined });
  const r = new FenceRunner(cfg, net, moduleLog('fence-test'));
  await r.start();
  await waitFor(() => r.status().seenServers, ...cyclesBound(r, cfg, 2, 'servers seen'));
  await d.setState('servers-lost', { healOnJoin: false });
  const from = r.status().cycles as number;
  // Generous: confirm_cycles is 2, so several more cycles would have fenced.
  await waitFor(() => (r.status().cycles as number) >= from + cycles || r.status().phase === 'fenced', ...cyclesBound(r, cfg, cycles, `${cycles} cycles`)).catch(() => undefined);
  // Read a finished cycle's verdict, not one caught between its agent and network checks.
  await waitFor(() => r.status().phase !== 'checking-network', ...cyclesBound(r, cfg, 1, 'a finished cycle')).catch(() => undefined);
  const st = r.status();
  r.stop();
  await r.done;
  return st;
}

t.test('a probe that cannot be made (throws or reports an error) is unknown, never isolation', async (t) => {
  const thrown = await lostWith(t, fakeNet({ probe: async () => { throw Object.assign(new Error('socket: Operation not permitted'), { code: 'EPERM' }); } }));
  t.equal(thrown.phase, 'running', 'probe throws: not fenced');
  t.match(thrown.verdict, /^unknown/, 'the verdict is unknown');
  t.equal(thrown.fenceCount, 0, 'no isolated cycle counted');
  t.match((thrown.lastNetwork as { error?: string }[])[0]!.error, /Operation not permitted/, 'the observation carries the error');

  const reported = await lostWith(t, fakeNet({ probe: async () => ({ status: 'error', error: 'ENETDOWN: network is down' }) }));
  t.equal(reported.phase, 'running', 'probe reports an error: not fenced');
  t.match(reported.verdict, /^unknown/);

  const carrier = await lostWith(t, fakeNet({ carrier: async () => { throw new Error('netlink: ENOBUFS'); } }));
  t.equal(carrier.phase, 'running', 'carrier read throws: not fenced');
  t.match(carrier.verdict, /^unknown/);

  // The control: the same wiring with a silent probe does fence (the test can fail).
  const silent = await lostWith(t, fakeNet({ probe: async () => ({ status: 'silent' }) }));
  t.equal(silent.phase, 'fenced', 'every probe silent: fenced');
});

/** A supervised agent whose command only leaves a line in `marker` each time vigil starts it. */
function markerAgent(url: string): { cfg: FenceConfig; spawns: () => number; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-fence-spawn-'));
  const marker = path.join(dir, 'spawns');
  const cfg = cfgFor(url, { watchdog: undefined, agents: [{ name: 'mgmt', url, command: ['/bin/sh', '-c', `echo started >> '${marker}'`] }] });
  const spawns = () => (fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8').trim().split('\n').length : 0);
  return { cfg, spawns, dir };
}

t.test('an adopted agent that hangs is never duplicated; one where nothing listens is started', async (t) => {
  // 1. Adopted while healthy, then hung.
  {
    const port = await freeLoopbackPort();
    const d = await startConsulDouble({ configDir: tempAgentConfig({ ports: { http: port }, double: { servers: ['10.1.0.1'] } }), host: '127.0.0.1', port });
    const m = markerAgent(d.url);
    t.teardown(async () => { await d.stop(); fs.rmSync(m.dir, { recursive: true, force: true }); });
    const r = new FenceRunner(m.cfg, fakeNet(), moduleLog('fence-test'));
    await r.start();
    await waitFor(() => r.status().seenServers, ...cyclesBound(r, m.cfg, 2, 'adopted agent answering'));
    await d.setState('hung');
    const from = r.status().cycles as number;
    await waitFor(() => (r.status().cycles as number) >= from + 8, ...cyclesBound(r, m.cfg, 8, 'eight hung cycles'));
    const st = r.status();
    r.stop();
    await r.done;
    t.equal((st.agents as { state: { kind: string } }[])[0]!.state.kind, 'unknown', 'the hung agent is unknown');
    t.equal(m.spawns(), 0, 'adopted then hung: no second agent started');
  }
  // 2. Already hung when vigil starts.
  {
    const port = await freeLoopbackPort();
    const d = await startConsulDouble({ configDir: tempAgentConfig({ ports: { http: port } }), host: '127.0.0.1', port, state: 'hung' });
    const m = markerAgent(d.url);
    t.teardown(async () => { await d.stop(); fs.rmSync(m.dir, { recursive: true, force: true }); });
    const r = new FenceRunner(m.cfg, fakeNet(), moduleLog('fence-test'));
    await r.start();
    await waitFor(() => (r.status().cycles as number) >= 8, ...cyclesBound(r, m.cfg, 8, 'eight hung cycles'));
    r.stop();
    await r.done;
    t.equal(m.spawns(), 0, 'hung at start: not started');
  }
  // 3. The control: nothing listens on the port, so vigil starts its agent (the marker works).
  {
    const port = await freeLoopbackPort();
    const m = markerAgent(`http://127.0.0.1:${port}`);
    t.teardown(() => fs.rmSync(m.dir, { recursive: true, force: true }));
    const r = new FenceRunner(m.cfg, fakeNet(), moduleLog('fence-test'));
    await r.start();
    await waitFor(() => m.spawns() >= 1, ...cyclesBound(r, m.cfg, 2, 'the agent started')).catch(() => undefined);
    r.stop();
    await r.done;
    t.ok(m.spawns() >= 1, `connection refused: the agent was started (${m.spawns()} times)`);
  }
});

t.test('rejoin: every address of the join list gets a PUT /v1/agent/join', async (t) => {
  const port = await freeLoopbackPort();
  // Both addresses are servers and a join heals: a runner that stopped at the first accepted join would never try the second.
  const d = await startConsulDouble({ configDir: tempAgentConfig({ ports: { http: port }, double: { servers: ['10.1.0.1', '10.1.0.2'] } }), host: '127.0.0.1', port });
  t.teardown(() => d.stop());
  const cfg = cfgFor(d.url, { watchdog: undefined, agents: [{ name: 'mgmt', url: d.url, join: ['10.1.0.1', '10.1.0.2'] }] });
  const r = new FenceRunner(cfg, fakeNet(), moduleLog('fence-test'));
  await r.start();
  await waitFor(() => r.status().seenServers, ...cyclesBound(r, cfg, 2, 'servers seen'));
  await d.setState('servers-lost');
  await waitFor(async () => (await d.joins()).length >= 2, ...cyclesBound(r, cfg, 2, 'two joins')).catch(() => undefined);
  await sleep(3 * cfg.checkIntervalMs); // three more check intervals
  r.stop();
  await r.done;
  const joins = await d.joins();
  t.same([...new Set(joins.map((j) => j.addr))].sort(), ['10.1.0.1', '10.1.0.2'], 'both addresses joined');
  t.ok(joins.every((j) => j.method === 'PUT'), 'with PUT');
});
