/**
 * Layer: CLI. The verbs that manage a running daemon from outside:
 * start (detached), stop, restart, reload, status, leave.
 *
 * They find the daemon through the PID file named in the config and talk
 * to it through its control socket. A PID is signalled only after checking
 * that the process is a vigil for the same config (never a stale PID that
 * now belongs to something else: vzhaipd V-39).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { loadConfig } from '../config/load';
import type { VigilConfig } from '../config/types';
import { errorMessage } from '../errors';
import { readPid, isVigilProcess, isRunning } from '../daemon/pidfile';
import { askControl, controlPath } from '../daemon/control';
import { parseDurationMs, DURATION_FORMS } from '../util/duration';
import { CONFIG_OPTS, EXIT, parseFlags, usageError } from './common';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function load(verb: string, file: string, checkPermissions = true): VigilConfig | undefined {
  try {
    return loadConfig(path.resolve(file), { checkPermissions });
  } catch (e) {
    usageError(verb, errorMessage(e));
    return undefined;
  }
}

/** The pid of the running daemon for this config, if any. */
function runningPid(cfg: VigilConfig): number | undefined {
  const pid = readPid(cfg.pidfile);
  return pid !== undefined && isRunning(pid) && isVigilProcess(pid, cfg.file) ? pid : undefined;
}

export const START_HELP = `usage: vigil start [-c FILE] [--timeout 30s]

Start the daemon detached. Returns once the daemon has written its PID file
(exit 0), or non-zero with its error if it fails to start. Without log.file
in the config, the detached daemon logs to <state_dir>/vigil.log.
`;

/** `vigil start`. */
export async function start(args: string[]): Promise<number> {
  const f = parseFlags('start', args, { ...CONFIG_OPTS, timeout: { type: 'string', default: '30s' } });
  if (!f) return EXIT.USAGE;
  if (f.values.help) { process.stdout.write(START_HELP); return EXIT.OK; }
  const timeoutMs = parseDurationMs(f.values.timeout);
  if (timeoutMs === undefined) return usageError('start', `--timeout '${f.values.timeout}' is not ${DURATION_FORMS}`);
  const cfg = load('start', String(f.values.config));
  if (!cfg) return EXIT.USAGE;
  const running = runningPid(cfg);
  if (running !== undefined) {
    process.stdout.write(`vigil is already running for ${cfg.file} (pid ${running})\n`);
    return EXIT.OK;
  }
  const env = { ...process.env };
  if (!cfg.log.file) {
    fs.mkdirSync(cfg.stateDir, { recursive: true, mode: 0o700 });
    env.VIGIL_LOG_FILE = path.join(cfg.stateDir, 'vigil.log');
  }
  delete env.NOTIFY_SOCKET; // a detached daemon is not the unit's main process
  const stderrFile = path.join(cfg.stateDir, 'vigil.start.err');
  fs.mkdirSync(cfg.stateDir, { recursive: true, mode: 0o700 });
  const errFd = fs.openSync(stderrFile, 'w', 0o600);
  const child = spawn(process.execPath, [...process.execArgv, require.main?.filename ?? path.join(__dirname, '..', '..', '..', 'bin', 'vigil'), 'run', '-c', cfg.file], {
    detached: true, stdio: ['ignore', 'ignore', errFd], env,
  });
  fs.closeSync(errFd);
  let exited: number | null | undefined;
  child.on('exit', (code) => { exited = code ?? 1; });
  child.unref();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited !== undefined) {
      const err = fs.readFileSync(stderrFile, 'utf8').trim().split('\n').filter(Boolean).pop();
      process.stderr.write(`vigil start: the daemon exited with code ${exited}${err ? `: ${err.replace(/^vigil: /, '')}` : ''}\n`);
      return exited === 0 || exited === null ? EXIT.FAIL : exited;
    }
    if (readPid(cfg.pidfile) === child.pid) {
      process.stdout.write(`vigil started for ${cfg.file} (pid ${child.pid})\n`);
      return EXIT.OK;
    }
    await sleep(25);
  }
  process.stderr.write(`vigil start: the daemon did not write ${cfg.pidfile} within ${timeoutMs} ms\n`);
  return EXIT.FAIL;
}

