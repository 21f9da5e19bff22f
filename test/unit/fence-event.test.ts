// Pure verification of fence event deliveries (src/consul/event.ts), table by table.
import t from 'tap';
import { createHmac } from 'node:crypto';
import {
  verifyDelivery, encodeFencePayload, planCommands, nodeFilterIsExactly, decodeStrictBase64, signFence,
  MAX_DELIVERY_BYTES, type VerifyContext,
} from '../../src/consul/event';

const NOW = 1_700_000_100_000; // ms
const BOOT = 1_699_990_000_000; // ms: booted ~2.8 h before NOW
const TS = 1_700_000_090; // s: 10 s before NOW
const KEY = Buffer.from('0123456789abcdef0123456789abcdef');

function ctx(over: Partial<VerifyContext> = {}, seen: Set<string> = new Set()): VerifyContext {
  return { node: 'cmp-01', event: 'fence', maxAgeMs: 120_000, maxSkewMs: 30_000, nowMs: NOW, bootTimeMs: BOOT, isSeen: (k) => seen.has(k), ...over };
}

let idn = 0;
function uuid(): string {
  idn += 1;
  const h = idn.toString(16).padStart(12, '0');
  return `5c9f6a2e-1d3b-4e8f-9a7c-${h}`;
}

function b64(s: string): string {
  return Buffer.from(s, 'latin1').toString('base64');
}

function ev(over: Record<string, unknown> = {}, payload = `fence@ctrl-01@${TS}`): Record<string, unknown> {
  return { ID: uuid(), Name: 'fence', Payload: b64(payload), NodeFilter: '^cmp-01$', ServiceFilter: '', TagFilter: '', Version: 1, LTime: 42, ...over };
}

function one(e: unknown, c: VerifyContext = ctx()) {
  const r = verifyDelivery(JSON.stringify([e]), c);
  if (!r.ok || r.decisions.length !== 1) throw new Error(`delivery not parsed: ${r.reason}`);
  return r.decisions[0]!;
}

t.test('the spec fixture B3 decodes and acts when fresh', async (t) => {
  const fixture = '[{"ID": "5c9f6a2e-1d3b-4e8f-9a7c-2b1e0d4f6a83", "Name": "fence", "Payload": "ZmVuY2VAY3RybC0wMUAxNzAwMDAwMDAw", "NodeFilter": "cmp-01", "ServiceFilter": "", "TagFilter": "", "Version": 1, "LTime": 42}]';
  const r = verifyDelivery(fixture, ctx({ nowMs: 1_700_000_005_000 }));
  t.equal(r.decisions.length, 1);
  t.match(r.decisions[0], { accept: true, command: 'fence', verb: 'fence', sender: 'ctrl-01', timestamp: 1_700_000_000, encoding: 'base64', id: '5c9f6a2e-1d3b-4e8f-9a7c-2b1e0d4f6a83' });
  t.same(r.decisions[0]!.replayKeys, ['id:5c9f6a2e-1d3b-4e8f-9a7c-2b1e0d4f6a83', 'payload:fence@ctrl-01@1700000000']);
  // The same fixture 121 s later is stale.
  t.equal(verifyDelivery(fixture, ctx({ nowMs: 1_700_000_121_000 })).decisions[0]!.reason, 'stale');
});

t.test('enable and its alias enable-nova', async (t) => {
  t.match(one(ev({}, `enable@ctrl-01@${TS}`)), { accept: true, command: 'enable', verb: 'enable' });
  t.match(one(ev({}, `enable-nova@ctrl-01@${TS}`)), { accept: true, command: 'enable', verb: 'enable-nova' });
  t.match(one(ev({}, `reboot@ctrl-01@${TS}`)), { accept: false, reason: 'bad-payload' }, 'unknown verb');
  t.match(one(ev({}, `Fence@ctrl-01@${TS}`)), { accept: false, reason: 'bad-payload' }, 'verbs are case-sensitive');
});

