/** The runtime role's pure decision (publish / skip with its reason) and the cycle with fake I/O. */
import t from 'tap';
import { decideCycle, parseRuntimeFile, sameContent, storedIsNewer, encodeRuntime } from '../../../../src/roles/runtime/publish';
import { RuntimePublisher, type RuntimeIo } from '../../../../src/roles/runtime/runner';
import { normalizeRuntimePublish } from '../../../../src/roles/runtime/config';
import { formatRuntimeStatus } from '../../../../src/roles/runtime/status';
import pino from 'pino';

const NOW = 1_800_000_000_000;
const OBJ = { vcpus: 8, instances_path: '/var/lib/nova/instances' };
const okFile = parseRuntimeFile(JSON.stringify(OBJ), '/f.json');
const healthy = { ok: true, detail: 'known_servers 3, leader 10.0.0.5:8300' };

t.test('the file decides first: missing or not a JSON object is never published', async (t) => {
  t.match(decideCycle({ file: parseRuntimeFile(undefined, '/f.json'), nowMs: NOW }), { publish: false, reason: 'file-missing', detail: '/f.json does not exist' });
  t.match(decideCycle({ file: parseRuntimeFile('{"vcpus": 8', '/f.json'), nowMs: NOW }), { publish: false, reason: 'file-invalid', detail: /^\/f\.json: .*expected a JSON object/ });
  t.match(decideCycle({ file: parseRuntimeFile('[1,2]', '/f.json'), nowMs: NOW }), { publish: false, reason: 'file-invalid', detail: '/f.json is not a JSON object' });
  t.match(decideCycle({ file: parseRuntimeFile('null', '/f.json'), nowMs: NOW }), { publish: false, reason: 'file-invalid' });
  // Even with a healthy agent and an empty key.
  t.match(decideCycle({ file: parseRuntimeFile('garbage', '/f.json'), agent: healthy, stored: null, nowMs: NOW }), { publish: false, reason: 'file-invalid' });
});

t.test('then the agent: no publication while it does not see servers', async (t) => {
  t.equal(decideCycle({ file: okFile, nowMs: NOW }), undefined, 'asks for the agent next');
  t.same(decideCycle({ file: okFile, agent: { ok: false, detail: 'known_servers 0' }, nowMs: NOW }), { publish: false, reason: 'unhealthy', detail: 'known_servers 0' });
  t.equal(decideCycle({ file: okFile, agent: healthy, nowMs: NOW }), undefined, 'asks for the stored copy next');
});

t.test('then the stored copy: absent → write with cas 0; changed → cas on its index; same → nothing; newer → nothing', async (t) => {
  const d = decideCycle({ file: okFile, agent: healthy, stored: null, nowMs: NOW });
  t.match(d, { publish: true, cas: 0 });
  t.same(JSON.parse((d as { value: string }).value), { ...OBJ, vigil_published_at_ms: NOW });
  const older = encodeRuntime({ vcpus: 4 }, NOW - 60_000);
  t.match(decideCycle({ file: okFile, agent: healthy, stored: { value: older, modifyIndex: 41 }, nowMs: NOW }), { publish: true, cas: 41 });
  const same = encodeRuntime({ instances_path: '/var/lib/nova/instances', vcpus: 8 }, NOW - 60_000);
  t.match(decideCycle({ file: okFile, agent: healthy, stored: { value: same, modifyIndex: 41 }, nowMs: NOW }), { publish: false, reason: 'unchanged' });
  const newer = encodeRuntime({ vcpus: 32 }, NOW + 3_600_000);
  t.match(decideCycle({ file: okFile, agent: healthy, stored: { value: newer, modifyIndex: 41 }, nowMs: NOW }), { publish: false, reason: 'stored-newer' });
  // A stored copy that is not JSON (written by hand) is replaced, not a reason to stop.
  t.match(decideCycle({ file: okFile, agent: healthy, stored: { value: 'junk', modifyIndex: 7 }, nowMs: NOW }), { publish: true, cas: 7 });
});

