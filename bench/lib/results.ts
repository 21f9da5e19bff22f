/**
 * Layer: bench support. Writes a bench's figures to
 * `bench/results/<name>.json` (in the source tree, also when run from
 * `dist/bench/`), with the machine and run context alongside so figures from
 * different machines are never compared by accident.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * `bench/results/` of the package, from either `bench/lib` or `dist/bench/lib`;
 * or `$BENCH_RESULTS_DIR` when set, so a trial run (a few faults, a
 * one-minute window) never overwrites the committed figures.
 */
export function resultsDir(): string {
  const env = process.env.BENCH_RESULTS_DIR;
  if (env) return path.resolve(env);
  let dir = __dirname;
  // Walk up to the package root (the folder holding package.json).
  for (let i = 0; i < 6 && !fs.existsSync(path.join(dir, 'package.json')); i++) dir = path.dirname(dir);
  return path.join(dir, 'bench', 'results');
}

/** Where the machine and software stood when the figures were taken. */
export interface RunContext {
  date: string;
  node: string;
  kernel: string;
  cpu: string;
  cpus: number;
  hostname: string;
}

/** The context of this run. */
export function runContext(): RunContext {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    node: process.version,
    kernel: os.release(),
    cpu: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    hostname: os.hostname(),
  };
}

/**
 * Write `{bench: name, context, ...data}` to `bench/results/<name>.json`
 * atomically (temp file + rename) and return the path.
 */
export function writeResult(name: string, data: Record<string, unknown>): string {
  if (!/^[a-z0-9][a-z0-9._-]*$/i.test(name)) throw new Error(`invalid bench result name '${name}'`);
  const dir = resultsDir();
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  const tmp = `${file}.${process.pid}.tmp`;
  const json = JSON.stringify({ bench: name, context: runContext(), ...data }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2);
  fs.writeFileSync(tmp, `${json}\n`);
  fs.renameSync(tmp, file);
  return file;
}
