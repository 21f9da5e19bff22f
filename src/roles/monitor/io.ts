/**
 * Layer: I/O. The monitor's Consul clients (one per network, token and CA
 * read through the permission checks) and the bridge from kvschema.ts's
 * wire-form txn ops to the client's. Shared by the runner and the verbs.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsulClient } from '../../consul/client';
import { ConsulLock } from '../../consul/lock';
import { ConsulTxnConflict, type TxnKvOp } from '../../consul/txn';
import { kvReadTree, type KvEntry } from '../../consul/kv';
import { parseJson, parseMeta, readQuery, type Transport } from '../../consul/wire';
import { Watch } from './watch';
import { selfSeesServers, selfViewFrom } from './guards';
import { encodeFencePayload } from '../../consul/event';
import { readFenceKey } from '../../consul/key';
import { readSecureFile } from '../../config/permissions';
import type { VigilConfig } from '../../config/types';
import { createPowerDriver, powerOffConfirmed, probeBmc, realClock, type FenceMethod as BmcMethod, type FenceResult } from '../../actions/bmc';
import { probe as arpProbe } from '../../net/arp/prober';
import { ConfigError, errorMessage } from '../../errors';
import type { Logger } from '../../log';
import { checkPasswordText, type MonitorConfig, type MonitorNetwork } from './config';
import type { TxnOp, RawKvEntry } from './kvschema';
import type { FenceRequest, MonitorIo, NetworkRead } from './runner';

/** Per-request deadline of a non-blocking call (a blocking read adds its wait). */
export const REQUEST_TIMEOUT_MS = 5_000;

/**
 * Server-side wait of the health and KV watches. An idle watch sends one read
 * per wait; a shorter wait than Consul's 5 min bounds how long a view can sit
 * unconfirmed behind an agent that answers members but lost its servers.
 */
export const WATCH_WAIT_MS = 60_000;

/**
 * A client for one network's agent. The token file must be root-only
 * (readSecureFile throws a ConfigError naming it otherwise); the token is
 * sent as a header, never logged.
 */
export function networkClient(n: MonitorNetwork, timeoutMs = REQUEST_TIMEOUT_MS): ConsulClient {
  const token = n.tokenFile !== undefined ? readSecureFile(n.tokenFile, 'key', { label: `token file (network ${n.name})` }).trim() : undefined;
  // The CA is public material: readable is enough.
  const ca = n.caFile !== undefined ? readFileSync(n.caFile) : undefined;
  return new ConsulClient({ url: n.url, timeoutMs, ...(token ? { token } : {}), ...(ca ? { ca } : {}) });
}

/** The network whose Consul holds the KV tree, sessions and incident locks. */
export function kvNetworkOf(cfg: MonitorConfig): MonitorNetwork {
  return cfg.networks.find((n) => n.name === cfg.kvNetwork)!;
}

/** kvschema.ts ops (values base64, Consul's wire form) → the client's ops (raw values). */
export function toClientOps(ops: readonly TxnOp[]): TxnKvOp[] {
  return ops.map(({ KV: o }): TxnKvOp => {
    const value = o.Value !== undefined ? Buffer.from(o.Value, 'base64') : Buffer.alloc(0);
    switch (o.Verb) {
      case 'set': return { verb: 'set', key: o.Key, value };
      case 'cas': return { verb: 'cas', key: o.Key, value, index: o.Index ?? 0 };
      case 'lock': case 'unlock': return { verb: o.Verb, key: o.Key, value, session: o.Session ?? '' };
      case 'check-session': return { verb: 'check-session', key: o.Key, session: o.Session ?? '' };
      case 'check-index': case 'delete-cas': return { verb: o.Verb, key: o.Key, index: o.Index ?? 0 };
      default: return { verb: o.Verb, key: o.Key };
    }
  });
}

