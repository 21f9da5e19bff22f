/**
 * Test support for the `group` role: run `vigil group …` as a child process
 * (bin/vigil, compiled; `npx tsc` first), in a lab host or
 * on the host itself, and fingerprint a directory tree to prove a dry run
 * wrote nothing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import type { LabHost } from './lab';
import { BIN } from './vigil';

/** argv of `vigil group ARGS` as an operator runs it (bin/vigil through the role registry). */
export function groupArgv(args: string[]): string[] {
  return [process.execPath, BIN, 'group', ...args];
}

/** Result of a finished run, with its wall time. */
export interface GroupRun { code: number | null; stdout: string; stderr: string; ms: number }

/** Run `vigil group …` to completion in `host` (or here). */
export async function runGroup(args: string[], host?: LabHost, timeoutMs = 60_000): Promise<GroupRun> {
  const t0 = Date.now();
  if (host) {
    const r = await host.exec(groupArgv(args), { timeoutMs });
    return { ...r, ms: Date.now() - t0 };
  }
  return new Promise((resolve) => {
    const argv = groupArgv(args);
    const p = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    p.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    p.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - t0 }));
  });
}

/** Start `vigil group …` without waiting (to kill it, or to race it). */
export function spawnGroup(args: string[], host?: LabHost): { proc: ChildProcess; done: Promise<GroupRun> } {
  const t0 = Date.now();
  const argv = groupArgv(args);
  const proc = host ? host.spawn(argv) : spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  proc.stdout?.on('data', (c: Buffer) => { stdout += c.toString(); });
  proc.stderr?.on('data', (c: Buffer) => { stderr += c.toString(); });
  const done = new Promise<GroupRun>((resolve) => proc.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - t0 })));
  return { proc, done };
}

/** Every path under `dir` with its type, mode, link target or content hash: equal fingerprints, equal trees. */
export function treeFingerprint(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = fs.lstatSync(p);
      const rel = path.relative(dir, p);
      if (st.isSymbolicLink()) out.push(`${rel} -> ${fs.readlinkSync(p)}`);
      else if (st.isDirectory()) { out.push(`${rel}/ ${(st.mode & 0o7777).toString(8)}`); walk(p); }
      else out.push(`${rel} ${(st.mode & 0o7777).toString(8)} ${st.size} ${st.isFIFO() ? 'fifo' : createHash('sha256').update(fs.readFileSync(p)).digest('hex')}`);
    }
  };
  walk(dir);
  return out;
}
