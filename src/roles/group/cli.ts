/**
 * Layer: CLI. `vigil group <verb> …` (the integrator wires it to `vigil
 * group`): activate, deactivate, status, plan and check-config of the
 * groups in the `group:` section of the config file.
 *
 * Exit status (fixes xcatha's always-0, X-4):
 *   0 done (or nothing to do)            2 bad config or arguments
 *   3 refused by a precondition, nothing changed (address in use, link down, lock held)
 *   4 failed and rolled back             5 failed and NOT rolled back (a stop failed)
 *   1 internal error
 */
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { ConfigError, VigilError, errorMessage } from '../../errors';
import { readSecureFile } from '../../config/permissions';
import { DEFAULT_CONFIG_FILE } from '../../config/schema';
import { normalizeGroups } from './config';
import type { Report, Step } from './engine';
import { RealAddressIo } from './io';
import { takeTurn } from './state';
import { lockAfter } from './owner-lock';
import { wireGroup } from './wire';
import { EXIT, type GroupConfig } from './types';

const USAGE = `usage: vigil group activate|deactivate|status|plan NAME [-c FILE] [--dry-run] [--json]
       vigil group check-config [NAME] [-c FILE] [--json]

  activate NAME     preflight, then start the members in order (roll back on failure)
  deactivate NAME   stop the members in reverse order
  status NAME       each member's state read from the world: active n/n, partial k/n, inactive
  plan NAME         the effects activate would carry out, with the preflight results; changes nothing
  check-config      validate the group section without running anything

  -c, --config FILE   config file (default ${DEFAULT_CONFIG_FILE})
  -n, --dry-run       activate/deactivate: print the plan, change nothing
      --json          print the report as JSON
  -h, --help          this help

Exit status: 0 done, 2 bad config or arguments, 3 refused by a precondition
(nothing changed), 4 failed and rolled back, 5 failed and not rolled back.
`;

const VERBS = ['activate', 'deactivate', 'status', 'plan', 'check-config'] as const;
type Verb = (typeof VERBS)[number];

/** Load and normalise the `group:` section of `file` (other sections are other roles'). */
export function loadGroups(file: string): Map<string, GroupConfig> {
  return loadGroupFile(file).groups;
}

/** The `group:` section of `file`, and the file's top-level `node` (the owner lock's default node name). */
export function loadGroupFile(file: string): { groups: Map<string, GroupConfig>; node?: string } {
  const text = readSecureFile(file, 'config');
  let doc: unknown;
  try { doc = parseYaml(text, { uniqueKeys: true, version: '1.2' }); } catch (e) { throw new ConfigError(`${file}: YAML: ${errorMessage(e).split('\n')[0]}`); }
  const raw = (doc as Record<string, unknown> | null)?.group;
  if (raw === undefined || raw === null) throw new ConfigError(`${file}: group: is missing (expected a group section)`);
  const node = (doc as Record<string, unknown>).node;
  try {
    return { groups: normalizeGroups(raw), ...(typeof node === 'string' ? { node } : {}) };
  } catch (e) { throw e instanceof ConfigError ? new ConfigError(`${file}: ${e.message}`, e.detail) : e; }
}

function printReport(r: Report, json: boolean): void {
  if (json) { process.stdout.write(`${JSON.stringify(r, null, 2)}\n`); return; }
  const out: string[] = [];
  for (const p of r.preflight ?? []) out.push(`preflight ${p.ok ? 'ok     ' : 'REFUSED'} ${p.check}: ${p.detail}${p.elapsedMs !== undefined ? ` (${p.elapsedMs} ms)` : ''}`);
  if (r.action === 'status') for (const m of r.members ?? []) out.push(`${m.name} (${m.type}): ${m.status.state}${m.status.state === 'failed' ? `: ${m.status.reason}` : m.status.detail ? ` (${m.status.detail})` : ''}`);
  r.effects?.forEach((e, i) => out.push(`${String(i + 1).padStart(3)}. ${e.member} ${e.op}: ${e.detail}`));
  for (const w of r.warnings ?? []) out.push(`warning: ${w}`);
  if (r.ownerLock) out.push(r.ownerLock);
  out.push(r.summary);
  process.stdout.write(`${out.join('\n')}\n`);
}

