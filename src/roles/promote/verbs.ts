/**
 * Layer: CLI. The promote role's verbs:
 * - `vigil promote run-once [-c FILE]`: one scheduler pass for timer setups
 *   (stays resident while it holds the lease); exit 3 "busy" while another
 *   scheduler (the daemon or another run-once) holds the run lock;
 * - `vigil promote status [-c FILE] [--json]`: the journal, and whether the
 *   role stopped and waits for the operator (exit 1 then);
 * - `vigil promote grant NAME [--force]` / `revoke NAME`: manual mode's
 *   grant file; `--force` (the peer's probes do not gate) asks for the
 *   peer's name to be typed on stdin.
 */
import { parseArgs } from 'node:util';
import * as fs from 'node:fs';
import { createInterface } from 'node:readline';
import { ConfigError, errorMessage } from '../../errors';
import { loadConfig } from '../../config/load';
import { DEFAULT_CONFIG_FILE } from '../../config/schema';
import { moduleLog } from '../../log';
import type { PromoteConfig } from './config';
import { ensureJournalDir, readJournal } from './journal';
import { realPromoteIo } from './io';
import { PromoteRunner } from './runner';
import { grantPath, PromoteBusy, realJournalStore, takeRunLock } from './store';

const HELP: Record<string, string> = {
  'run-once': 'usage: vigil promote run-once [-c FILE]\n\nOne check of the promote role (for a systemd timer); if it promotes, it stays\nresident while it holds the lease.\n\nExit status: 0 ok, 1 stopped (operator needed) or failed, 2 bad config, 3 busy\n(another scheduler holds the run lock).\n',
  status: 'usage: vigil promote status [-c FILE] [--json]\n\nThe promote journal: phase, steps, whether the role waits for the operator.\n\nExit status: 0 ok, 1 stopped (operator needed), 2 bad config.\n',
  grant: 'usage: vigil promote grant NAME [--force] [-c FILE]\n\nManual mode: let this site acquire the lease NAME. --force: the peer probes do\nnot gate (type the peer\'s name to confirm).\n\nExit status: 0 granted, 1 failed, 2 bad input.\n',
  revoke: 'usage: vigil promote revoke NAME [-c FILE]\n\nManual mode: take the grant back; a holder releases the lease and demotes.\n\nExit status: 0 revoked, 1 failed, 2 bad input.\n',
};

function parse(args: string[]) {
  return parseArgs({ args, allowPositionals: true, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' }, force: { type: 'boolean' } } });
}

function load(file: string | undefined): PromoteConfig {
  const cfg = loadConfig(file ?? DEFAULT_CONFIG_FILE);
  if (!cfg.promote) throw new ConfigError(`${cfg.file}: no promote section`);
  return cfg.promote;
}

async function guard(verb: string, body: () => Promise<number>): Promise<number> {
  try { return await body(); } catch (e) {
    if (e instanceof PromoteBusy) { process.stderr.write(`vigil: promote ${verb}: ${e.message}\n`); return 3; }
    process.stderr.write(`vigil: promote ${verb}: ${errorMessage(e)}\n`);
    return e instanceof ConfigError || (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? 2 : 1;
  }
}

/** `vigil promote run-once`. */
export async function runOnce(args: string[]): Promise<number> {
  return guard('run-once', async () => {
    const { values } = parse(args);
    if (values.help) { process.stdout.write(HELP['run-once']!); return 0; }
    const cfg = load(values.config as string | undefined);
    const store = realJournalStore(cfg.journalDir, cfg.name);
    const unlock = takeRunLock(cfg.journalDir, cfg.name);
    try {
      const runner = new PromoteRunner(cfg, realPromoteIo(cfg), store, moduleLog('promote', { role: 'promote' }), { once: true });
      const stopOnSignal = () => runner.stop();
      process.once('SIGTERM', stopOnSignal);
      process.once('SIGINT', stopOnSignal);
      await runner.start();
      return await runner.done;
    } finally { unlock(); }
  });
}

/** `vigil promote status`. */
export async function status(args: string[]): Promise<number> {
  return guard('status', async () => {
    const { values } = parse(args);
    if (values.help) { process.stdout.write(HELP.status!); return 0; }
    const cfg = load(values.config as string | undefined);
    const j = readJournal(cfg.journalDir, cfg.name);
    const granted = fs.existsSync(grantPath(cfg.journalDir, cfg.name));
    if (values.json) { process.stdout.write(`${JSON.stringify({ journal: j ?? null, granted })}\n`); return j?.phase === 'stopped' ? 1 : 0; }
    if (!j) { process.stdout.write(`promote ${cfg.name}: no journal yet (standby)${granted ? '; granted' : ''}\n`); return 0; }
    process.stdout.write(`promote ${cfg.name}: ${j.phase} on site ${j.site} (journal ${j.updatedAt})${granted ? '; granted' : ''}\n`);
    if (j.phase === 'stopped') process.stdout.write(`  STOPPED, operator needed: ${j.reason ?? 'no reason recorded'}\n`);
    else if (j.reason) process.stdout.write(`  last reason: ${j.reason}\n`);
    for (const s of j.steps) process.stdout.write(`  ${s.list} step ${s.index} ${s.name}: ${s.status} at ${s.at}${s.error ? ` (${s.error})` : ''}\n`);
    return j.phase === 'stopped' ? 1 : 0;
  });
}

async function readLine(prompt: string): Promise<string> {
  process.stderr.write(prompt);
  const rl = createInterface({ input: process.stdin });
  try { for await (const line of rl) return line.trim(); return ''; } finally { rl.close(); }
}

/** `vigil promote grant NAME [--force]`. */
export async function grant(args: string[]): Promise<number> {
  return guard('grant', async () => {
    const { values, positionals } = parse(args);
    if (values.help) { process.stdout.write(HELP.grant!); return 0; }
    const cfg = load(values.config as string | undefined);
    if (positionals.length !== 1 || positionals[0] !== cfg.name) throw new ConfigError(`expected the promotion name ${cfg.name} (got ${positionals.join(' ') || 'nothing'})`);
    if (cfg.mode !== 'manual') throw new ConfigError(`promote.mode is ${cfg.mode}: grant and revoke are for mode manual`);
    if (values.force) {
      const typed = await readLine(`--force skips the peer probes: make sure site ${cfg.peer} is down, then type its name: `);
      if (typed !== cfg.peer) throw new ConfigError(`typed ${JSON.stringify(typed)}, not the peer's name ${cfg.peer}: nothing granted`);
    }
    ensureJournalDir(cfg.journalDir);
    fs.writeFileSync(grantPath(cfg.journalDir, cfg.name), `${JSON.stringify({ at: new Date().toISOString(), force: values.force === true })}\n`, { mode: 0o600 });
    process.stdout.write(`granted ${cfg.name} to site ${cfg.site}${values.force ? ' (forced)' : ''}\n`);
    return 0;
  });
}

/** `vigil promote revoke NAME`. */
export async function revoke(args: string[]): Promise<number> {
  return guard('revoke', async () => {
    const { values, positionals } = parse(args);
    if (values.help) { process.stdout.write(HELP.revoke!); return 0; }
    const cfg = load(values.config as string | undefined);
    if (positionals.length !== 1 || positionals[0] !== cfg.name) throw new ConfigError(`expected the promotion name ${cfg.name} (got ${positionals.join(' ') || 'nothing'})`);
    fs.rmSync(grantPath(cfg.journalDir, cfg.name), { force: true });
    process.stdout.write(`revoked ${cfg.name} on site ${cfg.site}\n`);
    return 0;
  });
}
