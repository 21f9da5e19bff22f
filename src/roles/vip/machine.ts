/**
 * Layer: role state machine (pure). The HA IP role: who holds the HA IP.
 *
 * `transition(state, event, cfg) → {state, effects}` with no I/O and no
 * clock of its own: time arrives inside events (`nowMs`, monotonic), and
 * everything the role wants done leaves as effect data for the runner
 * (probe, add/remove addresses, announce, run a command, arm a timer). The
 * runner feeds each effect's outcome back as an event.
 *
 *   inactive ──start──► slave ──(take_over_after silent probes)──► master
 *                         ▲                                          │
 *                         └──── stepDown (conflict lost, track) ◄────┘
 *   any ──stop──► stopping ──(on_slave, remove addresses)──► stopped
 *
 * Differences from vzhaipd, each deliberate (spec/seed-inventory.md §1, §9):
 *  - a probe error is *unknown* and never counts toward a takeover (V-22);
 *  - starting on a node that already holds the HA IP resumes as master
 *    (V-16, V-18: a restart is not a failover);
 *  - a split brain is settled the same way on both sides (lower MAC keeps
 *    the IP) instead of both stepping down at random (V-25, V-26); the loser
 *    runs on_slave before it removes its addresses, so the IP always answers;
 *    "lower" is the MAC our probes go out with now, not the one at start;
 *  - addresses dropped from the IP file are removed (V-33), even while the
 *    daemon was down (the runner counts vigil-labelled addresses as ours);
 *  - a failed add rolls back what it added (V-24);
 *  - silence heard through our own dead link is unknown: an isolated slave
 *    never takes over, and a master whose link stays down longer than a peer
 *    needs to take over releases the IP (keepalived's FAULT state).
 */
import type { Cidr } from '../../util/ip';
import { formatCidr } from '../../util/ip';
import { addRttSample, type RttEstimate } from './rtt';
import type { ProbeOutcome, Role, Step, TrackState, VipEffect, VipEvent, VipMachineConfig, VipState } from './types';
import { carrierReleaseMs, probeTimeoutFor, takeoverWindowMs, watchRounds } from './timing';

export type * from './types';
export { WATCH_SPAN_MS, watchRounds, carrierReleaseMs, probeTimeoutFor, takeoverWindowMs } from './timing';

const key = (c: Cidr) => formatCidr(c);
const sameAddr = (a: Cidr, b: Cidr) => a.address === b.address && a.prefix === b.prefix;

/** Addresses in `a` that are not in `b`. */
export function minus(a: readonly Cidr[], b: readonly Cidr[]): Cidr[] {
  const keys = new Set(b.map(key));
  return a.filter((c) => !keys.has(key(c)));
}

/** Removal order: extra addresses first, the HA IP last (vzhaipd V-30). */
function removalOrder(addrs: readonly Cidr[], haIp: Cidr): Cidr[] {
  return [...addrs.filter((c) => !sameAddr(c, haIp)), ...addrs.filter((c) => sameAddr(c, haIp))];
}

/** The initial, inactive state. */
export function initialState(ownMac: string, haIp: Cidr, cfg: Pick<VipMachineConfig, 'track'>): VipState {
  return {
    role: 'inactive',
    phase: 'steady',
    sinceMs: 0,
    ownMac: ownMac.toLowerCase(),
    failures: 0,
    probeInFlight: false,
    desired: [haIp],
    held: [],
    ...(cfg.track ? { track: { ok: false, passes: 0, fails: 0 } } : {}),
    stopRequested: false,
    initialProbeDelayMs: 0,
    takeovers: 0,
    stepDowns: 0,
  };
}

/**
 * The decision both sides of a split brain make alike: the lower MAC
 * (compared as 48-bit numbers) keeps the IP.
 */
export function keepsOnConflict(ownMac: string, otherMac: string): boolean {
  const n = (m: string) => BigInt(`0x${m.replace(/[:-]/g, '')}`);
  return n(ownMac) < n(otherMac);
}

/** One step of the role. Pure: same inputs, same outputs. */
export function transition(s: VipState, ev: VipEvent, cfg: VipMachineConfig): Step {
  switch (ev.type) {
    case 'start': return onStart(s, ev, cfg);
    case 'timer': return onTimer(s, ev, cfg);
    case 'probed': return onProbed(s, ev, cfg);
    case 'watched': return onWatched(s, ev, cfg);
    case 'added': return onAdded(s, ev, cfg);
    case 'removed': return onRemoved(s, ev, cfg);
    case 'reconciled': return onReconciled(s, ev, cfg);
    case 'commandDone': return onCommandDone(s, ev, cfg);
    case 'desired': return onDesired(s, ev);
    case 'track': return onTrack(s, ev, cfg);
    case 'released': return onReleased(s, ev, cfg);
    case 'link': return onLink(s, ev, cfg);
    case 'addressLost': return onAddressLost(s, ev, cfg);
    case 'resync': return checkNow(s, ev.nowMs, cfg, []);
    case 'stop': return onStop(s, ev, cfg);
    case 'groupDone': return onGroupDone(s, ev, cfg);
    case 'groupLost': return onGroupLost(s, ev, cfg);
  }
}