export const STOP_HELP = `usage: vigil stop [-c FILE] [--timeout 90s]

Stop the daemon gracefully (TERM: on_slave, addresses removed, PID file
removed) and wait for it to exit. Exit 0 once stopped or if it was not
running; 1 if it is still running at the timeout.
`;

/** `vigil stop`. */
export async function stop(args: string[]): Promise<number> {
  const f = parseFlags('stop', args, { ...CONFIG_OPTS, timeout: { type: 'string', default: '90s' } });
  if (!f) return EXIT.USAGE;
  if (f.values.help) { process.stdout.write(STOP_HELP); return EXIT.OK; }
  const timeoutMs = parseDurationMs(f.values.timeout);
  if (timeoutMs === undefined) return usageError('stop', `--timeout '${f.values.timeout}' is not ${DURATION_FORMS}`);
  // Stopping must work even if the config was since broken by an edit.
  const cfg = load('stop', String(f.values.config), false);
  if (!cfg) return EXIT.USAGE;
  return stopPid(cfg, timeoutMs);
}

async function stopPid(cfg: VigilConfig, timeoutMs: number): Promise<number> {
  const pid = runningPid(cfg);
  if (pid === undefined) {
    process.stdout.write(`vigil is not running for ${cfg.file}\n`);
    return EXIT.OK;
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isRunning(pid)) {
      process.stdout.write(`vigil stopped (pid ${pid})\n`);
      return EXIT.OK;
    }
    await sleep(25);
  }
  process.stderr.write(`vigil stop: pid ${pid} still running after ${timeoutMs} ms\n`);
  return EXIT.FAIL;
}

export const RESTART_HELP = `usage: vigil restart [-c FILE]

Stop, then start. A master that restarts resumes as master (the HA IP stays
on the interface only if the stop did not release it: use reload for config
changes that can apply live).
`;

/** `vigil restart`. */
export async function restart(args: string[]): Promise<number> {
  const f = parseFlags('restart', args, { ...CONFIG_OPTS, timeout: { type: 'string', default: '90s' } });
  if (!f) return EXIT.USAGE;
  if (f.values.help) { process.stdout.write(RESTART_HELP); return EXIT.OK; }
  const cfg = load('restart', String(f.values.config));
  if (!cfg) return EXIT.USAGE;
  const code = await stopPid(cfg, parseDurationMs(f.values.timeout) ?? 90_000);
  if (code !== EXIT.OK) return code;
  return start(['-c', cfg.file]);
}

export const RELOAD_HELP = `usage: vigil reload [-c FILE]

Ask the running daemon to reload its config. The new config is validated
first; if it is refused, the daemon keeps the old one and this prints why
(exit 1).
`;

/** `vigil reload`. */
export async function reload(args: string[]): Promise<number> {
  const f = parseFlags('reload', args, CONFIG_OPTS);
  if (!f) return EXIT.USAGE;
  if (f.values.help) { process.stdout.write(RELOAD_HELP); return EXIT.OK; }
  const cfg = load('reload', String(f.values.config), false);
  if (!cfg) return EXIT.USAGE;
  try {
    const r = (await askControl(controlPath(cfg.pidfile), { cmd: 'reload' })) as { ok: boolean; error?: string };
    if (r.ok) { process.stdout.write('config reloaded\n'); return EXIT.OK; }
    process.stderr.write(`vigil reload: ${r.error}\n`);
    return EXIT.FAIL;
  } catch (e) {
    process.stderr.write(`vigil reload: vigil is not running for ${cfg.file} (${errorMessage(e)})\n`);
    return EXIT.NOT_RUNNING;
  }
}

export const STATUS_HELP = `usage: vigil status [-c FILE] [--json]

Show the running daemon's state: for the HA IP role its role, since when,
the last probe and its rtt, the failure count, the addresses held; for the
fence role each agent's state and the fence count. Exit 0 if running, 3 if
not.
`;

