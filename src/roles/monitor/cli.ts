/**
 * Layer: CLI. `vigil monitor status|reset|maintenance`: parsing is verbs.ts
 * (pure); here the status is asked from the running daemon's control socket
 * and the reset / maintenance txns are written to the KV network's Consul
 * with the config's settings. Exit codes: 0 ok, 1 failed, 2 bad input,
 * 3 not running (status).
 */
import { resolve } from 'node:path';
import { loadConfig } from '../../config/load';
import { askControl, controlPath } from '../../daemon/control';
import { ConsulTxnConflict } from '../../consul/txn';
import { EXIT } from '../../cli/common';
import { errorMessage } from '../../errors';
import type { MonitorConfig } from './config';
import { computeKey, COMPUTE_KEYS, maintenanceTxn, resetTxn, type TxnOp } from './kvschema';
import { resetGuard } from './reset';
import { kvNetworkOf, networkClient, toClientOps } from './io';
import { renderStatusText, type MonitorStatus } from './status';
import { parseMonitorArgs, type MonitorRequest } from './verbs';

function say(verb: string, text: string): void {
  process.stderr.write(`vigil monitor ${verb}: ${text}\n`);
}

/** Parse; print help or the usage error. Returns the request to carry out, or an exit code. */
function parsed(args: string[]): MonitorRequest | number {
  const r = parseMonitorArgs(args);
  if (r.verb === 'help') { process.stdout.write(r.text); return EXIT.OK; }
  if (r.verb === 'error') { process.stderr.write(`vigil monitor ${r.message}\n`); return EXIT.USAGE; }
  return r;
}

function load(verb: string, file: string): { cfg: MonitorConfig; pidfile: string } | undefined {
  try {
    const all = loadConfig(resolve(file));
    if (!all.monitor) { say(verb, `${all.file} has no monitor: section`); return undefined; }
    return { cfg: all.monitor, pidfile: all.pidfile };
  } catch (e) {
    say(verb, errorMessage(e));
    return undefined;
  }
}

/** `vigil monitor status [--json]`. */
export async function runStatus(args: string[]): Promise<number> {
  const r = parsed(['status', ...args]);
  if (typeof r === 'number') return r;
  if (r.verb !== 'status') return EXIT.USAGE;
  const l = load('status', r.config);
  if (!l) return EXIT.USAGE;
  let st: { roles?: { monitor?: MonitorStatus } };
  try {
    st = (await askControl(controlPath(l.pidfile), { cmd: 'status' })) as typeof st;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'EACCES' || code === 'EPERM') { say('status', `permission denied on ${controlPath(l.pidfile)}: run as root`); return EXIT.USAGE; }
    if (r.json) process.stdout.write(`${JSON.stringify({ running: false })}\n`);
    else process.stdout.write(`vigil is not running (no answer on ${controlPath(l.pidfile)}: ${errorMessage(e)})\n`);
    return EXIT.NOT_RUNNING;
  }
  const m = st.roles?.monitor;
  if (!m) { say('status', 'the running daemon has no monitor role (started with another config?)'); return EXIT.FAIL; }
  process.stdout.write(r.json ? `${JSON.stringify(m, null, 2)}\n` : renderStatusText(m));
  return EXIT.OK;
}

/**
 * Write an operator txn for HOST. The host must be in the inventory (the
 * config's, or present under compute_nodes/ in KV). `unlocked`: the txn
 * also requires that no monitor holds HOST's incident (check-session with
 * the empty session), so a reset never races a fence in flight.
 */
async function writeHostTxn(verb: string, file: string, host: string, ops: (prefix: string) => TxnOp[], unlocked: boolean): Promise<number> {
  const l = load(verb, file);
  if (!l) return EXIT.USAGE;
  const { cfg } = l;
  let client;
  try { client = networkClient(kvNetworkOf(cfg)); } catch (e) { say(verb, errorMessage(e)); return EXIT.USAGE; }
  try {
    if (cfg.inventory.source === 'config') {
      if (!cfg.inventory.hosts.some((h) => h.name === host)) {
        say(verb, `${JSON.stringify(host)} is not in monitor.inventory.hosts (expected one of ${cfg.inventory.hosts.map((h) => h.name).join(', ')})`);
        return EXIT.USAGE;
      }
    } else {
      const keys = await client.kvKeys(`${cfg.kvPrefix}/compute_nodes/${host}/`);
      if (keys.value.length === 0) { say(verb, `${JSON.stringify(host)} has no keys under ${cfg.kvPrefix}/compute_nodes/ (expected a host of the KV inventory)`); return EXIT.USAGE; }
    }
    // Held by a session → refuse; present and free → check-session "" (still free at commit); absent → check-not-exists.
    let guard: TxnOp[] = [];
    if (unlocked) {
      const e = await client.kvGet(incident(cfg.kvPrefix, host));
      let journal: Record<string, unknown> | undefined;
      try { journal = JSON.parse(e?.value?.toString('utf8') || '{}') as Record<string, unknown>; } catch { journal = undefined; }
      // The same guard as auto_clear_after's (reset.ts resetGuard).
      const g = resetGuard(cfg.kvPrefix, host, e ? { ...(e.session ? { session: e.session } : {}), ...(journal ? { journal } : {}), modifyIndex: e.modifyIndex } : undefined, cfg.recovery !== undefined);
      if ('refused' in g) { say(verb, `refused: ${g.refused}`); return EXIT.FAIL; }
      guard = g.ops;
    }
    await client.txn(toClientOps([...guard, ...ops(cfg.kvPrefix)]));
    return EXIT.OK;
  } catch (e) {
    if (e instanceof ConsulTxnConflict) { say(verb, `refused: ${incident(cfg.kvPrefix, host)} changed while writing (a monitor claimed an incident?); try again`); return EXIT.FAIL; }
    say(verb, errorMessage(e));
    return EXIT.FAIL;
  }
}

const incident = (prefix: string, host: string) => computeKey(prefix, host, COMPUTE_KEYS.incident);

/** `vigil monitor reset HOST`. */
export async function runReset(args: string[]): Promise<number> {
  const r = parsed(['reset', ...args]);
  if (typeof r === 'number') return r;
  if (r.verb !== 'reset') return EXIT.USAGE;
  const code = await writeHostTxn('reset', r.config, r.host, (p) => resetTxn(p, r.host), true);
  if (code === EXIT.OK) process.stdout.write(`${r.host}: latches and counters reset\n`);
  return code;
}

/** `vigil monitor maintenance on|off HOST`. */
export async function runMaintenance(args: string[]): Promise<number> {
  const r = parsed(['maintenance', ...args]);
  if (typeof r === 'number') return r;
  if (r.verb !== 'maintenance') return EXIT.USAGE;
  const code = await writeHostTxn('maintenance', r.config, r.host, (p) => maintenanceTxn(p, r.host, r.on), false);
  if (code === EXIT.OK) process.stdout.write(`${r.host}: maintenance ${r.on ? 'on' : 'off'}\n`);
  return code;
}