function become(s: VipState, to: Role, nowMs: number, reason: string, effects: VipEffect[]): VipState {
  if (s.role !== to) effects.push({ type: 'roleChanged', from: s.role, to, reason });
  return { ...s, role: to, sinceMs: s.role === to ? s.sinceMs : nowMs };
}

function onStart(s: VipState, ev: Extract<VipEvent, { type: 'start' }>, cfg: VipMachineConfig): Step {
  if (s.role !== 'inactive') return { state: s, effects: [] };
  const effects: VipEffect[] = [];
  if (ev.holdsHaIp) {
    // A restart is not a failover: we hold the IP, so we are the master.
    let st = become(s, 'master', ev.nowMs, 'HA IP already on the interface: resuming as master (a restart is not a failover)', effects);
    st = { ...st, held: ev.present, phase: 'steady' };
    effects.push(
      { type: 'reconcile', desired: st.desired, remove: minus(ev.present, st.desired) },
      // Check for a competing owner at once: we may have been away a while.
      { type: 'schedule', timer: 'master-check', afterMs: 0 },
    );
    // The group's activate is idempotent: it completes what a restart interrupted; its failure steps down.
    if (cfg.hasGroup) effects.push({ type: 'group', op: 'activate' });
    return { state: st, effects };
  }
  let st = become(s, 'slave', ev.nowMs, 'HA IP not on the interface: starting as slave', effects);
  st = { ...st, held: ev.present, initialProbeDelayMs: Math.max(0, ev.initialProbeDelayMs ?? 0) };
  if (cfg.hasOnSlave) {
    effects.push({ type: 'runCommand', which: 'on_slave' });
    return { state: { ...st, phase: 'initial-on-slave' }, effects };
  }
  return initialRemove(st, ev.nowMs, cfg, effects);
}

function initialRemove(s: VipState, nowMs: number, cfg: VipMachineConfig, effects: VipEffect[]): Step {
  if (s.held.length > 0) {
    effects.push({ type: 'removeAddresses', addresses: removalOrder(s.held, cfg.haIp) });
    return { state: { ...s, phase: 'initial-remove' }, effects };
  }
  return slaveSteady(s, nowMs, s.initialProbeDelayMs, effects);
}

function slaveSteady(s: VipState, _nowMs: number, probeAfterMs: number, effects: VipEffect[]): Step {
  effects.push({ type: 'cancel', timer: 'master-check' }, { type: 'schedule', timer: 'probe', afterMs: probeAfterMs });
  return { state: { ...s, phase: 'steady', failures: 0, probeInFlight: false }, effects };
}

function onTimer(s: VipState, ev: Extract<VipEvent, { type: 'timer' }>, cfg: VipMachineConfig): Step {
  if (ev.timer === 'link-release') {
    if (s.role !== 'master' || s.phase !== 'steady' || s.linkDownSinceMs === undefined) return { state: s, effects: [] };
    const downMs = ev.nowMs - s.linkDownSinceMs;
    const effects: VipEffect[] = [{ type: 'log', level: 'warn', msg: 'carrier still lost: releasing the HA IP before a peer can take over, so the heal finds one owner', data: { downMs } }];
    return stepDown({ ...s, linkDownSinceMs: undefined }, ev.nowMs, `carrier lost for ${Math.round(downMs)} ms`, cfg, effects);
  }
  if (s.phase !== 'steady' || s.probeInFlight) return { state: s, effects: [] };
  if (ev.timer === 'probe' && s.role === 'slave') {
    return { state: { ...s, probeInFlight: true }, effects: [{ type: 'probe', purpose: 'check', ip: cfg.haIp.address, timeoutMs: probeTimeoutFor(s, cfg) }] };
  }
  if (ev.timer === 'master-check' && s.role === 'master') {
    // Reconcile the address set, then look for a competing owner.
    return {
      state: { ...s, probeInFlight: true },
      effects: [
        { type: 'reconcile', desired: s.desired, remove: minus(s.held, s.desired) },
        // A competing owner's answer comes as fast as the peer's did: the learnt timeout fits it too.
        { type: 'probe', purpose: 'conflict', ip: cfg.haIp.address, timeoutMs: probeTimeoutFor(s, cfg) },
      ],
    };
  }
  return { state: s, effects: [] };
}