t.test('node filter: exactly this node, as strings, never as a regex', async (t) => {
  t.equal(one(ev({ NodeFilter: 'cmp-01' })).accept, true, 'literal name');
  t.equal(one(ev({ NodeFilter: '^cmp-01$' })).accept, true, 'anchored name');
  const wrong = ['cmp-02', 'cmp-1', 'cmp-0', 'cmp-01.*', '^cmp-01', 'cmp-01$', '.*', '', '^cmp-0.$', 'cmp-0[1]', '(cmp-01)', ' cmp-01', 'cmp-01 ', 'CMP-01', '^cmp-01$|x', 'cmp-01\n'];
  for (const f of wrong) t.match(one(ev({ NodeFilter: f })), { accept: false, reason: 'wrong-node' }, `NodeFilter ${JSON.stringify(f)}`);
  // cmp-1 is not cmp-10 (Consul's unanchored regex would deliver it to both).
  t.equal(one(ev({ NodeFilter: 'cmp-1' }), ctx({ node: 'cmp-10' })).reason, 'wrong-node');
  t.equal(one(ev({ NodeFilter: '^cmp-1$' }), ctx({ node: 'cmp-10' })).reason, 'wrong-node');
  t.equal(one(ev({ NodeFilter: 'cmp-10' }), ctx({ node: 'cmp-1' })).reason, 'wrong-node');
  t.equal(one(ev({ NodeFilter: 'cmp-10' }), ctx({ node: 'cmp-10' })).accept, true);
  t.match(one(ev({ NodeFilter: '' })), { reason: 'wrong-node', detail: /empty NodeFilter/ });
  t.equal(nodeFilterIsExactly('', ''), false, 'an empty node never matches');
  t.equal(nodeFilterIsExactly('^a.b$', 'a.b'), true, 'dots are literal characters');
  t.equal(nodeFilterIsExactly('^axb$', 'a.b'), false);
});

t.test('service and tag filters make the addressee ambiguous', async (t) => {
  t.equal(one(ev({ ServiceFilter: 'nova' })).reason, 'service-filter');
  t.equal(one(ev({ ServiceFilter: 'nova', TagFilter: 'x' })).reason, 'service-filter');
});

t.test('time window: max_age, max_skew, boot', async (t) => {
  const at = (tsSec: number, c = ctx()) => one(ev({}, `fence@ctrl-01@${tsSec}`), c);
  const nowS = NOW / 1000;
  t.equal(at(nowS - 120).accept, true, 'exactly max_age old');
  t.equal(at(nowS - 121).reason, 'stale', '121 s old');
  t.equal(at(nowS - 100_000).reason, 'stale', 'a day old');
  t.equal(at(nowS + 30).accept, true, 'exactly max_skew ahead');
  t.equal(at(nowS + 31).reason, 'future', '31 s ahead');
  t.equal(at(99_999_999_999).reason, 'future', 'far future');
  t.equal(at(nowS, ctx({ bootTimeMs: NOW - 5_000 })).accept, true, 'after boot');
  t.equal(at(nowS - 10, ctx({ bootTimeMs: NOW - 5_000 })).reason, 'before-boot', 'issued before this boot');
  t.equal(at(nowS - 5, ctx({ bootTimeMs: NOW - 5_000 })).reason, 'before-boot', 'issued in the boot second');
  t.equal(at(nowS, ctx({ maxAgeMs: 5_000, maxSkewMs: 0 })).accept, true);
  t.equal(at(nowS + 1, ctx({ maxSkewMs: 0 })).reason, 'future');
});

