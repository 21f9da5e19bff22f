/**
 * Layer: runner. Drives one fenced host's recovery: read the record, ask
 * the planner (record.ts) for the next step, log what it is about to do
 * and why, write the intent under the claim, do it, write the result,
 * repeat until the planner says done. Any write refused by check-session
 * stops it at once (the claim is gone: the next claimer resumes from the
 * record). Nothing here decides.
 */
import { errorMessage } from '../../../errors';
import type { TxnOp } from '../kvschema';
import { claimSpareOps, finishOps, recordOps, releaseSpareOps, takenOverOps } from './kv';
import {
  applyResult, decodeRecord, markStarted, newRecord, planNext, serverFinished, serverStarted, serverVerdict,
  type Plan, type RecoveryMethod, type RecoveryPlanConfig, type RecoveryRecord, type ServerView, type SpareView, type StepResult,
} from './record';

/** The executor's I/O (the runner wires Consul, Nova and the command runner; tests use the doubles). */
export interface RecoveryIo {
  txn(ops: TxnOp[]): Promise<{ ok: boolean; detail?: string }>;
  readRecord(host: string): Promise<unknown>;
  readSpares(): Promise<SpareView[]>;
  /** The spare's takeover command; `runtimeConfig` goes to its stdin. */
  takeover(a: { host: string; spare: string; incident: string; runtimeConfig: string; resumed: boolean }): Promise<{ ok: boolean; detail: string }>;
  command(a: { host: string; incident: string; runtimeConfig: string; resumed: boolean }): Promise<{ ok: boolean; detail: string }>;
  nova?: {
    forceDown(host: string, reason: string): Promise<string>;
    listServers(host: string): Promise<{ id: string }[]>;
    evacuate(id: string): Promise<void>;
    server(id: string): Promise<ServerView>;
  };
  now(): number;
  sleep(ms: number): Promise<void>;
  log(level: 'info' | 'warn' | 'error', msg: string, data: Record<string, unknown>): void;
}

export interface RecoveryRunConfig extends RecoveryPlanConfig {
  kvPrefix: string;
  method: RecoveryMethod;
  serverTimeoutMs: number;
  pollMs: number;
  /** Bounded retries of a Nova call that failed (force-down, list). */
  callRetries: number;
}

/** What a run ended with. */
export type RunEnd = { end: 'recovered' | 'failed'; record: RecoveryRecord } | { end: 'claim-lost'; detail: string };

class ClaimLost extends Error {}

