/**
 * Layer: roles, I/O. What the promote runner does to the world, behind one
 * interface ({@link PromoteIo}) so the runner is tested with a fake:
 * tri-state probes (ICMP, ARP, TCP connect, HTTP GET; each with a hard
 * timeout, none spawns), the witness (Consul: leader status, the session
 * lock of src/consul/lock.ts, the step records in a `/v1/txn` with
 * `check-session`), and the operator's steps and fence (src/actions: the
 * only place that spawns).
 */
import * as net from 'node:net';
import * as http from 'node:http';
import * as https from 'node:https';
import { ConsulClient, ConsulTxnConflict } from '../../consul/client';
import { ConsulLock, type LockHold } from '../../consul/lock';
import { runCommand } from '../../actions/commands';
import { createPowerDriver, parseFenceSection, powerOffConfirmed } from '../../actions/bmc';
import { readSecureFile } from '../../config/permissions';
import { errorMessage } from '../../errors';
import { probe as arpProbe } from '../../net/arp/prober';
import type { Pinger } from '../../net/icmp/pinger';
import { leaderKey, type FenceConfig, type ProbeConfig, type PromoteConfig, type StepConfig } from './config';
import type { Hold, Tri } from './machine';

/** One probe's answer, with what it saw. */
export interface ProbeAnswer { probe: string; result: Tri; detail: string }

/** A step's outcome. */
export interface StepOutcome { ok: boolean; error?: string; stdout?: string }

/** Everything the runner needs from outside. */
export interface PromoteIo {
  now(): number;
  probe(p: ProbeConfig): Promise<ProbeAnswer>;
  /** The witness answers with a leader: true; no leader or no answer: false. */
  witness(): Promise<boolean>;
  /** The leader key's holder session, '' when free; throws when the witness does not answer. */
  leaseHolder(): Promise<string>;
  kvValue(key: string): Promise<string | undefined>;
  acquire(): Promise<Hold | undefined>;
  adopt(h: Hold): Promise<Hold | undefined>;
  /** true: renewed; false: lost; throws: unknown (the deadline decides). */
  renew(): Promise<boolean>;
  release(): Promise<void>;
  /** Write a step record only while `hold` still holds the key; throws ConsulTxnConflict when it does not. */
  recordStep(hold: Hold, record: Record<string, unknown>): Promise<void>;
  /** Run a step (or `argv`, its verify); aborting `signal` kills it (TERM, a short grace, KILL). */
  runStep(step: StepConfig, env: Record<string, string>, timeoutMs: number, argv?: readonly string[], signal?: AbortSignal): Promise<StepOutcome>;
  fence(f: FenceConfig): Promise<{ confirmed: boolean; evidence: string }>;
}

/** Fold peer probes: any up → up; any unknown → unknown; all down (or none) → down. */
export function foldPeer(rs: readonly Tri[]): Tri {
  return rs.includes('up') ? 'up' : rs.includes('unknown') ? 'unknown' : 'down';
}

/** Fold ready probes: any down → down; any unknown → unknown; all up (or none) → up. */
export function foldReady(rs: readonly Tri[]): Tri {
  return rs.includes('down') ? 'down' : rs.includes('unknown') ? 'unknown' : 'up';
}

/** TERM → KILL grace of a promote step interrupted because the site demotes (at most demote_timeout / 2). */
export const ABORT_GRACE_MS = 1000;

// Errors on our side of the wire say nothing about the peer.
const LOCAL_ERRORS = new Set(['ENETUNREACH', 'EHOSTUNREACH', 'EADDRNOTAVAIL', 'ENETDOWN', 'EPERM', 'EACCES']);

/** TCP connect: connected → up; refused or silent → down; a local error → unknown. */
export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeAnswer> {
  const name = `tcp ${host}:${port}`;
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (result: Tri, detail: string) => { clearTimeout(timer); s.destroy(); resolve({ probe: name, result, detail }); };
    const timer = setTimeout(() => done('down', `no answer in ${timeoutMs} ms`), timeoutMs);
    s.once('connect', () => done('up', 'connected'));
    s.once('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' ? 'down' : LOCAL_ERRORS.has(e.code ?? '') ? 'unknown' : 'down', e.code ?? e.message));
  });
}

/** HTTP GET: 2xx → up; another status, refused or silent → down; a local error → unknown. */
export function httpProbe(url: string, timeoutMs: number): Promise<ProbeAnswer> {
  const name = `http ${url}`;
  return new Promise((resolve) => {
    let settled = false;
    const done = (result: Tri, detail: string) => { if (!settled) { settled = true; clearTimeout(timer); req.destroy(); resolve({ probe: name, result, detail }); } };
    const get = url.startsWith('https:') ? https.get : http.get;
    const req = get(url, { headers: { 'User-Agent': 'vigil-promote' } }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      done(code >= 200 && code < 300 ? 'up' : 'down', `HTTP ${code}`);
    });
    const timer = setTimeout(() => done('down', `no answer in ${timeoutMs} ms`), timeoutMs);
    req.once('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' ? 'down' : LOCAL_ERRORS.has(e.code ?? '') ? 'unknown' : 'down', e.code ?? e.message));
  });
}

