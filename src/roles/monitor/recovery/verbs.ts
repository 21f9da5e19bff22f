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
