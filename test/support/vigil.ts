/**
 * Test support: run the real vigil daemon (compiled, bin/vigil) inside lab
 * hosts, with configs written the way an operator must (root-owned, 0600),
 * and read its state through its control socket.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { spawn, type ChildProcess } from 'node:child_process';
import { createLab, type Lab, type LabHost } from './lab';
import { askControl, controlPath } from '../../src/daemon/control';
import { parseDurationMs } from '../../src/util/duration';
import { parseConfigText } from '../../src/config/load';
import type { VipConfig } from '../../src/roles/vip/config';

/** The package root, from test/support/ or its compiled copy dist/test/support/. */
export const ROOT = (() => {
  let d = __dirname;
  while (!fs.existsSync(path.join(d, 'package.json'))) d = path.dirname(d);
  return d;
})();
/** The installed entry point the tests run. */
export const BIN = path.join(ROOT, 'bin', 'vigil');

/** A scratch directory for one test, removed by the caller's teardown. */
export function scratchDir(tag: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `vigil-${tag}-`));
  fs.chmodSync(d, 0o700);
  return d;
}

/** Write a YAML config 0600 and return its path. */
export function writeConfig(dir: string, name: string, cfg: unknown): string {
  const file = path.join(dir, `${name}.yml`);
  fs.writeFileSync(file, typeof cfg === 'string' ? cfg : stringify(cfg), { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return file;
}

/** A running daemon in a lab host. */
export interface Daemon {
  proc: ChildProcess;
  config: string;
  pidfile: string;
  logs: () => string;
  /** The exit code, or the name of the signal that ended the process. */
  exited: Promise<number | NodeJS.Signals | null>;
}

/**
 * A lab with `hosts` and a scratch directory for one test, both removed when
 * the test ends, failing or not; daemons pushed to `daemons` are killed first.
 */
export async function testLab(t: { teardown(fn: () => unknown): void }, hosts: string[], tag: string): Promise<{ lab: Lab; dir: string; daemons: Daemon[] }> {
  const lab = await createLab({ hosts });
  const dir = scratchDir(tag);
  const daemons: Daemon[] = [];
  t.teardown(async () => {
    for (const d of daemons) d.proc.kill('SIGKILL');
    await lab.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { lab, dir, daemons };
}

/** Start `vigil run -c FILE` in `host`, capturing its log lines. */
export function startDaemon(host: LabHost, config: string, pidfile: string): Daemon {
  const proc = host.spawn([process.execPath, BIN, 'run', '-c', config]);
  let out = '';
  proc.stdout?.on('data', (c: Buffer) => { out += c.toString(); });
  proc.stderr?.on('data', (c: Buffer) => { out += c.toString(); });
  const exited = new Promise<number | NodeJS.Signals | null>((r) => proc.on('exit', (code, signal) => r(code ?? signal)));
  return { proc, config, pidfile, logs: () => out, exited };
}

/** The daemon's status, or undefined when it does not answer. */
export async function daemonStatus(pidfile: string): Promise<Record<string, any> | undefined> {
  try {
    return (await askControl(controlPath(pidfile), { cmd: 'status' }, 2000)) as Record<string, any>;
  } catch {
    return undefined;
  }
}

/**
 * Poll `cond` every `everyMs` until it is truthy or `timeoutMs` passes.
 * `what` says what was expected by when; as a function it is read at the
 * failure, so it can add what happened instead (a daemon's last log lines).
 */
export async function waitFor<T>(cond: () => Promise<T> | T, timeoutMs: number, what: string | (() => string), everyMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v as NonNullable<T>; // truthy, so neither null nor undefined
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Run the CLI as a process (outside any namespace unless `host` is given). */
export async function runCli(args: string[], host?: LabHost, input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  if (host) return host.exec([process.execPath, BIN, ...args], { timeoutMs: 60_000, ...(input !== undefined ? { input } : {}) });
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    p.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(input ?? '');
  });
}

/**
 * Wait until `logs()` matches `re` (log lines reach the test through a pipe,
 * after the state change a test observed over the control socket), then
 * return the logs for a `t.match` that shows them if the wait timed out.
 */
export async function logsMatching(logs: () => string, re: RegExp, timeoutMs = SLACK_MS): Promise<string> {
  await waitFor(() => re.test(logs()), timeoutMs, `a log line matching ${re}`).catch(() => undefined);
  return logs();
}

/** A lab host set up to run the HA IP role alone (see {@link vipNode}). */
export interface VipNode { h: LabHost; pidfile: string; config: string; role: () => Promise<string | undefined> }

/**
 * Write a config for the HA IP role on `h` (its own PID file and state dir
 * under `dir`, debug logs) and return how to find the daemon and its role.
 */
export function vipNode(dir: string, h: LabHost, haIp: string, vip: Record<string, unknown>): VipNode {
  const pidfile = path.join(dir, h.name, 'vigil.pid');
  fs.mkdirSync(path.dirname(pidfile), { recursive: true, mode: 0o755 });
  const config = writeConfig(dir, h.name, { node: h.name, pidfile, state_dir: path.join(dir, h.name, 'st'), log: { level: 'debug' }, vip: { interface: h.ifname, address: `${haIp}/24`, ...vip } });
  return { h, pidfile, config, role: async () => (await daemonStatus(pidfile))?.roles?.vip?.role as string | undefined };
}

// ---- Bounds: every wait for an event states its bound from the configuration ----

/**
 * Scheduling slack added once to every bound: on a loaded 2-core machine
 * (other suites, tsc, other engineers' runs) a timer, a netlink call, a
 * fork of on_master/on_slave or a control-socket round trip can be late by
 * seconds. Generous on purpose: a test proves that an event happens, and in
 * which order; how fast is measured in bench/, never asserted here.
 */
export const SLACK_MS = 4000;

/**
 * Start-up: a daemon process up and answering status (node's start, the
 * config load and checks, the native addon, the control socket). No setting
 * governs it: about half a second idle, several seconds under load.
 */
export const START_MS = 10_000;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A config duration (`'200ms'`, `'1s'`, a number of seconds) in ms; `dflt` when absent. */
export function durationMs(v: unknown, dflt?: string): number {
  const ms = parseDurationMs(v ?? dflt);
  if (ms === undefined) throw new Error(`not a duration: ${JSON.stringify(v ?? dflt)}`);
  return ms;
}

/** The HA IP role's timings as the daemon reads them from a test's `vip:` section, in ms. */
export type VipTiming = Pick<VipConfig, 'checkIntervalMs' | 'failureCheckIntervalMs' | 'takeOverAfter' | 'probeTimeoutMs'
  | 'probeTimeoutMinMs' | 'masterCheckIntervalMs' | 'ipFileCheckIntervalMs' | 'announce' | 'track'>;

/**
 * Read the timings from the `vip:` section a test wrote through the config
 * loader itself, so the schema's defaults and the normalisation rules (the
 * track timeout defaults to the track interval) are the daemon's own.
 */
export function vipTiming(vip: Record<string, any>): VipTiming {
  // Tests often pass the timing keys alone: stand-ins for the required keys the timings do not depend on.
  const section = { interface: 'eth0', address: '192.0.2.1/32', ...vip, ...(vip.track ? { track: { command: 'true', ...vip.track } } : {}) };
  const cfg = parseConfigText(stringify({ node: 'timing', vip: section }), path.join(os.tmpdir(), 'vip-timing.yml'));
  if (!cfg.vip) throw new Error('vipTiming: the section did not load as a vip role');
  return cfg.vip;
}

/**
 * The model the bounds below follow (src/roles/vip/machine.ts, runner.ts).
 * A slave probes every check_interval; a new slave's first probe is drawn at
 * random within one check_interval (runner.start), after on_slave and the
 * initial cleanup. A silent probe (it waits probe_timeout) counts a failure
 * and the next comes failure_check_interval later (slaveProbed); at
 * take_over_after failures it adds the addresses and is master (onAdded),
 * then announces count times interval apart and starts on_master (neither
 * awaited). A master checks every master_check_interval: a reconcile, then a
 * conflict probe (probe_timeout); the higher MAC steps down (on_slave, then
 * the removal). A master whose own link is down releases the HA IP once it
 * has been down for the machine's takeoverWindowMs, rechecking every
 * failure_check_interval. Commands in the tests are an echo or a `test -f`:
 * their run time is in the slack, not command_timeout.
 */

/** The machine's takeoverWindowMs: check_interval + take_over_after × (failure_check_interval + probe_timeout). */
export const takeoverWindowMs = (v: VipTiming) => v.checkIntervalMs + v.takeOverAfter * (v.failureCheckIntervalMs + v.probeTimeoutMs);

/** How long the announcements of a takeover last: count × interval. */
export const announceMs = (v: VipTiming) => v.announce.count * v.announce.intervalMs;

/**
 * By when a slave is master once the HA IP went silent (or, alone on the
 * segment, once it started as slave): the next probe within a check interval
 * (the initial spread for a new slave), take_over_after silent probes, the
 * add, the announcements; plus slack.
 */
export const takeoverBoundMs = (v: VipTiming) => takeoverWindowMs(v) + announceMs(v) + SLACK_MS;

/** By when a master has acted on its next master check (a competing owner, a missing or dropped address): master_check_interval + probe_timeout + slack. */
export const masterCheckBoundMs = (v: VipTiming) => v.masterCheckIntervalMs + v.probeTimeoutMs + SLACK_MS;

/** By when a master that lost a conflict is a slave: the master check that sees the other owner, on_slave, the removal. */
export const stepDownBoundMs = (v: VipTiming) => masterCheckBoundMs(v);

/**
 * By when two nodes started together settle on one master: a takeover, and
 * if both took over in the same instant, the step-down of the higher MAC.
 */
export const oneMasterBoundMs = (v: VipTiming) => takeoverBoundMs(v) + stepDownBoundMs(v);

/**
 * By when a master whose own link went down has released the HA IP: the next
 * master check sees the link down (master_check_interval + probe_timeout),
 * then it rechecks every failure_check_interval (each up to probe_timeout)
 * until the link has been down for takeoverWindowMs, and the one after that
 * releases; plus slack.
 */
export const releaseBoundMs = (v: VipTiming) => v.masterCheckIntervalMs + v.probeTimeoutMs + takeoverWindowMs(v) + v.failureCheckIntervalMs + v.probeTimeoutMs + SLACK_MS;

/**
 * By when `n` track checks in a row have run once the check's outcome
 * changed: the next check within one track interval, n − 1 more interval
 * apart, the last one taking up to the track timeout; plus slack.
 */
export const trackBoundMs = (v: VipTiming, n: number) => {
  if (!v.track) throw new Error('no vip.track in this timing');
  return n * v.track.intervalMs + v.track.timeoutMs + SLACK_MS;
};

/** By when an IP file edit is on a master's interface: the file check interval, then the reconcile; plus slack. */
export const ipFileBoundMs = (v: VipTiming) => v.ipFileCheckIntervalMs + SLACK_MS;

/** What a failed wait needs of a daemon: its process and its log (a {@link Daemon}, or a test's own wrapper). */
export interface Witness { proc?: ChildProcess; logs: () => string; config?: string }

/** The self-fencing role's timings as the daemon reads them from a test's `fence:` section, in ms (defaults: src/config/schema.ts, or src/roles/fence/config.ts since the role registry). */
export interface FenceTiming { checkIntervalMs: number; confirmCycles: number; requestTimeoutMs: number; neighbourProbeTimeoutMs: number; agents: number }

export function fenceTiming(fence: Record<string, any>): FenceTiming {
  return {
    checkIntervalMs: durationMs(fence.check_interval, '5s'),
    confirmCycles: (fence.confirm_cycles as number | undefined) ?? 2,
    requestTimeoutMs: durationMs(fence.request_timeout, '2s'),
    neighbourProbeTimeoutMs: durationMs(fence.neighbour_probe_timeout, '500ms'),
    agents: Array.isArray(fence.agents) ? fence.agents.length : 0,
  };
}

/**
 * The longest one fence check cycle can take (src/roles/fence): the check
 * interval, every agent's request timeout, then the network check (the
 * server address and at most 16 neighbours, each up to the probe timeout).
 */
export const fenceCycleMaxMs = (f: FenceTiming) => f.checkIntervalMs + Math.max(1, f.agents) * f.requestTimeoutMs + 17 * f.neighbourProbeTimeoutMs;

/** By when a fence status shows what `n` cycles found: n cycles, plus slack. */
export const fenceCyclesBoundMs = (f: FenceTiming, n: number) => n * fenceCycleMaxMs(f) + SLACK_MS;

/** A process spawned by a test itself, as a {@link Witness}: its stdout and stderr are read (flowing, as `resume()` would). */
export function witness(proc: ChildProcess, config?: string): Witness {
  let out = '';
  proc.stdout?.on('data', (c: Buffer) => { out += c.toString(); });
  proc.stderr?.on('data', (c: Buffer) => { out += c.toString(); });
  return { proc, logs: () => out, ...(config !== undefined ? { config } : {}) };
}

/** Daemons a failed wait reports on: a list (read at the failure, so daemons started later count) or named ones. */
export type Witnesses = readonly (Witness | undefined)[] | Readonly<Record<string, Witness | undefined>>;

/** The last `n` lines of a daemon's log, indented. */
export function lastLines(d: Witness, n = 12): string {
  const lines = d.logs().trimEnd().split('\n').slice(-n);
  return lines.map((l) => `    ${l}`).join('\n');
}

/**
 * For waitFor's `what`: what was expected by when and, read at the failure,
 * what happened instead: the last lines of each daemon in `daemons` (named
 * by the key, or by their config file).
 */
export function expectedOf(what: string, ms: number, daemons: Witnesses = []): () => string {
  return () => {
    const named: [string, Witness | undefined][] = Array.isArray(daemons)
      ? (daemons as readonly (Witness | undefined)[]).map((d, i) => [d?.config ? path.basename(d.config, '.yml') : `daemon ${i + 1}`, d])
      : Object.entries(daemons as Record<string, Witness | undefined>);
    const tails = named.filter((e): e is [string, Witness] => e[1] !== undefined)
      .map(([name, d]) => `  ${name}'s last lines${d.proc ? ` (pid ${d.proc.pid}${d.proc.exitCode !== null || d.proc.signalCode !== null ? `, exited ${d.proc.exitCode ?? d.proc.signalCode}` : ''})` : ''}:\n${lastLines(d)}`);
    return `${what} within ${ms} ms${tails.length ? `; instead:\n${tails.join('\n')}` : ''}`;
  };
}

/**
 * `vigil run -c CONFIG` in this process's own namespace (roles that need no
 * lab: group command members, the Consul double on loopback), killed at
 * teardown; `out()` is everything it printed, `tail()` its last lines for a
 * failure message.
 */
export function runDaemonHere(t: { teardown(fn: () => unknown): void }, config: string): { proc: ChildProcess; out: () => string; tail: () => string } {
  const proc = spawn(process.execPath, [BIN, 'run', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  proc.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
  t.teardown(() => { proc.kill('SIGKILL'); });
  return { proc, out: () => out, tail: () => `; daemon's last lines:\n${out.split('\n').slice(-15).join('\n')}` };
}

/** Block the event loop for `ms` (a stalled process: a saturated core, a long GC). */
export function stall(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* spin */ }
}