/** The real I/O for one config. */
export function realPromoteIo(cfg: PromoteConfig, opts: { pinger?: () => Pinger } = {}): PromoteIo {
  const token = cfg.consul.tokenFile !== undefined ? readSecureFile(cfg.consul.tokenFile, 'key', { label: 'token file (promote)' }).split('\n')[0]!.trim() : undefined;
  const client = new ConsulClient({ url: cfg.consul.url, timeoutMs: cfg.consul.timeoutMs, ...(token ? { token } : {}) });
  const key = leaderKey(cfg.name);
  const lock = new ConsulLock(client, {
    key,
    value: JSON.stringify({ site: cfg.site }),
    // checks: [] — only the TTL can take the lock away (no serfHealth: a gossip blip is not a failure).
    session: { name: `vigil-promote-${cfg.name}-${cfg.site}`, ttl: `${Math.round(cfg.ttlMs / 1000)}s`, lockDelay: `${Math.round(cfg.lockDelayMs / 1000)}s`, checks: [], behavior: 'release' },
  });
  let pinger: Pinger | undefined;
  return {
    now: () => performance.now(),
    async probe(p) {
      switch (p.kind) {
        case 'tcp': return tcpProbe(p.host, p.port, p.timeoutMs);
        case 'http': return httpProbe(p.url, p.timeoutMs);
        case 'icmp': {
          if (!pinger) {
            try { pinger = opts.pinger ? opts.pinger() : new (await import('../../net/icmp/pinger')).Pinger(); } catch (e) {
              return { probe: `icmp ${p.host}`, result: 'unknown', detail: errorMessage(e) };
            }
          }
          const r = await pinger.ping(p.host, p.timeoutMs);
          return { probe: `icmp ${p.host}`, result: r.status === 'answered' ? 'up' : r.status === 'silent' ? 'down' : 'unknown', detail: r.status === 'error' ? r.error : r.status };
        }
        case 'arp': {
          const r = await arpProbe(p.host, p.interface, { timeoutMs: p.timeoutMs });
          return { probe: `arp ${p.host} on ${p.interface}`, result: r.status === 'answered' ? 'up' : r.status === 'silent' ? 'down' : 'unknown', detail: r.status === 'error' ? r.error.message : r.status };
        }
      }
    },
    async witness() {
      try { return (await client.leader()) !== ''; } catch { return false; }
    },
    async leaseHolder() { return (await client.kvGet(key))?.session ?? ''; },
    async kvValue(k) { return (await client.kvGet(k))?.value?.toString('utf8'); },
    async acquire() { const h = await lock.acquire(); return h ? { session: h.session, lockIndex: h.lockIndex } : undefined; },
    async adopt(h) { const a = await lock.adopt({ key, ...h }); return a ? { session: a.session, lockIndex: a.lockIndex } : undefined; },
    renew: () => lock.renew(),
    release: () => lock.release(),
    async recordStep(hold, record) {
      await client.txn([
        { verb: 'check-session', key, session: hold.session },
        { verb: 'set', key: `vigil/promote/${cfg.name}/steps/${cfg.site}`, value: JSON.stringify({ ...record, lockIndex: hold.lockIndex, session: hold.session }) },
      ]);
    },
    async runStep(step, env, timeoutMs, argv, signal) {
      // A short grace after an abort: it comes out of demote_timeout (the demote deadline is set
      // before the abort), so at most half of it.
      const killGraceMs = Math.min(ABORT_GRACE_MS, Math.floor(cfg.demoteTimeoutMs / 2));
      const r = await runCommand(argv ?? step.command, { timeoutMs, env: { ...process.env, ...env }, ...(signal ? { signal, killGraceMs } : {}) });
      if (!r.ok) return { ok: false, error: r.aborted ? 'interrupted: this site is demoting' : r.timedOut ? `timed out after ${timeoutMs} ms` : r.spawnError ?? `exit ${r.code ?? r.signal}`, stdout: r.stdout };
      if (step.json && argv === undefined) {
        try { JSON.parse(r.stdout); } catch { return { ok: false, error: 'stdout is not JSON', stdout: r.stdout }; }
      }
      return { ok: true, stdout: r.stdout };
    },
    async fence(f) {
      switch (f.kind) {
        case 'none': return { confirmed: true, evidence: 'no fence configured' };
        case 'wait':
          await new Promise((r) => setTimeout(r, f.waitMs));
          return { confirmed: true, evidence: `waited ${f.waitMs} ms` };
        case 'command': {
          const r = await runCommand(f.command, { timeoutMs: f.timeoutMs });
          return { confirmed: r.ok, evidence: `command ${r.ok ? 'succeeded' : r.timedOut ? 'timed out' : `failed (exit ${r.code ?? r.signal})`}` };
        }
        case 'bmc': {
          try {
            const { method, timing } = parseFenceSection({
              method: f.driver === 'ipmitool' ? 'ipmi' : 'redfish', ip: f.host,
              ...(f.user !== undefined ? { user: f.user } : {}), ...(f.passwordFile !== undefined ? { password_file: f.passwordFile } : {}),
              power_timeout: `${Math.round(f.timeoutMs / 1000)}s`,
            }, 'promote.fence');
            const r = await powerOffConfirmed(createPowerDriver(method), timing);
            return { confirmed: r.outcome === 'off', evidence: r.evidence.map((e) => `${e.step} ${e.ok ? 'ok' : 'failed'}: ${e.detail}`).join('; ') };
          } catch (e) {
            return { confirmed: false, evidence: errorMessage(e) };
          }
        }
      }
    },
  };
}

/** True when a step record write was refused because the lease is no longer ours. */
export function isStaleHolder(e: unknown): boolean {
  return e instanceof ConsulTxnConflict;
}

export type { LockHold };