function onProbed(s: VipState, ev: Extract<VipEvent, { type: 'probed' }>, cfg: VipMachineConfig): Step {
  const outcome: ProbeOutcome = ev.result === 'answered' ? { result: 'answered', mac: ev.mac, rttMs: ev.rttMs }
    : ev.result === 'silent' ? { result: 'silent' } : { result: 'error', error: ev.error, ...(ev.linkDown ? { linkDown: true } : {}) };
  // Our MAC is whatever the interface has now: a re-created interface gets a
  // new one, and a split brain is only settled if both sides compare the MACs
  // they actually see.
  const ownMac = ev.ownMac ? ev.ownMac.toLowerCase() : s.ownMac;
  const pre: VipEffect[] = ownMac !== s.ownMac ? [{ type: 'log', level: 'warn', msg: 'own MAC changed (interface re-created?): conflicts are now decided with the new one', data: { was: s.ownMac, now: ownMac } }] : [];
  const earlier = withSamples(s.rtt, ev.rttsMs ?? []);
  const rtt = ev.result === 'answered' ? addRttSample(earlier, ev.rttMs) : earlier;
  const st: VipState = { ...s, ownMac, probeInFlight: false, checkSoon: false, lastProbe: { atMs: ev.nowMs, ...outcome }, ...(rtt ? { rtt } : {}) };
  const step = st.phase !== 'steady' ? { state: st, effects: [] }
    : st.role === 'slave' && ev.purpose === 'check' ? slaveProbed(st, ev, cfg)
    : st.role === 'master' && ev.purpose === 'conflict' ? masterProbed(st, ev, cfg)
    : { state: st, effects: [] };
  // A check asked for while this probe was out runs now instead of at the next period.
  const effects = s.checkSoon
    ? step.effects.map((e): VipEffect => (e.type === 'schedule' && e.timer !== 'link-release' ? { ...e, afterMs: 0 } : e.type === 'watch' ? { type: 'schedule', timer: e.timer, afterMs: 0 } : e))
    : step.effects;
  return { state: step.state, effects: pre.length ? [...pre, ...effects] : effects };
}

function slaveProbed(s: VipState, ev: Extract<VipEvent, { type: 'probed' }>, cfg: VipMachineConfig): Step {
  const effects: VipEffect[] = [];
  if (ev.result === 'answered') {
    if (s.failures > 0) effects.push({ type: 'log', level: 'info', msg: 'HA IP answers again; failure count reset', data: { mac: ev.mac, rttMs: ev.rttMs, failures: s.failures } });
    const st = { ...s, failures: 0 };
    effects.push(nextCheck(st, cfg, 'probe', cfg.checkIntervalMs, ev.mac.toLowerCase()));
    return { state: st, effects };
  }
  if (ev.result === 'error') {
    // Unknown is not evidence that the master is gone: hold the count.
    effects.push(
      { type: 'log', level: 'warn', msg: 'probe failed; not counted toward a takeover', data: { error: ev.error, failures: s.failures } },
      { type: 'schedule', timer: 'probe', afterMs: s.failures > 0 ? cfg.failureCheckIntervalMs : cfg.checkIntervalMs },
    );
    return { state: s, effects };
  }
  const failures = s.failures + 1;
  if (failures < cfg.takeOverAfter) {
    effects.push(
      { type: 'log', level: 'warn', msg: 'HA IP did not answer', data: { failures, takeOverAfter: cfg.takeOverAfter, timeoutMs: probeTimeoutFor(s, cfg) } },
      { type: 'schedule', timer: 'probe', afterMs: cfg.failureCheckIntervalMs },
    );
    return { state: { ...s, failures }, effects };
  }
  if (s.track && !s.track.ok) {
    effects.push(
      { type: 'log', level: 'warn', msg: 'HA IP is free but the track check is failing: not taking over', data: { failures, track: s.track } },
      { type: 'schedule', timer: 'probe', afterMs: cfg.failureCheckIntervalMs },
    );
    return { state: { ...s, failures: cfg.takeOverAfter }, effects };
  }
  effects.push(
    { type: 'log', level: 'warn', msg: 'HA IP silent for take_over_after consecutive probes: taking over', data: { failures, takeOverAfter: cfg.takeOverAfter, addresses: s.desired.map(key) } },
    { type: 'cancel', timer: 'probe' },
    { type: 'addAddresses', addresses: s.desired },
  );
  return { state: { ...s, failures, phase: 'takeover-add' }, effects };
}

