/**
 * Layer: pure codec and policy. Decodes and verifies a Consul `fence` event
 * delivery (the JSON array a `consul watch -type=event` handler gets on
 * stdin) and encodes the payload for the sender.
 *
 * Nothing here reads a clock, a file or the network: the time, the host's
 * boot time, the key and the set of handled IDs are all passed in, so every
 * rule can be tested exhaustively. An event *acts* only if every check in
 * issue 5 holds; the first failing check is its reason. The old handler
 * (seed-inventory K-50…K-54) read only the first event, compared the node
 * loosely, had no authentication and no replay protection.
 *
 * Encoding choice: the payload must be single base64 (what Consul does with
 * the raw body). The double-base64 variant (an old sender that encoded
 * before firing, consul-api.md 3b) is also accepted, but only when the outer
 * and inner layers are both canonical base64 and the inner text matches the
 * same strict grammar; the decision records `encoding: 'base64x2'`. The two
 * cannot be confused: a decoded payload holds `@`, which base64 never does.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ConfigError } from '../errors';

/** Largest stdin accepted; anything larger is refused before parsing. */
export const MAX_DELIVERY_BYTES = 1024 * 1024;
/** Consul's event ring buffer: a real delivery never holds more. */
export const MAX_EVENTS_PER_DELIVERY = 256;
/** Longest payload field (base64 text) considered at all. */
const MAX_PAYLOAD_B64 = 1024;

/** What an accepted event does: `fence` runs fence.actions, `enable` runs on_enable. */
export type FenceCommand = 'fence' | 'enable';
/** The verbs on the wire (`enable-nova` is the old alias of `enable`). */
export type FenceVerb = 'fence' | 'enable' | 'enable-nova';

/** `verb@sender@unix-seconds[@hmac-hex]`, sender a host name. */
export const PAYLOAD_RE = /^(fence|enable|enable-nova)@([A-Za-z0-9][A-Za-z0-9._-]{0,252})@([1-9][0-9]{8,10})(?:@([0-9a-f]{64}))?$/;
/** Consul event IDs are lowercase 8-4-4-4-12 hex (go-uuid). Lowercase only, so one event has one ID. */
export const EVENT_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SENDER_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
const CANONICAL_B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Why an event (or a whole delivery) was refused; `ok` when it acts. */
export type RejectReason =
  | 'ok'
  | 'input-too-large' | 'input-not-utf8' | 'input-empty' | 'bad-json' | 'not-an-array' | 'too-many-events'
  | 'not-an-object' | 'bad-id' | 'bad-field' | 'wrong-name' | 'service-filter' | 'wrong-node'
  | 'no-payload' | 'bad-base64' | 'bad-payload' | 'unsigned' | 'bad-signature'
  | 'stale' | 'future' | 'before-boot' | 'replayed';

/** Everything the verification needs, all injected. */
export interface VerifyContext {
  /** This node's name (config `node`). */
  node: string;
  /** The configured event name (`fence_handler.event`). */
  event: string;
  maxAgeMs: number;
  maxSkewMs: number;
  /** Wall-clock now, ms since the epoch. */
  nowMs: number;
  /** When this host booted (wall clock, ms; /proc/stat `btime` × 1000). */
  bootTimeMs: number;
  /** The HMAC key; when set, only correctly signed events act. */
  key?: Buffer;
  /** True when a replay key (see {@link EventDecision.replayKeys}) was handled before. */
  isSeen(replayKey: string): boolean;
}

/** The verdict on one event of the delivery. */
export interface EventDecision {
  /** Position in the delivered array. */
  index: number;
  id?: string;
  accept: boolean;
  command?: FenceCommand;
  verb?: FenceVerb;
  sender?: string;
  /** The payload's timestamp, unix seconds. */
  timestamp?: number;
  encoding?: 'base64' | 'base64x2';
  signed?: boolean;
  reason: RejectReason;
  /** One line for the log. */
  detail: string;
  /** Keys that mark this event as handled: its ID and its payload (the same fence fired in several datacenters acts once). */
  replayKeys?: string[];
}

