// `vigil fence-handler` in process: real marker-file commands, real state
// files, real key files; every rejection case of issue 5 must leave the
// marker absent, exit 0 and put its reason in the log.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import pino from 'pino';
import { handleFenceDelivery, readBootTimeMs, readBounded, type FenceHandlerDeps } from '../../src/roles/fence-event/handler';
import { encodeFencePayload, MAX_DELIVERY_BYTES } from '../../src/consul/event';
import { runCommand } from '../../src/actions/commands';
import { seenPath } from '../../src/consul/seen';
import type { VigilConfig } from '../../src/config/types';

const KEY_TEXT = 'a3f1c0ffee0123456789abcdef0123456789abcdef0123456789abcdef012345';
const KEY = Buffer.from(KEY_TEXT);

interface Env {
  dir: string;
  fenceMarker: string;
  enableMarker: string;
  cfg: VigilConfig;
  lines: Record<string, any>[];
  deps: FenceHandlerDeps;
  keyFile: string;
}

function setup(t: tap.Test, over: { node?: string; keyed?: boolean; actions?: string[][]; dryRun?: boolean } = {}): Env {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-fh-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const fenceMarker = path.join(dir, 'fenced');
  const enableMarker = path.join(dir, 'enabled');
  const keyFile = path.join(dir, 'fence.key');
  fs.writeFileSync(keyFile, `${KEY_TEXT}\n`, { mode: 0o600 });
  const cfg: VigilConfig = {
    file: path.join(dir, 'vigil.yml'), node: over.node ?? 'cmp-01', pidfile: path.join(dir, 'vigil.pid'), stateDir: path.join(dir, 'state'),
    log: { level: 'info' },
    fence: {
      agents: [], checkIntervalMs: 5000, confirmCycles: 2, requestTimeoutMs: 2000, neighbourProbeTimeoutMs: 500,
      actions: over.actions ?? [['/bin/sh', '-c', `echo fence >> ${fenceMarker}`]], actionTimeoutMs: 10_000, dryRun: over.dryRun ?? false,
    },
    fenceHandler: {
      event: 'fence', maxAgeMs: 120_000, maxSkewMs: 30_000, onEnable: [['/bin/sh', '-c', `echo enable >> ${enableMarker}`]],
      ...(over.keyed ? { keyFile } : {}),
    },
  };
  const lines: Record<string, any>[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); cb(); } });
  const log = pino({ level: 'debug' }, sink);
  return { dir, fenceMarker, enableMarker, cfg, lines, keyFile, deps: { log } };
}

let n = 0;
function uuid(): string {
  n += 1;
  return `7e0d8b1a-3c2f-4d5e-8f90-${n.toString(16).padStart(12, '0')}`;
}

const nowS = () => Math.floor(Date.now() / 1000);

function event(payload: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { ID: uuid(), Name: 'fence', Payload: Buffer.from(payload).toString('base64'), NodeFilter: '^cmp-01$', ServiceFilter: '', TagFilter: '', Version: 1, LTime: 3, ...over };
}

function fenceEvent(over: Record<string, unknown> = {}, opts: { ts?: number; key?: Buffer; verb?: 'fence' | 'enable' | 'enable-nova' } = {}) {
  return event(encodeFencePayload(opts.verb ?? 'fence', 'ctrl-01', opts.ts ?? nowS() - 2, opts.key), over);
}

function lineCount(file: string): number {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
}

function rejections(env: Env): string[] {
  return env.lines.filter((l) => /rejected/.test(l.msg)).map((l) => l.reason);
}

/** The common assertion of every rejection case. */
async function expectNoAction(t: tap.Test, env: Env, input: string | Buffer, reason: string, deps: FenceHandlerDeps = {}) {
  const out = await handleFenceDelivery(env.cfg, input, { ...env.deps, ...deps });
  t.equal(out.exitCode, 0, 'exit 0');
  t.equal(fs.existsSync(env.fenceMarker), false, 'no fence action ran');
  t.equal(fs.existsSync(env.enableMarker), false, 'no enable action ran');
  t.same(out.ran, []);
  t.ok(rejections(env).includes(reason), `the log says ${reason} (got ${rejections(env).join(',')})`);
  return out;
}

