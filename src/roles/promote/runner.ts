/**
 * Layer: roles, runner. Drives the pure machine (machine.ts) with the I/O of
 * io.ts: one scheduler (check every `check_interval`, renew every
 * `renew_interval` while holding, a give-up timer at the holder's
 * deadline), one serialized effect queue, and the journal written before
 * each effect runs and around each step. Used by the daemon and by
 * `vigil promote run-once` (which ends once the site holds nothing).
 */
import { errorMessage } from '../../errors';
import { setRoleState } from '../../metrics';
import type { Logger } from '../../log';
import { leaderKey, type PromoteConfig } from './config';
import { foldPeer, foldReady, isStaleHolder, type PromoteIo } from './io';
import { journalOf, markStep, recoverJournal, type Journal, type StepEntry } from './journal';
import { giveUpAtMs, stepDown, transition, type CheckInputs, type PromoteEffect, type PromoteEvent, type PromoteState, type StepList } from './machine';

/** Where the journal and the operator's grant live (injectable for tests). */
export interface JournalStore {
  read(): Journal | undefined;
  write(j: Journal): void;
  /** The operator's grant file, if present. */
  grant(): { force: boolean } | undefined;
}

/** Options of {@link PromoteRunner}. */
export interface PromoteRunnerOptions {
  /** `run-once`: end when the site holds nothing and nothing is running. */
  once?: boolean;
}

/** The runner of one `promote:` section. */
export class PromoteRunner {
  readonly name = 'promote';
  private s!: PromoteState;
  private steps: StepEntry[] = [];
  private queue: Promise<void> = Promise.resolve();
  private pending = 0;
  private timer: NodeJS.Timeout | undefined;
  private giveUpTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastInputs: (CheckInputs & { at: string }) | undefined;
  private lastTickMs = 0;
  private demoteDeadlineMs = 0;
  /** Interrupts the promote step that is running, if any. */
  private stepAbort: AbortController | undefined;
  private resolveDone!: (code: number) => void;
  readonly done: Promise<number>;

  constructor(private readonly cfg: PromoteConfig, private readonly io: PromoteIo, private readonly store: JournalStore,
    private readonly log: Logger, private readonly opts: PromoteRunnerOptions = {}) {
    this.done = new Promise((r) => { this.resolveDone = r; });
  }

  /** The machine's state (tests, status). */
  state(): Readonly<PromoteState> { return this.s; }

  /** Recover from the journal, then start the scheduler. */
  async start(): Promise<void> {
    const j = this.store.read();
    const r = recoverJournal(j, this.cfg);
    this.s = r.state;
    setRoleState('promote', r.state.phase);
    this.steps = j?.steps ?? [];
    this.lastTickMs = this.io.now();
    if (r.kind !== 'fresh') this.log.info({ phase: j!.phase, steps: this.steps, recovery: r.kind }, 'promote journal read');
    let fx: PromoteEffect[] = [];
    if (r.kind === 'operator') {
      this.log.error({ reason: r.reason, event: 'operator-needed' }, 'promote stopped: operator needed');
    } else if ('adopt' in r && r.adopt) {
      const sent = this.io.now();
      const held = await this.io.adopt(r.adopt).catch(() => undefined);
      if (held) {
        this.s = { ...this.s, hold: held, lastRenewSentMs: sent, witnessSeen: true };
        this.log.info({ ...held, event: 'lease-adopted' }, 'promote lease taken back after restart');
        if (r.kind === 'verify') {
          this.enqueue([{ type: 'log', level: 'warn', event: 'verify', detail: { step: this.cfg.promoteSteps[r.step]!.name } }]);
          this.queue = this.queue.then(() => this.verify(r.step));
        } else if (this.s.phase === 'promoting') fx = [{ type: 'runStep', list: 'promote', index: this.s.step }];
        else if (this.s.phase === 'candidate') fx = [{ type: 'release' }];
      } else if (this.s.phase === 'candidate' || this.s.phase === 'promoting' || this.s.phase === 'promoted') {
        // The lease ended while we were down: whatever ran must be undone.
        [this.s, fx] = stepDown(this.s, this.cfg, 'lease gone after restart');
      }
      if (this.s.phase === 'demoting' && fx.length === 0) fx = this.s.step < this.cfg.demoteSteps.length ? [{ type: 'runStep', list: 'demote', index: this.s.step }] : [{ type: 'release' }];
    } else if (this.s.phase === 'demoting') {
      fx = this.s.step < this.cfg.demoteSteps.length ? [{ type: 'runStep', list: 'demote', index: this.s.step }] : [{ type: 'release' }];
    }
    if (this.s.phase === 'demoting') this.demoteDeadlineMs = this.io.now() + this.cfg.demoteTimeoutMs;
    this.persist();
    this.enqueue(fx);
    this.schedule(0);
  }

