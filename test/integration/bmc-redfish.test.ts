// The redfish method against the Redfish test double over loopback HTTPS,
// with certificates made by openssl for this run: pinned CA and pinned
// fingerprint accepted, anything else refused before a credential is sent;
// a lying BMC, an ignored reset, a failing reset and a hung BMC are all
// `unconfirmed`, the hung one within a bound derived from the timeouts.
import t, { type Test } from 'tap';
import pino from 'pino';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { powerOffConfirmed, type HostCheck, type RedfishMethod } from '../../src/actions/bmc/fence';
import { RedfishClient } from '../../src/actions/bmc/redfish';
import { makeCerts, startRedfishDouble, type RedfishDouble } from '../support/redfish-double';
import { logLines } from '../support/log-lines';
import { scratchDir } from '../support/vigil';

const USER = 'vigil-fence';
const SECRET = 'rf-S3cret-for-this-run';

const dir = scratchDir('redfish');
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const certs = makeCerts(dir); // openssl is required: a missing one fails here, it does not skip
const pwFile = path.join(dir, 'bmc.pw');
fs.writeFileSync(pwFile, `${SECRET}\n`, { mode: 0o600 });

async function double(t: Test, knobs: Parameters<typeof startRedfishDouble>[0]['knobs'] = {}): Promise<RedfishDouble> {
  const d = await startRedfishDouble({ certs, user: USER, password: SECRET, knobs });
  t.teardown(() => d.stop());
  return d;
}

const method = (d: RedfishDouble, extra: Partial<RedfishMethod> = {}): RedfishMethod =>
  ({ method: 'redfish', ip: '127.0.0.1', port: d.port, user: USER, passwordFile: pwFile, caFile: certs.caCert, requestTimeoutMs: 2000, ...extra });

/** The simulated host answers TCP while it runs: the after-off cross-check. */
function hostCheck(d: RedfishDouble): HostCheck {
  return () => new Promise((resolve) => {
    const s = net.connect(d.hostPort, '127.0.0.1');
    const done = (state: 'silent' | 'answers' | 'unknown', detail: string) => { s.destroy(); resolve({ state, detail }); };
    s.setTimeout(500, () => done('unknown', 'no answer, no refusal'));
    s.on('connect', () => done('answers', `host port ${d.hostPort} accepts connections`));
    s.on('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' ? 'silent' : 'unknown', e.code ?? e.message));
  });
}

const TIMING = { powerTimeoutMs: 3000, powerWaitMs: 200 };