function masterProbed(s: VipState, ev: Extract<VipEvent, { type: 'probed' }>, cfg: VipMachineConfig): Step {
  const effects: VipEffect[] = [];
  if (ev.result === 'answered' && ev.mac.toLowerCase() !== s.ownMac) {
    const kept = keepsOnConflict(s.ownMac, ev.mac);
    const st = { ...s, lastConflict: { atMs: ev.nowMs, mac: ev.mac.toLowerCase(), kept } };
    if (kept) {
      effects.push(
        { type: 'log', level: 'warn', msg: 'conflict: another node answers for the HA IP; ours is the lower MAC, keeping it', data: { ownMac: s.ownMac, otherMac: ev.mac } },
        // Re-announce so caches that learned the other MAC come back to us.
        { type: 'announce', addresses: s.desired, count: Math.max(1, cfg.announce.count), intervalMs: cfg.announce.intervalMs },
        { type: 'schedule', timer: 'master-check', afterMs: cfg.masterCheckIntervalMs },
      );
      return { state: st, effects };
    }
    effects.push({ type: 'log', level: 'warn', msg: 'conflict: another node answers for the HA IP with a lower MAC; stepping down', data: { ownMac: s.ownMac, otherMac: ev.mac } });
    return stepDown(st, ev.nowMs, 'conflict lost (lower MAC keeps the HA IP)', cfg, effects);
  }
  if (ev.result === 'error' && ev.linkDown) {
    // Our own link is down: nobody can reach the IP here. Once the peers have
    // had the time to take over, release it (keepalived's FAULT), so that
    // when the link returns there is no split brain to settle.
    const since = s.linkDownSinceMs ?? ev.nowMs;
    const downMs = ev.nowMs - since;
    if (downMs >= takeoverWindowMs(cfg)) {
      effects.push({ type: 'log', level: 'warn', msg: 'own link down for longer than a peer needs to take over: releasing the HA IP', data: { downMs, error: ev.error } });
      return stepDown({ ...s, linkDownSinceMs: undefined }, ev.nowMs, `link down for ${Math.round(downMs)} ms`, cfg, effects);
    }
    if (s.linkDownSinceMs === undefined) effects.push({ type: 'log', level: 'warn', msg: 'own link down while master', data: { error: ev.error, releaseAfterMs: takeoverWindowMs(cfg) } });
    effects.push({ type: 'schedule', timer: 'master-check', afterMs: cfg.failureCheckIntervalMs });
    return { state: { ...s, linkDownSinceMs: since }, effects };
  }
  if (ev.result === 'error') effects.push({ type: 'log', level: 'warn', msg: 'conflict probe failed', data: { error: ev.error } });
  if (s.linkDownSinceMs !== undefined) effects.push({ type: 'log', level: 'info', msg: 'own link back before the release: still master' });
  const st = { ...s, linkDownSinceMs: undefined };
  // Only after a clean check does the next run as a watch: after an error the next one is a full check.
  effects.push(ev.result === 'silent' ? nextCheck(st, cfg, 'master-check', cfg.masterCheckIntervalMs) : { type: 'schedule', timer: 'master-check', afterMs: cfg.masterCheckIntervalMs });
  return { state: st, effects };
}

/**
 * The next steady check `everyMs` from now: a watch when it can stand for
 * several, else the timer. A master driving a group checks that the group
 * still runs at every master check (a read of its journal, in the runner):
 * it keeps the timer.
 */
function nextCheck(s: VipState, cfg: VipMachineConfig, timer: 'probe' | 'master-check', everyMs: number, expectMac?: string): VipEffect {
  const rounds = watchRounds(everyMs);
  if (rounds < 2 || (timer === 'master-check' && cfg.hasGroup)) return { type: 'schedule', timer, afterMs: everyMs };
  return {
    type: 'watch', timer, purpose: timer === 'probe' ? 'check' : 'conflict', ip: cfg.haIp.address,
    ...(expectMac !== undefined ? { expectMac } : {}), everyMs, timeoutMs: probeTimeoutFor(s, cfg), rounds,
  };
}

function withSamples(rtt: RttEstimate | undefined, samples: readonly number[]): RttEstimate | undefined {
  let r = rtt;
  for (const x of samples) r = addRttSample(r, x);
  return r;
}

/** A watch passed all its rounds: take in what it saw, then the timer it stood for is due. */
function onWatched(s: VipState, ev: Extract<VipEvent, { type: 'watched' }>, cfg: VipMachineConfig): Step {
  const mine = ev.timer === 'probe' ? s.role === 'slave' : s.role === 'master';
  if (s.phase !== 'steady' || !mine || s.probeInFlight) return { state: s, effects: [] };
  const rtt = withSamples(s.rtt, ev.rttsMs);
  const last = ev.rttsMs[ev.rttsMs.length - 1];
  const lastProbe: VipState['lastProbe'] = ev.mac !== undefined && last !== undefined ? { atMs: ev.nowMs, result: 'answered', mac: ev.mac, rttMs: last }
    : ev.mac === undefined && ev.rounds > 0 ? { atMs: ev.nowMs, result: 'silent' } : s.lastProbe;
  const st: VipState = { ...s, ...(rtt ? { rtt } : {}), ...(lastProbe ? { lastProbe } : {}) };
  return onTimer(st, { type: 'timer', nowMs: ev.nowMs, timer: ev.timer }, cfg);
}

/** Check at once: the master reconciles and probes, the slave probes (after an in-flight probe if one is out). */
function checkNow(s: VipState, _nowMs: number, cfg: VipMachineConfig, effects: VipEffect[]): Step {
  if (s.phase !== 'steady' || (s.role !== 'master' && s.role !== 'slave')) return { state: s, effects };
  if (s.probeInFlight) return { state: { ...s, checkSoon: true }, effects };
  const step = onTimer(s, { type: 'timer', nowMs: _nowMs, timer: s.role === 'master' ? 'master-check' : 'probe' }, cfg);
  return { state: step.state, effects: [...effects, ...step.effects] };
}

