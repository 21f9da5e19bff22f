// `vigil fence-handler` and `vigil fence-send` as real processes: the handler
// reads stdin like a Consul watch handler, the sender fires through the Consul
// TEST DOUBLE, and the double's /v1/event/list is fed to the handler (round trip).
// The verbs run from their TypeScript sources under tap's own TS loader.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { ConsulClient } from '../../src/consul/client';
import { encodeFencePayload } from '../../src/consul/event';
import { startConsulDouble, freeLoopbackPort, tempAgentConfig, type ConsulDouble } from '../support/consul-double';
import { durationMs, START_MS, SLACK_MS } from '../support/vigil';

const ROOT = path.resolve(__dirname, '../..');
const TS_LOADER = pathToFileURL(path.join(ROOT, 'node_modules/@tapjs/typescript/dist/esm/import.mjs')).href;
const KEY_TEXT = '9c1d0e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5';

/** The handler config's fence.action_timeout: each of its commands (the fence action, on_enable) ends within it. */
const ACTION_TIMEOUT = '10s';
/**
 * A guard, not a bound for an event: a verb that has not ended by then is
 * killed and says so. Its start under tap's TS loader (it transpiles the CLI
 * from source: twice a daemon's start-up), then at most two commands each up
 * to action_timeout; plus slack.
 */
const RUN_GUARD_MS = 2 * START_MS + 2 * durationMs(ACTION_TIMEOUT) + SLACK_MS;

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }

interface Env {
  dir: string;
  entry: string;
  handlerCfg: string;
  senderCfg: string;
  fenceMarker: string;
  enableMarker: string;
  logFile: string;
}

function setup(t: tap.Test): Env {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-fhp-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const entry = path.join(dir, 'entry.js');
  // verb, then its arguments; the exit code is the verb's return value, and the process must end by itself.
  fs.writeFileSync(entry, `'use strict';
const verb = process.argv[2];
require(${JSON.stringify(path.join(ROOT, 'src/roles/fence-event'))} + '/' + { 'fence-handler': 'handler', 'fence-send': 'send' }[verb] + '.ts').run(process.argv.slice(3))
  .then((c) => { process.exitCode = c; }, (e) => { process.stderr.write('entry: ' + (e && e.stack || e) + '\\n'); process.exitCode = 70; });
`);
  const keyFile = path.join(dir, 'fence.key');
  fs.writeFileSync(keyFile, `${KEY_TEXT}\n`, { mode: 0o600 });
  const fenceMarker = path.join(dir, 'fenced');
  const enableMarker = path.join(dir, 'enabled');
  const logFile = path.join(dir, 'handler.log');
  const handlerCfg = path.join(dir, 'handler.yml');
  fs.writeFileSync(handlerCfg, [
    'node: cmp-01',
    `state_dir: ${dir}/state`,
    `pidfile: ${dir}/vigil.pid`,
    'log:',
    '  level: info',
    `  file: ${logFile}`,
    'fence:',
    '  actions:',
    `    - ["/bin/sh", "-c", "echo fence >> ${fenceMarker}"]`,
    `  action_timeout: ${ACTION_TIMEOUT}`,
    'fence_handler:',
    '  event: fence',
    '  max_age: 120s',
    '  max_skew: 30s',
    `  key_file: ${keyFile}`,
    '  on_enable:',
    `    - ["/bin/sh", "-c", "echo enable >> ${enableMarker}"]`,
    '',
  ].join('\n'), { mode: 0o600 });
  const senderCfg = path.join(dir, 'sender.yml');
  fs.writeFileSync(senderCfg, ['node: ctrl-01', `state_dir: ${dir}/sender-state`, 'fence_handler:', `  key_file: ${keyFile}`, ''].join('\n'), { mode: 0o600 });
  return { dir, entry, handlerCfg, senderCfg, fenceMarker, enableMarker, logFile };
}