const stepLine = (s: Step) => `${s.op} ${s.member}: ${s.ok ? 'ok' : 'FAILED'} ${s.detail} (${s.ms} ms)${s.output ? `\n    ${s.output.split('\n').join('\n    ')}` : ''}\n`;

/** Run `vigil group …`; returns the exit code. Never throws. */
export async function groupMain(argv: string[]): Promise<number> {
  let values: { config?: string; 'dry-run'?: boolean; json?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv, allowPositionals: true,
      options: { config: { type: 'string', short: 'c' }, 'dry-run': { type: 'boolean', short: 'n' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (e) {
    process.stderr.write(`vigil group: ${errorMessage(e)}\n${USAGE}`);
    return EXIT.CONFIG;
  }
  if (values.help) { process.stdout.write(USAGE); return EXIT.OK; }
  const [verb, name, ...extra] = positionals as [Verb | undefined, string | undefined, ...string[]];
  const needsName = verb !== 'check-config';
  if (!verb || !VERBS.includes(verb) || extra.length || (needsName && !name)) {
    process.stderr.write(`vigil group: ${!verb ? 'a verb is required' : !VERBS.includes(verb) ? `unknown verb '${verb}'` : extra.length ? `unexpected argument '${extra[0]}'` : `${verb} needs a group NAME`}\n${USAGE}`);
    return EXIT.CONFIG;
  }
  if (values['dry-run'] && verb !== 'activate' && verb !== 'deactivate') {
    process.stderr.write(`vigil group: --dry-run applies to activate and deactivate (plan is always dry)\n`);
    return EXIT.CONFIG;
  }
  const json = !!values.json;
  const file = values.config ?? DEFAULT_CONFIG_FILE;
  let groups: Map<string, GroupConfig>;
  let topNode: string | undefined;
  try {
    ({ groups, node: topNode } = loadGroupFile(file));
  } catch (e) {
    process.stderr.write(`vigil group: ${errorMessage(e)}\n`);
    return e instanceof ConfigError ? EXIT.CONFIG : EXIT.INTERNAL;
  }
  if (name !== undefined && !groups.has(name)) {
    process.stderr.write(`vigil group: no group '${name}' in ${file} (groups: ${[...groups.keys()].join(', ') || 'none'})\n`);
    return EXIT.CONFIG;
  }
  if (verb === 'check-config') {
    const names = name ? [name] : [...groups.keys()];
    if (json) process.stdout.write(`${JSON.stringify({ ok: true, file, groups: names.map((n) => ({ name: n, members: groups.get(n)!.members.map((m) => `${m.type}:${m.name}`) })) }, null, 2)}\n`);
    else process.stdout.write(`config OK: ${file} (groups: ${names.map((n) => `${n} [${groups.get(n)!.members.map((m) => m.name).join(', ')}]`).join('; ')})\n`);
    return EXIT.OK;
  }
  const g = groups.get(name!)!;
  const io = new RealAddressIo();
  try {
    const dry = verb === 'plan' || !!values['dry-run'];
    const { engine, lock, reload } = wireGroup(g, { io, ...(topNode ? { node: topNode } : {}), dry, withLock: verb !== 'status',
      ...(json ? {} : { onStep: (s: Step) => process.stdout.write(stepLine(s)) }) });
    let report: Report;
    if (dry) report = await engine.plan(verb === 'deactivate' ? 'deactivate' : 'activate');
    else if (verb === 'status') report = await engine.status();
    else {
      let turn;
      try {
        turn = await takeTurn(g.stateDir, g.name, g.lockTimeoutMs);
      } catch (e) {
        if (e instanceof VigilError && e.code === 'ELOCKED') {
          printReport({ group: g.name, action: verb as 'activate', exit: EXIT.REFUSED, summary: `refused: ${e.message}` }, json);
          return EXIT.REFUSED;
        }
        throw e;
      }
      try {
        // Read again inside the turn: the invocation before may have changed it.
        reload();
        report = verb === 'activate' ? await engine.activate() : await engine.deactivate();
        if (lock) report.ownerLock = await lockAfter(lock, verb as 'activate' | 'deactivate', report.exit);
      } finally { turn.release(); }
    }
    printReport(report, json);
    return report.exit;
  } catch (e) {
    process.stderr.write(`vigil group: ${verb} ${g.name}: ${errorMessage(e)}\n`);
    return e instanceof ConfigError ? EXIT.CONFIG : EXIT.INTERNAL;
  } finally {
    io.close();
  }
}