function onLink(s: VipState, ev: Extract<VipEvent, { type: 'link' }>, cfg: VipMachineConfig): Step {
  const effects: VipEffect[] = [];
  if (!ev.up) {
    if (s.role === 'master' && s.phase === 'steady' && s.linkDownSinceMs === undefined) {
      const releaseAfterMs = carrierReleaseMs(cfg);
      effects.push(
        { type: 'log', level: 'warn', msg: 'carrier lost while master: the HA IP is released unless it returns in time', data: { releaseAfterMs } },
        { type: 'schedule', timer: 'link-release', afterMs: releaseAfterMs },
      );
      return { state: { ...s, linkDownSinceMs: ev.nowMs }, effects };
    }
    if (s.role === 'slave') effects.push({ type: 'log', level: 'warn', msg: 'carrier lost: silence counts as unknown, no takeover until it returns' });
    return { state: s, effects };
  }
  effects.push({ type: 'cancel', timer: 'link-release' });
  if (s.role === 'master' && s.linkDownSinceMs !== undefined) {
    effects.push({ type: 'log', level: 'info', msg: 'carrier back before the release: still master; probing for a competing owner now', data: { downMs: Math.round(ev.nowMs - s.linkDownSinceMs) } });
  } else if (s.role === 'slave' && s.phase === 'steady' && (ev.probeDelayMs ?? 0) > 0) {
    effects.push({ type: 'log', level: 'info', msg: 'carrier back: probing after a random spread', data: { afterMs: ev.probeDelayMs } });
    // A probe under way is answered first; its result schedules the next one as usual.
    if (!s.probeInFlight) effects.push({ type: 'schedule', timer: 'probe', afterMs: ev.probeDelayMs! });
    return { state: { ...s, linkDownSinceMs: undefined }, effects };
  } else if (s.role === 'master' || s.role === 'slave') {
    effects.push({ type: 'log', level: 'info', msg: 'carrier back: probing now' });
  }
  return checkNow({ ...s, linkDownSinceMs: undefined }, ev.nowMs, cfg, effects);
}

function onAddressLost(s: VipState, ev: Extract<VipEvent, { type: 'addressLost' }>, cfg: VipMachineConfig): Step {
  // Only a steady master's own addresses: during a step-down or stop we are the ones removing them.
  const wanted = (c: Cidr) => sameAddr(c, ev.address);
  // (Held and still desired: one dropped from the IP file is being removed by our own reconcile.)
  if (s.role !== 'master' || s.phase !== 'steady' || !s.held.some(wanted) || !s.desired.some(wanted)) return { state: s, effects: [] };
  const effects: VipEffect[] = [{ type: 'log', level: 'warn', msg: 'an address we hold was removed from the interface, not by vigil (ip addr del, a network manager flush?): putting it back now', data: { address: key(ev.address) } }];
  return checkNow(s, ev.nowMs, cfg, effects);
}

/** stepDown: on_slave first (the IP keeps answering meanwhile), then remove. */
function stepDown(s: VipState, nowMs: number, reason: string, cfg: VipMachineConfig, effects: VipEffect[]): Step {
  effects.push({ type: 'cancel', timer: 'master-check' }, { type: 'cancel', timer: 'probe' }, { type: 'cancel', timer: 'link-release' });
  const st = { ...s, stepDowns: s.stepDowns + 1 };
  effects.push({ type: 'log', level: 'warn', msg: 'stepping down', data: { reason, atMs: nowMs } });
  if (cfg.hasGroup) {
    // The group first, in reverse, while the HA IP still answers: a standby must not take over while a member may write.
    effects.push({ type: 'group', op: 'deactivate' });
    return { state: { ...st, phase: 'stepdown-group' }, effects };
  }
  return stepDownRelease(st, cfg, effects);
}

/** The rest of a step-down: on_slave, then the removal. */
function stepDownRelease(st: VipState, cfg: VipMachineConfig, effects: VipEffect[]): Step {
  if (cfg.hasOnSlave) {
    effects.push({ type: 'runCommand', which: 'on_slave' });
    return { state: { ...st, phase: 'stepdown-cmd' }, effects };
  }
  effects.push({ type: 'removeAddresses', addresses: removalOrder(st.held, cfg.haIp) });
  return { state: { ...st, phase: 'stepdown-remove' }, effects };
}