/** `vigil status`. */
export async function status(args: string[]): Promise<number> {
  const f = parseFlags('status', args, { ...CONFIG_OPTS, json: { type: 'boolean' } });
  if (!f) return EXIT.USAGE;
  if (f.values.help) { process.stdout.write(STATUS_HELP); return EXIT.OK; }
  const cfg = load('status', String(f.values.config), false);
  if (!cfg) return EXIT.USAGE;
  let st: Record<string, unknown>;
  try {
    st = (await askControl(controlPath(cfg.pidfile), { cmd: 'status' })) as Record<string, unknown>;
  } catch {
    if (f.values.json) process.stdout.write(JSON.stringify({ running: false, config: cfg.file }) + '\n');
    else process.stdout.write(`vigil is not running for ${cfg.file}\n`);
    return EXIT.NOT_RUNNING;
  }
  if (f.values.json) {
    process.stdout.write(JSON.stringify({ running: true, ...st }, null, 2) + '\n');
    return EXIT.OK;
  }
  process.stdout.write(formatStatus(st));
  return EXIT.OK;
}

/** Human-readable status. */
export function formatStatus(st: Record<string, unknown>): string {
  const lines = [`vigil running: pid ${st.pid}, node ${st.node}, config ${st.config}, since ${st.startedAt}`];
  const roles = (st.roles ?? {}) as Record<string, Record<string, unknown>>;
  const vip = roles.vip;
  if (vip) {
    const lp = vip.lastProbe as { at: string; result: string; mac?: string; rttMs?: number; error?: string } | undefined;
    lines.push(`vip: ${vip.role}${vip.phase && vip.phase !== 'steady' ? ` (${vip.phase})` : ''} since ${vip.since} on ${vip.interface}, HA IP ${vip.haIp}`);
    const ct = vip.container as { container: string; phase: string; status?: string; error?: string; polls: number } | undefined;
    if (ct) lines.push(`  container ${ct.container}: ${ct.phase}${ct.status ? ` (vzlist says ${ct.status})` : ''}${ct.error ? ` (${ct.error})` : ''}; ${ct.polls} polls`);
    lines.push(`  last probe: ${lp ? `${lp.result}${lp.mac ? ` from ${lp.mac}` : ''}${lp.rttMs !== undefined ? ` in ${lp.rttMs} ms` : ''}${lp.error ? ` (${lp.error})` : ''} at ${lp.at}` : 'none yet'}`);
    lines.push(`  failures: ${vip.failures}; takeovers: ${vip.takeovers}; step-downs: ${vip.stepDowns}`);
    lines.push(`  held: ${(vip.held as string[]).join(', ') || 'nothing'}`);
    if (vip.track) lines.push(`  track: ${JSON.stringify(vip.track)}`);
  }
  const fence = roles.fence as Record<string, any> | undefined;
  if (fence) {
    lines.push(`fence: ${fence.phase}, verdict: ${fence.verdict}; isolated cycles ${fence.fenceCount}/${fence.confirmCycles}; servers seen: ${fence.seenServers ? 'yes' : 'no'}${fence.dryRun ? ' (dry run)' : ''}`);
    for (const a of (fence.agents ?? []) as Record<string, any>[]) {
      const st = a.state as Record<string, any>;
      const what = st.kind === 'client' ? `client, known_servers ${st.knownServers}` : st.kind === 'unknown' ? `unknown (${st.reason})` : st.kind;
      const proc = a.process ? `; process ${a.process.running ? `pid ${a.process.pid}` : 'not running'}, restarts ${a.process.restarts}` : '';
      lines.push(`  agent ${a.name} ${a.url}: ${what}${proc}`);
    }
  }
  return lines.join('\n') + '\n';
}

export const LEAVE_HELP = `usage: vigil leave [-c FILE]

Make every supervised Consul agent leave its cluster gracefully
(PUT /v1/agent/leave), then stop vigil (hostha's 'consuldaemon leave').
`;

/** `vigil leave`. */
export async function leave(args: string[]): Promise<number> {
  const f = parseFlags('leave', args, CONFIG_OPTS);
  if (!f) return EXIT.USAGE;
  if (f.values.help) { process.stdout.write(LEAVE_HELP); return EXIT.OK; }
  const cfg = load('leave', String(f.values.config), false);
  if (!cfg) return EXIT.USAGE;
  try {
    const r = (await askControl(controlPath(cfg.pidfile), { cmd: 'leave' }, 60_000)) as { ok: boolean; results?: unknown[] };
    process.stdout.write(`${JSON.stringify(r.results ?? [])}\n`);
  } catch (e) {
    process.stderr.write(`vigil leave: vigil is not running for ${cfg.file} (${errorMessage(e)})\n`);
    return EXIT.NOT_RUNNING;
  }
  return stopPid(cfg, 90_000);
}
