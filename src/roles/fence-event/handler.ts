/**
 * Layer: CLI. `vigil fence-handler -c FILE`: the handler a Consul event
 * watch runs (`consul watch -type=event -name=fence`, etc/consul/fence-watch.json).
 *
 * It reads the JSON array of events on stdin (at most 1 MiB is read; more
 * is refused unparsed), verifies **every** event with consul/event.ts
 * (name, exact node, freshness, boot time, replay, HMAC), records the
 * accepted ones in the handled-events store before acting, and then runs
 * `fence.actions` for `fence` and `fence_handler.on_enable` for `enable` /
 * `enable-nova`, each command once per delivery, in order, each with
 * `fence.action_timeout`; a failing action does not stop the next.
 *
 * Exit status (what the watch sees): 0 when the delivery was handled,
 * rejections included (a rejected event is logged with its reason, and a
 * watch must not retry it); 1 on an internal failure (boot time unknown,
 * the handled-events store cannot be locked or written: then nothing acts);
 * 2 for a bad config or a refused key file (nothing acts).
 *
 * With `fence.dry_run` a `fence` is logged as "would fence" and not run.
 */
import { parseArgs } from 'node:util';
import * as fs from 'node:fs';
import type { Readable } from 'node:stream';
import { ConfigError, errorMessage } from '../../errors';
import { flushLog, initLog, moduleLog, type Logger } from '../../log';
import { describeCommand, runCommand as realRunCommand, type Command, type CommandResult, type RunOptions } from '../../actions/commands';
import type { VigilConfig } from '../../config/types';
import { loadConfig } from '../../config/load';
import { DEFAULT_CONFIG_FILE } from '../../config/schema';
import { MAX_DELIVERY_BYTES, planCommands, verifyDelivery, type DeliveryResult, type FenceCommand } from '../../consul/event';
import { SeenStore, seenPath, withSeenLock } from '../../consul/seen';
import { addDelivery, countsPath } from './counts';
import { readFenceKey } from '../../consul/key';

const USAGE = `usage: vigil fence-handler [-c FILE]

Consul watch handler for fence events: reads the watch's JSON event array on
stdin and acts only on fresh, exactly addressed, not yet handled (and, with
fence_handler.key_file, correctly signed) events.

  -c, --config FILE   the config file (default ${DEFAULT_CONFIG_FILE})
  -h, --help          show this help

Exit status: 0 handled (rejections included), 1 internal failure, 2 bad config.
`;

/** Default for `fence.action_timeout` when the config has no fence section. */
const DEFAULT_ACTION_TIMEOUT_MS = 60_000;

/** The world the handler touches, injectable for tests. */
export interface FenceHandlerDeps {
  /** Wall clock, ms since the epoch. */
  nowMs?: () => number;
  /** Host boot time, ms since the epoch (default: /proc/stat btime). */
  bootTimeMs?: () => number;
  runCommand?: (cmd: Command, opts: RunOptions) => Promise<CommandResult>;
  readKey?: (file: string) => Buffer;
  log?: Logger;
  flush?: () => void;
}

/** What one run did. */
export interface FenceHandlerOutcome {
  exitCode: number;
  result?: DeliveryResult;
  /** Commands run, with each action's result. */
  ran: { command: FenceCommand; results: CommandResult[] }[];
  /** The internal or config failure, when exitCode is not 0. */
  error?: string;
}

/**
 * The host's boot time from `btime` in /proc/stat (seconds since the epoch,
 * as the kernel keeps it), in ms.
 * @throws Error when the file has no valid btime line
 */
export function readBootTimeMs(procStat = '/proc/stat'): number {
  const text = fs.readFileSync(procStat, 'utf8');
  const m = /^btime (\d{1,12})$/m.exec(text);
  if (!m) throw new Error(`${procStat} has no btime line`);
  return Number(m[1]) * 1000;
}

/**
 * Read a stream to its end, keeping at most `max + 1` bytes: as soon as more
 * than `max` arrived the stream is dropped, so 10 MB on stdin costs 1 MiB.
 */