t.test('a valid event fences once; the same delivery again is a replay', async (t) => {
  const env = setup(t);
  const input = JSON.stringify([fenceEvent()]);
  const out = await handleFenceDelivery(env.cfg, input, env.deps);
  t.equal(out.exitCode, 0);
  t.equal(lineCount(env.fenceMarker), 1, 'fence.actions ran once');
  t.equal(out.ran.length, 1);
  t.equal(out.ran[0]!.results[0]!.ok, true);
  t.ok(env.lines.some((l) => l.msg === 'fencing this host: running fence.actions' && l.evidence[0].sender === 'ctrl-01'));
  t.equal(fs.statSync(seenPath(env.cfg.stateDir)).mode & 0o777, 0o600, 'the ID is recorded in state_dir');
  const again = await handleFenceDelivery(env.cfg, input, env.deps);
  t.equal(again.exitCode, 0);
  t.equal(lineCount(env.fenceMarker), 1, 'not again');
  t.same(rejections(env), ['replayed']);
});

t.test('enable and enable-nova run on_enable once per delivery', async (t) => {
  const env = setup(t);
  const out = await handleFenceDelivery(env.cfg, JSON.stringify([fenceEvent({}, { verb: 'enable' }), fenceEvent({}, { verb: 'enable-nova', ts: nowS() - 1 })]), env.deps);
  t.equal(out.exitCode, 0);
  t.equal(lineCount(env.enableMarker), 1);
  t.equal(fs.existsSync(env.fenceMarker), false);
});

t.test('wrong node', async (t) => {
  const env = setup(t);
  await expectNoAction(t, env, JSON.stringify([fenceEvent({ NodeFilter: '^cmp-02$' })]), 'wrong-node');
});

t.test('cmp-1 is not cmp-10', async (t) => {
  const env = setup(t, { node: 'cmp-10' });
  await expectNoAction(t, env, JSON.stringify([fenceEvent({ NodeFilter: 'cmp-1' }), fenceEvent({ NodeFilter: '^cmp-1$' })]), 'wrong-node');
  t.same(rejections(env), ['wrong-node', 'wrong-node']);
});

t.test('regex and empty filters', async (t) => {
  const env = setup(t);
  await expectNoAction(t, env, JSON.stringify(['cmp-0.*', '.*', 'cmp-0', '^cmp-01', ''].map((f) => fenceEvent({ NodeFilter: f }))), 'wrong-node');
  t.same(rejections(env), ['wrong-node', 'wrong-node', 'wrong-node', 'wrong-node', 'wrong-node']);
  t.ok(env.lines.some((l) => /empty NodeFilter/.test(l.detail ?? '')), 'the empty filter is explained');
});

t.test('stale', async (t) => {
  const env = setup(t);
  await expectNoAction(t, env, JSON.stringify([fenceEvent({}, { ts: nowS() - 121 })]), 'stale');
});

t.test('future', async (t) => {
  const env = setup(t);
  await expectNoAction(t, env, JSON.stringify([fenceEvent({}, { ts: nowS() + 60 })]), 'future');
});

t.test('before boot', async (t) => {
  const env = setup(t);
  const boot = Date.now() - 5000;
  await expectNoAction(t, env, JSON.stringify([fenceEvent({}, { ts: Math.floor(boot / 1000) - 10 })]), 'before-boot', { bootTimeMs: () => boot });
});

t.test('replayed ID', async (t) => {
  const env = setup(t);
  const e = fenceEvent();
  await handleFenceDelivery(env.cfg, JSON.stringify([e]), env.deps);
  fs.rmSync(env.fenceMarker);
  env.lines.length = 0;
  await expectNoAction(t, env, JSON.stringify([e]), 'replayed');
});