t.test('payload encodings', async (t) => {
  const text = `fence@ctrl-01@${TS}`;
  t.match(one(ev({ Payload: b64(b64(text)) })), { accept: true, encoding: 'base64x2' }, 'double base64 of a strict payload');
  t.equal(one(ev({ Payload: b64(b64(b64(text))) })).reason, 'bad-payload', 'triple base64 is not accepted');
  t.equal(one(ev({ Payload: null })).reason, 'no-payload');
  const noPayload = ev();
  delete noPayload.Payload;
  t.equal(one(noPayload).reason, 'no-payload');
  t.equal(one(ev({ Payload: 12 })).reason, 'bad-field');
  t.equal(one(ev({ Payload: '' })).reason, 'bad-base64');
  t.equal(one(ev({ Payload: 'not base64!' })).reason, 'bad-base64');
  const padded = b64(`fence@ctrl-1@${TS}`);
  t.match(padded, /=$/);
  t.equal(one(ev({ Payload: padded })).accept, true);
  t.equal(one(ev({ Payload: padded.replace(/=+$/, '') })).reason, 'bad-base64', 'padding is required');
  t.equal(one(ev({ Payload: `${b64(text)}\n` })).reason, 'bad-base64', 'no trailing newline');
  t.equal(one(ev({ Payload: b64(text).replace(/.(=*)$/, (_m, p) => `_${p}`) })).reason, 'bad-base64', 'url-safe alphabet is refused');
  // Non-canonical trailing bits: "QQ==" is "A"; "QR==" decodes to "A" too but is not canonical.
  t.equal(decodeStrictBase64('QR=='), undefined);
  t.same(decodeStrictBase64('QQ=='), Buffer.from('A'));
  const bad = [`fence@ctrl-01@${TS}\n`, ` fence@ctrl-01@${TS}`, `fence@@${TS}`, `fence@ctrl-01`, `fence@ctrl 01@${TS}`, `fence@ctrl-01@0${TS}`,
    `fence@ctrl-01@${TS}@`, `fence@ctrl-01@${TS}@xyz`, `fence@ctrl-01@-${TS}`, `fence@ctrl-01@${TS}.5`, `fence@ctrl-01@12345678`,
    `fence@ctrl-01@123456789012`, `fence@-ctrl@${TS}`, `fence@ctrl\u00e9@${TS}`, `fence@ctrl-01@${TS}@${'A'.repeat(64)}`, 'fence'];
  for (const p of bad) t.equal(one(ev({}, p)).reason, 'bad-payload', `payload ${JSON.stringify(p)}`);
});

t.test('signatures with a key', async (t) => {
  const c = ctx({ key: KEY });
  const good = encodeFencePayload('fence', 'ctrl-01', TS, KEY);
  t.match(good, /^fence@ctrl-01@\d+@[0-9a-f]{64}$/);
  t.equal(good.split('@')[3], createHmac('sha256', KEY).update(`fence@ctrl-01@${TS}`).digest('hex'), 'HMAC-SHA256 over verb@sender@ts');
  t.match(one(ev({}, good), c), { accept: true, signed: true });
  t.equal(one(ev({}, `fence@ctrl-01@${TS}`), c).reason, 'unsigned', 'missing signature');
  const flipped = good.slice(0, -1) + (good.endsWith('0') ? '1' : '0');
  t.equal(one(ev({}, flipped), c).reason, 'bad-signature', 'one hex digit changed');
  t.equal(one(ev({}, encodeFencePayload('fence', 'ctrl-01', TS, Buffer.from('another key of 16+ bytes'))), c).reason, 'bad-signature', 'other key');
  t.equal(one(ev({}, `fence@ctrl-01@${TS + 1}@${good.split('@')[3]}`), c).reason, 'bad-signature', 'signature of another timestamp');
  t.equal(one(ev({}, `enable@ctrl-01@${TS}@${good.split('@')[3]}`), c).reason, 'bad-signature', 'signature of another verb');
  t.equal(one(ev({}, `fence@ctrl-02@${TS}@${good.split('@')[3]}`), c).reason, 'bad-signature', 'signature of another sender');
  t.equal(one(ev({}, good.toUpperCase().replace('FENCE', 'fence').replace('CTRL', 'ctrl')), c).reason, 'bad-payload', 'uppercase hex');
  t.equal(one(ev({}, `enable-nova@ctrl-01@${TS}@${signFence(KEY, 'enable-nova', 'ctrl-01', TS)}`), c).accept, true, 'signed alias');
  // Without a key the signature is not checked (and says so).
  t.match(one(ev({}, flipped)), { accept: true, signed: true, detail: /not checked/ });
});

