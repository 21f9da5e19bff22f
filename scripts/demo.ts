/**
 * `npm run demo` (root): the HA IP role on the built-in defaults, in a lab
 * of network namespaces it builds and removes itself.
 *
 * Two vigil nodes (a, b) and a client on one bridge; the client probes the
 * HA IP over ARP every 50 ms. The demo cuts the master's link, prints who
 * answered when and when each node changed role, restores the link and
 * shows the split brain settled (the lower MAC keeps the IP). Nothing
 * outside the lab's namespaces is touched; only private 10.x addresses.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createLab, type Lab, type LabHost } from '../test/support/lab';
import { scratchDir, writeConfig, startDaemon, daemonStatus, waitFor, type Daemon } from '../test/support/vigil';
import { ArpProber } from '../src/net/arp/prober';

const t0 = Date.now();
const stamp = () => `${((Date.now() - t0) / 1000).toFixed(3).padStart(8)} s`;
const say = (msg: string) => process.stdout.write(`${stamp()}  ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Node { name: string; host: LabHost; pidfile: string; config: string; daemon?: Daemon; lastRole?: string }

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('npm run demo: needs root (it builds network namespaces); try: sudo npm run demo\n');
    return 2;
  }
  say('building the lab: hosts a, b and client on a bridge, each in its own network namespace');
  const lab: Lab = await createLab({ hosts: ['a', 'b', 'client'] });
  const dir = scratchDir('demo');
  let stopClient = async () => {};
  const cleanup = async () => {
    await stopClient();
    await lab.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => { void cleanup().then(() => process.exit(130)); });
  try {
    const haIp = lab.freeIp(0);
    const nodes: Node[] = ['a', 'b'].map((name) => {
      const host = lab.host(name);
      const pidfile = path.join(dir, name, 'vigil.pid');
      fs.mkdirSync(path.dirname(pidfile), { recursive: true, mode: 0o755 });
      // The documented defaults: only interface and address are set.
      const config = writeConfig(dir, name, {
        node: `demo-${name}`, pidfile, state_dir: path.join(dir, name, 'state'),
        log: { level: 'warn', file: path.join(dir, name, 'vigil.log') },
        vip: { interface: host.ifname, address: `${haIp}/24` },
      });
      return { name, host, pidfile, config };
    });
    const macName = new Map<string, string>(nodes.map((n) => [n.host.mac, n.name]));
    say(`HA IP ${haIp}; node a is ${nodes[0]!.host.mac}, node b is ${nodes[1]!.host.mac}`);
    say('defaults: check_interval 1s, failure_check_interval 200ms, take_over_after 3, probe_timeout 200ms, master_check_interval 2s');

    // The client: its own ARP socket, a probe every 50 ms, prints changes of answerer.
    const client = lab.host('client');
    const prober = client.inNetns(() => ArpProber.open(client.ifname));
    let running = true;
    let lastAnswer = '';
    const answers: { at: number; who: string }[] = [];
    const loop = (async () => {
      while (running) {
        const started = Date.now();
        const r = await prober.probe(haIp, { timeoutMs: 50, acceptConflict: false, stopOnReply: false });
        const who = r.status === 'answered' ? [...new Set(r.replies.map((x) => macName.get(x.mac) ?? x.mac))].sort().join('+') : r.status === 'silent' ? 'nobody' : `error`;
        if (who !== 'nobody') answers.push({ at: Date.now(), who });
        if (who !== lastAnswer) {
          say(`client: ${haIp} answered by ${who === 'nobody' ? 'NOBODY' : who}`);
          lastAnswer = who;
        }
        await sleep(Math.max(0, 50 - (Date.now() - started)));
      }
    })();
    stopClient = async () => { running = false; await loop; prober.close(); };

    const watchRoles = setInterval(() => {
      for (const n of nodes) {
        void daemonStatus(n.pidfile).then((s) => {
          const role = s?.roles?.vip?.role ?? 'down';
          if (role !== n.lastRole) {
            say(`node ${n.name}: ${n.lastRole ?? 'start'} -> ${role}`);
            n.lastRole = role;
          }
        });
      }
    }, 50);

    for (const n of nodes) n.daemon = startDaemon(n.host, n.config, n.pidfile);
    const master = await waitFor(async () => {
      const roles = await Promise.all(nodes.map(async (n) => (await daemonStatus(n.pidfile))?.roles?.vip?.role));
      const masters = nodes.filter((_, i) => roles[i] === 'master');
      return masters.length === 1 && roles.includes('slave') ? masters[0] : undefined;
    }, 30_000, 'exactly one master') as Node;
    await sleep(3000);
    const other = nodes.find((n) => n !== master)!;
    say(`== cutting node ${master.name}'s link (the master) ==`);
    const cutAt = Date.now();
    await master.host.cutLink();
    const firstNew = await waitFor(() => answers.find((x) => x.at >= cutAt && x.who === other.name), 30_000, 'takeover') as { at: number; who: string };
    const takeover = firstNew.at - cutAt;
    say(`takeover: the client got its first answer from node ${other.name} ${takeover} ms after the cut`);
    await sleep(3000);
    say(`== restoring node ${master.name}'s link: both now hold the HA IP until one steps down ==`);
    const healAt = Date.now();
    await master.host.restoreLink();
    const settled = await waitFor(async () => {
      const roles = await Promise.all(nodes.map(async (n) => (await daemonStatus(n.pidfile))?.roles?.vip?.role));
      return roles.filter((r) => r === 'master').length === 1 && roles.includes('slave') ? Date.now() : undefined;
    }, 30_000, 'a single master after the heal', 20) as number;
    await sleep(1500);
    let gap = 0;
    let prev = healAt;
    for (const a of answers.filter((x) => x.at >= healAt)) { gap = Math.max(gap, a.at - prev); prev = a.at; }
    const keeper = nodes.find((n) => n.lastRole === 'master');
    say(`conflict settled ${settled - healAt} ms after the heal: node ${keeper?.name} kept the HA IP (lower MAC); longest client gap ${gap} ms`);
    clearInterval(watchRoles);
    say('stopping vigil on both nodes (on_slave, addresses removed)');
    for (const n of nodes) n.daemon?.proc.kill('SIGTERM');
    await Promise.all(nodes.map((n) => n.daemon?.exited));
    process.stdout.write(`\nSummary: takeover ${takeover} ms after the master's link was cut (client-observed); split brain after the heal settled in ${settled - healAt} ms with no gap longer than ${gap} ms.\n`);
    return 0;
  } finally {
    await cleanup();
    say('lab removed');
  }
}

main().then((code) => process.exit(code), (e) => {
  process.stderr.write(`demo failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
