/**
 * Layer: bench support. What every bench entry point shares: the `--full`
 * flag and its options, the root check, progress lines on stderr, sleeping
 * and polling on the bench clock.
 */
import { parseArgs } from 'node:util';
import { nowNs } from './client';

/** Options every bench takes. */
export interface BenchArgs {
  /** The long run (`--full`); otherwise the quick default. */
  full: boolean;
  /** Bench-specific overrides (`--faults 3`, `--minutes 1` …), as strings. */
  values: Record<string, string | boolean | undefined>;
  help: boolean;
}

/**
 * Parse `--full`, `--help` and the bench's own string options. Unknown
 * flags are an error (exit code 2 from the caller).
 */
export function parseBenchArgs(argv: string[], own: Record<string, { type: 'string' | 'boolean' }> = {}): BenchArgs {
  const { values } = parseArgs({
    args: argv,
    options: { full: { type: 'boolean' }, quick: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, ...own },
    strict: true,
    allowPositionals: false,
  });
  return { full: values.full === true, help: values.help === true, values: values as BenchArgs['values'] };
}

/** A positive number from an option, or the default. */
export function numberOption(v: string | boolean | undefined, dflt: number, name: string): number {
  if (v === undefined || typeof v === 'boolean') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got '${v}'`);
  return n;
}

/** Refuse politely unless root: the benches build network namespaces. */
export function requireRoot(name: string): boolean {
  if (process.getuid?.() === 0) return true;
  process.stderr.write(`${name}: needs root (it builds network namespaces); try: sudo npm run bench\n`);
  return false;
}

const started = Date.now();

/** A progress line on stderr, prefixed with the bench name and elapsed time. */
export function progress(name: string, msg: string): void {
  process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(7)} s] ${name}: ${msg}\n`);
}

/** Sleep `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** Poll `cond` every `everyMs` until truthy; undefined on timeout (no throw). */
export async function pollUntil<T>(cond: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, everyMs = 10): Promise<T | undefined> {
  const deadline = nowNs() + BigInt(Math.round(timeoutMs * 1e6));
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (nowNs() > deadline) return undefined;
    await sleep(everyMs);
  }
}

/** Round for JSON: 1 decimal for ms figures. */
export const r1 = (x: number): number => (Number.isFinite(x) ? Math.round(x * 10) / 10 : x);