t.test('pinned CA, session auth: ForceOff confirmed, session deleted, no secret logged', async (t) => {
  const d = await double(t);
  const { lines, log } = logLines();
  const r = await powerOffConfirmed(method(d), TIMING, { log, hostCheck: hostCheck(d) });
  t.equal(r.outcome, 'off', JSON.stringify(r.evidence));
  t.match(r.evidence[0]!.detail, /POST \/redfish\/v1\/Systems\/437XR1138R2\/Actions\/ComputerSystem.Reset ForceOff: HTTP 204/);
  t.ok(r.evidence.some((e) => e.step === 'status' && /PoweringOff/.test(e.detail)) || r.evidence.length >= 3, 'PoweringOff seen on the way, or read after');
  t.equal(d.hostRunning(), false);
  t.equal(d.openSessions(), 0, 'every session was deleted');
  t.equal(d.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/Sessions')).length, 1, 'one session for the whole fence');
  const reset = d.requests.find((q) => q.path.endsWith('ComputerSystem.Reset'))!;
  t.same(JSON.parse(reset.body), { ResetType: 'ForceOff' });
  t.equal(reset.auth, 'token');
  t.notOk(lines.join('').includes(SECRET), 'password not in the log');
  t.notOk(lines.join('').includes(Buffer.from(`${USER}:${SECRET}`).toString('base64')), 'nor its Basic form');
});

t.test('a session the BMC expired is replaced once; close() logs out', async (t) => {
  const d = await double(t);
  const c = new RedfishClient(method(d), { log: pino({ level: 'silent' }) });
  t.equal((await c.powerStatus()).state, 'on');
  d.expireSessions();
  t.equal((await c.powerStatus()).state, 'on', 'a 401 on the old token opens a new session');
  t.equal(d.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/Sessions')).length, 2);
  t.equal(d.openSessions(), 1);
  await c.close();
  t.equal(d.openSessions(), 0);
});

t.test('pinned fingerprint, no SessionService: falls back to Basic', async (t) => {
  const d = await double(t, { noSessions: true });
  const r = await powerOffConfirmed(method(d, { caFile: undefined, fingerprint: d.fingerprint256().toLowerCase().replace(/:/g, '') }), TIMING, { log: pino({ level: 'silent' }) });
  t.equal(r.outcome, 'off', JSON.stringify(r.evidence));
  t.ok(d.requests.filter((q) => !q.path.includes('SessionService')).every((q) => q.auth === 'basic'));
});

t.test('a wrong fingerprint or another CA is refused before any request is sent', async (t) => {
  const d = await double(t);
  const wrongFp = new RedfishClient(method(d, { caFile: undefined, fingerprint: 'AB'.repeat(32) }), { log: pino({ level: 'silent' }) });
  const r1 = await wrongFp.powerStatus();
  t.equal(r1.state, 'unknown');
  t.match(r1, { code: 'EBMCTLS', detail: /does not match the pinned AB:AB/ });
  const otherCa = new RedfishClient(method(d, { caFile: certs.otherCaCert }), { log: pino({ level: 'silent' }) });
  const r2 = await otherCa.powerStatus();
  t.equal(r2.state, 'unknown');
  t.match(r2, { code: 'EBMCTLS', detail: /certificate/i });
  t.equal(d.requests.length, 0, 'the double never saw a request, so never a credential');
  const f = await powerOffConfirmed(wrongFp, { powerTimeoutMs: 400, powerWaitMs: 200 }, { log: pino({ level: 'silent' }) });
  t.equal(f.outcome, 'unconfirmed');
  t.equal(d.hostRunning(), true);
});

t.test('wrong credentials are EBMCAUTH, with session or Basic', async (t) => {
  const d = await double(t);
  const wrong = path.join(dir, 'wrong.pw');
  fs.writeFileSync(wrong, 'not-the-password\n', { mode: 0o600 });
  for (const auth of ['session', 'basic'] as const) {
    const r = await new RedfishClient(method(d, { passwordFile: wrong, auth }), { log: pino({ level: 'silent' }) }).powerStatus();
    t.match(r, { state: 'unknown', code: 'EBMCAUTH', detail: /HTTP 401/ }, auth);
  }
});

t.test('a lying BMC (Off while the host runs) is unconfirmed by the host check', async (t) => {
  const d = await double(t, { lie: true });
  const r = await powerOffConfirmed(method(d), TIMING, { log: pino({ level: 'silent' }), hostCheck: hostCheck(d) });
  t.equal(r.outcome, 'unconfirmed');
  t.match(r.evidence.at(-1), { step: 'host-check', state: 'answers' });
});

t.test('a reset accepted and ignored, or refused, is unconfirmed at power_timeout', async (t) => {
  for (const knobs of [{ ignoreReset: true }, { failReset: 500 }]) {
    const d = await double(t, knobs);
    const r = await powerOffConfirmed(method(d), { powerTimeoutMs: 1000, powerWaitMs: 250 }, { log: pino({ level: 'silent' }) });
    t.equal(r.outcome, 'unconfirmed', JSON.stringify(knobs));
    t.equal(r.evidence[0]!.ok, !knobs.failReset, `action evidence: ${r.evidence[0]!.detail}`);
    if (knobs.failReset) t.equal(r.evidence[0]!.code, 'EBMCREFUSED');
    t.match(r.evidence.at(-1), { step: 'timeout' });
    t.equal(d.openSessions(), 0);
  }
});

t.test('a hung BMC is unconfirmed within the bound the timeouts give', async (t) => {
  const d = await double(t, { hang: true });
  const requestTimeoutMs = 300;
  const timing = { powerTimeoutMs: 1200, powerWaitMs: 300 };
  // Action: one request (the session POST) times out. Then reads until power_timeout;
  // the last read may start just before it and run one request timeout past it.
  const boundMs = requestTimeoutMs + timing.powerTimeoutMs + requestTimeoutMs + 500;
  const started = Date.now();
  const r = await powerOffConfirmed(method(d, { requestTimeoutMs }), timing, { log: pino({ level: 'silent' }) });
  const took = Date.now() - started;
  t.equal(r.outcome, 'unconfirmed');
  t.ok(took <= boundMs, `expected fence-unconfirmed by ${boundMs} ms (request_timeout ${requestTimeoutMs} + power_timeout ${timing.powerTimeoutMs} + one more request); took ${took} ms`);
  t.match(r.evidence[0], { code: 'EBMCTIMEOUT', detail: /no response within 300 ms/ });
});

t.test('a BMC that accepts TCP but never speaks TLS is unknown within request_timeout', async (t) => {
  const held = new Set<net.Socket>();
  const silent = net.createServer((s) => { held.add(s); }); // accept, never answer
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => { for (const s of held) s.destroy(); silent.close(); });
  const port = (silent.address() as net.AddressInfo).port;
  const requestTimeoutMs = 300;
  const c = new RedfishClient({ ip: '127.0.0.1', port, user: USER, passwordFile: pwFile, fingerprint: 'AB'.repeat(32), requestTimeoutMs }, { log: pino({ level: 'silent' }) });
  const t0 = Date.now();
  const r = await c.powerStatus();
  const took = Date.now() - t0;
  t.equal(r.state, 'unknown');
  t.match(r, { code: 'EBMCTIMEOUT', detail: /no TLS handshake within 300 ms/ });
  t.ok(took <= requestTimeoutMs + 300, `expected unknown by ${requestTimeoutMs + 300} ms, took ${took} ms`);
});

t.test('config is checked', async (t) => {
  t.throws(() => new RedfishClient({ ip: '127.0.0.1', user: USER, passwordFile: pwFile }), /exactly one of ca_file and fingerprint/);
  t.throws(() => new RedfishClient({ ip: '127.0.0.1', user: USER, passwordFile: pwFile, fingerprint: 'abc' }), /not a SHA-256 fingerprint/);
  t.throws(() => new RedfishClient({ ip: '127.0.0.1', user: USER, passwordFile: pwFile, caFile: pwFile }), /holds no PEM certificate/);
});