t.test('a replayed 256-event buffer holding an old valid fence', async (t) => {
  const env = setup(t);
  const old = fenceEvent({}, { ts: nowS() - 3600 }); // valid an hour ago
  const others = Array.from({ length: 255 }, (_, i) => fenceEvent({ NodeFilter: `cmp-${i + 2}` }, { ts: nowS() - 3600 + i }));
  const buffer = [old, ...others];
  t.equal(buffer.length, 256);
  const out = await expectNoAction(t, env, JSON.stringify(buffer), 'stale');
  t.equal(out.result?.decisions.length, 256, 'every event examined');
  t.equal(rejections(env).length, 256, 'and each rejection logged');
});

t.test('bad base64', async (t) => {
  const env = setup(t);
  await expectNoAction(t, env, JSON.stringify([fenceEvent({ Payload: 'ZmVuY2VAY3RybC0wMUAxNzAwMDAwMDAw!' })]), 'bad-base64');
});

t.test('bad JSON', async (t) => {
  const env = setup(t);
  const text = JSON.stringify([fenceEvent()]);
  await expectNoAction(t, env, text.slice(0, -3), 'bad-json');
});

t.test('missing fields', async (t) => {
  const env = setup(t);
  const e = fenceEvent();
  delete e.NodeFilter;
  const p = fenceEvent();
  delete p.Payload;
  await expectNoAction(t, env, JSON.stringify([e, p]), 'bad-field');
  t.same(rejections(env), ['bad-field', 'no-payload']);
});

t.test('10 MB of input: refused unparsed, only 1 MiB read', async (t) => {
  const env = setup(t);
  const valid = JSON.stringify(fenceEvent());
  const big = Buffer.from(`[${Array.from({ length: Math.ceil(10_500_000 / valid.length) }, () => valid).join(',')}]`);
  t.ok(big.length > 10_000_000, `${big.length} bytes of valid-looking events`);
  let pulled = 0;
  const stream = Readable.from((function* () { for (let i = 0; i < big.length; i += 65536) { pulled += 65536; yield big.subarray(i, i + 65536); } })());
  const input = await readBounded(stream);
  t.equal(input.length, MAX_DELIVERY_BYTES + 1, 'kept one byte past the limit');
  t.ok(pulled < 2 * MAX_DELIVERY_BYTES, `stopped reading early (${pulled} bytes pulled)`);
  await expectNoAction(t, env, input, 'input-too-large');
  env.lines.length = 0;
  await expectNoAction(t, env, big, 'input-too-large');
});

t.test('with a key: a wrong or missing signature does nothing, a right one acts', async (t) => {
  const env = setup(t, { keyed: true });
  await expectNoAction(t, env, JSON.stringify([fenceEvent()]), 'unsigned');
  await expectNoAction(t, env, JSON.stringify([fenceEvent({}, { key: Buffer.from('some other key, 16+ bytes') })]), 'bad-signature');
  t.same(rejections(env), ['unsigned', 'bad-signature']);
  const ok = await handleFenceDelivery(env.cfg, JSON.stringify([fenceEvent({}, { key: KEY })]), env.deps);
  t.equal(ok.exitCode, 0);
  t.equal(lineCount(env.fenceMarker), 1, 'the key file content (trimmed) is the key');
});

