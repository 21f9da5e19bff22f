// Property test of the fence event verification: ≥ 10,000 random mutations of a
// valid delivery never act unless the mutated delivery is still valid. The
// oracle below re-checks validity independently (string splitting and plain
// loops, not the module's regexes), and the PRNG is seeded so a failure
// reproduces: FENCE_PROP_SEED=<n> FENCE_PROP_RUNS=<n> to explore further.
import t from 'tap';
import { createHmac } from 'node:crypto';
import { verifyDelivery, type VerifyContext } from '../../src/consul/event';
import { seededRandom as prng } from '../../bench/lib/stats'; // mulberry32, seeded so a failure reproduces

const SEED = Number(process.env.FENCE_PROP_SEED ?? 20240611);
const RUNS = Number(process.env.FENCE_PROP_RUNS ?? 12_000);

const NODE = 'cmp-01';
const NOW = 1_700_000_100_000;
const BOOT = 1_700_000_000_000; // booted 100 s before NOW, so before-boot is in reach of the mutations
const MAX_AGE = 120_000;
const MAX_SKEW = 30_000;
const KEY = Buffer.from('k3y-for-the-property-test-0123456789');

const rand = prng(SEED);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

function hmacHex(text: string): string {
  return createHmac('sha256', KEY).update(text).digest('hex');
}

function randomId(): string {
  const hex = () => int(16).toString(16);
  const part = (n: number) => Array.from({ length: n }, hex).join('');
  return `${part(8)}-${part(4)}-${part(4)}-${part(4)}-${part(12)}`;
}

function b64(s: string): string {
  return Buffer.from(s, 'latin1').toString('base64');
}

// ---------------------------------------------------------------------------
// Oracle: is event i of this delivery valid? Written without the module's code.

const HEX = '0123456789abcdef';
const SENDER_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-';
const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

function strictB64(s: string): string | undefined {
  if (s.length === 0) return undefined;
  const buf = Buffer.from(s, 'base64');
  // Node skips junk characters, so re-encoding exposes anything non-canonical.
  return buf.toString('base64') === s ? buf.toString('latin1') : undefined;
}

function payloadFields(text: string): { verb: string; sender: string; ts: string; sig?: string } | undefined {
  const parts = text.split('@');
  if (parts.length !== 3 && parts.length !== 4) return undefined;
  const [verb, sender, ts, sig] = parts as [string, string, string, string | undefined];
  if (verb !== 'fence' && verb !== 'enable' && verb !== 'enable-nova') return undefined;
  if (sender.length < 1 || sender.length > 253 || !ALNUM.includes(sender[0]!)) return undefined;
  for (const c of sender) if (!SENDER_CHARS.includes(c)) return undefined;
  if (ts.length < 9 || ts.length > 11 || ts[0] === '0') return undefined;
  for (const c of ts) if (c < '0' || c > '9') return undefined;
  if (sig !== undefined) {
    if (sig.length !== 64) return undefined;
    for (const c of sig) if (!HEX.includes(c)) return undefined;
  }
  return sig === undefined ? { verb, sender, ts } : { verb, sender, ts, sig };
}

function decodePayload(p: string): ReturnType<typeof payloadFields> {
  const once = strictB64(p);
  if (once === undefined) return undefined;
  const direct = payloadFields(once);
  if (direct) return direct;
  const twice = strictB64(once);
  return twice === undefined ? undefined : payloadFields(twice);
}

function isUuid(s: unknown): boolean {
  if (typeof s !== 'string' || s.length !== 36) return false;
  for (let i = 0; i < 36; i++) {
    if (i === 8 || i === 13 || i === 18 || i === 23) { if (s[i] !== '-') return false; } else if (!HEX.includes(s[i]!)) return false;
  }
  return true;
}

function oracle(input: string, keyed: boolean, seen: Set<string>): boolean[] | 'refused' {
  if (Buffer.byteLength(input) > 1024 * 1024) return 'refused';
  let arr: unknown;
  try { arr = JSON.parse(input); } catch { return 'refused'; }
  if (!Array.isArray(arr) || arr.length > 256) return 'refused';
  const local = new Set<string>();
  return arr.map((ev: unknown) => {
    if (typeof ev !== 'object' || ev === null || Array.isArray(ev)) return false;
    const e = ev as Record<string, unknown>;
    if (!isUuid(e.ID) || e.Name !== 'fence' || e.Version !== 1) return false;
    if (typeof e.LTime !== 'number' || !Number.isInteger(e.LTime) || e.LTime < 0 || e.LTime > Number.MAX_SAFE_INTEGER) return false;
    if (e.ServiceFilter !== '' || e.TagFilter !== '') return false;
    if (e.NodeFilter !== NODE && e.NodeFilter !== `^${NODE}$`) return false;
    if (typeof e.Payload !== 'string') return false;
    const f = decodePayload(e.Payload);
    if (!f) return false;
    if (keyed && (f.sig === undefined || f.sig !== hmacHex(`${f.verb}@${f.sender}@${f.ts}`))) return false;
    const tsMs = Number(f.ts) * 1000;
    if (NOW - tsMs > MAX_AGE || tsMs - NOW > MAX_SKEW || tsMs <= BOOT) return false;
    const keys = [`id:${e.ID as string}`, `payload:${f.verb}@${f.sender}@${f.ts}`];
    if (keys.some((k) => seen.has(k) || local.has(k))) return false;
    for (const k of keys) local.add(k);
    return true;
  });
}