/** The verdict on a whole delivery. */
export interface DeliveryResult {
  /** False when the delivery as a whole was refused (then `decisions` is empty). */
  ok: boolean;
  reason: RejectReason;
  detail: string;
  /** Bytes of input seen. */
  bytes: number;
  decisions: EventDecision[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Strict base64: canonical alphabet and padding, and it must re-encode to itself. */
export function decodeStrictBase64(s: string): Buffer | undefined {
  if (s.length === 0 || s.length % 4 !== 0 || !CANONICAL_B64_RE.test(s)) return undefined;
  const buf = Buffer.from(s, 'base64');
  return buf.toString('base64') === s ? buf : undefined;
}

/** The bytes an HMAC covers: `verb@sender@timestamp`. */
export function signedText(verb: FenceVerb, sender: string, timestamp: number): string {
  return `${verb}@${sender}@${timestamp}`;
}

/** HMAC-SHA256 over `verb@sender@timestamp`, lowercase hex. */
export function signFence(key: Buffer, verb: FenceVerb, sender: string, timestamp: number): string {
  return createHmac('sha256', key).update(signedText(verb, sender, timestamp), 'utf8').digest('hex');
}

/**
 * The payload a sender fires: `verb@sender@timestamp`, plus `@hmac` with a
 * key. Consul base64-encodes the body itself, so this is sent raw.
 * @throws ConfigError for a sender that is not a host name or a bad time
 */
export function encodeFencePayload(verb: FenceVerb, sender: string, timestamp: number, key?: Buffer): string {
  if (verb !== 'fence' && verb !== 'enable' && verb !== 'enable-nova') throw new ConfigError(`unknown fence command ${JSON.stringify(verb)}`);
  if (!SENDER_RE.test(sender)) throw new ConfigError(`sender ${JSON.stringify(sender)} is not a host name`);
  if (!Number.isSafeInteger(timestamp) || timestamp < 100_000_000 || timestamp > 99_999_999_999) {
    throw new ConfigError(`timestamp ${timestamp} is not unix seconds`);
  }
  const text = signedText(verb, sender, timestamp);
  return key ? `${text}@${signFence(key, verb, sender, timestamp)}` : text;
}

interface ParsedPayload { verb: FenceVerb; sender: string; timestamp: number; sig?: string; encoding: 'base64' | 'base64x2' }

/** Decode a Payload field (single or double base64) into its strict fields. */
function parsePayload(b64: string): ParsedPayload | 'bad-base64' | 'bad-payload' {
  if (b64.length > MAX_PAYLOAD_B64) return 'bad-payload';
  const once = decodeStrictBase64(b64);
  if (!once) return 'bad-base64';
  // latin1 maps every byte to one char, so a non-ASCII byte can never match the ASCII grammar.
  const text = once.toString('latin1');
  let m = PAYLOAD_RE.exec(text);
  let encoding: 'base64' | 'base64x2' = 'base64';
  if (!m) {
    const twice = decodeStrictBase64(text);
    if (!twice) return 'bad-payload';
    m = PAYLOAD_RE.exec(twice.toString('latin1'));
    if (!m) return 'bad-payload';
    encoding = 'base64x2';
  }
  const out: ParsedPayload = { verb: m[1] as FenceVerb, sender: m[2]!, timestamp: Number(m[3]), encoding };
  if (m[4] !== undefined) out.sig = m[4];
  return out;
}

/** True when a NodeFilter designates exactly `node`: the literal name or `^name$`, as strings, never as a regex. */
export function nodeFilterIsExactly(filter: string, node: string): boolean {
  return node !== '' && (filter === node || filter === `^${node}$`);
}

function reject(d: EventDecision, reason: RejectReason, detail: string): EventDecision {
  d.accept = false;
  d.reason = reason;
  d.detail = detail;
  return d;
}

/** Verify one event object. `taken` holds the replay keys accepted earlier in this delivery. */
function verifyEvent(ev: unknown, index: number, ctx: VerifyContext, taken: Set<string>): EventDecision {
  const d: EventDecision = { index, accept: false, reason: 'ok', detail: '' };
  if (!isObject(ev)) return reject(d, 'not-an-object', 'event is not a JSON object');
  if (typeof ev.ID !== 'string' || !EVENT_ID_RE.test(ev.ID)) return reject(d, 'bad-id', 'ID is missing or not a lowercase UUID');
  d.id = ev.ID;
  if (typeof ev.Name !== 'string') return reject(d, 'bad-field', 'Name is missing or not a string');
  if (ev.Name !== ctx.event) return reject(d, 'wrong-name', `event name ${JSON.stringify(ev.Name.slice(0, 64))} is not ${JSON.stringify(ctx.event)}`);
  if (ev.Version !== 1) return reject(d, 'bad-field', 'Version is not 1');
  if (typeof ev.LTime !== 'number' || !Number.isSafeInteger(ev.LTime) || ev.LTime < 0) return reject(d, 'bad-field', 'LTime is not a non-negative integer');
  for (const f of ['NodeFilter', 'ServiceFilter', 'TagFilter'] as const) {
    if (typeof ev[f] !== 'string') return reject(d, 'bad-field', `${f} is missing or not a string`);
  }
  // A fence names a node, nothing else; a service or tag filter makes the addressee ambiguous.
  if (ev.ServiceFilter !== '' || ev.TagFilter !== '') return reject(d, 'service-filter', 'event carries a service or tag filter');
  const filter = ev.NodeFilter as string;
  if (!nodeFilterIsExactly(filter, ctx.node)) {
    return reject(d, 'wrong-node', filter === ''
      ? 'empty NodeFilter (every node) does not designate this node'
      : `NodeFilter ${JSON.stringify(filter.slice(0, 128))} is not exactly ${JSON.stringify(ctx.node)} or "^${ctx.node}$"`);
  }
  if (!('Payload' in ev) || ev.Payload === null) return reject(d, 'no-payload', 'Payload is null or missing');
  if (typeof ev.Payload !== 'string') return reject(d, 'bad-field', 'Payload is not a base64 string');
  const p = parsePayload(ev.Payload);
  if (p === 'bad-base64') return reject(d, 'bad-base64', 'Payload is not canonical base64');
  if (p === 'bad-payload') return reject(d, 'bad-payload', 'payload is not command@sender@unix-timestamp[@signature]');
  d.verb = p.verb;
  d.command = p.verb === 'fence' ? 'fence' : 'enable';
  d.sender = p.sender;
  d.timestamp = p.timestamp;
  d.encoding = p.encoding;
  d.signed = p.sig !== undefined;
  if (ctx.key) {
    if (p.sig === undefined) return reject(d, 'unsigned', 'a key_file is set and the event is not signed');
    const want = createHmac('sha256', ctx.key).update(signedText(p.verb, p.sender, p.timestamp), 'utf8').digest();
    const got = Buffer.from(p.sig, 'hex'); // 64 hex digits by the grammar: always 32 bytes, as `want`
    if (got.length !== want.length || !timingSafeEqual(got, want)) return reject(d, 'bad-signature', 'signature does not match');
  }
  const tsMs = p.timestamp * 1000;
  const ageMs = ctx.nowMs - tsMs;
  if (ageMs > ctx.maxAgeMs) return reject(d, 'stale', `issued ${Math.round(ageMs / 1000)}s ago, max_age is ${ctx.maxAgeMs / 1000}s`);
  if (-ageMs > ctx.maxSkewMs) return reject(d, 'future', `issued ${Math.round(-ageMs / 1000)}s in the future, max_skew is ${ctx.maxSkewMs / 1000}s`);
  // A fence issued before (or in the very second of) this boot is spent: it already fenced the previous life.
  if (tsMs <= ctx.bootTimeMs) return reject(d, 'before-boot', 'issued before this host booted');
  const keys = [`id:${ev.ID}`, `payload:${signedText(p.verb, p.sender, p.timestamp)}`];
  for (const k of keys) {
    if (taken.has(k)) return reject(d, 'replayed', `${k.startsWith('id:') ? 'ID' : 'payload'} appears twice in this delivery`);
    if (ctx.isSeen(k)) return reject(d, 'replayed', `${k.startsWith('id:') ? 'ID' : 'payload'} was handled before`);
  }
  for (const k of keys) taken.add(k);
  d.replayKeys = keys;
  d.accept = true;
  d.reason = 'ok';
  d.detail = `${p.verb} from ${p.sender} at ${p.timestamp}${d.signed ? (ctx.key ? ', signature valid' : ', signature not checked (no key_file)') : ''}`;
  return d;
}

function refuse(reason: RejectReason, detail: string, bytes: number): DeliveryResult {
  return { ok: false, reason, detail, bytes, decisions: [] };
}

/**
 * Verify a whole delivery, every event in it (not only the first, K-54).
 * The input is refused as a whole when it is larger than 1 MiB (before any
 * parsing), not UTF-8, not JSON, not an array or longer than Consul's buffer.
 */
export function verifyDelivery(input: Buffer | string, ctx: VerifyContext): DeliveryResult {
  const bytes = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  if (bytes > MAX_DELIVERY_BYTES) return refuse('input-too-large', `input of ${bytes} bytes is over ${MAX_DELIVERY_BYTES}`, bytes);
  let text: string;
  if (typeof input === 'string') text = input;
  else {
    try { text = new TextDecoder('utf-8', { fatal: true }).decode(input); } catch { return refuse('input-not-utf8', 'input is not valid UTF-8', bytes); }
  }
  if (text.trim() === '') return refuse('input-empty', 'input is empty', bytes);
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch (e) { return refuse('bad-json', `input is not JSON: ${(e as Error).message.slice(0, 120)}`, bytes); }
  if (!Array.isArray(parsed)) return refuse('not-an-array', 'input is not a JSON array of events', bytes);
  if (parsed.length > MAX_EVENTS_PER_DELIVERY) return refuse('too-many-events', `${parsed.length} events, Consul never buffers more than ${MAX_EVENTS_PER_DELIVERY}`, bytes);
  const taken = new Set<string>();
  const decisions = parsed.map((ev, i) => verifyEvent(ev, i, ctx, taken));
  return { ok: true, reason: 'ok', detail: `${decisions.length} event(s)`, bytes, decisions };
}

/**
 * What to run for the accepted decisions: each command once per delivery, in
 * the order of its first accepted event.
 */
export function planCommands(decisions: readonly EventDecision[]): FenceCommand[] {
  const out: FenceCommand[] = [];
  for (const d of decisions) if (d.accept && d.command && !out.includes(d.command)) out.push(d.command);
  return out;
}