/** The interface whose IPv4 subnet holds `addr` (the ARP probe goes out there). */
export function interfaceFor(addr: string): string | undefined {
  const n = addr.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  for (const [name, list] of Object.entries(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family !== 'IPv4' || a.internal || !a.cidr) continue;
      const prefix = Number(a.cidr.split('/')[1]);
      const mine = a.address.split('.').reduce((x, o) => x * 256 + Number(o), 0);
      const size = 2 ** (32 - prefix);
      if (Math.floor(mine / size) === Math.floor(n / size)) return name;
    }
  }
  return undefined;
}

/** The last evidence line of a fence, for the log and the journal. */
function fenceDetail(r: FenceResult): string {
  const last = r.evidence[r.evidence.length - 1];
  return last ? `${last.step}: ${last.detail}${last.code ? ` [${last.code}]` : ''}` : r.outcome;
}

/**
 * The real I/O. Token files and BMC password files are checked (owner,
 * mode) and the passwords checked against os_nova's default here, at
 * start: a ConfigError (exit 2) names the file, never its content.
 */
export function createRealIo(all: VigilConfig, cfg: MonitorConfig, log: Logger): MonitorIo {
  for (const h of cfg.inventory.hosts) {
    if (!h.bmc) continue;
    const text = readSecureFile(h.bmc.passwordFile, 'key', { label: `BMC password file (host ${h.name})`, maxBytes: 4096 });
    const p = checkPasswordText(text, h.bmc.passwordFile);
    if (p) throw new ConfigError(`monitor.inventory.hosts: ${p}`, { path: h.bmc.passwordFile });
  }
  const clients = new Map(cfg.networks.map((n) => [n.name, networkClient(n)]));
  const kv = clients.get(cfg.kvNetwork)!;
  const locks = new Map<string, ConsulLock>();
  const secs = (ms: number) => `${Math.max(1, Math.round(ms / 1000))}s`;

  // Health and the KV tree are watched by blocking queries (watch.ts): an idle round reads their
  // latest view without a request. Members and self are agent endpoints that do not block (§3j);
  // they are read every round, which also proves the agent answers (a dead agent: every host unknown).
  const watchOpts = {
    waitMs: WATCH_WAIT_MS,
    // While results churn, about one read per interval per watch: never more than the per-round read it replaces.
    refillMs: Math.max(250, cfg.intervalMs),
    staleMs: Math.ceil(WATCH_WAIT_MS * 17 / 16) + REQUEST_TIMEOUT_MS + 2 * Math.max(250, cfg.intervalMs),
  };
  // A transport whose requests the watch can abort when it stops.
  const abortable = (c: ConsulClient, signal: AbortSignal): Transport => ({ timeoutMs: c.timeoutMs, request: (m, p, o = {}) => c.request(m, p, { ...o, signal }) });
  const healthWatches = new Map(cfg.networks.map((n) => [n.name, new Watch<unknown>(async (o, signal) => {
    const c = clients.get(n.name)!;
    const { query, timeoutMs } = readQuery(c, o);
    const r = await c.request('GET', '/v1/health/state/any', { query, timeoutMs, signal });
    return { value: parseJson('GET /v1/health/state/any', r.body), meta: parseMeta(r.headers) };
  }, watchOpts)]));
  const kvWatches = new Map<string, Watch<KvEntry[]>>();
  const kvWatch = (prefix: string) => {
    let w = kvWatches.get(prefix);
    if (!w) { w = new Watch<KvEntry[]>((o, signal) => kvReadTree(abortable(kv, signal), `${prefix}/`, o), watchOpts); kvWatches.set(prefix, w); }
    return w;
  };
  const rawKv = new WeakMap<KvEntry[], RawKvEntry[]>();
  /** Our own writes must be read back by the next round (a CAS needs the new ModifyIndex). */
  const wrote = () => { for (const w of kvWatches.values()) w.invalidate(); };
  // Grouping 1000 hosts' checks by node is done once per new health view, not once per round.
  const grouped = new WeakMap<object, Record<string, unknown[]>>();
  const byNode = (health: unknown): Record<string, unknown[]> => {
    if (!Array.isArray(health)) throw new Error('/v1/health/state/any is not a list');
    let g = grouped.get(health);
    if (!g) {
      g = {};
      for (const chk of health as { Node?: string }[]) if (typeof chk?.Node === 'string') (g[chk.Node] ??= []).push(chk);
      grouped.set(health, g);
    }
    return g;
  };

  async function readNetwork(network: string): Promise<NetworkRead> {
    const c = clients.get(network)!;
    const watch = healthWatches.get(network)!;
    const [members, self] = await Promise.all([
      c.request('GET', '/v1/agent/members').then((r) => parseJson('GET /v1/agent/members', r.body)),
      c.self(),
    ]);
    const view = { server: self.server, knownServers: self.knownServers, leaderAddr: self.leaderAddr };
    // The health view comes from the servers. An agent that sees none (or a server without a leader)
    // cannot have a current one, and a held blocking read may not have noticed yet: read it directly,
    // which fails as a plain read does (the network's samples are then unknown, never a stale `up`
    // next to members that the lost gossip marks failed).
    if (!selfSeesServers(selfViewFrom(view)).ok) watch.invalidate();
    // Every node's checks from the network's watch (one blocking read in the background, not one per host).
    const health = await watch.current();
    return { members, health: byNode(health), self: view };
  }

  /** The BMC driver of a host; a KV password goes to a private 0600 file for the fence's duration. */
  function bmcMethod(f: FenceRequest, dir: () => string): BmcMethod {
    const b = f.bmc;
    let passwordFile = b.passwordFile;
    if (passwordFile === undefined) {
      const rec = f.kvPassword;
      if (!rec) throw new Error('no BMC password in KV');
      passwordFile = join(dir(), 'pw');
      writeFileSync(passwordFile, rec.reveal(), { mode: 0o600 });
    }
    const common = { ip: b.ip, user: b.user, passwordFile, ...(b.port ? { port: b.port } : {}) };
    if (b.protocol === 'redfish') return { method: 'redfish', ...common, ...(b.system ? { systemId: b.system } : {}), ...(b.caFile ? { caFile: b.caFile } : {}) };
    return { method: 'ipmi', ...common, ...(b.cipherSuite !== undefined ? { cipherSuite: b.cipherSuite } : {}), program: cfg.fence.ipmitool };
  }

  async function fence(f: FenceRequest): Promise<{ outcome: 'off' | 'not-off' | 'error'; powerState?: string; detail: string }> {
    let tmp: string | undefined;
    const dir = () => (tmp ??= mkdtempSync(join(tmpdir(), 'vigil-monitor-')));
    const timing = { powerTimeoutMs: f.powerTimeoutMs, powerWaitMs: f.powerWaitMs };
    try {
      const confirm = bmcMethod(f, dir);
      if (f.method === 'event') {
        // hostha's fence: the host's own handler powers it off; the BMC confirms, and escalates if it did not.
        const c = clients.get(f.network!)!;
        const key = all.fenceHandler?.keyFile !== undefined ? readFenceKey(all.fenceHandler.keyFile) : undefined;
        const ev = await c.fireEvent(f.event ?? cfg.fence.event, encodeFencePayload('fence', all.node, Math.floor(Date.now() / 1000), key), { node: `^${f.node}$` });
        log.warn({ host: f.host, network: f.network, event: ev.id }, 'fence event fired: waiting for the BMC to read off');
        const driver = createPowerDriver(confirm, { log });
        try {
          const end = realClock.now() + f.powerTimeoutMs;
          while (realClock.now() < end) {
            const r = await driver.powerStatus();
            if (r.state === 'off') return { outcome: 'off', powerState: 'off', detail: `fence event ${ev.id}; BMC reads off` };
            await realClock.sleep(f.powerWaitMs);
          }
        } finally { await driver.close?.(); }
        log.warn({ host: f.host }, 'host not off after the fence event: BMC power-off');
      }
      const method: BmcMethod = f.method === 'command'
        ? { method: 'command', argv: [...(cfg.fence.command ?? []), f.host], confirm: confirm as Exclude<BmcMethod, { method: 'command' }> }
        : confirm;
      const r = await powerOffConfirmed(method, timing, { log });
      const state = [...r.evidence].reverse().find((e) => e.state !== undefined)?.state;
      if (r.outcome === 'off') return { outcome: 'off', powerState: 'off', detail: fenceDetail(r) };
      return { outcome: state === 'on' ? 'not-off' : 'error', ...(state ? { powerState: state } : {}), detail: fenceDetail(r) };
    } catch (e) {
      return { outcome: 'error', detail: errorMessage(e) };
    } finally {
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    }
  }

  return {
    async readKv(prefix) {
      const entries = await kvWatch(prefix).current();
      // The same view gives the same array: the runner decodes a tree once per change, not once per round.
      let raw = rawKv.get(entries);
      if (!raw) {
        raw = entries.map((e): RawKvEntry => ({ Key: e.key, Value: e.value === null ? null : e.value.toString('base64'), ModifyIndex: e.modifyIndex, LockIndex: e.lockIndex, ...(e.session ? { Session: e.session } : {}) }));
        rawKv.set(entries, raw);
      }
      return raw;
    },
    readNetwork: (network) => readNetwork(network),
    async txn(ops) {
      try { await kv.txn(toClientOps(ops)); return { ok: true }; } catch (e) {
        if (e instanceof ConsulTxnConflict) return { ok: false, detail: e.message };
        throw e;
      } finally { wrote(); }
    },
    async claim(c, onLost) {
      const lock = new ConsulLock(kv, { key: c.key, value: c.value, session: { name: `vigil-monitor ${all.node}`, node: all.node, ttl: secs(c.ttlMs), lockDelay: secs(c.lockDelayMs), checks: [...c.checks], behavior: 'release' } });
      const hold = await lock.acquire().finally(wrote);
      if (!hold) {
        const e = await kv.kvGet(c.key).catch(() => undefined);
        return { acquired: false, reason: e?.session ? 'held by another session' : 'in lock-delay or taken', ...(e?.session ? { holder: e.session } : {}) };
      }
      locks.set(c.key, lock);
      lock.keep((reason) => { locks.delete(c.key); wrote(); onLost(reason); });
      return { acquired: true, session: hold.session };
    },
    async release(key) {
      const lock = locks.get(key);
      locks.delete(key);
      await lock?.release().finally(wrote);
    },
    fence,
    async checkSilence(targets) {
      const answered: { network: string; addr: string }[] = [];
      const errors: string[] = [];
      await Promise.all(targets.map(async (t) => {
        if (!t.addr) { errors.push(`${t.network}: no address known for ${t.node}`); return; }
        const iface = interfaceFor(t.addr);
        if (!iface) { errors.push(`${t.network}: no interface on the subnet of ${t.addr}`); return; }
        const r = await arpProbe(t.addr, iface, { timeoutMs: 1000, count: 3 });
        if (r.status === 'answered') answered.push({ network: t.network, addr: t.addr });
        else if (r.status === 'error') errors.push(`${t.network}: ARP probe of ${t.addr} on ${iface} failed: ${r.error.message}`);
      }));
      return { answered, errors };
    },
    async probeBmc(ip, port) {
      const r = await probeBmc(ip, port ? { port } : {});
      return { reachable: r.status === 'up' ? true : r.status === 'down' ? false : 'unknown', atMs: Date.now(), detail: r.detail };
    },
    now: () => Date.now(),
    close() {
      for (const w of [...healthWatches.values(), ...kvWatches.values()]) w.stop();
    },
  };
}
