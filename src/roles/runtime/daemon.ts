/**
 * Layer: roles. The runtime role as the daemon drives it: the publisher
 * over the real file system and the local agent's HTTP API. Loaded only
 * when a config has a `runtime_publish:` section.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { ConsulClient } from '../../consul/client';
import { readSecureFile } from '../../config/permissions';
import type { VigilConfig } from '../../config/types';
import { errorMessage } from '../../errors';
import { moduleLog } from '../../log';
import { selfSeesServers, selfViewFrom } from '../monitor/guards';
import type { RoleContext, RoleRunner } from '../role';
import type { RuntimePublishConfig } from './config';
import { RuntimePublisher, type RuntimeIo } from './runner';

/** The real I/O: the file, and the local agent (token through the permission checks). */
export function realRuntimeIo(cfg: RuntimePublishConfig): RuntimeIo {
  const token = cfg.consul.tokenFile !== undefined ? readSecureFile(cfg.consul.tokenFile, 'key', { label: 'token file (runtime_publish)' }).trim() : undefined;
  const ca = cfg.consul.caFile !== undefined ? readFileSync(cfg.consul.caFile) : undefined;
  const client = new ConsulClient({ url: cfg.consul.url, timeoutMs: cfg.requestTimeoutMs, ...(token ? { token } : {}), ...(ca ? { ca } : {}) });
  return {
    readFile(path) {
      try { return readFileSync(path, 'utf8'); } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw e;
      }
    },
    async agentHealth() {
      // "Healthy" is what the monitor's self-isolation guard asks of its own
      // agent (servers known), plus a known leader: without one a write fails anyway.
      let view;
      try { view = selfViewFrom(await client.self()); } catch (e) { return { ok: false, detail: `agent does not answer: ${errorMessage(e)}` }; }
      const seen = selfSeesServers(view);
      if (!seen.ok) return seen;
      let leader = '';
      try { leader = await client.leader(); } catch (e) { return { ok: false, detail: `status/leader: ${errorMessage(e)}` }; }
      return leader ? { ok: true, detail: `${seen.detail}, leader ${leader}` } : { ok: false, detail: `${seen.detail} but no cluster leader` };
    },
    async kvGet(key) {
      const e = await client.kvGet(key);
      return e ? { value: e.value?.toString('utf8'), modifyIndex: e.modifyIndex } : null;
    },
    kvPutCas: (key, value, cas) => client.kvPut(key, value, { cas }),
    now: () => Date.now(),
    mono: () => performance.now(),
  };
}

/** The runner factory of the registry entry. */
export function createRuntimeRunner(initial: VigilConfig, _ctx: RoleContext): RoleRunner {
  let all = initial;
  const log = moduleLog('runtime', { role: 'runtime' });
  let pub: RuntimePublisher | undefined;
  let resolveDone!: (c: number) => void;
  const done = new Promise<number>((r) => { resolveDone = r; });
  const build = (c: VigilConfig) => new RuntimePublisher(c.runtimePublish!, c.runtimePublish!.host ?? c.node, realRuntimeIo(c.runtimePublish!), log);
  return {
    name: 'runtime',
    done,
    async start() {
      pub = build(all);
      pub.start();
    },
    stop() {
      if (!pub) { resolveDone(0); return; }
      pub.stop();
      void pub.idle().then(() => resolveDone(0));
    },
    canReload(next) {
      if (!next.runtimePublish) return undefined;
      // Building the next client reads its token file: a bad one refuses the reload, the old job keeps going.
      try { realRuntimeIo(next.runtimePublish); } catch (e) { return errorMessage(e); }
      return undefined;
    },
    reload(next) {
      const changed = JSON.stringify(next.runtimePublish) !== JSON.stringify(all.runtimePublish) || next.node !== all.node;
      all = next;
      if (!changed || !pub || !next.runtimePublish) return;
      // The job holds no state worth keeping across a change (the next cycle re-reads KV): start over.
      pub.stop();
      pub = build(next);
      pub.start();
    },
    status() {
      return pub?.status() ?? { phase: 'starting' };
    },
    healthy(nowMs = performance.now()) {
      if (!pub) return false;
      const c = pub.cfg;
      return nowMs - pub.lastProgressMs < 2 * c.intervalMs + 3 * c.requestTimeoutMs + 5000;
    },
  };
}
