/**
 * Layer: runner. One round every `interval`: read the KV tree, ask every
 * network's agent (members, health, self), turn the answers into samples
 * (samples.ts), feed each host's machine (machine.ts) and carry out the
 * effects it returns through an injected {@link MonitorIo}. Nothing here
 * decides: the machine and the guards do. A fence runs beside the rounds
 * (it takes up to power_timeout); its result is fed back as an event.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../log';
import { errorMessage } from '../../errors';
import { countTransition, setRoleState } from '../../metrics';

/** Host phases in which the monitor acts on a host (metrics' `acting`). */
const ACTING: readonly string[] = ['claiming', 'observing', 'latching', 'fencing', 'checking-silence'];
/** Host phases in which a guard holds the monitor back (metrics' `holding`). */
const HOLDING: readonly string[] = ['awaiting-guards', 'held'];
import type { MonitorConfig } from './config';
import { evaluateGuards, selfViewFrom, type SelfView } from './guards';
import { guardInputFor, hostMachineConfig, hostsFromConfig, hostsFromKv, type MonitoredHost } from './inventory';
import { decodeInventory, mergeInventory, type KvInventory, type RawKvEntry, type Secret, type TxnOp } from './kvschema';
import { initialHostState, mayRecover, monitorTransition, type HostMachineConfig, type HostState, type MonitorEffect, type MonitorEvent } from './machine';
import { encodeJson } from './kvschema';
import { runRecovery, type RecoveryIo } from './recovery/executor';
import { summary as recoverySummary, type RecoveryRecord } from './recovery/record';
import { sampleRound, type NetworkAnswer } from './samples';
import { buildStatus, type BmcReachability, type MonitorStatus } from './status';

/** What one network's agent answered this round. */
export interface NetworkRead { members: unknown; health: Record<string, unknown>; self: { server: boolean; knownServers?: number | undefined; leaderAddr?: string | undefined } }

/** The fence the machine asked for, with the host's BMC. */
export type FenceRequest = Extract<MonitorEffect, { type: 'fence' }> & { bmc: NonNullable<MonitoredHost['bmc']>; node: string; kvPassword?: Secret };

/** The runner's I/O; the daemon wires the real one (io.ts), tests a fake. */
export interface MonitorIo {
  readKv(prefix: string): Promise<RawKvEntry[]>;
  readNetwork(network: string, nodes: readonly string[]): Promise<NetworkRead>;
  /** A txn; false with the reason when Consul rolled it back (409). */
  txn(ops: TxnOp[]): Promise<{ ok: boolean; detail?: string }>;
  /** Take the incident lock; `onLost` is called once when the claim is gone. */
  claim(c: Extract<MonitorEffect, { type: 'claimIncident' }>, onLost: (reason: string) => void): Promise<{ acquired: true; session: string } | { acquired: false; reason: string; holder?: string }>;
  release(key: string, session: string): Promise<void>;
  fence(f: FenceRequest): Promise<{ outcome: 'off' | 'not-off' | 'error'; powerState?: string; detail: string }>;
  checkSilence(targets: { network: string; node: string; addr?: string }[]): Promise<{ answered: { network: string; addr: string }[]; errors: string[] }>;
  probeBmc(ip: string, port?: number): Promise<BmcReachability>;
  now(): number;
  /** End background reads (the watches); optional for test doubles of the I/O. */
  close?(): void;
}

/** Alarm codes: one stable code per reason, for log searches and the status. */
export const ALARM_CODES: Record<string, string> = {
  guards: 'EMONITORGUARD', 'unconfirmed-network': 'EMONITORUNCONFIRMED', 'fence-unconfirmed': 'EMONITORFENCEUNCONFIRMED',
  'still-answers': 'EMONITORSTILLANSWERS', 'silence-unverified': 'EMONITORSILENCEUNKNOWN', 'claim-lost': 'EMONITORCLAIMLOST',
  'recovery-failed': 'EMONITORRECOVERYFAILED',
};

/** Phases of a finished incident, which an operator's reset in KV ends. */
const FINISHED_PHASES: readonly string[] = ['fenced', 'fence-unconfirmed', 'aborted', 'recovered', 'recovery-failed'];

/** BMC presence pings are slow and cheap: once per this many rounds per host (and at start). */
const BMC_PROBE_EVERY_ROUNDS = 6;

