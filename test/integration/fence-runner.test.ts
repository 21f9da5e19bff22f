// The self-fencing runner's wiring against a Consul TEST DOUBLE on loopback,
// with the network and the hardware watchdog injected (a real /dev/watchdog
// would reset this machine if a test stopped petting it).
import t from 'tap';
import { startConsulDouble, tempAgentConfig, freeLoopbackPort } from '../support/consul-double';
import { FenceRunner, type FenceNet, type WatchdogOps } from '../../src/roles/fence/runner';
import type { FenceConfig } from '../../src/config/types';
import { initLog, moduleLog } from '../../src/log';
import { waitFor } from '../support/vigil';

initLog({ level: 'silent' });

function fakeNet(over: Partial<FenceNet> = {}): FenceNet {
  return {
    carrier: async () => true,
    addresses: async () => [{ address: '10.1.0.5', prefix: 24 }],
    interfaceOf: async () => 'eth0',
    neighbours: async () => ['10.1.0.1'],
    probe: async () => ({ mac: '02:00:00:00:00:01', rttMs: 0.1 }),
    ping: async () => undefined,
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

t.test('the watchdog is armed, petted each cycle, and disarmed with the magic close on stop', async (t) => {
  const port = await freeLoopbackPort();
  const d = await startConsulDouble({ configDir: tempAgentConfig({ ports: { http: port }, double: { servers: ['10.1.0.1'] } }), host: '127.0.0.1', port });
  t.teardown(() => d.stop());
  const wd = fakeWatchdog();
  const r = new FenceRunner(cfgFor(d.url), fakeNet(), moduleLog('fence-test'), wd.ops);
  const started = performance.now();
  await r.start();
  const petCount = () => wd.calls.filter((c) => c.startsWith('pet')).length;
  // Generous: a loaded CI machine may run late, never early.
  await waitFor(() => petCount() >= 3, 10_000, 'three pets');
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
  const r = new FenceRunner(cfgFor(d.url), fakeNet(), moduleLog('fence-test'), wd.ops);
  await r.start();
  await waitFor(() => wd.calls.filter((c) => c.startsWith('pet')).length >= 2, 10_000, 'two pets').catch(() => undefined);
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
  const net = fakeNet({ carrier: async () => false, ping: async (ip) => { pinged.push(ip); return { rttMs: 1 }; } });
  const r = new FenceRunner(cfgFor(d.url, { watchdog: undefined }), net, moduleLog('fence-test'));
  await r.start();
  await waitFor(() => r.status().seenServers, 10_000, 'servers seen');
  await d.setState('servers-lost', { healOnJoin: false });
  await waitFor(() => pinged.includes('192.168.77.7') && /not isolated/.test(String(r.status().verdict)), 10_000, 'a verdict after the ping').catch(() => undefined);
  await new Promise((res) => setTimeout(res, 300)); // a few more cycles: still not fenced
  const st = r.status();
  r.stop();
  await r.done;
  t.ok(pinged.includes('192.168.77.7'), 'the routed server address was pinged');
  t.equal(st.phase, 'running', 'not fenced');
  t.match(st.verdict as string, /not isolated/);
});
