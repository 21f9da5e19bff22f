/**
 * Layer: executor. Confirmed power-off of a host through its BMC, shared by
 * the `monitor` role (fence before takeover) and the `promote` role (the
 * optional fence of the old primary).
 *
 * "Fencing is confirmed, never inferred": issue the action, then read the
 * power state every `power_wait` until the BMC itself says `off`, or
 * `power_timeout` has passed. Only a read of `off` (and, when configured, a
 * silent host on its networks afterwards) is `off`. A BMC that refuses, times
 * out or does not answer is `unconfirmed` — hostha went on to evacuate in
 * that case (seed inventory K-31), which can run a VM twice.
 *
 * The clock is injected (fake clock in unit tests, no sleeps); every read is
 * bounded by its driver's own timeout, so the whole fence ends by
 * action timeout + power_timeout + one read timeout.
 */
import { runCommand, describeCommand } from '../commands';
import { ConfigError } from '../../errors';
import { moduleLog, type Logger } from '../../log';
import { IpmiTool, type IpmiOptions, type Runner } from './ipmitool';
import { RedfishClient, type RedfishOptions, type RequestFn } from './redfish';
import type { ActionOutcome, PowerAction, PowerDriver, PowerReading } from './types';

/** Config of the `command` method: the operator's own fence program. */
export interface CommandMethodOptions {
  /** The action [argv], an argv list (no shell). */
  argv: readonly string[];
  /** Bound on each run [command_timeout]; default 10 s. */
  commandTimeoutMs?: number;
  /**
   * How the power-off is confirmed [confirm]: a status argv [status_argv]
   * whose last output line ends in `on` or `off` (exit 0), or a BMC method.
   * Without one a `command` fence can never be confirmed.
   */
  statusArgv?: readonly string[];
  confirm?: IpmiMethod | RedfishMethod;
}

/** The methods, as a role's config selects them [method]. */
export type IpmiMethod = { method: 'ipmi' } & IpmiOptions;
export type RedfishMethod = { method: 'redfish' } & RedfishOptions;
export type CommandMethod = { method: 'command' } & CommandMethodOptions;
export type FenceMethod = IpmiMethod | RedfishMethod | CommandMethod;

/** Timing of the confirmation (fence_ipmilan's names and defaults). */
export interface FenceOptions {
  /** Give up confirming after this long [power_timeout]; default 20 s. */
  powerTimeoutMs?: number;
  /** Between two power-state reads [power_wait]; default 2 s. */
  powerWaitMs?: number;
}

/** A monotonic clock; tests pass a fake one. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** The real clock: performance.now() is monotonic (wall-clock jumps do not matter). */
export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

/** The result of an optional after-off cross-check (e.g. ARP for the host's addresses). */
export type HostCheck = () => Promise<{ state: 'silent' | 'answers' | 'unknown'; detail: string }>;

/** Dependencies, each with a real default. */
export interface FenceDeps {
  clock?: Clock;
  /** Spawner for `ipmi` and `command`. */
  run?: Runner;
  /** HTTPS request function for `redfish`. */
  request?: RequestFn;
  log?: Logger;
  /**
   * After the BMC reports off, the host must be silent on its networks:
   * `answers` or `unknown` makes the fence unconfirmed (next-roles §3d-5).
   */
  hostCheck?: HostCheck;
}

/** One line of evidence, in order, with the time since the fence began. */
export interface FenceEvidence {
  atMs: number;
  step: 'action' | 'status' | 'host-check' | 'timeout';
  ok: boolean;
  detail: string;
  state?: string;
  /** Why there was no answer (see BmcFailureCode). */
  code?: string;
}

/** What {@link powerOffConfirmed} decided, with everything it saw. */
export interface FenceResult {
  outcome: 'off' | 'unconfirmed';
  method: string;
  target: string;
  evidence: FenceEvidence[];
  durationMs: number;
}

