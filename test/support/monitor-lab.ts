/**
 * Layer: test support. A lab for the `monitor` role: one bridge carrying two
 * Consul networks (mgmt and tenant), each served by its own Consul TEST
 * DOUBLE in its own lab host, compute hosts that heartbeat to both doubles
 * (so cutting a host's veth really turns it `failed` on both after the
 * suspicion timeout), one real `ipmi_sim` per compute host as its BMC in a
 * separate BMC host (so the BMC stays reachable when the host is cut), and
 * monitors that run the real `vigil run` in their own namespaces.
 *
 * Deviation from the issue, said here and in the report: one bridge carries
 * both networks (lab.ts builds one bridge per lab and a namespace has one
 * eth0), so "cut from one network only" is not expressible with this lab.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startConsulDouble, writeAgentConfig, heartbeatCommand, childEnv, doubleRequest, type ConsulDouble } from './consul-double';
import type { Lab, LabHost } from './lab';
import { startIpmiSim, type IpmiSim } from './ipmi-sim';
import { startDaemon, testLab, writeConfig, type Daemon } from './vigil';

/** Heartbeat silence after which a member turns failed, in the doubles. */
export const SUSPICION_MS = 1500;
export const BMC_USER = 'vigilfence';

export interface MonitorLab {
  lab: Lab;
  dir: string;
  daemons: Daemon[];
  mgmt: ConsulDouble;
  tenant: ConsulDouble;
  mgmtSock: string;
  sims: Record<string, IpmiSim>;
  /** The BMC password (unique per run, so a grep finds only leaks). */
  secret: string;
  computes: string[];
  /** Stop a host's heartbeat senders: it turns failed in Consul but its link stays up (it still answers ARP). */
  silence(host: string): void;
  /** GET a KV key's decoded value from the mgmt double, or undefined. */
  kv(key: string): Promise<string | undefined>;
  /** Write a monitor config for host `m` and start `vigil run` in it. */
  startMonitor(m: string, monitor?: Record<string, unknown>): { daemon: Daemon; pidfile: string; config: string };
  /** The monitor section every monitor gets (tests override keys). */
  monitorSection(extra?: Record<string, unknown>): Record<string, unknown>;
}

/** Build the lab: hosts c1 (mgmt double), c2 (tenant double), bmc, the computes and the monitors. */
export async function monitorLab(t: Parameters<typeof testLab>[0], tag: string, computes: string[], monitors: string[]): Promise<MonitorLab> {
  const { lab, dir, daemons } = await testLab(t, ['c1', 'c2', 'bmc', ...computes, ...monitors], tag);
  const start = async (host: LabHost, name: string) => {
    const configDir = writeAgentConfig(path.join(dir, name), { node_name: name, server: true, double: { heartbeat: { port: 8301, suspicionTimeoutMs: SUSPICION_MS } } });
    const sock = path.join(dir, `${name}.sock`);
    const d = await startConsulDouble({ configDir, host: host.ip, port: 8500, unixSocket: sock, spawn: (argv) => host.spawn(argv, { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] }) });
    t.teardown(() => d.stop());
    return { d, sock };
  };
  const [m, tn] = await Promise.all([start(lab.host('c1'), 'c1'), start(lab.host('c2'), 'c2')]);
  // Computes and monitors are members of both networks; a monitor's claim session is bound to its own serfHealth.
  const beats: Record<string, ReturnType<LabHost['spawn']>[]> = {};
  for (const name of [...computes, ...monitors]) {
    const h = lab.host(name);
    for (const c of ['c1', 'c2']) (beats[name] ??= []).push(h.spawn(heartbeatCommand(name, { host: lab.host(c).ip, port: 8301 }, { addr: h.ip, intervalMs: 200 }), { env: childEnv(), stdio: 'ignore' }));
  }
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
  const monitorSection = (extra: Record<string, unknown> = {}) => ({
    networks: { mgmt: { url: `http://${lab.host('c1').ip}:8500` }, tenant: { url: `http://${lab.host('c2').ip}:8500` } },
    inventory: { hosts: computes.map((c, i) => ({ name: c, bmc: { ip: bmcIp, port: 623 + i, user: BMC_USER, password_file: pwFile, cipher_suite: 3 } })) },
    interval: '1s', confirm: 2, session_ttl: '10s', lock_delay: '15s',
    fence: { power_timeout: '8s', power_wait: '500ms' },
    ...extra,
  });
  const out: MonitorLab = {
    lab, dir, daemons, mgmt: m.d, tenant: tn.d, mgmtSock: m.sock, sims, secret, computes,
    silence(host) { for (const p of beats[host] ?? []) p.kill('SIGKILL'); },
    async kv(key) {
      const r = await doubleRequest({ url: m.d.url, socketPath: m.sock }, 'GET', `/v1/kv/${key}`);
      if (r.status !== 200) return undefined;
      const v = (JSON.parse(r.body) as { Value: string | null }[])[0]?.Value;
      return v == null ? '' : Buffer.from(v, 'base64').toString('utf8');
    },
    monitorSection,
    startMonitor(name, monitor) {
      const base = path.join(dir, name);
      fs.mkdirSync(base, { recursive: true, mode: 0o700 });
      const pidfile = path.join(base, 'vigil.pid');
      const config = writeConfig(dir, name, { node: name, pidfile, state_dir: path.join(base, 'state'), log: { level: 'debug' }, monitor: monitor ?? monitorSection() });
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
