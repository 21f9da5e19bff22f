// The container backend (vzctl/vzlist) and the wait for `running`, against
// the fake OpenVZ tools in test/support/fake-vz (real processes, real
// argv, real exit codes; the real tools cannot be installed here).
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import { VzctlAddresses, batchArgv, parseVzlistIps, vzctlBackendFor, MAX_ADDRESSES_PER_CALL, MAX_ARG_BYTES_PER_CALL } from '../../src/actions/vzctl';
import { ContainerWait, containerStatus } from '../../src/actions/container';
import type { Logger } from '../../src/log';
import type { VipConfig } from '../../src/roles/vip/config';
import { scratchDir, waitFor } from '../support/vigil';
import { sleep, SLACK_MS } from '../support/vigil';

const FAKE = path.join(__dirname, '..', 'support', 'fake-vz');
const VZCTL = path.join(FAKE, 'vzctl');
const VZLIST = path.join(FAKE, 'vzlist');

/** A logger whose lines the test can read. */
function captureLog(): { log: Logger; lines: () => Array<Record<string, any>> } {
  const out: string[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => { out.push(s); } }) as unknown as Logger;
  return { log, lines: () => out.map((l) => JSON.parse(l)) };
}

/** A fake-vz state directory with one container. */
function fakeVz(t: { teardown(fn: () => void): void }, ct: string, status: string) {
  const dir = scratchDir('vz');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const ctDir = path.join(dir, 'ct', ct);
  fs.mkdirSync(ctDir, { recursive: true });
  fs.writeFileSync(path.join(ctDir, 'status'), `${status}\n`);
  process.env.FAKE_VZ_DIR = dir;
  return {
    dir,
    setStatus: (s: string) => fs.writeFileSync(path.join(ctDir, 'status'), `${s}\n`),
    ips: () => (fs.existsSync(path.join(ctDir, 'ips')) ? fs.readFileSync(path.join(ctDir, 'ips'), 'utf8').split('\n').filter(Boolean) : []),
    setIps: (ips: string[]) => fs.writeFileSync(path.join(ctDir, 'ips'), ips.map((i) => `${i}\n`).join('')),
    failIpadd: (ips: string[]) => fs.writeFileSync(path.join(ctDir, 'fail-ipadd'), ips.map((i) => `${i}\n`).join('')),
    hang: () => fs.writeFileSync(path.join(ctDir, 'hang'), ''),
    calls: () => (fs.existsSync(path.join(dir, 'calls')) ? fs.readFileSync(path.join(dir, 'calls'), 'utf8').split('\n').filter(Boolean) : []),
    vzctlCalls: () => (fs.existsSync(path.join(dir, 'calls')) ? fs.readFileSync(path.join(dir, 'calls'), 'utf8').split('\n').filter((l) => l.startsWith('vzctl ')) : []),
  };
}

const cidr = (s: string) => { const [address, p] = s.split('/'); return { address: address!, prefix: p === undefined ? 32 : Number(p) }; };
const tools = (timeoutMs = 5000) => () => ({ vzctl: VZCTL, vzlist: VZLIST, timeoutMs });

t.test('parseVzlistIps', async (t) => {
  t.same(parseVzlistIps('-\n'), { addresses: [], skipped: [] }, '"-" is no addresses');
  t.same(parseVzlistIps('   \n'), { addresses: [], skipped: [] }, 'blank is no addresses');
  t.same(parseVzlistIps('10.0.0.1 10.0.0.2\n'), { addresses: [{ address: '10.0.0.1' }, { address: '10.0.0.2' }], skipped: [] });
  t.same(parseVzlistIps('10.0.0.1/24 10.0.0.2/255.255.255.128'), { addresses: [{ address: '10.0.0.1', prefix: 24 }, { address: '10.0.0.2', prefix: 25 }], skipped: [] }, 'prefix and netmask forms');
  t.same(parseVzlistIps('10.0.0.1 fe80::1 010.0.0.1 10.0.0.2/33 10.0.0.3/255.0.255.0 junk'),
    { addresses: [{ address: '10.0.0.1' }], skipped: ['fe80::1', '010.0.0.1', '10.0.0.2/33', '10.0.0.3/255.0.255.0', 'junk'] }, 'IPv6 and malformed tokens are skipped');
});