/** Build the driver for a method. Throws {@link ConfigError} for bad config or refused credentials. */
export function createPowerDriver(m: FenceMethod, deps: FenceDeps = {}): PowerDriver {
  switch (m.method) {
    case 'ipmi': return new IpmiTool(m, { ...(deps.run ? { run: deps.run } : {}), ...(deps.log ? { log: deps.log } : {}) });
    case 'redfish': return new RedfishClient(m, { ...(deps.request ? { request: deps.request } : {}), ...(deps.log ? { log: deps.log } : {}) });
    case 'command': return new CommandPower(m, deps);
    default: throw new ConfigError(`method ${JSON.stringify((m as { method: unknown }).method)} is not a fence method; expected ipmi, redfish or command`, { key: 'method' });
  }
}

const LAST_WORD_RE = /(?:^|\s)(on|off)\s*$/i;

/** The `command` method: the operator's argv, confirmed by a status argv or a BMC. */
export class CommandPower implements PowerDriver {
  readonly method = 'command';
  readonly target: string;
  readonly #opts: CommandMethodOptions;
  readonly #run: Runner;
  readonly #confirm?: PowerDriver;

  constructor(opts: CommandMethodOptions, deps: FenceDeps = {}) {
    if (opts.argv.length === 0 || !opts.argv[0]!.startsWith('/')) throw new ConfigError('argv must be a non-empty list starting with an absolute path', { key: 'argv' });
    if (opts.statusArgv && opts.confirm) throw new ConfigError('give status_argv or confirm, not both', { key: 'confirm' });
    if (opts.statusArgv && (opts.statusArgv.length === 0 || !opts.statusArgv[0]!.startsWith('/'))) {
      throw new ConfigError('status_argv must be a non-empty list starting with an absolute path', { key: 'status_argv' });
    }
    this.#opts = opts;
    this.#run = deps.run ?? runCommand;
    if (opts.confirm) this.#confirm = createPowerDriver(opts.confirm, deps);
    this.target = describeCommand(opts.argv);
  }

  /** Run the argv for `off` only: an operator command has one meaning. */
  async power(action: PowerAction): Promise<ActionOutcome> {
    if (action !== 'off') return { ok: false, detail: `the command method only powers off (asked: ${action})`, durationMs: 0 };
    const timeoutMs = this.#opts.commandTimeoutMs ?? 10_000;
    const r = await this.#run(this.#opts.argv, { timeoutMs });
    if (r.ok) return { ok: true, detail: 'command exit 0', durationMs: r.durationMs };
    if (r.timedOut) return { ok: false, detail: `command killed after ${timeoutMs} ms`, durationMs: r.durationMs, code: 'EBMCTIMEOUT' };
    if (r.spawnError) return { ok: false, detail: `command could not start: ${r.spawnError}`, durationMs: r.durationMs, code: 'EBMCSPAWN' };
    return { ok: false, detail: `command exit ${r.code ?? r.signal}`, durationMs: r.durationMs, code: 'EBMCREFUSED' };
  }

  /** Close the confirming BMC's driver, if any. */
  async close(): Promise<void> {
    await this.#confirm?.close?.();
  }

