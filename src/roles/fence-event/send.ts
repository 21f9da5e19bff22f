/**
 * Layer: CLI. `vigil fence-send -c FILE NODE [--enable] [--agent URL]`:
 * fire a fence (or enable) event at one node through the local Consul agent.
 *
 * `PUT /v1/event/fire/<fence_handler.event>?node=^NODE$` with the raw
 * payload `fence@<this node>@<unix seconds>` (`enable@…` with --enable),
 * followed by `@<hmac>` when `fence_handler.key_file` is set. The node
 * filter is anchored because Consul's is an unanchored regex; the handler
 * compares it as a string anyway. Prints the event ID; on failure exits 1
 * with the agent's own message (e.g. `No known Consul servers`: an agent
 * without servers cannot fire events), 2 for bad arguments or config.
 */
import { parseArgs } from 'node:util';
import { ConfigError, errorMessage } from '../../errors';
import { loadConfig } from '../../config/load';
import { DEFAULT_CONFIG_FILE } from '../../config/schema';
import { readSecureFile } from '../../config/permissions';
import type { VigilConfig } from '../../config/types';
import { parseDurationMs } from '../../util/duration';
import { ConsulClient } from '../../consul/client';
import { encodeFencePayload, type FenceVerb } from '../../consul/event';
import { readFenceKey } from '../../consul/key';

const USAGE = `usage: vigil fence-send [-c FILE] NODE [--enable] [--agent URL] [--timeout DURATION]

Fire a fence event at NODE through the local Consul agent (its handler, vigil
fence-handler, runs fence.actions there); with --enable, an enable event (runs
fence_handler.on_enable). Signed when fence_handler.key_file is set. Prints the
event ID.

  -c, --config FILE      the config file (default ${DEFAULT_CONFIG_FILE})
      --enable           send enable instead of fence
      --agent URL        the agent to fire through (default: the first
                         fence.agents url, else http://127.0.0.1:8500)
      --timeout DURATION request timeout (default 10s)
  -h, --help             show this help

Exit status: 0 fired, 1 the agent refused or did not answer, 2 bad arguments or config.
`;

/** Agent used when neither --agent nor fence.agents names one. */
export const DEFAULT_AGENT_URL = 'http://127.0.0.1:8500';
const NODE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

/** Options for {@link sendFence}. */
export interface SendOptions {
  enable?: boolean;
  agentUrl?: string;
  timeoutMs?: number;
  nowMs?: number;
  readKey?: (file: string) => Buffer;
  readToken?: (file: string) => string;
}

/** What was fired. */
export interface SendResult { id: string; payload: string; agent: string; nodeFilter: string }

/**
 * Fire the event for a loaded config.
 * @throws ConfigError for a bad node or key; VigilError `ECONSUL*` when the agent fails
 */
export async function sendFence(cfg: VigilConfig, node: string, opts: SendOptions = {}): Promise<SendResult> {
  if (!NODE_RE.test(node)) throw new ConfigError(`node ${JSON.stringify(node)} is not a host name`);
  const agents = cfg.fence?.agents ?? [];
  const agentUrl = opts.agentUrl ?? agents[0]?.url ?? DEFAULT_AGENT_URL;
  const agent = agents.find((a) => a.url.replace(/\/$/, '') === agentUrl.replace(/\/$/, ''));
  let token: string | undefined;
  if (agent?.tokenFile) {
    token = (opts.readToken ?? ((f) => readSecureFile(f, 'key', { label: `token file (agent ${agent.name})`, maxBytes: 4096 })))(agent.tokenFile).trim();
  }
  const keyFile = cfg.fenceHandler?.keyFile;
  const key = keyFile !== undefined ? (opts.readKey ?? readFenceKey)(keyFile) : undefined;
  const verb: FenceVerb = opts.enable ? 'enable' : 'fence';
  const ts = Math.floor((opts.nowMs ?? Date.now()) / 1000);
  const payload = encodeFencePayload(verb, cfg.node, ts, key);
  const client = new ConsulClient({ url: agentUrl, timeoutMs: opts.timeoutMs ?? 10_000, ...(token ? { token } : {}) });
  const nodeFilter = `^${node}$`;
  const ev = await client.fireEvent(cfg.fenceHandler?.event ?? 'fence', payload, { node: nodeFilter });
  return { id: ev.id, payload, agent: client.url, nodeFilter };
}

/** Run `fence-send`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  let values: { config?: string; enable?: boolean; agent?: string; timeout?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      options: {
        config: { type: 'string', short: 'c' },
        enable: { type: 'boolean' },
        agent: { type: 'string' },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`vigil: fence-send: ${errorMessage(e)}\n${USAGE}`);
    return 2;
  }
  if (values.help) { process.stdout.write(USAGE); return 0; }
  if (positionals.length !== 1) {
    process.stderr.write(`vigil: fence-send: expected exactly one NODE, got ${positionals.length}\n${USAGE}`);
    return 2;
  }
  let timeoutMs = 10_000;
  if (values.timeout !== undefined) {
    const t = parseDurationMs(values.timeout);
    if (t === undefined || t <= 0) { process.stderr.write(`vigil: fence-send: --timeout ${JSON.stringify(values.timeout)} is not a positive duration\n`); return 2; }
    timeoutMs = t;
  }
  try {
    const cfg = loadConfig(values.config ?? DEFAULT_CONFIG_FILE);
    const r = await sendFence(cfg, positionals[0]!, { enable: values.enable === true, timeoutMs, ...(values.agent !== undefined ? { agentUrl: values.agent } : {}) });
    process.stdout.write(`${r.id}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`vigil: fence-send: ${errorMessage(e)}\n`);
    return e instanceof ConfigError ? 2 : 1;
  }
}