export function readBounded(stream: Readable, max: number = MAX_DELIVERY_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      stream.off('data', onData);
      if (err) reject(err); else resolve(Buffer.concat(chunks, Math.min(size, max + 1)));
    };
    const onData = (c: Buffer | string) => {
      const buf = typeof c === 'string' ? Buffer.from(c) : c;
      const room = max + 1 - size;
      if (room > 0) chunks.push(buf.subarray(0, room));
      size += Math.min(buf.length, Math.max(room, 0));
      if (size > max) {
        finish();
        stream.destroy(); // the writer (the Consul agent) ignores EPIPE on a handler's stdin
      }
    };
    stream.on('data', onData);
    stream.on('end', () => finish());
    stream.on('error', (e) => finish(e));
  });
}

/**
 * Handle one delivery for a loaded config: verify, record, act. Never
 * throws; the outcome carries the exit code.
 */
export async function handleFenceDelivery(cfg: VigilConfig, input: Buffer | string, deps: FenceHandlerDeps = {}): Promise<FenceHandlerOutcome> {
  const log = deps.log ?? moduleLog('fence-handler');
  const flush = deps.flush ?? flushLog;
  const run = deps.runCommand ?? realRunCommand;
  const hc = cfg.fenceHandler;
  const fail = (exitCode: number, error: string, extra: Record<string, unknown> = {}): FenceHandlerOutcome => {
    log.error({ ...extra, exitCode }, error);
    flush();
    return { exitCode, ran: [], error };
  };
  if (!hc) return fail(2, 'no fence_handler section in the config; no event acts');

  let key: Buffer | undefined;
  if (hc.keyFile !== undefined) {
    try {
      key = (deps.readKey ?? readFenceKey)(hc.keyFile);
    } catch (e) {
      return fail(e instanceof ConfigError ? 2 : 1, `key file refused, no event acts: ${errorMessage(e)}`, { keyFile: hc.keyFile });
    }
  }
  let bootTimeMs: number;
  try {
    bootTimeMs = (deps.bootTimeMs ?? readBootTimeMs)();
  } catch (e) {
    return fail(1, `cannot read the boot time, no event acts: ${errorMessage(e)}`);
  }
  const file = seenPath(cfg.stateDir);
  let result: DeliveryResult;
  try {
    result = await withSeenLock(file, () => {
      // The clock is read once the lock is held: freshness is judged when the decision is made.
      const nowMs = (deps.nowMs ?? Date.now)();
      const store = SeenStore.open(file, nowMs);
      if (store.load.corrupt) {
        log.error({ file, problem: store.load.problem, movedTo: store.load.movedTo },
          'handled-events store unusable: treated as empty (replays stay bounded by max_age and the boot time)');
      }
      const r = verifyDelivery(input, {
        node: cfg.node, event: hc.event, maxAgeMs: hc.maxAgeMs, maxSkewMs: hc.maxSkewMs,
        nowMs, bootTimeMs, ...(key ? { key } : {}), isSeen: (k) => store.has(k),
      });
      const accepted = r.decisions.filter((d) => d.accept);
      if (accepted.length > 0) {
        for (const d of accepted) store.add(d.replayKeys ?? [], nowMs);
        // Recorded before acting: if this write fails, nothing acts (a later replay would repeat it).
        store.save();
      }
      // For the daemon's metrics endpoint; never a reason not to act.
      try { addDelivery(countsPath(cfg.stateDir), r); } catch (e) {
        log.warn({ err: errorMessage(e) }, 'fence-event counts not updated (metrics only)');
      }
      return r;
    });
  } catch (e) {
    return fail(1, `handled-events store failed, no event acts: ${errorMessage(e)}`, { file, code: (e as { code?: string }).code });
  }

  if (!result.ok) {
    log.warn({ reason: result.reason, detail: result.detail, bytes: result.bytes }, `delivery rejected: ${result.reason}`);
  } else {
    log.info({ events: result.decisions.length, bytes: result.bytes }, 'delivery received');
  }
  for (const d of result.decisions) {
    const ev = { index: d.index, id: d.id, reason: d.reason, detail: d.detail, verb: d.verb, sender: d.sender, timestamp: d.timestamp, encoding: d.encoding, signed: d.signed };
    if (d.accept) log.warn(ev, `event accepted: ${d.verb} from ${d.sender}`);
    else log.warn(ev, `event rejected: ${d.reason}`);
  }

  const plan = planCommands(result.decisions);
  const ran: FenceHandlerOutcome['ran'] = [];
  const timeoutMs = cfg.fence?.actionTimeoutMs ?? DEFAULT_ACTION_TIMEOUT_MS;
  let exitCode = 0;
  let error: string | undefined;
  for (const command of plan) {
    const evidence = result.decisions.filter((d) => d.accept && d.command === command)
      .map((d) => ({ id: d.id, verb: d.verb, sender: d.sender, timestamp: d.timestamp, signed: d.signed }));
    const actions = command === 'fence' ? (cfg.fence?.actions ?? []) : hc.onEnable;
    if (command === 'fence' && cfg.fence?.dryRun) {
      log.warn({ evidence, actions: actions.map(describeCommand) }, 'would fence (fence.dry_run): no action run');
      continue;
    }
    if (actions.length === 0) {
      const what = command === 'fence' ? 'fence.actions' : 'fence_handler.on_enable';
      if (command === 'fence') { exitCode = 1; error = `a fence was accepted but ${what} is empty`; log.error({ evidence }, error); }
      else log.warn({ evidence }, `${what} is empty: nothing to run`);
      continue;
    }
    log.warn({ evidence, actions: actions.map(describeCommand) }, command === 'fence' ? 'fencing this host: running fence.actions' : 'enabling: running fence_handler.on_enable');
    // The evidence must be on disk before an action that may power the host off.
    flush();
    const results: CommandResult[] = [];
    for (const a of actions) {
      const r = await run(a, { timeoutMs });
      results.push(r);
      const line = { command: describeCommand(a), code: r.code, signal: r.signal, timedOut: r.timedOut, spawnError: r.spawnError, durationMs: Math.round(r.durationMs), stderr: r.stderr.slice(0, 2000) };
      if (r.ok) log.info(line, `${command} action done`);
      else log.error(line, `${command} action failed; going on with the next`);
      flush();
    }
    ran.push({ command, results });
  }
  flush();
  return { exitCode, result, ran, ...(error ? { error } : {}) };
}

