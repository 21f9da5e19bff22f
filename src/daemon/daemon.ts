/**
 * Layer: daemon. Wires config, roles, signals, the PID lock, the control
 * socket and systemd notification into one process (`vigil run`).
 *
 * Signals (vzhaipd's, fixed: handled at once, not after a sleep, V-37):
 *   TERM, INT  graceful stop: each role releases (on_slave, addresses), the
 *              PID file goes, exit 0.
 *   HUP        reload: the new config is validated first; on error the old
 *              one stays and the reason is logged; the log file is reopened.
 *   USR1       log the full state.
 */
import { performance } from 'node:perf_hooks';
import type * as net from 'node:net';
import type { VigilConfig } from '../config/types';
import * as fs from 'node:fs';
import { loadConfig } from '../config/load';
import { checkSecureDir } from '../config/permissions';
import { errorMessage } from '../errors';
import { flushLog, initLog, moduleLog, reopenLog, setLogLevel, setLogRole, type Logger } from '../log';
import { acquirePidFile, recheckPidFile, releasePidFile, type PidLock } from './pidfile';
import { controlPath, serveControl, type ControlRequest } from './control';
import { systemdNotifier, type Notifier } from './notify';
import { createRoles, runnableRoles, type RoleRunner } from './roles';
import type { MetricsServer } from '../metrics/server';
import { enableMetrics } from '../metrics';

/** Error codes that mean the operator's input is wrong (exit 2), not a passing failure. */
const BAD_INPUT = new Set(['ENODEV', 'ENXIO', 'EPERM', 'EACCES', 'EINVAL', 'EVIGILCONFIG', 'ECONTROL']);

/** How often the PID file is re-checked (vzhaipd: 600 s); VIGIL_PID_RECHECK_MS overrides it (tests). */
const PID_RECHECK_MS = Number(process.env.VIGIL_PID_RECHECK_MS) > 0 ? Number(process.env.VIGIL_PID_RECHECK_MS) : 30_000;

/** Options for {@link runDaemon}; everything has a real default. */
export interface DaemonOptions {
  notifier?: Notifier;
  createRoles?: (cfg: VigilConfig, log: Logger, notifier: Notifier) => RoleRunner[] | Promise<RoleRunner[]>;
}

