/**
 * Layer: CLI. The `vigil` command: dispatches a verb to its module.
 * The daemon's verbs are listed here; each role's verbs come from the
 * registry (`vigil <role> <verb>`, plus the older top-level names each
 * verb keeps as aliases). Each verb module exports `run(args) → exit code`;
 * they are loaded lazily so `vigil fence-handler` does not pay for the ARP
 * layer or another role, and a verb that needs the native addon reports a
 * missing build in one line.
 */
import { errorMessage } from '../errors';
import { flushLog } from '../log';
import { roles } from '../roles';
import type { RoleDefinition, VerbDefinition, VerbMain } from '../roles/role';

type Verb = { summary: string; load: () => Promise<VerbMain> };

const VERBS: Record<string, Verb> = {
  run: { summary: 'run the daemon in the foreground', load: async () => (await import('./run')).run },
  start: { summary: 'start the daemon detached', load: async () => (await import('./lifecycle')).start },
  stop: { summary: 'stop the daemon gracefully and wait', load: async () => (await import('./lifecycle')).stop },
  restart: { summary: 'stop, then start', load: async () => (await import('./lifecycle')).restart },
  reload: { summary: 'reload the config of the running daemon', load: async () => (await import('./lifecycle')).reload },
  status: { summary: 'show the state of the running daemon', load: async () => (await import('./lifecycle')).status },
  leave: { summary: 'Consul agents leave their cluster, then stop', load: async () => (await import('./lifecycle')).leave },
  'check-config': { summary: 'validate a config file without running', load: async () => (await import('./check-config')).run },
  config: { summary: 'config tools (import <format>)', load: async () => (await import('./config')).run },
  'arp-probe': { summary: 'probe an IP with ARP on an interface', load: async () => (await import('./arp-probe')).run },
};

/** The roles that have operator verbs. */
function verbRoles(defs: readonly RoleDefinition[]): RoleDefinition[] {
  return defs.filter((d) => (d.verbs ?? []).length > 0);
}

/** `vigil <role> --help`. */
function roleUsage(def: RoleDefinition): string {
  const verbs = def.verbs ?? [];
  const width = Math.max(...verbs.map((v) => v.name.length));
  return [
    `usage: vigil ${def.name} <verb> [options]     (vigil ${def.name} <verb> --help for each verb)`,
    '',
    `${def.summary}.`,
    '',
    ...verbs.map((v) => `  ${v.name.padEnd(width)}  ${v.summary}${v.aliases?.length ? ` (also: vigil ${v.aliases.join(', vigil ')})` : ''}`),
    '',
  ].join('\n');
}

/** `vigil --help`: the daemon's verbs, then each role with verbs, then the role verbs' older names. */
export function usage(defs: readonly RoleDefinition[] = roles()): string {
  const withVerbs = verbRoles(defs);
  const aliases = withVerbs.flatMap((d) => (d.verbs ?? []).flatMap((v) => (v.aliases ?? []).map((a) => [a, `same as vigil ${d.name} ${v.name}`] as const)));
  const entries: (readonly [string, string])[] = [
    ...Object.entries(VERBS).map(([name, v]) => [name, v.summary] as const),
    ...withVerbs.map((d) => [d.name, `${(d.verbs ?? []).map((v) => v.name).join(', ')}: vigil ${d.name} --help`] as const),
    ...aliases,
  ];
  const width = Math.max(...entries.map(([n]) => n.length));
  return [
    'usage: vigil <verb> [options]     (vigil <verb> --help for each verb)',
    '',
    ...entries.map(([name, summary]) => `  ${name.padEnd(width)}  ${summary}`),
    '',
    '  --version  print the version',
    '',
  ].join('\n');
}

/** What a command line names: a daemon verb, a role verb, or an older name of one. */
function findVerb(argv: string[], defs: readonly RoleDefinition[]):
  { label: string; verb: Verb | VerbDefinition; rest: string[] } | { role: RoleDefinition; sub: string | undefined } | undefined {
  const [name, ...rest] = argv;
  if (name === undefined) return undefined;
  const daemonVerb = VERBS[name];
  if (daemonVerb) return { label: name, verb: daemonVerb, rest };
  for (const d of defs) {
    for (const v of d.verbs ?? []) if (v.aliases?.includes(name)) return { label: name, verb: v, rest };
  }
  const role = verbRoles(defs).find((d) => d.name === name);
  if (!role) return undefined;
  const [sub, ...tail] = rest;
  const v = role.verbs!.find((x) => x.name === sub);
  return v ? { label: `${role.name} ${sub}`, verb: v, rest: tail } : { role, sub };
}

/** The package version. */
export function version(): string {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return (require('../../../package.json') as { version: string }).version;
}

/** Run a verb; resolves with its exit code. */
export async function dispatch(argv: string[]): Promise<number> {
  const [verb] = argv;
  if (verb === undefined || verb === '--help' || verb === '-h' || verb === 'help') {
    process.stdout.write(usage());
    return verb === undefined ? 2 : 0;
  }
  if (verb === '--version' || verb === '-V' || verb === 'version') {
    process.stdout.write(`vigil ${version()}\n`);
    return 0;
  }
  const defs = roles();
  const found = findVerb(argv, defs);
  if (!found) {
    process.stderr.write(`vigil: unknown verb '${verb}' (vigil --help lists them)\n`);
    return 2;
  }
  if ('role' in found) {
    const { role, sub } = found;
    if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
      (sub === undefined ? process.stderr : process.stdout).write(roleUsage(role));
      return sub === undefined ? 2 : 0;
    }
    process.stderr.write(`vigil: unknown verb '${role.name} ${sub}' (vigil ${role.name} --help lists them)\n`);
    return 2;
  }
  try {
    return await (await found.verb.load())(found.rest);
  } catch (e) {
    process.stderr.write(`vigil ${found.label}: ${errorMessage(e)}\n`);
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