t.test('sameContent ignores the time and the key order, nothing else', async (t) => {
  t.ok(sameContent(JSON.stringify({ b: 1, a: { y: 2, x: 1 }, vigil_published_at_ms: 5 }), { a: { x: 1, y: 2 }, b: 1 }));
  t.notOk(sameContent(JSON.stringify({ b: 1, vigil_published_at_ms: 5 }), { b: 2 }));
  t.notOk(sameContent(JSON.stringify({ b: 1, c: 0 }), { b: 1 }));
  t.notOk(sameContent(undefined, { b: 1 }));
  t.notOk(storedIsNewer(JSON.stringify({ vigil_published_at_ms: NOW }), NOW), 'the same time is not newer');
});

/** Fake I/O with a KV of one key and counters. */
function fakeIo(over: Partial<RuntimeIo> & { text?: string | undefined; agentOk?: boolean } = {}) {
  const kv = { value: undefined as string | undefined, index: 0, writes: 0, reads: 0, agentCalls: 0 };
  const st = { text: over.text, agentOk: over.agentOk ?? true, now: NOW };
  const io: RuntimeIo = {
    readFile: () => st.text,
    agentHealth: async () => { kv.agentCalls++; return st.agentOk ? healthy : { ok: false, detail: 'known_servers 0' }; },
    kvGet: async () => { kv.reads++; return kv.value === undefined ? null : { value: kv.value, modifyIndex: kv.index }; },
    kvPutCas: async (_k, v, cas) => { if (cas !== (kv.value === undefined ? 0 : kv.index)) return false; kv.value = v; kv.index += 10; kv.writes++; return true; },
    now: () => st.now,
    mono: () => st.now,
  };
  return { io, kv, st };
}

const CFG = normalizeRuntimePublish({ consul: { url: 'http://127.0.0.1:8500' }, kv_prefix: 'ha_cluster', file: '/f.json', interval: '60s', request_timeout: '5s' });

t.test('the cycle: one write per change, skips are logged once, the status says what happened', async (t) => {
  const lines: Record<string, any>[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s)); } });
  const { io, kv, st } = fakeIo({ text: undefined });
  const p = new RuntimePublisher(CFG, 'compute-01', io, log);
  t.equal(p.key, 'ha_cluster/compute_nodes/compute-01/internal/runtime_config');
  t.match(await p.cycle(), { result: 'skipped', reason: 'file-missing' });
  t.match(await p.cycle(), { result: 'skipped', reason: 'file-missing' });
  t.equal(kv.agentCalls + kv.reads, 0, 'a missing file costs no request');
  t.equal(lines.filter((l) => /not published/.test(l.msg)).length, 1, 'logged once');
  st.text = JSON.stringify(OBJ);
  t.match(await p.cycle(), { result: 'published' });
  t.equal(kv.writes, 1);
  st.now += 60_000;
  t.match(await p.cycle(), { result: 'skipped', reason: 'unchanged' });
  t.equal(kv.writes, 1, 'unchanged: no write');
  st.text = JSON.stringify({ ...OBJ, vcpus: 16 });
  st.now += 60_000;
  t.match(await p.cycle(), { result: 'published' });
  t.equal(kv.writes, 2, 'changed: one write');
  t.match(JSON.parse(kv.value!), { vcpus: 16, vigil_published_at_ms: st.now });
  st.agentOk = false;
  st.text = JSON.stringify({ ...OBJ, vcpus: 24 });
  t.match(await p.cycle(), { result: 'skipped', reason: 'unhealthy' });
  t.equal(kv.writes, 2, 'unhealthy: no write');
  t.equal(kv.reads, 3, 'unhealthy: not even a read');
  st.agentOk = true;
  io.kvPutCas = async () => false;
  t.match(await p.cycle(), { result: 'refused' });
  io.kvGet = async () => { throw new Error('connect ECONNREFUSED'); };
  t.match(await p.cycle(), { result: 'failed', detail: 'connect ECONNREFUSED' });
  const s = p.status();
  t.match(s, { key: p.key, publishes: 2, lastPublishAtMs: NOW + 120_000, last: { result: 'failed' } });
  const text = formatRuntimeStatus(s).join('\n');
  t.match(text, /last cycle: failed \(connect ECONNREFUSED\)/);
  t.match(text, new RegExp(`last publish: ${new Date(NOW + 120_000).toISOString()}`));
});