export class MonitorRunner {
  private hosts: MonitoredHost[] = [];
  private readonly states = new Map<string, HostState>();
  private readonly stored = new Map<string, NonNullable<KvInventory['computeNodes'][string]>>();
  private inventory: KvInventory | undefined;
  private selfViews: Record<string, SelfView> = {};
  private readonly bmc: Record<string, BmcReachability> = {};
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private round = 0;
  private kvProblemsLogged = new Set<string>();
  private lastRawKv: RawKvEntry[] | undefined;
  /** While a round feeds its samples, guard evaluations wait for the whole fleet's samples. */
  private deferred: MonitoredHost[] | undefined;
  private resolveDone!: (code: number) => void;
  /** Monotonic time of the last finished round (health rule). */
  lastProgressMs = performance.now();
  readonly done = new Promise<number>((r) => { this.resolveDone = r; });

  /** Hosts whose recovery runs now (beside the rounds), and the last record seen of each (status). */
  private readonly recovering = new Set<string>();
  private readonly recoveryRecords: Record<string, RecoveryRecord> = {};

  constructor(private cfg: MonitorConfig, private readonly self: string, private readonly io: MonitorIo, private readonly log: Logger, private readonly recoveryIo?: RecoveryIo) {}

  /**
   * Refuse to start on a KV tree that does not decode (a bad value, os_nova's
   * default credentials): the error names the key. Throws a ConfigError.
   */
  async start(): Promise<void> {
    if (this.cfg.inventory.source === 'kv') {
      const inv = decodeInventory(await this.io.readKv(this.cfg.kvPrefix), this.cfg.kvPrefix);
      if (inv.problems.length > 0) {
        const { ConfigError } = await import('../../errors');
        throw new ConfigError(`${inv.problems[0]!.message} [${inv.problems[0]!.code}]${inv.problems.length > 1 ? ` (and ${inv.problems.length - 1} more)` : ''}`, { problems: inv.problems.map((p) => ({ code: p.code, key: p.key })) });
      }
    }
    this.log.info({ networks: this.cfg.networks.map((n) => n.name), kvNetwork: this.cfg.kvNetwork, intervalMs: this.cfg.intervalMs, confirm: this.cfg.confirm, source: this.cfg.inventory.source }, 'monitor started');
    await this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.io.close?.();
    this.resolveDone(0);
  }

