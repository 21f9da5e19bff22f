/**
 * Test support: a pino logger whose lines (raw NDJSON strings) are kept in
 * memory, so a test can grep every line a module wrote — e.g. that no BMC
 * password ever reaches a log line.
 */
import pino, { type Logger } from 'pino';
import { Writable } from 'node:stream';

/** A `trace`-level logger and the lines it wrote so far. */
export function logLines(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { lines, log: pino({ level: 'trace' }, new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } })) };
}
