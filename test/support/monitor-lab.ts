/**
 * Layer: test support. A lab for the `monitor` role, three Consul networks on
 * three lab bridges, as hostha has them:
 *
 * - mgmt: lab.ts's own bridge `br0` (every host's `eth0`, 10.X.Y.0/24);
 * - tenant: bridge `br1` (`eth1`, 10.99.1.0/24), storage: bridge `br2`
 *   (`eth2`, 10.99.2.0/24), both made here inside the lab's bridge
 *   namespace, with one veth pair per host (so lab.destroy() removes them
 *   with the namespaces; the addresses exist only inside lab namespaces).
 *
 * One Consul TEST DOUBLE per network, in its own lab host (c1 mgmt, c2
 * tenant, c3 storage), listening on that network's address only. Computes
 * and monitors heartbeat to each double over that network's bridge (a small
 * process per host and network), so cutting a host's tenant veth really
 * turns it `failed` on tenant only after the suspicion timeout. One real
 * `ipmi_sim` per compute host as its BMC, in a separate BMC host on mgmt
 * (so the BMC stays reachable when the host is cut), and monitors that run
 * the real `vigil run` in their own namespaces.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startConsulDouble, writeAgentConfig, heartbeatCommand, childEnv, doubleRequest, type ConsulDouble } from './consul-double';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Lab, LabHost } from './lab';
import { startIpmiSim, type IpmiSim } from './ipmi-sim';
import { startDaemon, testLab, writeConfig, type Daemon } from './vigil';

/** Heartbeat silence after which a member turns failed, in the doubles. */
export const SUSPICION_MS = 1500;
export const BMC_USER = 'vigilfence';

/** The three lab networks, in hostha's column order. */
export const NETWORKS = ['mgmt', 'tenant', 'storage'] as const;
export type LabNetwork = (typeof NETWORKS)[number];
/** Extra bridges (mgmt is lab.ts's br0): bridge name, the host-side interface, the subnet's first three octets. */
const EXTRA: Record<Exclude<LabNetwork, 'mgmt'>, { br: string; ifname: string; base: string; port: string }> = {
  // Private and outside lab.ts's range (10.100–227.x.0/24), so never another lab's subnet.
  tenant: { br: 'br1', ifname: 'eth1', base: '10.99.1', port: 't' },
  storage: { br: 'br2', ifname: 'eth2', base: '10.99.2', port: 's' },
};
/** The lab host serving each network's double. */
const DOUBLE_HOST: Record<LabNetwork, string> = { mgmt: 'c1', tenant: 'c2', storage: 'c3' };

export interface MonitorLab {
  lab: Lab;
  dir: string;
  daemons: Daemon[];
  mgmt: ConsulDouble;
  tenant: ConsulDouble;
  storage: ConsulDouble;
  mgmtSock: string;
  sims: Record<string, IpmiSim>;
  /** The BMC password (unique per run, so a grep finds only leaks). */
  secret: string;
  computes: string[];
  /** A host's address on a network. */
  addr(host: string, net: LabNetwork): string;
  /** Set the bridge side of a host's veth on those networks (default: all three) down: the host is cut there. */
  cut(host: string, nets?: readonly LabNetwork[]): Promise<void>;
  /** Undo {@link cut}. */
  restore(host: string, nets?: readonly LabNetwork[]): Promise<void>;
  /** Stop a host's heartbeat senders: it turns failed in Consul but its links stay up (it still answers ARP). */
  silence(host: string): void;
  /** GET a KV key's decoded value from the mgmt double, or undefined. */
  kv(key: string): Promise<string | undefined>;
  /** The `networks` section for those networks (default mgmt and tenant, hostha's 2-network setup). */
  networks(nets?: readonly LabNetwork[]): Record<string, { url: string }>;
  /** Write a monitor config for host `m` (with `top`: more top-level sections) and start `vigil run` in it. */
  startMonitor(m: string, monitor?: Record<string, unknown>, top?: Record<string, unknown>): { daemon: Daemon; pidfile: string; config: string };
  /** The monitor section every monitor gets (tests override keys). */
  monitorSection(extra?: Record<string, unknown>): Record<string, unknown>;
}

const run = promisify(execFile);
const ip = async (args: string[]) => { await run('ip', args); };