function onAdded(s: VipState, ev: Extract<VipEvent, { type: 'added' }>, cfg: VipMachineConfig): Step {
  if (s.phase !== 'takeover-add') return { state: s, effects: [] };
  const effects: VipEffect[] = [];
  if (ev.failed.length > 0) {
    effects.push({ type: 'log', level: 'error', msg: 'taking over failed: could not add addresses; rolling back and staying slave', data: { failed: ev.failed.map((f) => ({ address: key(f.cidr), error: f.error })), added: ev.added.map(key) } });
    if (ev.added.length > 0) {
      effects.push({ type: 'removeAddresses', addresses: removalOrder(ev.added, cfg.haIp) });
      return { state: { ...s, held: ev.added, phase: 'rollback-remove' }, effects };
    }
    if (s.stopRequested) return finishStop({ ...s, held: [] }, ev.nowMs, effects);
    return slaveSteady({ ...s, held: [] }, ev.nowMs, cfg.checkIntervalMs, effects);
  }
  let st: VipState = { ...s, held: ev.added, takeovers: s.takeovers + 1 };
  if (s.stopRequested) return beginStop(st, ev.nowMs, cfg, effects);
  st = become(st, 'master', ev.nowMs, `took over after ${s.failures} silent probes`, effects);
  effects.push({ type: 'announce', addresses: ev.added, count: cfg.announce.count, intervalMs: cfg.announce.intervalMs });
  if (cfg.hasGroup) {
    // The group after the HA IP, before on_master: its result decides whether this node stays master.
    effects.push({ type: 'group', op: 'activate' });
    return { state: { ...st, phase: 'takeover-group', failures: 0 }, effects };
  }
  if (cfg.hasOnMaster) effects.push({ type: 'runCommand', which: 'on_master' });
  effects.push({ type: 'schedule', timer: 'master-check', afterMs: cfg.masterCheckIntervalMs });
  return { state: { ...st, phase: 'steady', failures: 0 }, effects };
}

function onRemoved(s: VipState, ev: Extract<VipEvent, { type: 'removed' }>, cfg: VipMachineConfig): Step {
  const effects: VipEffect[] = [];
  // Whatever failed to go is still held: say so, keep it in the books.
  const held = minus(s.held, ev.removed);
  if (ev.failed.length > 0) effects.push({ type: 'log', level: 'error', msg: 'could not remove addresses', data: { failed: ev.failed.map((f) => ({ address: key(f.cidr), error: f.error })) } });
  const st = { ...s, held };
  // A master that just let the HA IP go says so on the wire: a slave then
  // confirms with one probe instead of waiting out its failure count (the
  // graceful stop is otherwise as slow as a crash). A hint only: the slave's
  // probe decides, so a lost or forged notice changes nothing.
  const releasedHaIp = (s.phase === 'stepdown-remove' || s.phase === 'stop-remove')
    && s.held.some((c) => sameAddr(c, cfg.haIp)) && !held.some((c) => sameAddr(c, cfg.haIp));
  if (releasedHaIp) effects.push({ type: 'release', ip: cfg.haIp.address });
  switch (s.phase) {
    case 'initial-remove':
    case 'rollback-remove':
      if (s.stopRequested) return finishStop(st, ev.nowMs, effects);
      return slaveSteady(st, ev.nowMs, s.phase === 'rollback-remove' ? cfg.checkIntervalMs : s.initialProbeDelayMs, effects);
    case 'stepdown-remove': {
      if (s.stopRequested) return finishStop(st, ev.nowMs, effects);
      const st2 = become(st, 'slave', ev.nowMs, 'stepped down', effects);
      return slaveSteady(st2, ev.nowMs, cfg.checkIntervalMs, effects);
    }
    case 'stop-remove':
      return finishStop(st, ev.nowMs, effects);
    default:
      return { state: st, effects };
  }
}

function onReconciled(s: VipState, ev: Extract<VipEvent, { type: 'reconciled' }>, cfg: VipMachineConfig): Step {
  const effects: VipEffect[] = [];
  if (ev.errors.length) effects.push({ type: 'log', level: 'warn', msg: 'reconcile incomplete', data: { errors: ev.errors } });
  // Addresses put back on a master (someone ran `ip addr del`, the interface was
  // re-created) are announced as after a takeover: caches may have dropped
  // them or learned another MAC meanwhile.
  if (ev.added && ev.added.length > 0 && s.role === 'master' && s.phase === 'steady') {
    effects.push({ type: 'announce', addresses: ev.added, count: Math.max(1, cfg.announce.count), intervalMs: cfg.announce.intervalMs });
  }
  return { state: { ...s, held: ev.held }, effects };
}

function onCommandDone(s: VipState, ev: Extract<VipEvent, { type: 'commandDone' }>, cfg: VipMachineConfig): Step {
  const effects: VipEffect[] = [];
  if (!ev.ok) effects.push({ type: 'log', level: 'warn', msg: `${ev.which} failed${ev.which === 'on_slave' ? '; removing the addresses anyway' : ''}`, data: { detail: ev.detail } });
  switch (s.phase) {
    case 'initial-on-slave':
      if (s.stopRequested) return beginStopRemove(s, ev.nowMs, cfg, effects);
      return initialRemove(s, ev.nowMs, cfg, effects);
    case 'stepdown-cmd':
      effects.push({ type: 'removeAddresses', addresses: removalOrder(s.held, cfg.haIp) });
      return { state: { ...s, phase: 'stepdown-remove' }, effects };
    case 'stop-cmd':
      return beginStopRemove(s, ev.nowMs, cfg, effects);
    default:
      // on_master completes while steady: nothing waits on it.
      return { state: s, effects };
  }
}