t.test('batchArgv', async (t) => {
  t.same(batchArgv('vzctl', '101', '--ipadd', []), [], 'no addresses, no call (vzhaipd V-17 made an empty one)');
  t.same(batchArgv('vzctl', '101', '--ipadd', ['10.0.0.1', '10.0.0.2']), [['vzctl', 'set', '101', '--ipadd', '10.0.0.1', '--ipadd', '10.0.0.2']], 'one call');
  const three = batchArgv('vzctl', '101', '--ipdel', ['10.0.0.1', '10.0.0.2', '10.0.0.3'], { maxAddresses: 2, maxBytes: 1e9 });
  t.same(three, [['vzctl', 'set', '101', '--ipdel', '10.0.0.1', '--ipdel', '10.0.0.2'], ['vzctl', 'set', '101', '--ipdel', '10.0.0.3']], 'count limit splits in order');
  const many = Array.from({ length: 10_000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  const calls = batchArgv('vzctl', '101', '--ipadd', many);
  // As few calls as the limits allow: no split can do with fewer calls than
  // the count limit or the total argv bytes (execve(2): each string with its
  // NUL, plus a pointer) force, and every call but the last must be full.
  const cost = (s: string) => Buffer.byteLength(s) + 1 + 8;
  const baseBytes = ['vzctl', 'set', '101'].reduce((n, s) => n + cost(s), 0);
  const totalBytes = many.reduce((n, a) => n + cost('--ipadd') + cost(a), 0);
  const fewest = Math.max(Math.ceil(many.length / MAX_ADDRESSES_PER_CALL), Math.ceil(totalBytes / (MAX_ARG_BYTES_PER_CALL - baseBytes)));
  t.equal(fewest, 4, 'the byte limit binds here: 10000 addresses of ~35 argv bytes each need 4 calls');
  t.equal(calls.length, fewest, `10000 addresses in ${calls.length} calls, the fewest the limits allow`);
  for (const [i, c] of calls.slice(0, -1).entries()) {
    const bytes = c.reduce((n, s) => n + cost(s), 0);
    const next = calls[i + 1]![4]!;
    t.ok((c.length - 3) / 2 >= MAX_ADDRESSES_PER_CALL || bytes + cost('--ipadd') + cost(next) > MAX_ARG_BYTES_PER_CALL,
      `call ${i + 1} is full (${bytes} bytes): its next address would not fit`);
  }
  t.same(calls.flatMap((c) => c.slice(3).filter((_, i) => i % 2 === 1)), many, 'every address once, in order');
  for (const c of calls) {
    const bytes = c.reduce((n, s) => n + Buffer.byteLength(s) + 1 + 8, 0);
    if (bytes > MAX_ARG_BYTES_PER_CALL || (c.length - 3) / 2 > MAX_ADDRESSES_PER_CALL) t.fail(`a call exceeds the limits: ${bytes} bytes`);
  }
  const tight = batchArgv('vzctl', '101', '--ipadd', many.slice(0, 100), { maxAddresses: 1e9, maxBytes: 400 });
  t.ok(tight.length > 1 && tight.every((c) => c.reduce((n, s) => n + Buffer.byteLength(s) + 9, 0) <= 400), 'byte limit respected');
});

t.test('containerStatus', async (t) => {
  const vz = fakeVz(t, '101', 'running');
  t.same(await containerStatus(VZLIST, '101', 5000), { status: 'running' }, 'padded vzlist output trimmed');
  vz.setStatus('mounted');
  t.same(await containerStatus(VZLIST, '101', 5000), { status: 'mounted' });
  const missing = await containerStatus(VZLIST, '999', 5000);
  t.match(missing, { error: /exit 1: Container\(s\) not found/ }, 'unknown container: the error says why');
  t.match(await containerStatus('/nonexistent/vzlist', '101', 5000), { error: /could not start: ENOENT/ }, 'missing vzlist');
});

t.test('VzctlAddresses: batched add, list with prefixes, remove', async (t) => {
  const vz = fakeVz(t, '101', 'running');
  const { log } = captureLog();
  const be = new VzctlAddresses({ container: '101', tools: tools(), log, prefixes: () => new Map([['10.9.0.100', 24]]) });
  const want = [cidr('10.9.0.100/24'), cidr('10.9.0.101/32'), cidr('10.9.0.102/28')];
  const r = await be.add(want);
  t.same(r, { done: want, failed: [] }, 'all added');
  t.same(vz.vzctlCalls(), ['vzctl set 101 --ipadd 10.9.0.100 --ipadd 10.9.0.101 --ipadd 10.9.0.102'], 'one vzctl call, bare addresses, no --save');
  t.same(vz.ips(), ['10.9.0.100', '10.9.0.101', '10.9.0.102'], 'the container has them');
  t.same(await be.list(), want, 'list: the hinted prefix, else the prefix they were added with');

  // Adding again: present ones are skipped (vzctl would fail the whole batch and undo it).
  const again = await be.add([cidr('10.9.0.101/32'), cidr('10.9.0.103/32')]);
  t.same(again.failed, [], 'no failure');
  t.same(again.done.map((c) => c.address).sort(), ['10.9.0.101', '10.9.0.103']);
  t.equal(vz.vzctlCalls()[1], 'vzctl set 101 --ipadd 10.9.0.103', 'only the missing address went to vzctl');

  const rm = await be.remove([cidr('10.9.0.103/32'), cidr('10.9.0.102/28'), cidr('10.9.0.101/32'), cidr('10.9.0.100/24')]);
  t.same(rm.failed, [], 'removed');
  t.equal(vz.vzctlCalls()[2], 'vzctl set 101 --ipdel 10.9.0.103 --ipdel 10.9.0.102 --ipdel 10.9.0.101 --ipdel 10.9.0.100', 'one --ipdel call, in the order given');
  t.same(vz.ips(), [], 'the container holds none');
  t.same(await be.list(), [], 'list empty ("-")');
});

t.test('VzctlAddresses: failures are per batch, with the reason', async (t) => {
  const vz = fakeVz(t, '102', 'running');
  const { log } = captureLog();
  const be = new VzctlAddresses({ container: '102', tools: tools(), log, maxAddressesPerCall: 2 });
  vz.failIpadd(['10.9.1.3']);
  const addrs = ['10.9.1.1', '10.9.1.2', '10.9.1.3', '10.9.1.4', '10.9.1.5'].map((a) => cidr(a));
  const r = await be.add(addrs);
  t.same(r.done, addrs.slice(0, 2), 'the first batch went in');
  t.same(r.failed.map((f) => f.cidr), addrs.slice(2), 'the failing batch and the one after it failed');
  t.match(r.failed[0]!.error, /exit 1: Unable to add IP 10\.9\.1\.3: Cannot assign requested address/, 'the failing call\'s own message');
  t.match(r.failed[1]!.error, /exit 1/, 'its partner in the batch fails with it (vzctl applies a batch all or nothing)');
  t.match(r.failed[2]!.error, /^not attempted: an earlier vzctl call failed/, 'later batches are not attempted');
  t.same(vz.ips(), ['10.9.1.1', '10.9.1.2'], 'the container has exactly what was reported done');
  t.equal(vz.vzctlCalls().length, 2, 'two vzctl calls (batches of 2), the third not made');

  // Removal tries every batch.
  fs.rmSync(path.join(vz.dir, 'ct', '102', 'fail-ipadd'));
  const rm = await be.remove(addrs);
  t.same(rm, { done: addrs, failed: [] }, 'removing absent addresses is not an error');
  t.equal(vz.vzctlCalls().length, 5, 'three --ipdel calls of at most 2');
});

t.test('VzctlAddresses: a stopped container holds nothing', async (t) => {
  const vz = fakeVz(t, '103', 'running');
  const { log, lines } = captureLog();
  const be = new VzctlAddresses({ container: '103', tools: tools(), log });
  await be.add([cidr('10.9.2.1/32')]);
  vz.setStatus('stopped');
  vz.setIps([]); // the kernel drops a container's runtime addresses when it stops
  const callsBefore = vz.vzctlCalls().length;
  await t.rejects(be.list(), { code: 'ECTNOTRUNNING', retryable: true, message: /container 103 is stopped/ },
    'list of a stopped container is an error, not an empty list (a reconcile must not read it as "everything missing")');
  const add = await be.add([cidr('10.9.2.2/32')]);
  t.match(add.failed, [{ error: /cannot read the container's addresses first \(container 103 is stopped/ }], 'add fails: not running');
  t.equal(vz.vzctlCalls().length, callsBefore, 'and no --ipadd was tried');
  const rm = await be.remove([cidr('10.9.2.1/32')]);
  t.same(rm, { done: [cidr('10.9.2.1/32')], failed: [] }, 'remove counts as done: the --ipdel failed only because the container stopped');
  t.ok(vz.vzctlCalls().includes('vzctl set 103 --ipdel 10.9.2.1'), '--ipdel was still tried');
  t.ok(lines().some((l) => /container not running/.test(l.msg) && l.status === 'stopped'), 'and the log says why');

  const gone = new VzctlAddresses({ container: '999', tools: tools(), log });
  const rm2 = await gone.remove([cidr('10.9.2.1/32')]);
  t.equal(rm2.failed.length, 1, 'an unknown container is a failure, not a silent success');
  await t.rejects(gone.list(), { code: 'EVZLIST', message: /Container\(s\) not found/ }, 'list of an unknown container throws with the reason');
  const add2 = await gone.add([cidr('10.9.2.1/32')]);
  t.match(add2.failed, [{ error: /cannot read the container's addresses first/ }], 'add refuses when it cannot list first');
});

t.test('VzctlAddresses: a listing at vzlist\'s line limit is not trusted', async (t) => {
  const vz = fakeVz(t, '106', 'running');
  const many = Array.from({ length: 400 }, (_, i) => `10.109.${100 + (i >> 7)}.${100 + (i & 127)}`); // 14 bytes each: 5.6 KB
  vz.setIps(many);
  const be = new VzctlAddresses({ container: '106', tools: tools() });
  await t.rejects(be.list(), { code: 'EVZLISTLONG' }, 'list refuses a line that may have been cut');
  const r = await be.add([cidr('10.9.9.1/32')]);
  t.match(r.failed, [{ error: /cannot read the container's addresses first .*line limit/ }], 'and add does not act on it');
  t.same(vz.vzctlCalls(), [], 'no vzctl call');
  vz.setIps(many.slice(0, 200));
  t.equal((await be.list()).length, 200, '200 addresses list fine');
});

t.test('VzctlAddresses: a hung vzctl is killed at command_timeout', async (t) => {
  const vz = fakeVz(t, '104', 'running');
  vz.hang();
  const be = new VzctlAddresses({ container: '104', tools: tools(400) });
  const started = Date.now();
  const r = await be.add([cidr('10.9.3.1/32')]);
  t.match(r.failed, [{ error: /killed after 400 ms timeout/ }], 'failed with the timeout');
  t.ok(Date.now() - started < 5000, `returned in ${Date.now() - started} ms`);
});

t.test('vzctlBackendFor: the prefixes vigil means, from config and runner', async (t) => {
  const vz = fakeVz(t, '105', 'running');
  vz.setIps(['10.9.4.100', '10.9.4.7', '10.9.4.8']);
  const vip = { container: '105', vzctl: VZCTL, vzlist: VZLIST, commandTimeoutMs: 5000, address: cidr('10.9.4.100/24') } as unknown as VipConfig;
  const be = vzctlBackendFor(() => vip, () => ['10.9.4.7/32', '10.9.4.7/26']);
  t.same(await be.list(), [cidr('10.9.4.100/24'), cidr('10.9.4.7/26'), cidr('10.9.4.8/32')], 'HA IP from config, desired wins over held, unknown /32');
});

t.test('ContainerWait', async (t) => {
  const VZLIST_TIMEOUT_MS = 5000;
  const POLL_MS = 50;
  const settings = (settleMs: number) => () => ({ vzlist: VZLIST, settleMs, timeoutMs: VZLIST_TIMEOUT_MS });
  /** By when `n` more polls have run: each a poll period and a vzlist run (up to its timeout); plus slack. */
  const pollsBoundMs = (n: number) => n * (POLL_MS + VZLIST_TIMEOUT_MS) + SLACK_MS;
  /** What a wait expected by when, and the wait's state at the failure. */
  const expected = (w: ContainerWait, what: string, ms: number) => () => `${what} within ${ms} ms; the wait: ${JSON.stringify(w.snapshot())}`;

  await t.test('waits while not running, then settles, then resolves', async (t) => {
    const vz = fakeVz(t, '201', 'mounted');
    const { log, lines } = captureLog();
    const changes: string[] = [];
    const w = new ContainerWait({ container: '201', settings: settings(300), log, pollMs: POLL_MS, onChange: (s) => changes.push(s) });
    let outcome: string | undefined;
    void w.done.then((o) => { outcome = o; });
    await sleep(8 * POLL_MS); // eight poll periods
    await waitFor(() => w.snapshot().polls >= 3, pollsBoundMs(3), expected(w, 'three polls', pollsBoundMs(3))).catch(() => undefined);
    t.equal(outcome, undefined, 'still waiting while mounted');
    t.ok(w.snapshot().polls >= 3, `polled ${w.snapshot().polls} times`);
    t.match(w.snapshot(), { phase: 'waiting', status: 'mounted' });
    t.ok(w.healthy(), 'healthy while it keeps polling');
    t.same(vz.vzctlCalls(), [], 'nothing but vzlist ran');
    const runAt = Date.now();
    vz.setStatus('running');
    t.equal(await w.done, 'running');
    t.ok(Date.now() - runAt >= 300, `resolved ${Date.now() - runAt} ms after running: after the settle time`);
    t.match(changes, [/^waiting for container 201 to be running \(it is mounted\)/, /running; settling for 300ms/], 'state changes reported for systemd STATUS, once each');
    t.ok(lines().some((l) => /running and settled/.test(l.msg)), 'logged');
  });

  await t.test('a container that stops while settling sends it back to waiting', async (t) => {
    const vz = fakeVz(t, '202', 'running');
    const { log, lines } = captureLog();
    const w = new ContainerWait({ container: '202', settings: settings(300), log, pollMs: POLL_MS });
    // The first poll sees it running.
    await waitFor(() => w.snapshot().phase === 'settling', pollsBoundMs(1), expected(w, 'settling (the first poll)', pollsBoundMs(1))).catch(() => undefined);
    t.equal(w.snapshot().phase, 'settling');
    vz.setStatus('stopped');
    await waitFor(() => w.snapshot().phase === 'waiting', pollsBoundMs(1), expected(w, 'waiting again (the next poll)', pollsBoundMs(1))).catch(() => undefined);
    t.equal(w.snapshot().phase, 'waiting', 'waiting again');
    t.ok(lines().some((l) => /left running while settling/.test(l.msg)), 'and said so');
    vz.setStatus('running');
    t.equal(await w.done, 'running', 'then resolves once it runs and settles');
  });

  await t.test('cancel ends the wait at once, in either phase', async (t) => {
    fakeVz(t, '203', 'mounted');
    const { log } = captureLog();
    const w = new ContainerWait({ container: '203', settings: settings(60_000), log, pollMs: POLL_MS });
    await sleep(2.4 * POLL_MS); // two polls and a bit
    const at = Date.now();
    w.cancel();
    t.equal(await w.done, 'cancelled');
    t.ok(Date.now() - at < 250, 'promptly (well under the 60 s settle)');
    const polls = w.snapshot().polls;
    await sleep(4 * POLL_MS); // four poll periods
    t.equal(w.snapshot().polls, polls, 'no poll after cancel');

    const vz = fakeVz(t, '204', 'running');
    const w2 = new ContainerWait({ container: '204', settings: settings(60_000), log, pollMs: POLL_MS });
    await waitFor(() => w2.snapshot().phase === 'settling', pollsBoundMs(1), expected(w2, 'settling (the first poll)', pollsBoundMs(1))).catch(() => undefined);
    t.equal(w2.snapshot().phase, 'settling', 'settling for a minute');
    t.ok(w2.healthy(), 'healthy while settling, however long');
    w2.cancel();
    t.equal(await w2.done, 'cancelled', 'cancelled while settling');
    t.same(vz.vzctlCalls(), []);
  });

  await t.test('an unknown container keeps it waiting, with the reason', async (t) => {
    fakeVz(t, '205', 'mounted');
    const { log, lines } = captureLog();
    const w = new ContainerWait({ container: '999', settings: settings(0), log, pollMs: POLL_MS });
    await waitFor(() => w.snapshot().polls >= 3, pollsBoundMs(3), expected(w, 'three polls', pollsBoundMs(3))).catch(() => undefined);
    t.match(w.snapshot(), { phase: 'waiting', error: /Container\(s\) not found/ });
    t.equal(lines().filter((l) => /status unknown/.test(l.msg)).length, 1, 'logged once, not at every poll');
    w.cancel();
    await w.done;
  });
});