  /** Ask the status argv or the confirming BMC; without either, always unknown. */
  async powerStatus(): Promise<PowerReading> {
    if (this.#confirm) return this.#confirm.powerStatus();
    if (!this.#opts.statusArgv) return { state: 'unknown', detail: 'no status_argv or confirm configured: a command fence cannot be confirmed', durationMs: 0, code: 'EBMCNOCONFIRM' };
    const timeoutMs = this.#opts.commandTimeoutMs ?? 10_000;
    const r = await this.#run(this.#opts.statusArgv, { timeoutMs });
    const last = r.stdout.trim().split('\n').pop() ?? '';
    const m = r.ok ? LAST_WORD_RE.exec(last) : null;
    if (m) return { state: m[1]!.toLowerCase() as 'on' | 'off', detail: `status: ${last.trim().slice(0, 200)}`, durationMs: r.durationMs };
    if (r.ok) return { state: 'unknown', detail: `status printed no on/off: ${JSON.stringify(last.slice(0, 200))}`, durationMs: r.durationMs, code: 'EBMCOUTPUT' };
    return { state: 'unknown', detail: `status ${r.timedOut ? 'timed out' : r.spawnError ? `could not start: ${r.spawnError}` : `exit ${r.code ?? r.signal}`}`, durationMs: r.durationMs, code: r.timedOut ? 'EBMCTIMEOUT' : r.spawnError ? 'EBMCSPAWN' : 'EBMCREFUSED' };
  }
}

/** Check and default the timing; messages name the key. */
export function fenceTiming(o: FenceOptions = {}): Required<FenceOptions> {
  const powerTimeoutMs = o.powerTimeoutMs ?? 20_000;
  const powerWaitMs = o.powerWaitMs ?? 2_000;
  if (!(powerWaitMs > 0)) throw new ConfigError(`power_wait ${powerWaitMs} ms must be positive`, { key: 'power_wait' });
  if (!(powerTimeoutMs >= powerWaitMs)) throw new ConfigError(`power_timeout ${powerTimeoutMs} ms is shorter than power_wait ${powerWaitMs} ms`, { key: 'power_timeout' });
  return { powerTimeoutMs, powerWaitMs };
}

/**
 * Power the host off through `method` and confirm it: action, then a
 * power-state read every `power_wait` until `off` or `power_timeout`.
 * Never throws for a BMC failure (that is `unconfirmed`); throws
 * {@link ConfigError} only for bad config given as a {@link FenceMethod}.
 */
export async function powerOffConfirmed(method: FenceMethod | PowerDriver, opts: FenceOptions = {}, deps: FenceDeps = {}): Promise<FenceResult> {
  const { powerTimeoutMs, powerWaitMs } = fenceTiming(opts);
  const driver = 'power' in method ? method : createPowerDriver(method, deps);
  const clock = deps.clock ?? realClock;
  const log = (deps.log ?? moduleLog('bmc')).child({ method: driver.method, bmc: driver.target });
  const start = clock.now();
  const evidence: FenceEvidence[] = [];
  const note = (e: Omit<FenceEvidence, 'atMs'>) => { evidence.push({ atMs: Math.round(clock.now() - start), ...e }); };
  const done = (outcome: FenceResult['outcome']): FenceResult => {
    const r = { outcome, method: driver.method, target: driver.target, evidence, durationMs: Math.round(clock.now() - start) };
    // The decision and all its evidence in one line, before the caller acts on it.
    (outcome === 'off' ? log.warn.bind(log) : log.error.bind(log))({ outcome, evidence, powerTimeoutMs, powerWaitMs }, outcome === 'off' ? 'fence confirmed: power is off' : 'fence-unconfirmed');
    return r;
  };

  log.warn({ powerTimeoutMs, powerWaitMs }, 'fence: power off');
  try {
    const act = await driver.power('off');
    note({ step: 'action', ok: act.ok, detail: act.detail, ...(act.code ? { code: act.code } : {}) });
    // Even when the action failed, read the state: a host that is already off
    // (or whose BMC applied the command and lost the reply) is confirmed only
    // by the BMC saying so; a BMC that does not answer stays unconfirmed.
    const deadline = clock.now() + powerTimeoutMs;
    for (;;) {
      const r = await driver.powerStatus();
      note({ step: 'status', ok: r.state !== 'unknown', state: r.state, detail: r.detail, ...(r.code ? { code: r.code } : {}) });
      if (r.state === 'off') {
        if (!deps.hostCheck) return done('off');
        // A check that fails is no evidence that the host is down: unknown.
        const h = await deps.hostCheck().catch((e: unknown) => ({ state: 'unknown' as const, detail: `host check failed: ${e instanceof Error ? e.message : String(e)}` }));
        note({ step: 'host-check', ok: h.state === 'silent', state: h.state, detail: h.detail });
        return done(h.state === 'silent' ? 'off' : 'unconfirmed');
      }
      if (clock.now() + powerWaitMs > deadline) break;
      await clock.sleep(powerWaitMs);
    }
    note({ step: 'timeout', ok: false, detail: `power not confirmed off within power_timeout ${powerTimeoutMs} ms` });
    return done('unconfirmed');
  } finally {
    // Log out of the BMC (a Redfish session) whatever the outcome.
    await driver.close?.();
  }
}