t.test('replay: handled IDs and payloads, duplicates within a delivery', async (t) => {
  const e = ev();
  t.equal(one(e, ctx({}, new Set([`id:${e.ID as string}`]))).reason, 'replayed', 'ID handled before');
  t.equal(one(ev(), ctx({}, new Set([`payload:fence@ctrl-01@${TS}`]))).reason, 'replayed', 'same payload fired in another datacenter');
  const r = verifyDelivery(JSON.stringify([e, e]), ctx());
  t.same(r.decisions.map((d) => d.reason), ['ok', 'replayed'], 'same ID twice in one delivery');
  const twice = verifyDelivery(JSON.stringify([ev(), ev()]), ctx());
  t.same(twice.decisions.map((d) => d.reason), ['ok', 'replayed'], 'same payload under two IDs');
  // A rejected event does not poison a later valid one with the same payload.
  const mixed = verifyDelivery(JSON.stringify([ev({ NodeFilter: 'cmp-02' }), ev()]), ctx());
  t.same(mixed.decisions.map((d) => d.reason), ['wrong-node', 'ok']);
});

t.test('every event of the delivery is examined, not just the first (K-54)', async (t) => {
  const stale = ev({}, `fence@ctrl-01@${TS - 3600}`);
  const other = ev({ NodeFilter: 'cmp-02' });
  const fresh = ev({}, `fence@ctrl-01@${TS + 5}`);
  const r = verifyDelivery(JSON.stringify([stale, other, fresh]), ctx());
  t.same(r.decisions.map((d) => d.reason), ['stale', 'wrong-node', 'ok']);
  t.same(r.decisions.map((d) => d.index), [0, 1, 2]);
});

t.test('a replayed 256-event buffer holding an old valid fence acts on nothing', async (t) => {
  const old = ev({}, `fence@ctrl-01@${TS - 7200}`); // was valid two hours ago
  const handled = ev({}, `fence@ctrl-01@${TS - 20}`); // fresh, but handled before
  const filler = Array.from({ length: 254 }, (_, i) => ev({ NodeFilter: i % 2 ? '' : `cmp-${i}` }));
  const buffer = [old, ...filler.slice(0, 100), handled, ...filler.slice(100)];
  t.equal(buffer.length, 256);
  const r = verifyDelivery(JSON.stringify(buffer), ctx({}, new Set([`id:${handled.ID as string}`])));
  t.equal(r.ok, true);
  t.equal(r.decisions.length, 256);
  t.equal(r.decisions.filter((d) => d.accept).length, 0);
  t.equal(r.decisions[0]!.reason, 'stale');
  t.equal(r.decisions[101]!.reason, 'replayed');
  t.same(planCommands(r.decisions), []);
  t.equal(verifyDelivery(JSON.stringify([...buffer, ev()]), ctx()).reason, 'too-many-events', '257 events: not from Consul');
});

t.test('malformed deliveries are refused as a whole', async (t) => {
  const cases: [string | Buffer, string][] = [
    ['', 'input-empty'], ['  \n', 'input-empty'], ['[', 'bad-json'], ['{"ID":1}', 'not-an-array'], ['null', 'not-an-array'],
    ['"[]"', 'not-an-array'], [Buffer.from([0x5b, 0xff, 0x5d]), 'input-not-utf8'], ['[]\n[]', 'bad-json'],
  ];
  for (const [input, reason] of cases) {
    const r = verifyDelivery(input, ctx());
    t.match(r, { ok: false, reason, decisions: [] }, `${JSON.stringify(input.toString())} → ${reason}`);
  }
  t.same(verifyDelivery('[]', ctx()).decisions, [], 'an empty array is fine and does nothing');
  const big = Buffer.alloc(MAX_DELIVERY_BYTES + 1, 0x20);
  t.equal(verifyDelivery(big, ctx()).reason, 'input-too-large');
  t.equal(verifyDelivery(`[${JSON.stringify(ev())}${' '.repeat(MAX_DELIVERY_BYTES)}]`, ctx()).reason, 'input-too-large', 'a valid event padded over 1 MiB');
  const ten = `[${Array.from({ length: 60_000 }, () => JSON.stringify(ev())).join(',')}]`;
  t.ok(ten.length > 9_000_000, '10 MB of events');
  t.equal(verifyDelivery(ten, ctx()).reason, 'input-too-large');
});