/** Run until stopped; resolves with the process exit code. */
export async function runDaemon(configFile: string, opts: DaemonOptions = {}): Promise<number> {
  let cfg: VigilConfig;
  try {
    // The YAML library is needed again only on reload (see releaseParser).
    cfg = loadConfig(configFile, { releaseParser: true });
    // state_dir holds the default log and the fence handler's seen store:
    // refuse one another user could plant symlinks in.
    if (fs.existsSync(cfg.stateDir)) checkSecureDir(cfg.stateDir, 'state_dir');
  } catch (e) {
    process.stderr.write(`vigil: ${errorMessage(e)}\n`);
    return 2;
  }
  initLog({ level: cfg.log.level, ...(cfg.log.file ?? process.env.VIGIL_LOG_FILE ? { file: cfg.log.file ?? process.env.VIGIL_LOG_FILE } : {}), node: cfg.node });
  setLogRole('starting'); // until the roles say (createRoles, then a role's runner)
  const log = moduleLog('daemon');
  let roles: RoleRunner[] = [];
  /** True once every role has started and the control socket is open. */
  let running = false;
  let stopping = false;

  // Signals are ours from here, before the PID file exists: a TERM that
  // arrives while the roles start (a container's mount hook, then at once its
  // umount hook) must stop gracefully, not kill the process with the default
  // action and leave the PID file and half-started roles behind.
  const onSignal = (sig: NodeJS.Signals) => {
    if (sig === 'SIGHUP') {
      if (stopping) log.warn('reload (SIGHUP) ignored: stopping');
      else if (running) reload();
      else log.warn('reload (SIGHUP) ignored: still starting');
      return;
    }
    if (sig === 'SIGUSR1') { log.info({ state: statusOf() }, 'state dump (SIGUSR1)'); return; }
    if (stopping) {
      // systemd's TERM, then an operator's, or `vigil leave` (which stops the
      // daemon itself) racing `vigil stop`: one stop is under way; say so once.
      if (!repeatLogged) log.info({ signal: sig }, 'signal received while already stopping: ignored');
      repeatLogged = true;
      return;
    }
    log.info({ signal: sig }, 'signal received');
    stop();
  };
  let repeatLogged = false;
  // Never unhooked: until process.exit, a TERM must find this handler. Without
  // it the default action kills the process between the last cleanup and the
  // exit (seen as "killed by SIGTERM" instead of exit 0 after a clean stop).
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR1'] as const) process.on(s, onSignal);

  let lock: PidLock;
  try {
    lock = acquirePidFile(cfg.pidfile);
  } catch (e) {
    process.stderr.write(`vigil: ${errorMessage(e)}\n`);
    log.error({ err: errorMessage(e) }, 'refusing to start');
    flushLog();
    return (e as { code?: string }).code === 'EALREADYRUNNING' ? 1 : 2;
  }
  const notifier = opts.notifier ?? systemdNotifier();
  const makeRoles = opts.createRoles ?? createRoles;
  let control: net.Server | undefined;
  let metrics: MetricsServer | undefined;
  const startedAt = new Date().toISOString();
  let lastReload: { at: string; ok: boolean; error?: string } | undefined;
  const timers: NodeJS.Timeout[] = [];

  const cleanup = () => {
    for (const t of timers) clearInterval(t);
    control?.close();
    void metrics?.close();
    releasePidFile(lock);
  };

  try {
    // Before the roles, so their first states are recorded; prom-client is
    // loaded only when a listener is configured.
    if (cfg.metrics) await enableMetrics(cfg.stateDir);
    roles = await makeRoles(cfg, log, notifier);
    for (const r of roles) await r.start();
    control = await serveControl(controlPath(cfg.pidfile), handleControl);
    if (cfg.metrics) {
      const { serveMetrics } = await import('../metrics/server');
      metrics = await serveMetrics(cfg.metrics.listen);
      log.info({ listen: metrics.address }, 'metrics listener started');
    }
  } catch (e) {
    log.error({ err: errorMessage(e) }, 'start failed');
    process.stderr.write(`vigil: ${errorMessage(e)}\n`);
    flushLog();
    cleanup();
    // Bad input (no such interface, no privilege, refused file) is exit 2, like a bad config.
    const code = (e as { code?: string }).code;
    return code !== undefined && BAD_INPUT.has(code) ? 2 : 1;
  }
  running = true;
  if (stopping) {
    // A stop arrived while the roles were starting: carry it out now.
    log.info('stop requested during start: stopping');
    for (const r of roles) r.stop();
  } else {
    log.info({ config: cfg.file, roles: roles.map((r) => r.name), pid: process.pid }, 'vigil started');
    notifier.ready(`roles: ${roles.map((r) => r.name).join(', ')}`);
  }

  async function handleControl(req: ControlRequest): Promise<unknown> {
    if (req.cmd === 'status') return { ok: true, ...statusOf() };
    if (req.cmd === 'reload') return reload();
    if (req.cmd === 'leave') {
      const results = await Promise.all(roles.map((r) => r.leave?.() ?? Promise.resolve(undefined)));
      setImmediate(stop);
      return { ok: true, pid: process.pid, results: results.filter((x) => x !== undefined) };
    }
    return { ok: false, error: `unknown request` };
  }

  function statusOf() {
    return {
      pid: process.pid,
      node: cfg.node,
      config: cfg.file,
      startedAt,
      ...(lastReload ? { lastReload } : {}),
      roles: Object.fromEntries(roles.map((r) => [r.name, r.status()])),
    };
  }

  function reload(): { ok: boolean; error?: string } {
    notifier.reloading();
    reopenLog();
    let next: VigilConfig;
    try {
      next = loadConfig(cfg.file, { releaseParser: true });
    } catch (e) {
      const error = `reload refused, keeping the running config: ${errorMessage(e)}`;
      log.error({ err: errorMessage(e) }, 'reload refused, keeping the running config');
      lastReload = { at: new Date().toISOString(), ok: false, error };
      notifier.ready();
      return { ok: false, error };
    }
    const fixed = ([['node', 'node'], ['pidfile', 'pidfile'], ['stateDir', 'state_dir'], ['metrics', 'metrics']] as const)
      .filter(([k]) => JSON.stringify(next[k]) !== JSON.stringify(cfg[k])).map(([, key]) => key);
    const roleSet = (c: VigilConfig) => runnableRoles(c).map((d) => d.name).join();
    let error: string | undefined = fixed.length > 0 ? `changing ${fixed.join(', ')} needs a restart (vigil restart)`
      : roleSet(next) !== roleSet(cfg) ? 'adding or removing a role needs a restart (vigil restart)' : undefined;
    // Check every role can take the new config before any of them does.
    if (!error) for (const r of roles) { error = r.canReload(next); if (error) break; }
    if (error) {
      log.error({ error }, 'reload refused, keeping the running config');
      lastReload = { at: new Date().toISOString(), ok: false, error: `reload refused, keeping the running config: ${error}` };
      notifier.ready();
      return { ok: false, error: lastReload.error! };
    }
    for (const r of roles) r.reload(next);
    cfg = next;
    setLogLevel(cfg.log.level);
    log.info({ config: cfg.file }, 'config reloaded');
    lastReload = { at: new Date().toISOString(), ok: true };
    notifier.ready();
    return { ok: true };
  }

  function stop() {
    if (stopping) return;
    stopping = true;
    // Before the roles are up this only records the request (see `running`).
    if (!running) return;
    notifier.stopping();
    log.info('stopping: releasing what the roles hold');
    for (const r of roles) r.stop();
  }

  timers.push(setInterval(() => {
    const r = recheckPidFile(lock);
    if (r === 'rewritten') log.warn({ pidfile: lock.path }, 'PID file was missing or stale: rewritten');
    if (r === 'taken') {
      // Another live vigil owns the file: leave the system as it is and go.
      log.error({ pidfile: lock.path }, 'another vigil owns the PID file: exiting without touching the system');
      flushLog();
      process.exit(1);
    }
  }, PID_RECHECK_MS));
  if (notifier.watchdogIntervalMs !== undefined) {
    timers.push(setInterval(() => {
      const now = performance.now();
      if (roles.every((r) => r.healthy(now))) notifier.watchdog();
      else log.warn('a role loop made no progress: withholding the systemd watchdog ping');
    }, notifier.watchdogIntervalMs));
  }

  const codes = await Promise.all(roles.map((r) => r.done));
  const code = codes.find((c) => c !== 0) ?? 0;
  log.info({ code }, 'vigil stopped');
  flushLog();
  cleanup();
  return code;
}
