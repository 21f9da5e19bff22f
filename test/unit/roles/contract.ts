/**
 * Test helper: what a registered role must have, per src/roles/README.md.
 * {@link contractProblems} lists every piece a definition lacks; the
 * registry test asserts it is empty for each registered role and non-empty
 * for a role built to lack them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse } from 'yaml';
import { isDeepStrictEqual } from 'node:util';
import { parseConfigText } from '../../../src/config/load';
import { dispatch } from '../../../src/cli/main';
import { roles } from '../../../src/roles';
import type { RoleDefinition } from '../../../src/roles/role';
import { capture } from '../../support/capture';

type Obj = Record<string, unknown>;

/** Every key of a section schema, with its schema node, depth first. */
function keysOf(schema: Obj, out: [string, Obj][] = []): [string, Obj][] {
  if (schema.type === 'object') for (const [k, s] of Object.entries((schema.properties ?? {}) as Record<string, Obj>)) { out.push([k, s]); keysOf(s, out); }
  if (schema.type === 'array') keysOf(schema.items as Obj, out);
  return out;
}

function schemaProblems(schema: Obj, where: string): string[] {
  if (schema.type === 'object' || schema.type === 'array') {
    const own = typeof schema.description === 'string' && schema.description !== '' ? [] : [`${where}: a mapping or list without a description (what messages say is expected)`];
    if (schema.type === 'object' && schema.additionalProperties !== false) own.push(`${where}: unknown keys are not refused (additionalProperties: false)`);
    const kids = schema.type === 'object'
      ? Object.entries((schema.properties ?? {}) as Record<string, Obj>).flatMap(([k, s]) => schemaProblems(s, `${where}.${k}`))
      : schemaProblems(schema.items as Obj, `${where}[]`);
    return [...own, ...kids];
  }
  return schema.vigil ? [] : [`${where}: a leaf without a kind (config/kinds.ts)`];
}

/** The documented lines of a sample: `key: value` or `# key: value`, value parsed. */
function sampleLines(text: string): Map<string, unknown[]> {
  const out = new Map<string, unknown[]>();
  for (const line of text.split('\n')) {
    const m = /^[ #-]*([a-z_][a-z0-9_]*):(?:\s+(.*?))?(?:\s+#.*)?$/.exec(line);
    if (!m) continue;
    let v: unknown;
    try { v = m[2] === undefined ? undefined : parse(m[2]); } catch { v = m[2]; }
    out.set(m[1]!, [...(out.get(m[1]!) ?? []), v]);
  }
  return out;
}

/** Every piece of the role contract `def` lacks, in words; empty when it has them all. */
export async function contractProblems(def: RoleDefinition): Promise<string[]> {
  const p: string[] = [];
  const s = def.section;
  if (!/^[a-z][a-z0-9-]*$/.test(def.name)) p.push(`name '${def.name}' is not lower-case words joined by '-'`);
  if (basename(def.dir) !== def.name) p.push(`dir ${def.dir} is not a folder named after the role`);
  if (!def.summary) p.push('no summary');
  if (!/^[a-z][a-z0-9_]*$/.test(s.key)) p.push(`section key '${s.key}' is not snake_case`);
  if (s.configKey !== s.key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())) p.push(`configKey '${s.configKey}' is not the camelCase of '${s.key}'`);
  p.push(...schemaProblems(s.schema, s.key));

  // Documented defaults: sample.yml names every key, each default as it is.
  const sampleFile = join(def.dir, 'sample.yml');
  if (!existsSync(sampleFile)) p.push(`no sample.yml with the section's keys and defaults in ${def.dir}`);
  else {
    const text = readFileSync(sampleFile, 'utf8');
    const lines = sampleLines(text);
    for (const [k, node] of keysOf(s.schema)) {
      if (!lines.has(k)) { p.push(`sample.yml does not document ${s.key} key '${k}'`); continue; }
      const dflt = node.default;
      if (dflt !== undefined && (typeof dflt !== 'object') && !lines.get(k)!.some((v) => isDeepStrictEqual(v, dflt))) {
        p.push(`sample.yml does not give ${s.key} key '${k}' its default ${JSON.stringify(dflt)}`);
      }
    }
    try { parseConfigText(`node: contract-test\n${text}`, sampleFile); } catch (e) { p.push(`sample.yml does not load: ${(e as Error).message}`); }
  }
  const readme = join(def.dir, 'README.md');
  if (!existsSync(readme)) p.push(`no README.md in ${def.dir}`);
  else if (!readFileSync(readme, 'utf8').includes(`${s.key}:`)) p.push(`README.md does not show the section '${s.key}:'`);

  if (def.daemon) {
    if (typeof def.daemon.load !== 'function') p.push('daemon: no runner loader');
    if (typeof def.daemon.formatStatus !== 'function') p.push('daemon: no status formatter');
    if (!def.daemon.healthRule) p.push('daemon: no health rule');
    if (!def.daemon.logRole) p.push('daemon: no log role');
  }
  // Verbs, their older names and the importers answer --help with a usage line and exit 0.
  const registered = roles().includes(def);
  const helps: [string, string[]][] = [
    ...(def.verbs ?? []).flatMap((v) => [[`${def.name} ${v.name}`, [def.name, v.name, '--help']] as [string, string[]],
      ...(v.aliases ?? []).map((a) => [a, [a, '--help']] as [string, string[]])]),
    ...(def.importers ?? []).map((i) => [`config import ${i.name}`, ['config', 'import', i.name, '--help']] as [string, string[]]),
    ...((def.verbs ?? []).length > 0 ? [[def.name, [def.name, '--help']] as [string, string[]]] : []),
  ];
  for (const v of def.verbs ?? []) if (!v.summary) p.push(`verb ${v.name}: no summary`);
  if (!registered && helps.length > 0) p.push('not registered: its verbs cannot be reached');
  else {
    for (const [label, argv] of helps) {
      const r = await capture(() => dispatch(argv));
      if (r.code !== 0 || !/^usage: vigil /m.test(r.stdout)) p.push(`vigil ${label} --help: exit ${r.code}, no 'usage: vigil' line`);
    }
  }
  return p;
}
