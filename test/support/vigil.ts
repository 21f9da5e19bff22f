/**
 * Test support: run the real vigil daemon (compiled, bin/vigil) inside lab
 * hosts, with configs written the way an operator must (root-owned, 0600),
 * and read its state through its control socket.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import type { ChildProcess } from 'node:child_process';
import { createLab, type Lab, type LabHost } from './lab';
import { askControl, controlPath } from '../../src/daemon/control';

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
  const { spawn } = await import('node:child_process');
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
export async function logsMatching(logs: () => string, re: RegExp, timeoutMs = 3000): Promise<string> {
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