// ---------------------------------------------------------------------------
// Valid deliveries and their mutations

type Ev = Record<string, unknown>;

function validEvent(keyed: boolean): Ev {
  const verb = pick(['fence', 'fence', 'enable', 'enable-nova']);
  const ts = Math.floor(NOW / 1000) - int(60);
  const text = `${verb}@ctrl-0${int(3) + 1}@${ts}`;
  const payload = keyed || rand() < 0.3 ? `${text}@${hmacHex(text)}` : text;
  return { ID: randomId(), Name: 'fence', Payload: b64(payload), NodeFilter: pick([NODE, `^${NODE}$`]), ServiceFilter: '', TagFilter: '', Version: 1, LTime: int(1000) };
}

const FILTERS = ['cmp-01', '^cmp-01$', 'cmp-1', 'cmp-0', 'cmp-010', 'cmp-01.*', '^cmp-01', 'cmp-01$', '', '.*', 'CMP-01', ' cmp-01', '^cmp-01$ ', 'cmp-01\n', '^cmp.01$', 'cmp-02', '^(cmp-01)$'];
const NAMES = ['fence', 'Fence', 'fence ', '', 'deploy', 'fence\u0000'];
const VALUES: unknown[] = [null, true, false, 0, 1, -1, 1.5, '', '1', [], {}, 'x'.repeat(40), 1e300];

function repayload(e: Ev, text: string, keyed: boolean): void {
  const parts = text.split('@');
  const signedPart = parts.slice(0, 3).join('@');
  const sign = keyed ? rand() < 0.8 : rand() < 0.3;
  e.Payload = b64(sign ? `${signedPart}@${hmacHex(signedPart)}` : signedPart);
}

function decodedText(e: Ev): string {
  return typeof e.Payload === 'string' ? Buffer.from(e.Payload, 'base64').toString('latin1') : 'fence@ctrl-01@1700000090';
}

/** One structural mutation on the event list (in place) and the seen-set. */
function mutateEvents(evs: Ev[], seen: Set<string>, keyed: boolean): void {
  const e = evs.length > 0 ? pick(evs) : undefined;
  const kind = int(20);
  if (!e) { evs.push(validEvent(keyed)); return; }
  const fields = ['ID', 'Name', 'Payload', 'NodeFilter', 'ServiceFilter', 'TagFilter', 'Version', 'LTime'];
  switch (kind) {
    case 0: e.NodeFilter = pick(FILTERS); break;
    case 1: e.Name = pick(NAMES); break;
    case 2: delete e[pick(fields)]; break;
    case 3: e[pick(fields)] = pick(VALUES); break;
    case 4: { // timestamp moved around the window edges, re-signed most of the time
      const f = decodedText(e).split('@');
      const edges = [NOW - MAX_AGE, NOW + MAX_SKEW, BOOT, NOW, NOW - MAX_AGE - 1000, NOW + MAX_SKEW + 1000, BOOT + 1000, BOOT - 1000];
      const ts = Math.floor((pick(edges) + (int(5) - 2) * 1000) / 1000);
      repayload(e, `${f[0]}@${f[1]}@${rand() < 0.05 ? int(1e12) : ts}`, keyed);
      break;
    }
    case 5: { // a byte of the decoded payload changed
      const buf = Buffer.from(decodedText(e), 'latin1');
      if (buf.length > 0) buf[int(buf.length)] = int(256);
      e.Payload = b64(buf.toString('latin1'));
      break;
    }
    case 6: { // a character of the base64 text changed
      const p = String(e.Payload ?? '');
      const i = int(p.length + 1);
      e.Payload = p.slice(0, i) + pick(['A', '=', '+', '/', '_', '-', ' ', '\n', 'Z', 'a']) + p.slice(i + int(2));
      break;
    }
    case 7: e.Payload = b64(b64(decodedText(e))); break; // double base64
    case 8: { // signature: flipped, removed or from another key
      const f = decodedText(e).split('@');
      if (f.length === 4) {
        const sig = f[3]!;
        const i = int(64);
        f[3] = pick([sig.slice(0, i) + pick(['0', 'f', 'A', 'g']) + sig.slice(i + 1), '', createHmac('sha256', 'other').update('x').digest('hex')]);
        e.Payload = b64((f[3] === '' ? f.slice(0, 3) : f).join('@'));
      } else e.Payload = b64(`${f.join('@')}@${'0'.repeat(64)}`);
      break;
    }
    case 9: { // verb or sender changed (signature left as it was)
      const f = decodedText(e).split('@');
      if (rand() < 0.5) f[0] = pick(['fence', 'enable', 'enable-nova', 'reboot', 'FENCE', 'fence ', 'enable_nova']);
      else f[1] = pick(['ctrl-01', 'ctrl-02', '', 'ctrl 01', '-ctrl', 'ctrl.example.org', 'x'.repeat(254), 'c\u00e9']);
      e.Payload = b64(f.join('@'));
      break;
    }
    case 10: evs.push({ ...e }); break; // the same event twice
    case 11: evs.push({ ...e, ID: randomId() }); break; // the same payload under a new ID
    case 12: seen.add(`id:${String(e.ID)}`); break; // handled before
    case 13: seen.add(`payload:${decodedText(e).split('@').slice(0, 3).join('@')}`); break;
    case 14: evs.push(validEvent(keyed)); break;
    case 15: evs.splice(evs.indexOf(e), 1); break;
    case 16: e.ID = pick([String(e.ID).toUpperCase(), String(e.ID).slice(1), `${String(e.ID)}0`, randomId()]); break;
    case 17: e.ServiceFilter = pick(['', 'nova', '.*']); if (rand() < 0.5) e.TagFilter = pick(['', 'x']); break;
    case 18: e.Version = pick([1, 2, 0, '1']); break;
    default: e.LTime = pick([0, 1, 2 ** 53, -1, 0.5, '7', 42]); break;
  }
}

