/**
 * Layer: I/O. The real {@link RecoveryIo}: the KV network's Consul client
 * (record, spares, txns), every network's client for a spare's health,
 * the command runner for takeover/command (argv, timeout, runtime_config
 * on stdin, names in the environment), and the Nova client.
 */
import { runCommand } from '../../../actions/commands';
import type { ConsulClient } from '../../../consul/client';
import { ConsulTxnConflict } from '../../../consul/txn';
import { readSecureFile } from '../../../config/permissions';
import { ConfigError, errorMessage } from '../../../errors';
import type { Logger } from '../../../log';
import { NovaClient } from '../../../net/nova/client';
import type { MonitorConfig } from '../config';
import { Secret, decodeBool } from '../kvschema';
import { networkClient, toClientOps } from '../io';
import { HOLDER_KEY, recordKey } from './kv';
import type { RecoveryIo } from './executor';
import type { SpareView } from './record';

export interface RecoveryIoOptions {
  kvPrefix: string;
  kv: ConsulClient;
  /** Every network's client: a spare is healthy when no check of its node is critical on any of them. */
  networks: readonly ConsulClient[];
  takeover?: { argv: readonly string[]; timeoutMs: number };
  command?: { argv: readonly string[]; timeoutMs: number };
  nova?: NovaClient;
  log: RecoveryIo['log'];
}

function commandDetail(r: Awaited<ReturnType<typeof runCommand>>): string {
  const why = r.spawnError ? `not started: ${r.spawnError}` : r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exit ${String(r.code)}`;
  const err = r.stderr.trim().split('\n').slice(-1)[0];
  return `${why}${err ? ` (${err.slice(0, 200)})` : ''}`;
}

export function createRecoveryIo(o: RecoveryIoOptions): RecoveryIo {
  const run = async (c: { argv: readonly string[]; timeoutMs: number } | undefined, what: string, env: Record<string, string>, input: string) => {
    if (!c || c.argv.length === 0) return { ok: false, detail: `no ${what} command configured` };
    const r = await runCommand(c.argv, { timeoutMs: c.timeoutMs, input, env: { ...process.env, ...env } });
    return { ok: r.ok, detail: commandDetail(r) };
  };
  const nova = o.nova;
  return {
    async txn(ops) {
      try { await o.kv.txn(toClientOps(ops)); return { ok: true }; } catch (e) {
        if (e instanceof ConsulTxnConflict) return { ok: false, detail: e.message };
        return { ok: false, detail: errorMessage(e) };
      }
    },
    async readRecord(host) {
      const e = await o.kv.kvGet(recordKey(o.kvPrefix, host));
      if (!e?.value || e.value.length === 0) return undefined;
      try { return JSON.parse(e.value.toString('utf8')) as unknown; } catch { return undefined; }
    },
    async readSpares() {
      const base = `${o.kvPrefix}/ha_nodes/`;
      const entries = await o.kv.kvList(base);
      const views = new Map<string, SpareView>();
      for (const e of entries) {
        const [name, ...rest] = e.key.slice(base.length).split('/');
        if (!name) continue;
        const v = views.get(name) ?? { name, inUse: false, healthy: true, modifyIndex: 0 };
        const sub = rest.join('/');
        const text = e.value?.toString('utf8') ?? '';
        if (sub === 'status/in_use') { v.inUse = decodeBool(text) === true; v.modifyIndex = e.modifyIndex; if (e.session) v.session = e.session; }
        else if (sub === HOLDER_KEY) { try { v.holder = JSON.parse(text) as SpareView['holder']; } catch { /* an unreadable holder counts as none */ } }
        views.set(name, v);
      }
      await Promise.all([...views.values()].map(async (v) => {
        for (const c of o.networks) {
          try {
            const checks = (await c.healthNode(v.name)).value;
            if (checks.length === 0 || checks.some((x) => x.status === 'critical')) v.healthy = false;
          } catch { v.healthy = false; }
        }
      }));
      return [...views.values()];
    },
    takeover: (a) => run(o.takeover, 'takeover', { VIGIL_HOST: a.host, VIGIL_SPARE: a.spare, VIGIL_INCIDENT: a.incident, VIGIL_RESUMED: a.resumed ? '1' : '0' }, a.runtimeConfig),
    command: (a) => run(o.command, 'recovery', { VIGIL_HOST: a.host, VIGIL_INCIDENT: a.incident, VIGIL_RESUMED: a.resumed ? '1' : '0' }, a.runtimeConfig),
    ...(nova ? {
      nova: {
        forceDown: (host: string, reason: string) => nova.forceDown(host, reason),
        listServers: (host: string) => nova.listServers(host),
        evacuate: (id: string) => nova.evacuate(id),
        async server(id: string) {
          const s = await nova.getServer(id);
          // The migration record is the cross-check (§3e): asked only once the server looks settled.
          const migration = s.taskState === null ? await nova.migrationStatus(id).catch(() => undefined) : undefined;
          return { id: s.id, status: s.status, host: s.host, taskState: s.taskState, ...(migration ? { migration } : {}) };
        },
      },
    } : {}),
    now: () => Date.now(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    log: o.log,
  };
}

/**
 * The daemon's recovery I/O from the config: the Nova password file is
 * read through the permission check (root-only, else a ConfigError naming
 * the file, exit 2) at start, never logged.
 */
export function recoveryIoFromConfig(m: MonitorConfig, log: Logger): RecoveryIo | undefined {
  const rc = m.recovery;
  if (!rc) return undefined;
  const clients = m.networks.map((n) => networkClient(n));
  const kv = clients[m.networks.findIndex((n) => n.name === m.kvNetwork)]!;
  let nova: NovaClient | undefined;
  if (rc.evacuate) {
    const e = rc.evacuate;
    const pw = readSecureFile(e.passwordFile, 'key', { label: 'Nova password file', maxBytes: 4096 }).replace(/\r?\n$/, '');
    if (pw === '') throw new ConfigError(`monitor.recovery.evacuate.password_file: ${e.passwordFile} is empty (expected the Nova user's password)`, { path: e.passwordFile });
    nova = new NovaClient({ authUrl: e.authUrl, user: e.user, userDomain: e.userDomain, project: e.project, projectDomain: e.projectDomain, password: new Secret(pw), interface: e.interface, ...(e.region ? { region: e.region } : {}), timeoutMs: e.requestTimeoutMs });
  }
  return createRecoveryIo({
    kvPrefix: m.kvPrefix, kv, networks: clients,
    ...(rc.takeover ? { takeover: rc.takeover } : {}), ...(rc.command ? { command: rc.command } : {}), ...(nova ? { nova } : {}),
    log: (level, msg, data) => log[level](data, msg),
  });
}
