/**
 * Layer: CLI. `vigil monitor release-spare HA [-c FILE]`: an operator frees
 * a spare HA node after its takeover was undone by hand (os_nova's N-9:
 * `in_use` is a latch only an administrator resets). Refused while a
 * monitor's session holds the spare (a takeover in flight). Exit codes:
 * 0 released, 1 refused or failed, 2 bad input.
 */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { EXIT } from '../../../cli/common';
import { checkLeaf } from '../../../config/kinds';
import { loadConfig } from '../../../config/load';
import { ConsulTxnConflict } from '../../../consul/txn';
import { errorMessage } from '../../../errors';
import { kvNetworkOf, networkClient, toClientOps } from '../io';
import type { TxnOp } from '../kvschema';
import { inUseKey, operatorReleaseSpareOps } from './kv';

export const RELEASE_SPARE_HELP = `usage: vigil monitor release-spare HA [-c FILE]

Free the spare HA node HA: <kv_prefix>/ha_nodes/HA/status/in_use := False and
vigil's holder record removed, so a later incident may claim it again. Do it
after the host it took over has been moved back by hand. Refused while a
monitor's session holds the spare (a takeover in flight).
`;

const say = (text: string) => process.stderr.write(`vigil monitor release-spare: ${text}\n`);

export async function runReleaseSpare(args: string[]): Promise<number> {
  let values: { config?: string; help?: boolean };
  let positionals: string[];
  try {
    const r = parseArgs({ args, options: { config: { type: 'string', short: 'c', default: '/etc/vigil/vigil.yml' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    values = r.values;
    positionals = r.positionals;
  } catch (e) { say((e as Error).message); return EXIT.USAGE; }
  if (values.help) { process.stdout.write(RELEASE_SPARE_HELP); return EXIT.OK; }
  if (positionals.length !== 1) { say(`one HA node expected, got ${positionals.length}`); return EXIT.USAGE; }
  const ha = positionals[0]!;
  const bad = checkLeaf({ kind: 'node' }, ha);
  if (bad) { say(`${JSON.stringify(ha)} ${bad.problem} (expected ${bad.expected})`); return EXIT.USAGE; }
  let cfg;
  try {
    cfg = loadConfig(resolve(values.config!)).monitor;
    if (!cfg) { say(`${values.config!} has no monitor: section`); return EXIT.USAGE; }
  } catch (e) { say(errorMessage(e)); return EXIT.USAGE; }
  try {
    const client = networkClient(kvNetworkOf(cfg));
    const key = inUseKey(cfg.kvPrefix, ha);
    const e = await client.kvGet(key);
    if (!e) { say(`${key} does not exist (expected a spare under ${cfg.kvPrefix}/ha_nodes/)`); return EXIT.USAGE; }
    if (e.session) { say(`refused: a monitor's session holds ${key} (a takeover is in flight)`); return EXIT.FAIL; }
    const guard: TxnOp = { KV: { Verb: 'check-index', Key: key, Index: e.modifyIndex } };
    await client.txn(toClientOps([guard, ...operatorReleaseSpareOps(cfg.kvPrefix, ha)]));
    process.stdout.write(`${ha}: spare released\n`);
    return EXIT.OK;
  } catch (e) {
    if (e instanceof ConsulTxnConflict) { say('refused: the spare changed while writing (a monitor claimed it?); try again'); return EXIT.FAIL; }
    say(errorMessage(e));
    return EXIT.FAIL;
  }
}

export const PUBLISH_RUNTIME_HELP = `usage: vigil monitor publish-runtime --file FILE|- [--host NAME] [-c FILE]

Write this compute host's runtime_config (a JSON object: what a spare needs
to take its role over) to <kv_prefix>/compute_nodes/NAME/internal/runtime_config,
as os_nova's runtime_info did. NAME defaults to the config's node name. The
copy carries its time (vigil_published_at_ms) and is written with ?cas on the
index read, so an older copy never overwrites a newer one (exit 1 then).
Run it while the host is healthy (a timer or the node's own daemon).
`;

// The rules (value, newer wins) are shared with the runtime role's periodic job.
export { runtimeValue, storedIsNewer } from '../../runtime/publish';

export async function runPublishRuntime(args: string[], nowMs = Date.now()): Promise<number> {
  const sayP = (text: string) => process.stderr.write(`vigil monitor publish-runtime: ${text}\n`);
  let values: { config?: string; help?: boolean; file?: string; host?: string };
  try {
    const r = parseArgs({ args, options: { config: { type: 'string', short: 'c', default: '/etc/vigil/vigil.yml' }, help: { type: 'boolean', short: 'h' }, file: { type: 'string' }, host: { type: 'string' } }, allowPositionals: false, strict: true });
    values = r.values;
  } catch (e) { sayP((e as Error).message); return EXIT.USAGE; }
  if (values.help) { process.stdout.write(PUBLISH_RUNTIME_HELP); return EXIT.OK; }
  if (values.file === undefined) { sayP('--file is missing (a JSON object, or - for stdin)'); return EXIT.USAGE; }
  let obj: unknown;
  try {
    const { readFileSync } = await import('node:fs');
    obj = JSON.parse(readFileSync(values.file === '-' ? 0 : values.file, 'utf8'));
  } catch (e) { sayP(`${values.file}: ${errorMessage(e)} (expected a JSON object)`); return EXIT.USAGE; }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) { sayP(`${values.file} is not a JSON object`); return EXIT.USAGE; }
  let all;
  try { all = loadConfig(resolve(values.config!)); } catch (e) { sayP(errorMessage(e)); return EXIT.USAGE; }
  const cfg = all.monitor;
  if (!cfg) { sayP(`${values.config!} has no monitor: section (the KV network and prefix come from it)`); return EXIT.USAGE; }
  const host = values.host ?? all.node;
  const bad = checkLeaf({ kind: 'node' }, host);
  if (bad) { sayP(`${JSON.stringify(host)} ${bad.problem} (expected ${bad.expected})`); return EXIT.USAGE; }
  try {
    const { encodeRuntime, runtimeKey, storedIsNewer } = await import('../../runtime/publish');
    const client = networkClient(kvNetworkOf(cfg));
    const key = runtimeKey(cfg.kvPrefix, host);
    const cur = await client.kvGet(key);
    if (storedIsNewer(cur?.value?.toString('utf8'), nowMs)) { sayP(`refused: ${key} holds a newer copy`); return EXIT.FAIL; }
    const ok = await client.kvPut(key, encodeRuntime(obj as Record<string, unknown>, nowMs), { cas: cur?.modifyIndex ?? 0 });
    if (!ok) { sayP(`refused: ${key} changed while writing (another publisher?); try again`); return EXIT.FAIL; }
    process.stdout.write(`${host}: runtime_config published\n`);
    return EXIT.OK;
  } catch (e) { sayP(errorMessage(e)); return EXIT.FAIL; }
}