/** One textual mutation of the JSON. */
function mutateText(s: string): string {
  const i = int(s.length + 1);
  switch (int(6)) {
    case 0: return s.slice(0, i) + s.slice(i + 1); // delete a byte
    case 1: return s.slice(0, i) + pick(['"', ',', '[', ']', '{', '}', ':', '\\', ' ', '0', 'a', '\u00ff']) + s.slice(i); // insert
    case 2: return s.slice(0, i) + String.fromCharCode(int(128)) + s.slice(i + 1); // replace
    case 3: return s.slice(0, i); // truncate
    case 4: return `{"events":${s}}`; // wrap
    default: return `${s}${' '.repeat(int(3) === 0 ? 1024 * 1024 : 2)}`; // pad (sometimes over the limit)
  }
}

t.test(`≥ 10,000 random mutations (seed ${SEED}) never act unless still valid`, async (t) => {
  let acted = 0;
  let invalidRuns = 0;
  let refusedWhole = 0;
  let unsafe = 0;
  let mismatches = 0;
  for (let run = 0; run < RUNS; run++) {
    const keyed = rand() < 0.5;
    const seen = new Set<string>();
    const evs: Ev[] = Array.from({ length: 1 + int(3) }, () => validEvent(keyed));
    const n = 1 + int(3);
    for (let m = 0; m < n; m++) mutateEvents(evs, seen, keyed);
    let text = JSON.stringify(evs);
    if (rand() < 0.35) text = mutateText(text);
    const c: VerifyContext = { node: NODE, event: 'fence', maxAgeMs: MAX_AGE, maxSkewMs: MAX_SKEW, nowMs: NOW, bootTimeMs: BOOT, isSeen: (k) => seen.has(k), ...(keyed ? { key: KEY } : {}) };
    const got = verifyDelivery(text, c);
    const want = oracle(text, keyed, seen);
    const accepted = got.decisions.map((d) => d.accept);
    if (want === 'refused') {
      refusedWhole++;
      if (accepted.some(Boolean)) { unsafe++; t.fail(`run ${run}: acted on a refused delivery`, { text: text.slice(0, 500) }); }
      continue;
    }
    if (!want.every(Boolean)) invalidRuns++;
    if (accepted.some(Boolean)) acted++;
    for (let i = 0; i < want.length; i++) {
      if (accepted[i] && !want[i]) { unsafe++; t.fail(`run ${run}: event ${i} acted but is not valid`, { text: text.slice(0, 800), decision: got.decisions[i] }); }
      else if (!accepted[i] && want[i]) { mismatches++; t.fail(`run ${run}: event ${i} is valid but refused`, { text: text.slice(0, 800), decision: got.decisions[i] }); }
    }
    if (got.ok && got.decisions.length !== want.length) t.fail(`run ${run}: ${got.decisions.length} decisions for ${want.length} events`);
    if (unsafe + mismatches > 20) break; // enough evidence
  }
  t.equal(unsafe, 0, 'no invalid event ever acted');
  t.equal(mismatches, 0, 'every still-valid event acted (the oracle agrees both ways)');
  t.ok(RUNS >= 10_000, `${RUNS} mutated deliveries`);
  // The mutations must exercise both sides, or the property says nothing.
  t.ok(acted > RUNS / 20, `some mutated deliveries still act (${acted})`);
  t.ok(invalidRuns > RUNS / 3, `many hold an invalid event (${invalidRuns})`);
  t.ok(refusedWhole > RUNS / 20, `some are refused as a whole (${refusedWhole})`);
});