/** Run (or resume) one incident's recovery to its end, under `session`. */
export async function runRecovery(io: RecoveryIo, cfg: RecoveryRunConfig, a: { host: string; session: string; incident: string; journal: Record<string, unknown>; runtimeConfig: string; onRecord?: (r: RecoveryRecord) => void }): Promise<RunEnd> {
  const by = cfg.self;
  const { host, session } = a;
  let rec = decodeRecord(await io.readRecord(host), a.incident);
  const resumed = rec !== undefined;
  rec ??= newRecord(a.incident, host, cfg.method);
  io.log('info', resumed ? 'recovery resumed from the record in KV: finished steps are not repeated' : 'recovery starts: the host\'s power-off is confirmed', { host, incident: a.incident, stages: rec.stages, lastStep: rec.log[rec.log.length - 1]?.step });
  const write = async (ops: TxnOp[], what: string) => {
    const r = await io.txn(ops).catch((e: unknown) => ({ ok: false, detail: errorMessage(e) }));
    if (!r.ok) throw new ClaimLost(`${what}: ${r.detail ?? 'check-session failed'}`);
  };
  const save = async (next: RecoveryRecord, what: string) => { await write(recordOps(cfg.kvPrefix, host, session, next), what); rec = next; a.onRecord?.(next); };
  try {
    for (let guard = 0; guard < 10_000; guard++) {
      a.onRecord?.(rec);
      const spares = rec.stages.includes('takeover') ? await io.readSpares() : [];
      const p = planNext(rec, spares, cfg);
      if (p.kind === 'done') return { end: rec.outcome === 'recovered' ? 'recovered' : 'failed', record: rec };
      // Evidence: what, and why, before it is done.
      io.log(p.kind === 'finish' && p.outcome === 'failed' ? 'error' : 'info', `recovery step ${p.kind}: ${p.why}`, { host, incident: a.incident, ...stepData(p) });
      const started = markStarted(rec, p, io.now(), by);
      if (started !== rec) await save(started, `${p.kind} intent`);
      const res = await carryOut(p, spares);
      if (res === undefined) continue;
      if (res.kind === 'finish') {
        const done = applyResult(rec, res, io.now(), by);
        await write(finishOps(cfg.kvPrefix, host, session, done, { ...a.journal, step: res.outcome === 'recovered' ? 'recovered' : 'recovery-failed', atMs: io.now(), by }), 'incident end');
        rec = done;
        a.onRecord?.(done);
        io.log(res.outcome === 'recovered' ? 'info' : 'error', res.outcome === 'recovered' ? 'host recovered: status/recovered is True; the host stays disabled until an operator re-enables it' : 'recovery failed: the host stays fenced, forced down and latched', { host, incident: a.incident });
        return { end: res.outcome, record: rec };
      }
      const next = applyResult(rec, res, io.now(), by);
      if (res.kind === 'claimSpare') {
        if (res.ok) { rec = next; continue; } // written in the claim's own txn
      }
      if (res.kind === 'takeover' && res.ok) { await write(takenOverOps(cfg.kvPrefix, host, session, res.spare, next, by), 'takeover done'); rec = next; continue; }
      if (res.kind === 'releaseSpare') { rec = next; continue; } // written in the release's own txn
      await save(next, `${res.kind} result`);
    }
    throw new Error('recovery did not converge');
  } catch (e) {
    if (e instanceof ClaimLost) {
      io.log('error', 'recovery stopped: the incident claim is gone (a write was refused); the next claimer resumes from the record', { host, incident: a.incident, detail: e.message });
      return { end: 'claim-lost', detail: e.message };
    }
    throw e;
  }

  async function carryOut(p: Plan, spares: SpareView[]): Promise<StepResult | undefined> {
    const r = rec!;
    switch (p.kind) {
      case 'claimSpare': {
        const view = spares.find((s) => s.name === p.spare)!;
        const next = applyResult(r, { kind: 'claimSpare', spare: p.spare, ok: true }, io.now(), by);
        const t = await io.txn(claimSpareOps(cfg.kvPrefix, host, session, view, next, by)).catch((e: unknown) => ({ ok: false, detail: errorMessage(e) }));
        if (t.ok) { rec = next; return undefined; }
        // Lost to another claimer of the spare, or our claim is gone: which one, the next write tells.
        const refused = applyResult(r, { kind: 'claimSpare', spare: p.spare, ok: false, detail: t.detail ?? 'refused' }, io.now(), by);
        await save(refused, 'spare refused');
        return undefined;
      }
      case 'takeover': {
        const t = await io.takeover({ host, spare: p.spare, incident: a.incident, runtimeConfig: a.runtimeConfig, resumed: p.resumed });
        return { kind: 'takeover', spare: p.spare, ok: t.ok, detail: t.detail };
      }
      case 'releaseSpare': {
        const view = spares.find((s) => s.name === p.spare) ?? { name: p.spare, inUse: true, healthy: false, modifyIndex: 0 };
        const next = applyResult(r, { kind: 'releaseSpare', spare: p.spare }, io.now(), by);
        await write(releaseSpareOps(cfg.kvPrefix, host, session, view, next), 'spare release');
        rec = next;
        return undefined;
      }
      case 'command': {
        const t = await io.command({ host, incident: a.incident, runtimeConfig: a.runtimeConfig, resumed: p.resumed });
        return { kind: 'command', ok: t.ok, detail: t.detail };
      }
      case 'forceDown': {
        const nova = io.nova;
        if (!nova) return { kind: 'forceDown', ok: false, detail: 'no Nova configured' };
        const t = await retried(() => nova.forceDown(host, `vigil: fenced ${host} (incident ${a.incident})`), 'force-down');
        return { kind: 'forceDown', ...t };
      }
      case 'listServers': {
        const nova = io.nova!;
        let ids: string[] = [];
        const t = await retried(async () => { ids = (await nova.listServers(host)).map((s) => s.id); return `${ids.length} server(s)`; }, 'server list');
        return { kind: 'listServers', ...t, ...(t.ok ? { servers: ids } : {}) };
      }
      case 'evacuate':
        await evacuateAll(p.servers);
        return undefined;
      case 'nextStage':
        return { kind: 'nextStage', why: p.why };
      case 'finish':
        return { kind: 'finish', outcome: p.outcome };
      case 'done':
        return undefined;
    }
  }

  async function retried(fn: () => Promise<string>, what: string): Promise<{ ok: boolean; detail: string }> {
    let last = '';
    for (let i = 0; i <= cfg.callRetries; i++) {
      try { return { ok: true, detail: await fn() }; } catch (e) {
        last = errorMessage(e);
        io.log('warn', `${what} failed (attempt ${i + 1} of ${cfg.callRetries + 1})`, { host, detail: last });
        if (i < cfg.callRetries) await io.sleep(cfg.pollMs);
      }
    }
    return { ok: false, detail: last };
  }

  /** Bounded concurrency; record writes are serialised (one JSON value). */
  async function evacuateAll(ids: string[]): Promise<void> {
    let chain: Promise<void> = Promise.resolve();
    const serial = (f: (r: RecoveryRecord) => RecoveryRecord, what: string) => {
      const p = chain.then(() => save(f(rec!), what));
      chain = p.catch(() => undefined);
      return p;
    };
    const queue = [...ids];
    const worker = async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) await evacuateOne(id, serial);
    };
    const results = await Promise.allSettled(Array.from({ length: Math.min(cfg.evacuateConcurrency, ids.length) }, worker));
    const lost = results.find((x): x is PromiseRejectedResult => x.status === 'rejected');
    if (lost) throw lost.reason;
  }

  async function evacuateOne(id: string, serial: (f: (r: RecoveryRecord) => RecoveryRecord, what: string) => Promise<void>): Promise<void> {
    const nova = io.nova!;
    const cur = rec!.nova.servers[id];
    let send = true;
    if (cur?.step === 'started') {
      // Resumed: an evacuate may already be out. Look before sending another.
      const v = await nova.server(id).then((s) => serverVerdict(s, host)).catch(() => 'unknown' as const);
      io.log('info', `resuming evacuation of ${id}: the server is ${v}`, { host, server: id });
      if (v === 'done') { await serial((r) => serverFinished(r, id, true, 'confirmed on resume', io.now(), by), 'server done'); return; }
      send = v === 'idle-on-source' || v === 'unknown';
      if (v === 'failed') { await serial((r) => serverFinished(r, id, false, 'in ERROR on resume', io.now(), by), 'server failed'); return; }
    } else {
      await serial((r) => serverStarted(r, id, io.now(), by), 'server intent');
    }
    if (send) {
      io.log('info', `evacuating ${id} (attempt ${rec!.nova.servers[id]?.attempts ?? 1})`, { host, server: id });
      try { await nova.evacuate(id); } catch (e) {
        await serial((r) => serverFinished(r, id, false, `evacuate refused: ${errorMessage(e)}`, io.now(), by), 'server failed');
        return;
      }
    }
    const end = io.now() + cfg.serverTimeoutMs;
    let last = 'no answer yet';
    while (io.now() < end) {
      await io.sleep(cfg.pollMs);
      try {
        const s = await nova.server(id);
        const v = serverVerdict(s, host);
        last = `${s.status}/${s.taskState ?? 'idle'} on ${s.host ?? '?'}`;
        if (v === 'done') { await serial((r) => serverFinished(r, id, true, last, io.now(), by, s.host ?? undefined), 'server done'); return; }
        if (v === 'failed') { await serial((r) => serverFinished(r, id, false, last, io.now(), by), 'server failed'); return; }
      } catch (e) { last = errorMessage(e); }
    }
    await serial((r) => serverFinished(r, id, false, `not confirmed within ${cfg.serverTimeoutMs} ms (${last})`, io.now(), by), 'server timeout');
  }
}

function stepData(p: Plan): Record<string, unknown> {
  switch (p.kind) {
    case 'claimSpare': case 'takeover': case 'releaseSpare': return { spare: p.spare };
    case 'evacuate': return { servers: p.servers };
    case 'finish': return { outcome: p.outcome };
    default: return {};
  }
}