  /**
   * Stop the scheduler. A site that holds the lease demotes and releases
   * first: once nobody renews, the lease ends and the peer may promote, so
   * leaving this site primary would be a split brain.
   */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.giveUpTimer);
    const holding = this.s.phase === 'candidate' || this.s.phase === 'promoting' || this.s.phase === 'promoted';
    if (holding) {
      const [n, fx] = stepDown(this.s, this.cfg, 'vigil is stopping');
      this.s = n;
      setRoleState('promote', n.phase);
      this.startDemoting();
      this.persist();
      this.enqueue(fx);
    }
    // The queue may grow while it drains (demote steps, then the release): wait until it stays empty.
    const drain = (): Promise<void> => { const q = this.queue; return q.then(() => (q === this.queue ? undefined : drain())); };
    void drain().then(() => this.resolveDone(this.s.phase === 'stopped' ? 1 : 0));
  }

  /** Feed one event (also the verbs' grant/revoke and tests). */
  dispatch(e: PromoteEvent): void {
    const before = this.s;
    const [next, fx] = transition(before, this.cfg, e);
    this.s = next;
    setRoleState('promote', next.phase);
    if (next.phase === 'demoting' && before.phase !== 'demoting') this.startDemoting();
    if (next.lastRenewSentMs !== before.lastRenewSentMs) this.armGiveUp();
    if (next.phase !== before.phase || next.granted !== before.granted || next.hold !== before.hold || next.yielded !== before.yielded) this.persist();
    this.enqueue(fx);
  }

  /**
   * Entering `demoting`: the demote steps have demote_timeout from now, and a
   * promote step still running is interrupted. Steps run one at a time, so a
   * promote step that outlived the lease would otherwise hold the demotion back
   * until its own timeout, past the moment the peer may acquire.
   */
  private startDemoting(): void {
    this.demoteDeadlineMs = this.io.now() + this.cfg.demoteTimeoutMs;
    if (this.stepAbort) {
      this.log.warn({ event: 'promote-step-interrupted', reason: this.s.reason }, 'promote step interrupted: this site demotes');
      this.stepAbort.abort();
    }
  }

  private persist(): void {
    this.store.write(journalOf(this.cfg, this.s, this.steps, new Date()));
  }

  private enqueue(fx: PromoteEffect[]): void {
    for (const f of fx) {
      if (f.type === 'log') { this.log[f.level]({ event: f.event, phase: this.s.phase, ...f.detail }, `promote ${f.event}`); continue; }
      this.pending++;
      this.queue = this.queue.then(() => this.exec(f)).catch((err) => { this.log.error({ err: errorMessage(err) }, 'promote effect failed'); })
        .finally(() => { this.pending--; });
    }
  }

  private armGiveUp(): void {
    clearTimeout(this.giveUpTimer);
    const at = giveUpAtMs(this.s, this.cfg);
    if (at === undefined || this.stopped) return;
    this.giveUpTimer = setTimeout(() => this.dispatch({ type: 'deadline', nowMs: this.io.now() }), Math.max(0, at - this.io.now()));
  }

  private async exec(f: Exclude<PromoteEffect, { type: 'log' }>): Promise<void> {
    switch (f.type) {
      case 'acquire': {
        const sent = this.io.now();
        try {
          const hold = await this.io.acquire();
          this.dispatch(hold ? { type: 'acquired', nowMs: this.io.now(), sentMs: sent, hold } : { type: 'acquireFailed', nowMs: this.io.now(), why: 'held or in lock-delay' });
        } catch (e) { this.dispatch({ type: 'acquireFailed', nowMs: this.io.now(), why: errorMessage(e) }); }
        return;
      }
      case 'release':
        try { await this.io.release(); } catch (e) { this.log.warn({ err: errorMessage(e) }, 'promote release failed; the TTL ends the session'); }
        this.dispatch({ type: 'released', nowMs: this.io.now() });
        return;
      case 'fence': {
        this.log.warn({ event: 'fence', fence: this.cfg.fence, peer: this.cfg.peer, evidence: this.lastInputs }, 'promote fencing the old primary');
        const r = await this.io.fence(this.cfg.fence);
        this.log[r.confirmed ? 'info' : 'error']({ event: r.confirmed ? 'fence-confirmed' : 'fence-unconfirmed', evidence: r.evidence }, 'promote fence');
        this.dispatch({ type: 'fenced', nowMs: this.io.now(), confirmed: r.confirmed, evidence: r.evidence });
        return;
      }
      case 'runStep':
        await this.runStep(f.list, f.index);
    }
  }

  private mark(list: StepList, index: number, status: StepEntry['status'], error?: string): void {
    const name = (list === 'promote' ? this.cfg.promoteSteps : this.cfg.demoteSteps)[index]!.name;
    this.steps = markStep(this.steps, { list, index, name, status, ...(error !== undefined ? { error } : {}) }, new Date());
    this.persist();
  }

  private async runStep(list: StepList, index: number): Promise<void> {
    const step = (list === 'promote' ? this.cfg.promoteSteps : this.cfg.demoteSteps)[index]!;
    const hold = this.s.hold;
    const stillOurs = () => this.s.phase === (list === 'promote' ? 'promoting' : 'demoting') && this.s.step === index;
    if (!stillOurs()) return;
    if (list === 'promote') {
      // A promote step runs only after its record is written under our session: a stale holder is refused here (409).
      try {
        if (!hold) throw new Error('no lease');
        await this.io.recordStep(hold, { list, index, step: step.name, status: 'started', site: this.cfg.site });
      } catch (e) {
        if (isStaleHolder(e)) { this.dispatch({ type: 'leaseLost', nowMs: this.io.now(), why: 'step record refused (409): the lease is not ours' }); return; }
        this.dispatch({ type: 'stepFailed', nowMs: this.io.now(), list, index, error: `step record not written: ${errorMessage(e)}` });
        return;
      }
      // The give-up deadline may have passed while the record was on its way: then the step does not start.
      if (!stillOurs()) return;
    }
    this.mark(list, index, 'started');
    const timeoutMs = list === 'promote' ? step.timeoutMs : Math.max(100, Math.min(step.timeoutMs, this.demoteDeadlineMs - this.io.now()));
    const env = {
      VIGIL_LEASE_KEY: leaderKey(this.cfg.name), VIGIL_LEASE_INDEX: String(hold?.lockIndex ?? ''), VIGIL_LEASE_SESSION: hold?.session ?? '',
      VIGIL_PROMOTE_STEP: step.name, VIGIL_PROMOTE_SITE: this.cfg.site,
    };
    this.log.info({ event: `${list}-step-start`, step: step.name, index, lockIndex: hold?.lockIndex }, `promote ${list} step ${step.name} starts`);
    const abort = list === 'promote' ? new AbortController() : undefined;
    this.stepAbort = abort;
    const r = await this.io.runStep(step, env, timeoutMs, undefined, abort?.signal).finally(() => { this.stepAbort = undefined; });
    this.mark(list, index, r.ok ? 'done' : 'failed', r.error);
    this.log[r.ok ? 'info' : 'error']({ event: `${list}-step-${r.ok ? 'done' : 'failed'}`, step: step.name, index, error: r.error }, `promote ${list} step ${step.name} ${r.ok ? 'done' : 'failed'}`);
    if (hold && list === 'promote') {
      const record = this.io.recordStep(hold, { list, index, step: step.name, status: r.ok ? 'done' : 'failed', site: this.cfg.site })
        .catch((e) => this.log.warn({ err: errorMessage(e) }, 'promote step record (done) not written'));
      // An interrupted step's record is not awaited: the site is demoting, and under a cut the
      // write would hold the demote steps back by up to consul.timeout. (A stale holder's write
      // is refused by the witness either way: the txn checks the session.)
      if (!abort?.signal.aborted) await record;
    }
    this.dispatch(r.ok ? { type: 'stepDone', nowMs: this.io.now(), list, index } : { type: 'stepFailed', nowMs: this.io.now(), list, index, error: r.error ?? 'failed' });
  }

  /** After a crash in `started`: the step's verify decides whether it took effect. */
  private async verify(index: number): Promise<void> {
    const step = this.cfg.promoteSteps[index]!;
    const r = await this.io.runStep(step, { VIGIL_PROMOTE_STEP: step.name, VIGIL_PROMOTE_SITE: this.cfg.site }, step.timeoutMs, step.verify);
    this.log.warn({ event: 'verify-result', step: step.name, ok: r.ok, error: r.error }, `promote verify of ${step.name}: ${r.ok ? 'took effect' : 'did not take effect'}`);
    this.mark('promote', index, r.ok ? 'done' : 'failed', r.ok ? undefined : `verify: ${r.error ?? 'failed'}`);
    this.dispatch(r.ok ? { type: 'stepDone', nowMs: this.io.now(), list: 'promote', index } : { type: 'stepFailed', nowMs: this.io.now(), list: 'promote', index, error: 'verify failed after a crash' });
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    if (!this.stopped) this.timer = setTimeout(() => { void this.tick(); }, ms);
  }

  private async gather(): Promise<CheckInputs> {
    const witness = (await this.io.witness()) ? 'ok' : 'unreachable';
    const probe = async (ps: PromoteConfig['peerProbes']) => Promise.all(ps.map((p) => this.io.probe(p).catch((e) => ({ probe: p.kind, result: 'unknown' as const, detail: errorMessage(e) }))));
    const [peer, ready] = await Promise.all([probe(this.cfg.peerProbes), probe(this.cfg.ready)]);
    const inputs: CheckInputs = { witness, peer: foldPeer(peer.map((p) => p.result)), ready: foldReady(ready.map((p) => p.result)) };
    if (this.cfg.prereq && witness === 'ok') {
      inputs.prereq = await this.io.kvValue(this.cfg.prereq.key).then((v) => v === this.cfg.prereq!.equals, () => false);
    }
    if (witness === 'ok') {
      const holder = await this.io.leaseHolder().catch(() => undefined);
      if (holder !== undefined) inputs.leaseHeldByOther = holder !== '' && holder !== this.s.hold?.session;
    }
    this.log.debug({ peer, ready, inputs }, 'promote check');
    return inputs;
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    this.lastTickMs = this.io.now();
    const g = this.store.grant();
    if (g && !this.s.granted) this.dispatch({ type: 'grant', nowMs: this.io.now(), force: g.force });
    if (!g && this.s.granted) this.dispatch({ type: 'revoke', nowMs: this.io.now() });
    if (this.s.hold) {
      const sent = this.io.now();
      try {
        if (await this.io.renew()) this.dispatch({ type: 'renewed', nowMs: this.io.now(), sentMs: sent });
        else this.dispatch({ type: 'leaseLost', nowMs: this.io.now(), why: 'session invalidated or key taken' });
      } catch (e) { this.log.warn({ err: errorMessage(e), event: 'renew-unknown' }, 'promote renewal got no answer'); }
    }
    const inputs = await this.gather();
    if (this.stopped) return;
    this.lastInputs = { ...inputs, at: new Date().toISOString() };
    this.dispatch({ type: 'check', nowMs: this.io.now(), inputs });
    if (this.opts.once && !this.s.hold && this.pending === 0 && (this.s.phase === 'standby' || this.s.phase === 'stopped')) {
      this.stop();
      return;
    }
    this.schedule(this.s.hold || this.pending > 0 ? this.cfg.renewIntervalMs : this.cfg.checkIntervalMs);
  }

  /** Progress within 2 × the longest loop period + the probe and Consul timeouts + 5 s. */
  healthy(nowMs: number): boolean {
    const probeMs = Math.max(0, ...this.cfg.peerProbes.map((p) => p.timeoutMs), ...this.cfg.ready.map((p) => p.timeoutMs));
    return nowMs - this.lastTickMs < 2 * Math.max(this.cfg.checkIntervalMs, this.cfg.renewIntervalMs) + probeMs + 3 * this.cfg.consul.timeoutMs + 5000;
  }

  /** The status JSON (`vigil status --json`, under `roles.promote`). */
  status(): Record<string, unknown> {
    const s = this.s;
    const remainingMs = s.hold && s.lastRenewSentMs !== undefined ? Math.max(0, Math.round(s.lastRenewSentMs + this.cfg.ttlMs - this.io.now())) : undefined;
    return {
      name: this.cfg.name, site: this.cfg.site, peer: this.cfg.peer, mode: this.cfg.mode, phase: s.phase, step: s.step,
      ...(s.reason !== undefined ? { reason: s.reason } : {}),
      witness: this.lastInputs ? this.lastInputs.witness : undefined,
      lease: s.hold ? { ...s.hold, remainingMs } : undefined,
      lastCheck: this.lastInputs, granted: s.granted, fenced: s.fenced, steps: this.steps,
    };
  }
}