/** Run `fence-handler`; returns the exit code. */
export async function run(args: string[], deps: FenceHandlerDeps & { stdin?: Readable } = {}): Promise<number> {
  let values: { config?: string; help?: boolean };
  try {
    ({ values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }));
  } catch (e) {
    process.stderr.write(`vigil: fence-handler: ${errorMessage(e)}\n${USAGE}`);
    return 2;
  }
  if (values.help) { process.stdout.write(USAGE); return 0; }
  let cfg: VigilConfig;
  try {
    cfg = loadConfig(values.config ?? DEFAULT_CONFIG_FILE);
  } catch (e) {
    process.stderr.write(`vigil: fence-handler: ${errorMessage(e)}\n`);
    return e instanceof ConfigError ? 2 : 1;
  }
  if (!deps.log) initLog({ level: cfg.log.level, node: cfg.node, sync: true, ...(cfg.log.file ? { file: cfg.log.file } : {}) });
  let input: Buffer;
  try {
    input = await readBounded(deps.stdin ?? process.stdin);
  } catch (e) {
    (deps.log ?? moduleLog('fence-handler')).error({ code: (e as NodeJS.ErrnoException).code }, `cannot read stdin: ${errorMessage(e)}`);
    flushLog();
    return 1;
  }
  const outcome = await handleFenceDelivery(cfg, input, deps);
  flushLog();
  return outcome.exitCode;
}