function runVerb(env: Env, verb: string, args: string[], stdin?: string | Buffer): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' };
  delete childEnv.NODE_OPTIONS;
  const started = Date.now();
  const child = spawn(process.execPath, [`--import=${TS_LOADER}`, env.entry, verb, ...args], { cwd: ROOT, env: childEnv, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  child.stdin.on('error', () => { /* the handler stops reading after 1 MiB: EPIPE is expected */ });
  if (stdin !== undefined) child.stdin.end(stdin); else child.stdin.end();
  const killer = setTimeout(() => {
    stderr += `[test] ${verb} still running after ${RUN_GUARD_MS} ms (start-up under the TS loader, two commands of action_timeout ${ACTION_TIMEOUT}, slack): killed\n`;
    child.kill('SIGKILL');
  }, RUN_GUARD_MS);
  return new Promise((resolve) => child.on('close', (code, signal) => {
    clearTimeout(killer);
    resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
  }));
}

function logLines(env: Env): Record<string, any>[] {
  if (!fs.existsSync(env.logFile)) return [];
  return fs.readFileSync(env.logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

function count(file: string): number {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
}

async function double(t: tap.Test): Promise<ConsulDouble> {
  const dir = tempAgentConfig({ node_name: 'cmp-01', datacenter: 'management', retry_join: ['10.0.0.5', '10.0.0.6'] });
  const d = await startConsulDouble({ configDir: dir, host: '127.0.0.1', port: await freeLoopbackPort() });
  t.teardown(async () => { await d.stop(); fs.rmSync(dir, { recursive: true, force: true }); });
  return d;
}

function signedEvent(ts: number): string {
  const payload = encodeFencePayload('fence', 'ctrl-01', ts, Buffer.from(KEY_TEXT));
  return JSON.stringify([{ ID: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0', Name: 'fence', Payload: Buffer.from(payload).toString('base64'),
    NodeFilter: 'cmp-01', ServiceFilter: '', TagFilter: '', Version: 1, LTime: 9 }]);
}

t.test('the handler process: a valid signed event on stdin fences once, then is a replay', async (t) => {
  const env = setup(t);
  const input = signedEvent(Math.floor(Date.now() / 1000) - 1);
  const r = await runVerb(env, 'fence-handler', ['-c', env.handlerCfg], input);
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`);
  t.equal(count(env.fenceMarker), 1);
  t.ok(logLines(env).some((l) => l.module === 'fence-handler' && /event accepted/.test(l.msg) && l.node === 'cmp-01'));
  const again = await runVerb(env, 'fence-handler', ['-c', env.handlerCfg], input);
  t.equal(again.code, 0);
  t.equal(count(env.fenceMarker), 1, 'not twice');
  t.ok(logLines(env).some((l) => l.reason === 'replayed'));
});

t.test('the handler process: 10 MB on stdin is refused, exit 0, no action', async (t) => {
  const env = setup(t);
  const one = JSON.parse(signedEvent(Math.floor(Date.now() / 1000) - 1))[0];
  const many = Array.from({ length: 50_000 }, (_, i) => ({ ...one, ID: `0f1e2d3c-4b5a-6978-8796-${i.toString(16).padStart(12, '0')}` }));
  const big = Buffer.from(JSON.stringify(many));
  t.ok(big.length > 10_000_000, `${big.length} bytes`);
  const r = await runVerb(env, 'fence-handler', ['-c', env.handlerCfg], big);
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`);
  t.equal(fs.existsSync(env.fenceMarker), false, 'no action');
  t.ok(logLines(env).some((l) => l.reason === 'input-too-large'), 'the reason is in the log');
});

t.test('the handler process: garbage and a wrong signature do nothing; exit codes for bad use', async (t) => {
  const env = setup(t);
  for (const input of ['not json', '[{"ID":1}]', '']) {
    const r = await runVerb(env, 'fence-handler', ['-c', env.handlerCfg], input);
    t.equal(r.code, 0, `${JSON.stringify(input)}: exit 0`);
  }
  const forged = encodeFencePayload('fence', 'ctrl-01', Math.floor(Date.now() / 1000), Buffer.from('not the key, but long enough'));
  const r = await runVerb(env, 'fence-handler', ['-c', env.handlerCfg],
    JSON.stringify([{ ID: '11111111-2222-3333-4444-555555555555', Name: 'fence', Payload: Buffer.from(forged).toString('base64'), NodeFilter: '^cmp-01$', ServiceFilter: '', TagFilter: '', Version: 1, LTime: 1 }]));
  t.equal(r.code, 0);
  t.equal(fs.existsSync(env.fenceMarker), false);
  t.same(logLines(env).filter((l) => l.reason && l.reason !== 'ok').map((l) => l.reason), ['bad-json', 'bad-id', 'input-empty', 'bad-signature']);
  const missing = await runVerb(env, 'fence-handler', ['-c', path.join(env.dir, 'nope.yml')], '[]');
  t.equal(missing.code, 2, 'missing config: exit 2');
  t.match(missing.stderr, /does not exist/);
  const usage = await runVerb(env, 'fence-handler', ['--bogus'], '[]');
  t.equal(usage.code, 2);
  const help = await runVerb(env, 'fence-handler', ['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /usage: vigil fence-handler/);
});

t.test('round trip: fence-send through the double, its event list fed to the handler, acts', async (t) => {
  const env = setup(t);
  const d = await double(t);
  const sent = await runVerb(env, 'fence-send', ['-c', env.senderCfg, 'cmp-01', '--agent', d.url]);
  t.equal(sent.code, 0, `fence-send exit 0 (stderr: ${sent.stderr})`);
  const id = sent.stdout.trim();
  t.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'prints the event ID');
  const client = new ConsulClient({ url: d.url, timeoutMs: 2000 });
  const list = await client.listEvents('fence');
  t.equal(list.events.length, 1);
  t.equal(list.events[0]!.id, id);
  t.equal(list.events[0]!.nodeFilter, '^cmp-01$', 'anchored node filter');
  t.match(list.events[0]!.payload!.toString(), /^fence@ctrl-01@\d{10}@[0-9a-f]{64}$/, 'signed payload');
  const r = await runVerb(env, 'fence-handler', ['-c', env.handlerCfg], list.raw);
  t.equal(r.code, 0, `handler exit 0 (stderr: ${r.stderr})`);
  t.equal(count(env.fenceMarker), 1, 'fenced');
  t.ok(logLines(env).some((l) => /event accepted/.test(l.msg) && l.id === id));

  // The watch re-runs with the whole buffer (consul#571) plus an enable: only the enable acts.
  const en = await runVerb(env, 'fence-send', ['-c', env.senderCfg, 'cmp-01', '--enable', '--agent', d.url]);
  t.equal(en.code, 0);
  const list2 = await client.listEvents('fence');
  t.equal(list2.events.length, 2);
  const r2 = await runVerb(env, 'fence-handler', ['-c', env.handlerCfg], list2.raw);
  t.equal(r2.code, 0);
  t.equal(count(env.fenceMarker), 1, 'the old fence did not act again');
  t.equal(count(env.enableMarker), 1, 'the enable acted');
});

t.test('fence-send fails with the agent message when the agent has no servers', async (t) => {
  const env = setup(t);
  const d = await double(t);
  await d.setState('servers-lost');
  const r = await runVerb(env, 'fence-send', ['-c', env.senderCfg, 'cmp-01', '--agent', d.url]);
  t.equal(r.code, 1);
  t.match(r.stderr, /No known Consul servers/);
  t.equal(r.stdout, '');
  const port = await freeLoopbackPort();
  const down = await runVerb(env, 'fence-send', ['-c', env.senderCfg, 'cmp-01', '--agent', `http://127.0.0.1:${port}`]);
  t.equal(down.code, 1);
  t.match(down.stderr, /ECONNREFUSED/);
  await d.setState('hung');
  const hung = await runVerb(env, 'fence-send', ['-c', env.senderCfg, 'cmp-01', '--agent', d.url, '--timeout', '500ms']);
  t.equal(hung.code, 1);
  t.match(hung.stderr, /no answer/);
  const bad = await runVerb(env, 'fence-send', ['-c', env.senderCfg, 'cmp 01', '--agent', d.url]);
  t.equal(bad.code, 2, 'a node that is not a host name');
  const none = await runVerb(env, 'fence-send', ['-c', env.senderCfg]);
  t.equal(none.code, 2, 'no NODE');
});
