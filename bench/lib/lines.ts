/**
 * Layer: bench support. The helper processes (client, fork and namespace
 * watchers) talk to the benches in lines on stdout; this reads them.
 */
import * as readline from 'node:readline';

/** Call `cb` for each line `stream` carries, without the newline. */
export function onLines(stream: NodeJS.ReadableStream, cb: (line: string) => void): void {
  readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', cb);
}