  reload(next: MonitorConfig): void { this.cfg = next; }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const started = performance.now();
    try { await this.runRound(); } catch (e) { this.log.warn({ err: errorMessage(e) }, 'monitor round failed'); }
    this.lastProgressMs = performance.now();
    if (!this.stopped) this.timer = setTimeout(() => { void this.tick(); }, Math.max(0, this.cfg.intervalMs - (performance.now() - started)));
  }

  /** One sampling round. Public for tests and the bench. */
  async runRound(): Promise<void> {
    const cfg = this.cfg;
    await this.readKv();
    const nodesByNet = Object.fromEntries(cfg.networks.map((n) => [n.name, this.hosts.map((h) => h.nodes[n.name] ?? h.name)]));
    const answers: Record<string, NetworkAnswer> = {};
    await Promise.all(cfg.networks.map(async (n) => {
      try {
        const r = await this.io.readNetwork(n.name, nodesByNet[n.name]!);
        answers[n.name] = { members: r.members, health: r.health };
        this.selfViews[n.name] = selfViewFrom(r.self);
      } catch (e) {
        answers[n.name] = { error: errorMessage(e) };
        this.selfViews[n.name] = { error: errorMessage(e) };
      }
    }));
    const samples = sampleRound(this.hosts, cfg.networks, answers);
    this.deferred = [];
    try {
      for (const h of this.hosts) {
        if (this.round % BMC_PROBE_EVERY_ROUNDS === 0 && h.bmc) void this.probe(h);
        await this.feedSampled(h, samples[h.name] ?? {});
      }
    } finally {
      const waiting = this.deferred;
      this.deferred = undefined;
      // The guards see every host's state of this round (mass failure is fleet-wide).
      for (const h of waiting) await this.guards(h);
    }
    this.round += 1;
  }

  private async readKv(): Promise<void> {
    const cfg = this.cfg;
    let raw: RawKvEntry[] | undefined;
    try {
      raw = await this.io.readKv(cfg.kvPrefix);
    } catch (e) {
      this.log.warn({ err: errorMessage(e) }, 'KV tree not read this round: the last good state is kept');
    }
    // An unchanged view (the KV watch's same answer) was decoded already: 1000 hosts' keys are decoded once per change.
    if (raw !== undefined && raw !== this.lastRawKv) {
      this.lastRawKv = raw;
      const inv = decodeInventory(raw, cfg.kvPrefix);
      // Logged when it appears (and when it is gone), not every round.
      const seen = new Set(inv.problems.map((p) => `${p.key}\0${p.message}`));
      for (const p of inv.problems) if (!this.kvProblemsLogged.has(`${p.key}\0${p.message}`)) this.log.error({ code: p.code, key: p.key }, `${p.message}: the last good state is kept`);
      if (this.kvProblemsLogged.size > 0 && seen.size === 0) this.log.info('KV values parse again');
      this.kvProblemsLogged = seen;
      this.inventory = mergeInventory(this.inventory, inv);
    }
    const inv = this.inventory ?? { computeNodes: {}, haNodes: {}, problems: [] };
    this.hosts = cfg.inventory.source === 'kv' ? hostsFromKv(cfg, inv).hosts : hostsFromConfig(cfg);
    this.stored.clear();
    for (const [k, v] of Object.entries(inv.computeNodes)) this.stored.set(k, v);
  }

  private async probe(h: MonitoredHost): Promise<void> {
    const was = this.bmc[h.name]?.reachable;
    const r = await this.io.probeBmc(h.bmc!.ip, h.bmc!.protocol === 'ipmi' ? h.bmc!.port : undefined);
    this.bmc[h.name] = r;
    if (r.reachable === false && was !== false) this.log.warn({ host: h.name, bmc: h.bmc!.ip, code: 'EMONITORBMCDOWN', detail: r.detail }, 'BMC does not answer its presence ping: a fence could not be confirmed');
  }

  private machineCfg(h: MonitoredHost): HostMachineConfig { return { ...hostMachineConfig(this.cfg, h, this.self), recovery: this.cfg.recovery !== undefined }; }

  private state(host: string): HostState {
    let s = this.states.get(host);
    if (!s) { s = initialHostState(host, this.io.now()); this.states.set(host, s); }
    return s;
  }

  private storedView(host: string): Extract<MonitorEvent, { type: 'sampled' }>['stored'] {
    const r = this.stored.get(host);
    return {
      counts: { ...(r?.numberFails ? { numberFails: r.numberFails } : {}), ...(r?.failsByNetwork ? { failsByNetwork: r.failsByNetwork } : {}) },
      failed: r?.failed?.value ?? false,
      maintenance: r?.maintenance?.value ?? false,
      ...(r?.incident ? { incident: { ...(r.incident.session ? { session: r.incident.session } : {}), ...(r.incident.journal ? { journal: r.incident.journal } : {}), modifyIndex: r.incident.modifyIndex } } : {}),
    };
  }

  private async feedSampled(h: MonitoredHost, samples: Record<string, import('./samples').Sample>): Promise<void> {
    // `vigil monitor reset` cleared the latch in KV while our machine sits on a finished incident:
    // carry the reset out here (release our claim, start over).
    const cur = this.state(h.name);
    if (FINISHED_PHASES.includes(cur.phase) && this.stored.has(h.name) && this.stored.get(h.name)?.failed?.value === false) {
      await this.feed(h, { type: 'operatorReset', nowMs: this.io.now() });
    }
    // A lost CAS re-reads and re-feeds; a few tries, then the next round.
    for (let attempt = 0; attempt < 3; attempt++) {
      const casLost = await this.feed(h, { type: 'sampled', nowMs: this.io.now(), samples, stored: this.storedView(h.name) });
      if (!casLost) return;
      await this.readKv();
    }
  }

  /**
   * Metrics: hosts' phase changes (aggregated over hosts: host names are never
   * labels), and the role's own state — `acting` while an incident is claimed
   * or fenced and recovering, `holding` while a guard keeps it from acting,
   * else `watching`.
   */
  private phaseChanged(from: string, to: string): void {
    countTransition('monitor-host', from, to);
    const phases = [...this.states.values()].map((x) => x.phase as string);
    setRoleState('monitor', phases.some((p) => ACTING.includes(p)) ? 'acting' : phases.some((p) => HOLDING.includes(p)) ? 'holding' : 'watching');
  }

  /** Feed one event and carry out its effects (and theirs). Returns true when a counter CAS was lost. */
  private async feed(h: MonitoredHost, ev: MonitorEvent): Promise<boolean> {
    const before = this.state(h.name).phase;
    const step = monitorTransition(this.state(h.name), ev, this.machineCfg(h));
    this.states.set(h.name, step.state);
    if (step.state.phase !== before) this.phaseChanged(before, step.state.phase);
    let casLost = false;
    for (const eff of step.effects) if (await this.effect(h, eff)) casLost = true;
    this.maybeRecover(h);
    return casLost;
  }

  /**
   * Part 2: once the machine says the host may be recovered (power-off
   * confirmed, claim held) and its row recovers, run the recovery beside the
   * rounds (recovery/executor.ts); its end comes back as an event. A run that
   * threw is started again on a later round (it resumes from its record).
   */
  private maybeRecover(h: MonitoredHost): void {
    const rc = this.cfg.recovery;
    const s = this.state(h.name);
    if (!rc || !this.recoveryIo || !mayRecover(s) || this.recovering.has(h.name)) return;
    if (!s.decision?.actions.includes('evacuate') || s.incidentId === undefined) return;
    this.recovering.add(h.name);
    const e = rc.evacuate;
    const haNodes = Object.keys(this.inventory?.haNodes ?? {}).sort();
    const journal = { id: s.incidentId, step: 'fenced', by: this.self, row: s.decision.row, actions: s.decision.actions, fence: s.fence };
    void runRecovery(this.recoveryIo, {
      self: this.self, kvPrefix: this.cfg.kvPrefix, method: rc.method, sparePriority: rc.spares ?? haNodes,
      evacuateConcurrency: e?.concurrency ?? 1, evacuateRetries: e?.retries ?? 0, serverTimeoutMs: e?.serverTimeoutMs ?? 300_000,
      pollMs: e?.pollMs ?? 2000, callRetries: e?.callRetries ?? 3,
    }, {
      host: h.name, session: s.session!, incident: s.incidentId, journal,
      runtimeConfig: encodeJson(this.stored.get(h.name)?.runtimeConfig?.value ?? {}),
      onRecord: (r) => { this.recoveryRecords[h.name] = r; },
    }).then(async (end) => {
      this.recovering.delete(h.name);
      if (end.end === 'claim-lost') return;
      const sum = recoverySummary(end.record);
      await this.feed(h, { type: 'recoveryEnded', nowMs: this.io.now(), outcome: end.end, detail: `${String(sum.stage)}: ${end.record.log[end.record.log.length - 1]?.detail ?? end.end}` });
    }, (err: unknown) => {
      this.recovering.delete(h.name);
      this.log.error({ host: h.name, err: errorMessage(err) }, 'recovery run failed: retried on a later round from its record');
    });
  }

  private async effect(h: MonitoredHost, eff: MonitorEffect): Promise<boolean> {
    const host = h.name;
    switch (eff.type) {
      case 'writeCounter': {
        const r = await this.io.txn(eff.ops).catch((e: unknown) => ({ ok: false, detail: errorMessage(e) }));
        await this.feed(h, { type: 'counterWritten', nowMs: this.io.now(), ok: r.ok });
        return !r.ok;
      }
      case 'evaluateGuards':
        if (this.deferred) { this.deferred.push(h); return false; }
        return this.guards(h);
      case 'claimIncident': {
        if (!h.bmc) {
          this.log.error({ host, code: 'EMONITORNOBMC' }, 'incident not claimed: the host has no usable BMC, so no fence could be confirmed');
          return false;
        }
        const r: Awaited<ReturnType<MonitorIo['claim']>> = await this.io.claim(eff, (reason) => { void this.feed(h, { type: 'claimLost', nowMs: this.io.now(), reason }); })
          .catch((e: unknown) => ({ acquired: false as const, reason: errorMessage(e) }));
        return this.feed(h, r.acquired ? { type: 'claimResult', nowMs: this.io.now(), acquired: true, session: r.session } : { type: 'claimResult', nowMs: this.io.now(), acquired: false, reason: r.reason, ...(r.holder ? { holder: r.holder } : {}) });
      }
      case 'writeLatch': {
        const r = await this.io.txn(eff.ops).catch((e: unknown) => ({ ok: false, detail: errorMessage(e) }));
        return this.feed(h, { type: 'latchWritten', nowMs: this.io.now(), ok: r.ok, ...(r.detail ? { detail: r.detail } : {}) });
      }
      case 'fence': {
        this.log.warn({ host, method: eff.method, network: eff.network, bmc: h.bmc?.ip }, 'fencing');
        // Beside the rounds: a power-off and its confirmation take up to power_timeout.
        const kvPassword = h.bmc?.passwordFrom === 'kv' ? this.stored.get(host)?.bmc.password : undefined;
        void this.io.fence({ ...eff, bmc: h.bmc!, node: h.nodes[eff.network ?? ''] ?? h.name, ...(kvPassword ? { kvPassword } : {}) })
          .catch((e: unknown) => ({ outcome: 'error' as const, detail: errorMessage(e) }))
          .then((r) => this.feed(h, { type: 'fenceResult', nowMs: this.io.now(), outcome: r.outcome, detail: r.detail, ...('powerState' in r && r.powerState ? { powerState: r.powerState } : {}) }));
        return false;
      }
      case 'checkSilence': {
        const r = await this.io.checkSilence(eff.targets).catch((e: unknown) => ({ answered: [], errors: [errorMessage(e)] }));
        return this.feed(h, { type: 'silenceChecked', nowMs: this.io.now(), ...r });
      }
      case 'alarm':
        this.log.error({ host, code: ALARM_CODES[eff.reason] ?? 'EMONITORALARM', reason: eff.reason }, `ALARM ${host}: ${eff.detail}`);
        return false;
      case 'releaseClaim':
        await this.io.release(eff.key, eff.session).catch((e: unknown) => this.log.warn({ host, err: errorMessage(e) }, 'incident claim not released'));
        return false;
      case 'autoClear': {
        // The reset reaches this machine (and every other monitor's) through KV on the next read, like an operator's.
        const r = await this.io.txn(eff.ops).catch((e: unknown) => ({ ok: false, detail: errorMessage(e) }));
        if (r.ok) this.log.warn({ host, healthy: eff.healthy, code: 'EMONITORAUTOCLEAR' }, `auto_clear_after: ${host}'s latches and counters cleared after ${eff.healthy} healthy samples`);
        else this.log.warn({ host, detail: r.detail }, 'auto_clear_after: not cleared (the incident key changed or KV refused); counting again');
        return false;
      }
      case 'notify':
        this.log.warn({ host, row: eff.row, states: eff.states, code: 'EMONITORNOTIFY' }, `notification: ${host} matches matrix row ${eff.row}`);
        return false;
      case 'logDecision':
        this.log.warn({ host, row: eff.row, description: eff.description, actions: eff.actions, samples: eff.samples, counts: eff.counts, guards: eff.guards }, `decision ${host}: ${eff.verdict}`);
        return false;
      case 'log':
        this.log[eff.level]({ ...eff.data }, eff.msg);
        return false;
    }
  }

  private async guards(h: MonitoredHost): Promise<boolean> {
    const all = this.hosts.map((x) => this.state(x.name));
    const maint = new Set(this.hosts.filter((x) => x.maintenance).map((x) => x.name));
    const held = new Set([...this.stored.values()].filter((r) => r.incident?.session !== undefined).map((r) => r.name));
    const report = evaluateGuards(guardInputFor(this.state(h.name), all, this.selfViews, maint, held), this.cfg.guards);
    return this.feed(h, { type: 'guards', nowMs: this.io.now(), report });
  }

  /** The status document (`vigil monitor status --json`). */
  status(): MonitorStatus & { recovery?: Record<string, unknown> } {
    const doc = buildStatus({
      self: this.self, nowMs: this.io.now(), intervalMs: this.cfg.intervalMs, confirm: this.cfg.confirm,
      networks: this.cfg.networks, selfViews: this.selfViews, matrix: this.cfg.matrix,
      hosts: this.hosts.map((h) => this.state(h.name)), bmc: this.bmc,
      kvProblems: (this.inventory?.problems ?? []).map((p) => ({ key: p.key, message: p.message })),
    });
    if (!this.cfg.recovery) return doc;
    // Part 2: recovery progress per host (stage, spare, servers) and the spares with their holders.
    const spares = Object.values(this.inventory?.haNodes ?? {}).map((x) => ({ name: x.name, inUse: x.inUse?.value ?? false, ...(x.inUseSession ? { holderSession: x.inUseSession } : {}) }));
    return { ...doc, recovery: { method: this.cfg.recovery.method, running: [...this.recovering], hosts: Object.fromEntries(Object.entries(this.recoveryRecords).map(([k, r]) => [k, { ...recoverySummary(r), evacuations: r.nova.servers, steps: r.log.slice(-20) }])), spares } };
  }
}
