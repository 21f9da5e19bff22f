/**
 * `npm run demo` (root): the HA IP role on the built-in defaults, in a lab
 * of network namespaces it builds and removes itself.
 *
 * Two vigil nodes (a, b) and a client on one bridge; the client probes the
 * HA IP over ARP every 50 ms, collecting every answer within the period (so
 * two answerers show as "a+b"). The demo cuts the master's link, prints who
 * answered when, when each node changed role and which of its commands ran
 * (harmless on_master/on_slave that append to a marker file), restores the
 * link and shows the split brain settled (the lower MAC keeps the IP). At the
 * end it checks that both daemons exited 0 and left no address behind.
 * Nothing outside the lab's namespaces is touched; only private 10.x addresses.
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

interface Node { name: string; host: LabHost; pidfile: string; config: string; marker: string; ran: string[]; daemon?: Daemon; lastRole?: string }

/** The lines of a marker file (what the node's commands appended). */
const readMarker = (file: string): string[] => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

/** Addresses on a lab host's interface, as `ip -o` prints them (address/prefix and label). */
async function addressLines(h: LabHost): Promise<string[]> {
  return (await h.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', h.ifname])).stdout.split('\n').filter(Boolean);
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('npm run demo: needs root (it builds network namespaces); try: sudo npm run demo\n');
    return 2;
  }
  say('building the lab: hosts a, b and client on a bridge, each in its own network namespace');
  const lab: Lab = await createLab({ hosts: ['a', 'b', 'client'] });
  const dir = scratchDir('demo');
  let stopClient = async () => {};
  let nodes: Node[] = [];
  const cleanup = async () => {
    // A demo cut short (an error, ^C) must not leave daemons behind.
    for (const n of nodes) if (n.daemon && n.daemon.proc.exitCode === null && n.daemon.proc.signalCode === null) n.daemon.proc.kill('SIGKILL');
    await stopClient();
    await lab.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => { void cleanup().then(() => process.exit(130)); });
  try {
    const haIp = lab.freeIp(0);
    nodes = ['a', 'b'].map((name) => {
      const host = lab.host(name);
      const pidfile = path.join(dir, name, 'vigil.pid');
      fs.mkdirSync(path.dirname(pidfile), { recursive: true, mode: 0o755 });
      const marker = path.join(dir, name, 'commands');
      // The documented timing defaults: only interface and address are set, plus
      // harmless commands that record when they ran (instead of starting a service).
      const config = writeConfig(dir, name, {
        node: `demo-${name}`, pidfile, state_dir: path.join(dir, name, 'state'),
        log: { level: 'warn', file: path.join(dir, name, 'vigil.log') },
        vip: { interface: host.ifname, address: `${haIp}/24`, on_master: `echo on_master >> ${marker}`, on_slave: `echo on_slave >> ${marker}` },
      });
      return { name, host, pidfile, config, marker, ran: [] };
    });
    const macName = new Map<string, string>(nodes.map((n) => [n.host.mac, n.name]));
    say(`HA IP ${haIp}; node a is ${nodes[0]!.host.mac}, node b is ${nodes[1]!.host.mac}`);
    say('defaults: check_interval 1s, failure_check_interval 200ms, take_over_after 3, probe_timeout 200ms, master_check_interval 2s');
    say('on_master / on_slave: `echo on_master|on_slave >> marker` (printed below as "ran ...")');

    // The client: its own ARP socket, a probe every 50 ms that waits its whole
    // 50 ms for answers, so every node answering shows (a split brain as "a+b");
    // prints changes of answerer.
    const client = lab.host('client');
    const prober = client.inNetns(() => ArpProber.open(client.ifname));
    let running = true;
    let lastAnswer = '';
    const answers: { at: number; who: string }[] = [];
    const loop = (async () => {
      while (running) {
        const started = Date.now();
        const r = await prober.probe(haIp, { timeoutMs: 50, acceptConflict: false, untilTimeout: true });
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

    /** Print the commands a node ran since the last look. */
    const showCommands = (n: Node) => {
      const lines = readMarker(n.marker);
      for (const line of lines.slice(n.ran.length)) say(`node ${n.name}: ran ${line}`);
      n.ran = lines;
    };
    const watchRoles = setInterval(() => {
      for (const n of nodes) {
        showCommands(n);
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
    // The cut master cannot serve anyone: once its link has been down longer than the peer
    // needs to take over, it releases the IP (keepalived's FAULT), so the heal finds one owner.
    await waitFor(async () => (await daemonStatus(master.pidfile))?.roles?.vip?.role === 'slave', 30_000, 'the cut master releasing');
    say(`node ${master.name} (link still down) released the HA IP: it could not serve anyone, and node ${other.name} holds it`);
    await sleep(1500);
    say(`== restoring node ${master.name}'s link ==`);
    const healAt = Date.now();
    await master.host.restoreLink();
    await sleep(3000);
    let gap = 0;
    let prev = healAt;
    for (const a of answers.filter((x) => x.at >= healAt)) { gap = Math.max(gap, a.at - prev); prev = a.at; }
    const keeper = nodes.find((n) => n.lastRole === 'master');
    say(`after the heal: node ${keeper?.name} keeps the HA IP, no split brain and no failback; longest client gap ${gap} ms`);

    // A split brain: cut the new master's link only until the other takes over, then heal
    // at once, before the cut one had reason to release: both hold the IP.
    say(`== split brain: cutting node ${other.name}'s link just until node ${master.name} takes over, then restoring it ==`);
    const cut2 = Date.now();
    await other.host.cutLink();
    await waitFor(() => answers.find((x) => x.at >= cut2 && x.who.includes(master.name)), 30_000, 'takeover back');
    const sbAt = Date.now();
    const ranBefore = new Map(nodes.map((n) => [n.name, readMarker(n.marker).length]));
    await other.host.restoreLink();
    const holdersNow = (await Promise.all(nodes.map((n) => n.host.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', n.host.ifname])))).filter((o) => o.stdout.includes(` ${haIp}/`)).length;
    const settled = await waitFor(async () => {
      const out = await Promise.all(nodes.map((n) => n.host.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', n.host.ifname])));
      const roles = await Promise.all(nodes.map(async (n) => (await daemonStatus(n.pidfile))?.roles?.vip?.role));
      return out.filter((o) => o.stdout.includes(` ${haIp}/`)).length === 1 && roles.includes('slave') && roles.includes('master') ? Date.now() : undefined;
    }, 30_000, 'one holder again', 20) as number;
    await sleep(1000);
    let gap2 = 0;
    let prev2 = sbAt;
    for (const a of answers.filter((x) => x.at >= sbAt)) { gap2 = Math.max(gap2, a.at - prev2); prev2 = a.at; }
    const holder = nodes.find((n) => n.lastRole === 'master');
    const loser = nodes.find((n) => n !== holder);
    const lowerMac = [...nodes].sort((x, y) => (x.host.mac < y.host.mac ? -1 : 1))[0]!;
    const bothAnswered = answers.some((x) => x.at >= sbAt && x.who.includes('+'));
    const loserRan = loser ? readMarker(loser.marker).slice(ranBefore.get(loser.name)) : [];
    let splitBrain: string;
    if (holdersNow === 2) {
      say(`split brain: both nodes held the HA IP at the heal${bothAnswered ? ', and the client got answers from both (a+b above)' : ' (the client never caught both answering in one probe)'}`);
      say(`settled ${settled - sbAt} ms after the heal: node ${holder?.name} kept the HA IP (the lower MAC, ${lowerMac.host.mac}, keeps it: both sides decide alike); node ${loser?.name} ${loserRan.includes('on_slave') ? 'ran on_slave, then released it' : 'released it'}; longest client gap ${gap2} ms`);
      splitBrain = `a split brain after a short cut settled in ${settled - sbAt} ms (longest gap ${gap2} ms)`;
    } else {
      say(`node ${other.name} had already released while cut, so there was no split brain to settle; node ${holder?.name} holds the HA IP`);
      splitBrain = 'the short cut made no split brain this time';
    }
    clearInterval(watchRoles);
    for (const n of nodes) showCommands(n);
    await stopClient();
    stopClient = async () => {};
    say('stopping vigil on both nodes (TERM: on_slave, then the addresses are removed)');
    for (const n of nodes) n.daemon?.proc.kill('SIGTERM');
    const codes = await Promise.all(nodes.map((n) => n.daemon?.exited));
    for (const n of nodes) showCommands(n);
    // Whatever vigil put on an interface carries its label; the HA IP must be gone too.
    const left = (await Promise.all(nodes.map(async (n) => (await addressLines(n.host)).filter((l) => l.includes(` ${haIp}/`) || l.includes(':vg')).map((l) => `${n.name}: ${l.split(/\s+/)[3]}`)))).flat();
    const clean = codes.every((c) => c === 0) && left.length === 0;
    say(`vigil exited ${nodes.map((n, i) => `${codes[i]} on ${n.name}`).join(' and ')}; ${left.length === 0 ? 'no HA address left on either node' : `addresses left behind: ${left.join(', ')}`}`);
    process.stdout.write(`\nSummary: takeover ${takeover} ms after the master's link was cut (client-observed); no split brain after a long cut (longest gap ${gap} ms); ${splitBrain}; ${clean ? 'clean stop' : 'UNCLEAN STOP (see above)'}.\n`);
    return clean ? 0 : 1;
  } finally {
    await cleanup();
    say('lab removed');
  }
}

main().then((code) => process.exit(code), (e) => {
  process.stderr.write(`demo failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
