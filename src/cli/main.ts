/**
 * Layer: CLI. The `vigil` command: dispatches a verb to its module.
 * Each verb module exports `run(args) → exit code`; they are loaded lazily
 * so `vigil fence-handler` does not pay for the ARP layer, and a verb that
 * needs the native addon reports a missing build in one line.
 */
import { errorMessage } from '../errors';
import { flushLog } from '../log';

type Verb = { summary: string; load: () => Promise<(args: string[]) => Promise<number>> };

const VERBS: Record<string, Verb> = {
  run: { summary: 'run the daemon in the foreground', load: async () => (await import('./run')).run },
  start: { summary: 'start the daemon detached', load: async () => (await import('./lifecycle')).start },
  stop: { summary: 'stop the daemon gracefully and wait', load: async () => (await import('./lifecycle')).stop },
  restart: { summary: 'stop, then start', load: async () => (await import('./lifecycle')).restart },
  reload: { summary: 'reload the config of the running daemon', load: async () => (await import('./lifecycle')).reload },
  status: { summary: 'show the state of the running daemon', load: async () => (await import('./lifecycle')).status },
  leave: { summary: 'Consul agents leave their cluster, then stop', load: async () => (await import('./lifecycle')).leave },
  'check-config': { summary: 'validate a config file without running', load: async () => (await import('./check-config')).run },
  config: { summary: 'config tools (import-vzhaipd)', load: async () => (await import('./config')).run },
  'arp-probe': { summary: 'probe an IP with ARP on an interface', load: async () => (await import('./arp-probe')).run },
  'fence-handler': { summary: 'Consul watch handler for fence events (stdin)', load: async () => (await import('./fence-handler')).run },
  'fence-send': { summary: 'fire a (signed) fence event through Consul', load: async () => (await import('./fence-send')).run },
};

/** `vigil --help`. */
export function usage(): string {
  const width = Math.max(...Object.keys(VERBS).map((v) => v.length));
  return [
    'usage: vigil <verb> [options]     (vigil <verb> --help for each verb)',
    '',
    ...Object.entries(VERBS).map(([name, v]) => `  ${name.padEnd(width)}  ${v.summary}`),
    '',
    '  --version  print the version',
    '',
  ].join('\n');
}

/** The package version. */
export function version(): string {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return (require('../../../package.json') as { version: string }).version;
}

/** Run a verb; resolves with its exit code. */
export async function dispatch(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === undefined || verb === '--help' || verb === '-h' || verb === 'help') {
    process.stdout.write(usage());
    return verb === undefined ? 2 : 0;
  }
  if (verb === '--version' || verb === '-V' || verb === 'version') {
    process.stdout.write(`vigil ${version()}\n`);
    return 0;
  }
  const v = VERBS[verb];
  if (!v) {
    process.stderr.write(`vigil: unknown verb '${verb}' (vigil --help lists them)\n`);
    return 2;
  }
  try {
    return await (await v.load())(rest);
  } catch (e) {
    process.stderr.write(`vigil ${verb}: ${errorMessage(e)}\n`);
    return 2;
  }
}

/** The process entry point (bin/vigil). */
export function main(argv: string[]): void {
  dispatch(argv).then((code) => {
    flushLog();
    process.exitCode = code;
    // Verbs that leave nothing running end here; the daemon resolves only after its cleanup.
    setImmediate(() => process.exit(code));
  }, (e) => {
    process.stderr.write(`vigil: ${errorMessage(e)}\n`);
    process.exit(2);
  });
}