t.test('missing or mistyped fields', async (t) => {
  for (const f of ['ID', 'Name', 'NodeFilter', 'ServiceFilter', 'TagFilter', 'Version', 'LTime']) {
    const e = ev();
    delete e[f];
    t.equal(one(e).accept, false, `without ${f}`);
  }
  t.equal(one(ev({ ID: 'ABCDEF01-1d3b-4e8f-9a7c-2b1e0d4f6a83' })).reason, 'bad-id', 'uppercase ID');
  t.equal(one(ev({ ID: 'not-a-uuid' })).reason, 'bad-id');
  t.equal(one(ev({ ID: 7 })).reason, 'bad-id');
  t.equal(one(ev({ Name: 'deploy' })).reason, 'wrong-name');
  t.equal(one(ev({ Name: 'fence ' })).reason, 'wrong-name');
  t.equal(one(ev({ Version: 2 })).reason, 'bad-field');
  t.equal(one(ev({ Version: '1' })).reason, 'bad-field');
  t.equal(one(ev({ LTime: -1 })).reason, 'bad-field');
  t.equal(one(ev({ LTime: 1.5 })).reason, 'bad-field');
  t.equal(one(ev({ NodeFilter: null })).reason, 'bad-field');
  t.equal(one(ev({ NodeFilter: ['cmp-01'] })).reason, 'bad-field');
  for (const junk of [null, 1, 'x', [], [ev()]]) t.equal(one(junk).reason, 'not-an-object', `element ${JSON.stringify(junk)?.slice(0, 20)}`);
  t.equal(one(ev({ Extra: 'tolerated' })).accept, true, 'unknown extra fields are tolerated (newer Consul)');
});

t.test('the B2 replay fixture (null payloads, other name) acts on nothing', async (t) => {
  const b2 = '[{"ID":"95a7f085-ac1d-d916-6ba4-749e8d102a5e","Name":"testevent","Payload":null,"NodeFilter":"","ServiceFilter":"","TagFilter":"","Version":1,"LTime":5},{"ID":"10681ffe-b7b6-a0a0-d3a3-fa802d997258","Name":"testevent","Payload":null,"NodeFilter":"","ServiceFilter":"","TagFilter":"","Version":1,"LTime":7}]';
  t.same(verifyDelivery(b2, ctx()).decisions.map((d) => d.reason), ['wrong-name', 'wrong-name']);
  t.same(verifyDelivery(b2, ctx({ event: 'testevent' })).decisions.map((d) => d.reason), ['wrong-node', 'wrong-node']);
});

t.test('planCommands: each command once, in order of first acceptance', async (t) => {
  const r = verifyDelivery(JSON.stringify([
    ev({}, `enable@ctrl-01@${TS}`), ev({}, `fence@ctrl-01@${TS + 1}`), ev({}, `enable-nova@ctrl-01@${TS + 2}`), ev({}, `fence@ctrl-02@${TS}`),
  ]), ctx());
  t.same(r.decisions.map((d) => d.accept), [true, true, true, true]);
  t.same(planCommands(r.decisions), ['enable', 'fence']);
});

t.test('encodeFencePayload validates its inputs', async (t) => {
  t.equal(encodeFencePayload('fence', 'ctrl-01', TS), `fence@ctrl-01@${TS}`);
  t.throws(() => encodeFencePayload('fence', 'ctrl@01', TS), { code: 'EVIGILCONFIG' });
  t.throws(() => encodeFencePayload('fence', '', TS), { code: 'EVIGILCONFIG' });
  t.throws(() => encodeFencePayload('fence', 'ctrl-01', 1.5), { code: 'EVIGILCONFIG' });
  t.throws(() => encodeFencePayload('fence', 'ctrl-01', 12), { code: 'EVIGILCONFIG' });
  t.throws(() => encodeFencePayload('halt' as 'fence', 'ctrl-01', TS), { code: 'EVIGILCONFIG' });
});