/** Build the lab: hosts c1, c2, c3 (the doubles), bmc, the computes and the monitors, on three bridges. */
export async function monitorLab(t: Parameters<typeof testLab>[0], tag: string, computes: string[], monitors: string[]): Promise<MonitorLab> {
  const { lab, dir, daemons } = await testLab(t, ['c1', 'c2', 'c3', 'bmc', ...computes, ...monitors], tag);
  // The tenant and storage bridges, and every host's veth on each (the BMC host only needs mgmt).
  const onExtra = lab.hosts.filter((h) => h.name !== 'bmc');
  const octet = (h: LabHost) => h.ip.slice(h.ip.lastIndexOf('.') + 1);
  for (const e of Object.values(EXTRA)) {
    await ip(['-n', lab.bridgeNs, 'link', 'add', e.br, 'type', 'bridge']);
    await ip(['-n', lab.bridgeNs, 'link', 'set', e.br, 'up']);
    await Promise.all(onExtra.map(async (h) => {
      const port = `${e.port}-${h.name}`;
      await ip(['-n', lab.bridgeNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', e.ifname, 'netns', h.ns]);
      await ip(['-n', lab.bridgeNs, 'link', 'set', port, 'master', e.br, 'up']);
      await ip(['-n', h.ns, 'link', 'set', e.ifname, 'up']);
      await ip(['-n', h.ns, 'addr', 'add', `${e.base}.${octet(h)}/24`, 'brd', '+', 'dev', e.ifname]);
    }));
  }
  const addr = (host: string, net: LabNetwork) => {
    const h = lab.host(host);
    return net === 'mgmt' ? h.ip : `${EXTRA[net].base}.${octet(h)}`;
  };
  const start = async (net: LabNetwork) => {
    const name = DOUBLE_HOST[net];
    const host = lab.host(name);
    const configDir = writeAgentConfig(path.join(dir, name), { node_name: name, server: true, double: { heartbeat: { port: 8301, suspicionTimeoutMs: SUSPICION_MS } } });
    const sock = path.join(dir, `${name}.sock`);
    const d = await startConsulDouble({ configDir, host: addr(name, net), port: 8500, unixSocket: sock, spawn: (argv) => host.spawn(argv, { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] }) });
    t.teardown(() => d.stop());
    return { d, sock };
  };
  const [m, tn, st] = await Promise.all(NETWORKS.map(start));
  // Computes and monitors are members of every network, each heartbeat over that network's bridge;
  // a monitor's claim session is bound to its own serfHealth (on mgmt, the KV network).
  const beats: Record<string, ReturnType<LabHost['spawn']>[]> = {};
  for (const name of [...computes, ...monitors]) {
    const h = lab.host(name);
    for (const net of NETWORKS) {
      (beats[name] ??= []).push(h.spawn(heartbeatCommand(name, { host: addr(DOUBLE_HOST[net], net), port: 8301 }, { addr: addr(name, net), intervalMs: 200 }), { env: childEnv(), stdio: 'ignore' }));
    }
  }
  const port = (host: string, net: LabNetwork) => (net === 'mgmt' ? `v-${host}` : `${EXTRA[net].port}-${host}`);
  const secret = randomBytes(8).toString('hex');
  const pwFile = path.join(dir, 'bmc.pw');
  fs.writeFileSync(pwFile, `${secret}\n`, { mode: 0o600 });
  const sims: Record<string, IpmiSim> = {};
  computes.forEach((c, i) => {
    const d = path.join(dir, `sim-${c}`);
    fs.mkdirSync(d, { mode: 0o700 });
    sims[c] = startIpmiSim(lab.host('bmc'), d, BMC_USER, secret, 623 + i);
  });
  const bmcIp = lab.host('bmc').ip;
  const networks = (nets: readonly LabNetwork[] = ['mgmt', 'tenant']) => Object.fromEntries(nets.map((n) => [n, { url: `http://${addr(DOUBLE_HOST[n], n)}:8500` }]));
  const monitorSection = (extra: Record<string, unknown> = {}) => ({
    networks: networks(),
    inventory: { hosts: computes.map((c, i) => ({ name: c, bmc: { ip: bmcIp, port: 623 + i, user: BMC_USER, password_file: pwFile, cipher_suite: 3 } })) },
    interval: '1s', confirm: 2, session_ttl: '10s', lock_delay: '15s',
    fence: { power_timeout: '8s', power_wait: '500ms' },
    ...extra,
  });
  const out: MonitorLab = {
    lab, dir, daemons, mgmt: m.d, tenant: tn.d, storage: st.d, mgmtSock: m.sock, sims, secret, computes, addr, networks,
    async cut(host, nets = NETWORKS) { await Promise.all(nets.map((n) => ip(['-n', lab.bridgeNs, 'link', 'set', port(host, n), 'down']))); },
    async restore(host, nets = NETWORKS) { await Promise.all(nets.map((n) => ip(['-n', lab.bridgeNs, 'link', 'set', port(host, n), 'up']))); },
    silence(host) { for (const p of beats[host] ?? []) p.kill('SIGKILL'); },
    async kv(key) {
      const r = await doubleRequest({ url: m.d.url, socketPath: m.sock }, 'GET', `/v1/kv/${key}`);
      if (r.status !== 200) return undefined;
      const v = (JSON.parse(r.body) as { Value: string | null }[])[0]?.Value;
      return v == null ? '' : Buffer.from(v, 'base64').toString('utf8');
    },
    monitorSection,
    startMonitor(name, monitor, top = {}) {
      const base = path.join(dir, name);
      fs.mkdirSync(base, { recursive: true, mode: 0o700 });
      const pidfile = path.join(base, 'vigil.pid');
      const config = writeConfig(dir, name, { node: name, pidfile, state_dir: path.join(base, 'state'), log: { level: 'debug' }, ...top, monitor: monitor ?? monitorSection() });
      const daemon = startDaemon(lab.host(name), config, pidfile);
      daemons.push(daemon);
      return { daemon, pidfile, config };
    },
  };
  return out;
}

/** The last lines of a daemon's log, for failure messages. */
export function tail(d: Daemon, n = 25): string {
  return d.logs().trim().split('\n').slice(-n).join('\n');
}