function onDesired(s: VipState, ev: Extract<VipEvent, { type: 'desired' }>): Step {
  const before = new Set(s.desired.map(key));
  const after = new Set(ev.addresses.map(key));
  if (before.size === after.size && [...before].every((k) => after.has(k))) return { state: s, effects: [] };
  const st = { ...s, desired: ev.addresses };
  const effects: VipEffect[] = [{ type: 'log', level: 'info', msg: 'address set changed', data: { added: minus(ev.addresses, s.desired).map(key), dropped: minus(s.desired, ev.addresses).map(key) } }];
  if (s.role === 'master' && s.phase === 'steady') {
    effects.push({ type: 'reconcile', desired: st.desired, remove: minus(s.held, st.desired) });
  }
  return { state: st, effects };
}

function onTrack(s: VipState, ev: Extract<VipEvent, { type: 'track' }>, cfg: VipMachineConfig): Step {
  if (!cfg.track || !s.track) return { state: s, effects: [] };
  const t = s.track;
  const next: TrackState = ev.ok ? { ok: t.ok, passes: t.passes + 1, fails: 0 } : { ok: t.ok, passes: 0, fails: t.fails + 1 };
  const effects: VipEffect[] = [];
  if (!t.ok && ev.ok && next.passes >= cfg.track.rise) {
    next.ok = true;
    effects.push({ type: 'log', level: 'info', msg: 'track check passing: eligible for master', data: { passes: next.passes, rise: cfg.track.rise } });
  }
  const failing = !ev.ok && next.fails >= cfg.track.fall;
  if (t.ok && failing) {
    next.ok = false;
    effects.push({ type: 'log', level: 'warn', msg: 'track check failing: not eligible for master', data: { fails: next.fails, fall: cfg.track.fall, detail: ev.detail } });
  }
  const st = { ...s, track: next };
  // Step down on `fall` failures in a row, whatever `ok` was before: a master
  // that resumed after a restart starts with ok false (it never passed `rise`
  // times), and waiting for an ok → failing change would keep it master forever.
  if (failing && s.role === 'master' && s.phase === 'steady') {
    return stepDown(st, ev.nowMs, `track check failed ${next.fails} times`, cfg, effects);
  }
  return { state: st, effects };
}

/**
 * A release notice: taken only from the MAC our last probe heard answer for
 * the HA IP (the holder we know), and only as a reason to look now: the
 * failure count is set one short of take_over_after, so one silent probe
 * confirms it, while an answer resets it as usual.
 */
function onReleased(s: VipState, ev: Extract<VipEvent, { type: 'released' }>, cfg: VipMachineConfig): Step {
  if (s.role !== 'slave' || s.phase !== 'steady') return { state: s, effects: [] };
  const holder = s.lastProbe?.result === 'answered' ? s.lastProbe.mac.toLowerCase() : undefined;
  const mac = ev.mac.toLowerCase();
  if (holder !== mac) {
    return { state: s, effects: [{ type: 'log', level: 'debug', msg: 'release notice from a MAC that is not the holder we last heard: ignored', data: { mac, holder } }] };
  }
  const failures = Math.max(s.failures, cfg.takeOverAfter - 1);
  const effects: VipEffect[] = [{ type: 'log', level: 'info', msg: 'the holder released the HA IP: confirming with one probe', data: { mac } }];
  // A probe under way confirms it; otherwise probe after the spread.
  if (!s.probeInFlight) effects.push({ type: 'schedule', timer: 'probe', afterMs: Math.max(0, ev.probeDelayMs) });
  return { state: { ...s, failures }, effects };
}

function onStop(s: VipState, ev: Extract<VipEvent, { type: 'stop' }>, cfg: VipMachineConfig): Step {
  if (s.role === 'stopping' || s.role === 'stopped') return { state: s, effects: [] };
  if (s.phase !== 'steady') {
    // Finish the transition under way, then stop (nothing left half-done).
    return { state: { ...s, stopRequested: true }, effects: [{ type: 'log', level: 'info', msg: 'stop requested: finishing the transition under way first', data: { phase: s.phase } }] };
  }
  if (s.role === 'inactive') return finishStop(s, ev.nowMs, []);
  return beginStop(s, ev.nowMs, cfg, []);
}

function beginStop(s: VipState, nowMs: number, cfg: VipMachineConfig, effects: VipEffect[]): Step {
  effects.push({ type: 'cancel', timer: 'probe' }, { type: 'cancel', timer: 'master-check' }, { type: 'cancel', timer: 'link-release' });
  const wasMaster = s.role === 'master';
  const st = become({ ...s, stopRequested: true }, 'stopping', nowMs, 'stop requested', effects);
  if (cfg.hasGroup && wasMaster) {
    effects.push({ type: 'group', op: 'deactivate' });
    return { state: { ...st, phase: 'stop-group' }, effects };
  }
  return beginStopRelease(st, nowMs, cfg, effects);
}

