/**
 * Layer: config, pure. What every section's normalisation shares: how a
 * key path and a value are quoted in messages, durations to ms, commands,
 * and the "must not be longer than" cross-key rule.
 */
import type { Command } from '../actions/commands';
import { formatDurationMs, parseDurationMs } from '../util/duration';

/** A key path in the file: `['vip', 'track', 'timeout']`, `['fence', 'agents', 0, 'url']`. */
export type KeyPath = (string | number)[];

/** Report one problem at a key path (the loader adds file and line). */
export type AddProblem = (path: KeyPath, text: string) => void;

/** Format a value the way messages quote it: `'5x'`, `0`, `null`, `["a"]`. */
export function formatValue(v: unknown): string {
  let s: string;
  if (v === undefined) s = 'nothing';
  else if (typeof v === 'string') s = /^[^'\\\x00-\x1f\x7f]*$/.test(v) ? `'${v}'` : JSON.stringify(v);
  else if (typeof v === 'number' || typeof v === 'boolean' || v === null) s = String(v);
  else {
    try { s = JSON.stringify(v) ?? String(v); } catch { s = String(v); }
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** `vip.check_interval`, `fence.agents[0].url`. */
export function formatKeyPath(path: KeyPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out === '' ? '(top level)' : out;
}

/** A validated duration value in ms (the schema has already checked it parses). */
export const ms = (v: unknown): number => parseDurationMs(v)!;

/** A validated command: a shell string as is, an argv copied. */
export function toCommand(v: unknown): Command {
  return typeof v === 'string' ? v : [...(v as string[])];
}

/** Report `path` when its duration is longer than `otherKey`'s, with the reason. */
export function notLonger(add: AddProblem, path: KeyPath, valueMs: number, otherKey: string, otherMs: number, why: string): void {
  if (valueMs > otherMs) {
    add(path, `${formatValue(formatDurationMs(valueMs))} is longer than ${otherKey} (${formatDurationMs(otherMs)}) (expected at most ${formatDurationMs(otherMs)}: ${why})`);
  }
}

/** `a`, `a or b`, `a, b or c`: how messages list alternatives. */
export function orList(words: readonly string[]): string {
  return words.length <= 1 ? (words[0] ?? '') : `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}`;
}
