// Integration: the native steady-state probe loop (native/arpwatch.c through
// src/net/arp/watch.ts) with real AF_PACKET sockets in a lab (hosts a and b on
// a bridge). b watches a's address the way a slave watches the HA IP, and a
// free address the way a master watches for a competitor. What must hold: the
// expected answers never reach JavaScript, anything else ends the watch at
// once, and a stalled process never turns a queued answer into silence.
import t from 'tap';
import { createLab, skipUnlessRoot } from '../support/lab';
import type { Lab, LabHost } from '../support/lab';
import * as path from 'node:path';
import { ROOT, SLACK_MS, START_MS, stall } from '../support/vigil';
import { ArpProber } from '../../src/net/arp/prober';
import { ArpSocket } from '../../src/net/arp/socket';
import { buildAnnounceRequest } from '../../src/net/arp/codec';
import { setLogLevel } from '../../src/log';

setLogLevel('silent');

/** What a watch of `rounds` rounds `everyMs` apart may take at most, with slack. */
const boundMs = (rounds: number, everyMs: number, timeoutMs: number) => rounds * (everyMs + timeoutMs) + SLACK_MS;

const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> => Promise.race([
  p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: not ended within ${ms} ms`)), ms)),
]);

if (!skipUnlessRoot(t)) {
  let lab: Lab;
  let a: LabHost;
  let b: LabHost;

  t.before(async () => {
    lab = await createLab({ hosts: ['a', 'b'] });
    a = lab.host('a');
    b = lab.host('b');
  });
  t.teardown(async () => {
    await lab?.destroy();
  });

  t.test('expecting a holder: every round answered by it passes natively, no frame reaches JavaScript', async (t) => {
    const pb = b.inNetns(() => ArpProber.open(b.ifname));
    t.teardown(() => pb.close());
    const rounds = 20;
    const everyMs = 10;
    const timeoutMs = 200;
    const w = pb.watch(a.ip, { expectMac: a.mac, everyMs, timeoutMs, rounds });
    t.ok(w, 'the real binding runs the native loop');
    const end = await within(w!.done, boundMs(rounds, everyMs, timeoutMs), 'the watch');
    t.equal(end.status, 'complete', `all rounds passed (${JSON.stringify({ ...end, rttsMs: end.rttsMs.length })})`);
    t.equal(end.rounds, rounds);
    t.equal(end.rttsMs.length, rounds, 'one round trip per answered round');
    t.ok(end.rttsMs.every((x) => x >= 0 && x < timeoutMs), 'each round trip is within the timeout');
    t.equal(pb.stats()?.received, 0, 'none of the answers was delivered to JavaScript');
    const st = pb.watchState();
    t.equal(st?.taken, rounds, 'the native counters say the answers were taken there');
    t.equal(st?.active, false, 'and the loop has stopped');
  });

  t.test('expecting a holder that is not the one answering: the answer reaches JavaScript and ends the watch', async (t) => {
    const pb = b.inNetns(() => ArpProber.open(b.ifname));
    t.teardown(() => pb.close());
    const w = pb.watch(a.ip, { expectMac: '02:00:00:00:00:01', everyMs: 10, timeoutMs: 200, rounds: 50 });
    const end = await within(w!.done, boundMs(1, 10, 200), 'the watch');
    t.equal(end.status, 'heard', 'ended by the other MAC');
    if (end.status === 'heard') t.equal(end.mac, a.mac, "a's MAC is named");
    t.equal(end.rounds, 0, 'no round passed');
  });

  t.test('expecting a holder on an address nobody holds: silent after one round', async (t) => {
    const pb = b.inNetns(() => ArpProber.open(b.ifname));
    t.teardown(() => pb.close());
    const everyMs = 10;
    const timeoutMs = 50;
    const started = performance.now();
    const w = pb.watch(lab.freeIp(30), { expectMac: a.mac, everyMs, timeoutMs, rounds: 50 });
    const end = await within(w!.done, boundMs(1, everyMs, timeoutMs), 'the watch');
    const tookMs = performance.now() - started;
    t.equal(end.status, 'silent');
    t.equal(end.rounds, 0);
    t.ok(tookMs >= everyMs + timeoutMs, `not before the round's wait and timeout (${tookMs.toFixed(1)} ms >= ${everyMs + timeoutMs} ms): never early`);
  });

  t.test('expecting silence (a master): rounds pass in silence, a competitor ends the watch at once', async (t) => {
    const pb = b.inNetns(() => ArpProber.open(b.ifname));
    const sa = a.inNetns(() => ArpSocket.open(a.ifname));
    t.teardown(() => { pb.close(); sa.close(); });
    const ip = lab.freeIp(31);
    const quiet = pb.watch(ip, { everyMs: 10, timeoutMs: 20, rounds: 5 });
    const q = await within(quiet!.done, boundMs(5, 10, 20), 'the quiet watch');
    t.equal(q.status, 'complete', 'nobody answers: every round passes');
    t.equal(q.rounds, 5);
    t.same(q.rttsMs, [], 'no answers, no round trips');

    const w = pb.watch(ip, { everyMs: 10, timeoutMs: 20, rounds: 1000 });
    setTimeout(() => sa.send(buildAnnounceRequest({ mac: sa.macBytes, ip, ethSrc: sa.macBytes })), 50);
    const end = await within(w!.done, 50 + SLACK_MS, 'the watch with a competitor');
    t.equal(end.status, 'heard', "a's gratuitous ARP for the address ends it");
    if (end.status === 'heard') t.equal(end.mac, a.mac);
  });

  t.test('expecting silence with neighbours (a master): a neighbour\'s reply passes each round natively; none ends the watch', async (t) => {
    const pb = b.inNetns(() => ArpProber.open(b.ifname));
    t.teardown(() => pb.close());
    const ip = lab.freeIp(33);
    const rounds = 5;
    // Inside b's namespace: the requests go out from b's own address.
    const w = b.inNetns(() => pb.watch(ip, { everyMs: 10, timeoutMs: 200, rounds, neighbours: { ips: [lab.freeIp(34), a.ip] } }));
    t.ok(w, 'the native loop takes neighbours');
    const end = await within(w!.done, boundMs(rounds, 10, 200), 'the watch with a live neighbour');
    t.equal(end.status, 'complete', 'a (one of the two neighbours) answered every round');
    t.equal(end.rounds, rounds);
    t.equal(pb.stats()?.received, 0, 'its replies were taken natively, none reached JavaScript');
    t.ok((pb.watchState()?.taken ?? 0) >= rounds, 'counted as taken');

    const timeoutMs = 50;
    const started = performance.now();
    const dead = b.inNetns(() => pb.watch(ip, { everyMs: 10, timeoutMs, rounds: 100, neighbours: { ips: [lab.freeIp(34)] } }));
    const gone = await within(dead!.done, boundMs(1, 10, timeoutMs), 'the watch with a silent neighbour');
    t.equal(gone.status, 'silent', 'no neighbour answered: the watch ends');
    t.equal(gone.rounds, 0);
    t.ok(performance.now() - started >= 10 + timeoutMs, 'after the round\'s wait and its timeout, not before');
  });

  t.test('stop() ends a watch without a result, and the socket stays usable', async (t) => {
    const pb = b.inNetns(() => ArpProber.open(b.ifname));
    t.teardown(() => pb.close());
    const w = pb.watch(a.ip, { expectMac: a.mac, everyMs: 10, timeoutMs: 100, rounds: 1000 });
    let settled = false;
    void w!.done.then(() => { settled = true; });
    await new Promise((r) => setTimeout(r, 100));
    w!.stop();
    const after = pb.watchState()?.totalRounds ?? 0;
    t.ok(after > 0, `rounds ran before the stop (${after})`);
    await new Promise((r) => setTimeout(r, 100));
    t.equal(settled, false, 'done never settles after stop()');
    t.equal(pb.watchState()?.totalRounds, after, 'no round after the stop');
    t.equal(pb.watchState()?.active, false);
    const r = await pb.probe(a.ip, { timeoutMs: 200 });
    t.equal(r.status, 'answered', 'an ordinary probe on the same socket still works');
  });

  t.test('a process stalled past every timeout still reads the queued answers: no false silence', async (t) => {
    // a answers b's probes for a free address from its own process, 5 ms late,
    // so no answer is there when the send returns. Meanwhile this process stalls
    // for 5 timeouts at a time: each round's deadline comes due during a stall,
    // with the answer already queued. Silence is declared only after a drain
    // (without it this test fails: checked by removing the drain).
    const ip = lab.freeIp(32);
    const delayMs = 5;
    const responder = a.spawn([process.execPath, '-e', `
      const { ArpSocket } = require(${JSON.stringify(path.join(ROOT, 'dist/src/net/arp/socket.js'))});
      const { encodeArp, OP_REPLY } = require(${JSON.stringify(path.join(ROOT, 'dist/src/net/arp/codec.js'))});
      const s = ArpSocket.open(${JSON.stringify(a.ifname)});
      s.on('frame', (p) => {
        if (p.op === OP_REPLY || p.targetIp !== ${JSON.stringify(ip)}) return;
        const reply = encodeArp({ op: OP_REPLY, ethDst: p.senderMac, ethSrc: s.macBytes, senderMac: s.macBytes, senderIp: ${JSON.stringify(ip)}, targetMac: p.senderMac, targetIp: p.senderIp });
        setTimeout(() => s.send(reply), ${delayMs});
      });
      process.stdout.write('ready\\n');
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.teardown(() => { responder.kill('SIGKILL'); });
    await within(new Promise<void>((r) => responder.stdout!.once('data', () => r())), START_MS, 'the responder');
    const pb = b.inNetns(() => ArpProber.open(b.ifname));
    t.teardown(() => pb.close());
    const timeoutMs = 20;
    const stallMs = 5 * timeoutMs;
    // In the check phase (setImmediate), after the poll phase and before the next
    // timers phase: the order in which a deadline comes due with its answer unread.
    let stalling = true;
    const staller = () => { if (!stalling) return; stall(stallMs); setImmediate(staller); };
    setImmediate(staller);
    t.teardown(() => { stalling = false; });
    const rounds = 10;
    const w = pb.watch(ip, { expectMac: a.mac, everyMs: 1, timeoutMs, rounds });
    const end = await within(w!.done, rounds * (stallMs + timeoutMs) * 2 + SLACK_MS, 'the stalled watch');
    stalling = false;
    t.equal(end.status, 'complete', `every round passed despite the stalls (${end.status} after ${end.rounds} rounds)`);
    t.ok(end.rttsMs.some((x) => x >= timeoutMs), `some answers were read after their round's timeout was due (max round trip ${Math.max(...end.rttsMs).toFixed(1)} ms >= ${timeoutMs} ms): the stalls did land between send and deadline`);
  });
}