t.test('key file must be 0600 or stricter and root-owned, else nothing acts (exit 2)', async (t) => {
  const env = setup(t, { keyed: true });
  const signed = JSON.stringify([fenceEvent({}, { key: KEY })]);
  fs.chmodSync(env.keyFile, 0o644);
  let out = await handleFenceDelivery(env.cfg, signed, env.deps);
  t.equal(out.exitCode, 2);
  t.match(out.error, /key file refused.*0644/);
  t.equal(fs.existsSync(env.fenceMarker), false);
  fs.chmodSync(env.keyFile, 0o400);
  fs.writeFileSync(path.join(env.dir, 'short.key'), 'short\n', { mode: 0o600 });
  out = await handleFenceDelivery({ ...env.cfg, fenceHandler: { ...env.cfg.fenceHandler!, keyFile: path.join(env.dir, 'short.key') } }, signed, env.deps);
  t.equal(out.exitCode, 2, 'a key shorter than 16 bytes');
  out = await handleFenceDelivery({ ...env.cfg, fenceHandler: { ...env.cfg.fenceHandler!, keyFile: path.join(env.dir, 'missing.key') } }, signed, env.deps);
  t.equal(out.exitCode, 2, 'a missing key file');
  t.equal(fs.existsSync(env.fenceMarker), false);
  if (process.getuid?.() !== 0) { t.comment('skipping the ownership cases: chown needs root'); return; }
  fs.chownSync(env.keyFile, 65534, 65534);
  out = await handleFenceDelivery(env.cfg, signed, env.deps);
  t.equal(out.exitCode, 2, 'owned by nobody');
  t.match(out.error, /owned by uid 65534/);
  t.equal(fs.existsSync(env.fenceMarker), false);
  fs.chownSync(env.keyFile, 0, 0);
  out = await handleFenceDelivery(env.cfg, signed, env.deps);
  t.equal(out.exitCode, 0, 'root-owned 0400 is fine');
  t.equal(lineCount(env.fenceMarker), 1);
});

t.test('a failing action does not stop the next; logs are flushed before acting', async (t) => {
  const env = setup(t);
  const env2marker = path.join(env.dir, 'second');
  env.cfg = { ...env.cfg, fence: { ...env.cfg.fence!, actions: [['/bin/false'], ['/nonexistent/command'], ['/bin/sh', '-c', `echo ok >> ${env2marker}`]] } };
  const order: string[] = [];
  const out = await handleFenceDelivery(env.cfg, JSON.stringify([fenceEvent()]), {
    ...env.deps,
    flush: () => order.push('flush'),
    runCommand: async (cmd, opts) => { order.push('run'); return runCommand(cmd, opts); },
  });
  t.equal(out.exitCode, 0);
  t.same(out.ran[0]!.results.map((r) => r.ok), [false, false, true]);
  t.equal(lineCount(env2marker), 1, 'the third action ran');
  t.equal(order[0], 'flush', 'flushed before the first action');
  t.equal(env.lines.filter((l) => l.msg === 'fence action failed; going on with the next').length, 2);
});

t.test('fence.dry_run: "would fence", nothing runs', async (t) => {
  const env = setup(t, { dryRun: true });
  const out = await handleFenceDelivery(env.cfg, JSON.stringify([fenceEvent()]), env.deps);
  t.equal(out.exitCode, 0);
  t.equal(fs.existsSync(env.fenceMarker), false);
  t.ok(env.lines.some((l) => /would fence/.test(l.msg)));
});

t.test('a corrupt store is logged, moved aside, and a fresh valid event still acts', async (t) => {
  const env = setup(t);
  fs.mkdirSync(env.cfg.stateDir, { recursive: true });
  fs.writeFileSync(seenPath(env.cfg.stateDir), '{"version":1,"entries":[');
  const out = await handleFenceDelivery(env.cfg, JSON.stringify([fenceEvent()]), env.deps);
  t.equal(out.exitCode, 0);
  t.equal(lineCount(env.fenceMarker), 1);
  t.ok(env.lines.some((l) => l.level === 50 && /store unusable/.test(l.msg)), 'logged as an error');
  t.ok(fs.readdirSync(env.cfg.stateDir).some((f) => f.includes('.corrupt-')), 'kept aside');
  t.equal(JSON.parse(fs.readFileSync(seenPath(env.cfg.stateDir), 'utf8')).entries.length, 2, 'store rewritten with the new keys');
});