/** The rest of a stop: on_slave, then the removal. */
function beginStopRelease(st: VipState, nowMs: number, cfg: VipMachineConfig, effects: VipEffect[]): Step {
  if (cfg.hasOnSlave) {
    effects.push({ type: 'runCommand', which: 'on_slave' });
    return { state: { ...st, phase: 'stop-cmd' }, effects };
  }
  return beginStopRemove(st, nowMs, cfg, effects);
}

function beginStopRemove(s: VipState, nowMs: number, cfg: VipMachineConfig, effects: VipEffect[]): Step {
  const st = s.role === 'stopping' ? s : become(s, 'stopping', nowMs, 'stop requested', effects);
  if (st.held.length > 0) {
    effects.push({ type: 'removeAddresses', addresses: removalOrder(st.held, cfg.haIp) });
    return { state: { ...st, phase: 'stop-remove' }, effects };
  }
  return finishStop(st, nowMs, effects);
}

function finishStop(s: VipState, nowMs: number, effects: VipEffect[]): Step {
  effects.push({ type: 'cancel', timer: 'probe' }, { type: 'cancel', timer: 'master-check' });
  const st = become(s, 'stopped', nowMs, 'stopped', effects);
  effects.push({ type: 'exit', code: s.held.length > 0 ? 1 : 0 });
  return { state: { ...st, phase: 'steady' }, effects };
}

/**
 * vip.group: the group's activate or deactivate ended. A failed activate
 * steps down (the group rolled itself back); a failed deactivate (exit 5,
 * a member may still run) keeps the HA IP: this node stays master, so no
 * standby takes over while a member may still write to shared data.
 */
function onGroupLost(s: VipState, ev: Extract<VipEvent, { type: 'groupLost' }>, cfg: VipMachineConfig): Step {
  // Only a steady master: during a takeover or step-down the group is ours to change.
  if (s.role !== 'master' || s.phase !== 'steady' || !cfg.hasGroup) return { state: s, effects: [] };
  const effects: VipEffect[] = [{ type: 'log', level: 'error', msg: 'the group is no longer active here: stepping down so a peer can take over', data: { detail: ev.detail } }];
  return stepDown(s, ev.nowMs, 'group no longer active', cfg, effects);
}

function onGroupDone(s: VipState, ev: Extract<VipEvent, { type: 'groupDone' }>, cfg: VipMachineConfig): Step {
  const effects: VipEffect[] = [];
  if (ev.op === 'activate') {
    if (s.phase === 'takeover-group') {
      if (!ev.ok) {
        effects.push({ type: 'log', level: 'error', msg: 'group activation failed after the takeover: stepping down', data: { detail: ev.detail } });
        return stepDown({ ...s, phase: 'steady' }, ev.nowMs, 'group activation failed', cfg, effects);
      }
      effects.push({ type: 'log', level: 'info', msg: 'group activated', data: { detail: ev.detail } });
      const st: VipState = { ...s, phase: 'steady' };
      if (s.stopRequested) return beginStop(st, ev.nowMs, cfg, effects);
      if (cfg.hasOnMaster) effects.push({ type: 'runCommand', which: 'on_master' });
      effects.push({ type: 'schedule', timer: 'master-check', afterMs: cfg.masterCheckIntervalMs });
      return { state: st, effects };
    }
    // The activate of a resumed master (onStart).
    if (!ev.ok && s.role === 'master' && s.phase === 'steady') {
      effects.push({ type: 'log', level: 'error', msg: 'group activation failed on a resumed master: stepping down', data: { detail: ev.detail } });
      return stepDown(s, ev.nowMs, 'group activation failed', cfg, effects);
    }
    return { state: s, effects: ev.ok ? [] : [{ type: 'log', level: 'warn', msg: 'group activation failed', data: { detail: ev.detail } }] };
  }
  if (s.phase === 'stepdown-group') {
    if (ev.ok) return stepDownRelease(s, cfg, effects);
    effects.push({ type: 'log', level: 'error', msg: 'group deactivation failed (a member may still run): keeping the HA IP, still master', data: { detail: ev.detail } });
    if (s.stopRequested) return finishStop({ ...s, phase: 'steady' }, ev.nowMs, effects);
    effects.push({ type: 'schedule', timer: 'master-check', afterMs: cfg.masterCheckIntervalMs });
    return { state: { ...s, phase: 'steady' }, effects };
  }
  if (s.phase === 'stop-group') {
    if (ev.ok) return beginStopRelease(s, ev.nowMs, cfg, effects);
    effects.push({ type: 'log', level: 'error', msg: 'group deactivation failed on stop (a member may still run): keeping the HA IP', data: { detail: ev.detail } });
    return finishStop(s, ev.nowMs, effects);
  }
  return { state: s, effects: [] };
}