t.test('a store that cannot be written: nothing acts, exit 1', async (t) => {
  const env = setup(t);
  fs.writeFileSync(env.cfg.stateDir, 'not a directory');
  const out = await handleFenceDelivery(env.cfg, JSON.stringify([fenceEvent()]), env.deps);
  t.equal(out.exitCode, 1);
  t.equal(fs.existsSync(env.fenceMarker), false);
  t.match(out.error, /store failed/);
});

t.test('internal and config failures', async (t) => {
  const env = setup(t);
  const input = JSON.stringify([fenceEvent()]);
  t.equal((await handleFenceDelivery({ ...env.cfg, fenceHandler: undefined } as VigilConfig, input, env.deps)).exitCode, 2, 'no fence_handler');
  t.equal((await handleFenceDelivery(env.cfg, input, { ...env.deps, bootTimeMs: () => { throw new Error('no /proc'); } })).exitCode, 1, 'boot time unknown');
  t.equal(fs.existsSync(env.fenceMarker), false);
  const noActions = await handleFenceDelivery({ ...env.cfg, fence: undefined }, input, env.deps);
  t.equal(noActions.exitCode, 1, 'a fence accepted with no actions to run is an internal failure');
});

t.test('empty array and empty input do nothing', async (t) => {
  const env = setup(t);
  const out = await handleFenceDelivery(env.cfg, '[]', env.deps);
  t.equal(out.exitCode, 0);
  t.same(out.result?.decisions, []);
  await expectNoAction(t, env, '', 'input-empty');
});

t.test('readBootTimeMs reads btime from /proc/stat', async (t) => {
  const boot = readBootTimeMs();
  t.ok(boot > Date.parse('2000-01-01') && boot < Date.now(), 'a time in the past');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-fh-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'stat'), 'cpu 1 2 3\nbtime 1700000000\nprocesses 5\n');
  t.equal(readBootTimeMs(path.join(dir, 'stat')), 1_700_000_000_000);
  fs.writeFileSync(path.join(dir, 'bad'), 'cpu 1 2 3\nbtime x\n');
  t.throws(() => readBootTimeMs(path.join(dir, 'bad')));
});

t.test('the handler keeps running totals of its verdicts for the metrics endpoint', async (t) => {
  const env = setup(t);
  const { countsPath, readCounts } = await import('../../src/roles/fence-event/counts');
  const file = countsPath(env.cfg.stateDir);
  const good = JSON.stringify([fenceEvent()]);
  await handleFenceDelivery(env.cfg, good, env.deps);
  await handleFenceDelivery(env.cfg, good, env.deps); // a replay
  await handleFenceDelivery(env.cfg, JSON.stringify([fenceEvent({ NodeFilter: '^cmp-02$' }), fenceEvent({}, { ts: nowS() - 3600 })]), env.deps);
  await handleFenceDelivery(env.cfg, 'not json', env.deps);
  t.same(readCounts(file), { accepted: 1, rejected: { replayed: 1, 'wrong-node': 1, stale: 1 }, deliveriesRefused: { 'bad-json': 1 } });
  t.equal(fs.statSync(file).mode & 0o777, 0o600);
  // What the daemon's registry serves from the file.
  const reg = await import('../../src/metrics/registry');
  reg.watchFenceEventCounts(file);
  const text = (await reg.render()).text;
  t.match(text, /vigil_fence_event_deliveries_total\{result="accepted",reason="ok"\} 1/);
  t.match(text, /vigil_fence_event_deliveries_total\{result="rejected",reason="replayed"\} 1/);
  t.match(text, /vigil_fence_event_deliveries_total\{result="refused",reason="bad-json"\} 1/);
  fs.writeFileSync(file, '{"accepted": "lots"}');
  t.same(readCounts(file), { accepted: 0, rejected: {}, deliveriesRefused: {} }, 'a file not written by the handler counts as zeros');
});
