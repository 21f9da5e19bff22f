// The Prometheus listener of a running daemon, scraped through a failover in
// the lab: the state gauge, the transitions, takeovers and probe counters
// move as the daemon's own log says they should. Each node listens on a unix
// socket (a namespace's 127.0.0.1 is not reachable from the test process),
// which is also the form the README recommends beside a loopback port.
import * as path from 'node:path';
import t from 'tap';
import { skipUnlessRoot, type LabHost } from '../support/lab';
import {
  testLab, startDaemon, daemonStatus, waitFor, writeConfig, expectedOf, vipTiming, takeoverBoundMs, START_MS,
  SLACK_MS, runCli, type Daemon,
} from '../support/vigil';
import { scrape, sample } from '../support/metrics';

if (skipUnlessRoot(t)) process.exit(0);

const TIMING = {
  check_interval: '1s', failure_check_interval: '300ms', take_over_after: 3, probe_timeout: '200ms',
  master_check_interval: '1s', announce: { count: 1, interval: '100ms' }, command_timeout: '5s',
};
const V = vipTiming(TIMING);

/** `rate` requests/s for `ms`, never more than 32 outstanding: how many were answered 200, failed, or not sent. */
async function scrapeStorm(socketPath: string, rate: number, ms: number): Promise<{ ok: number; failed: number; skipped: number }> {
  const r = { ok: 0, failed: 0, skipped: 0 };
  let outstanding = 0;
  const all: Promise<void>[] = [];
  const tickMs = 10;
  const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
  const end = Date.now() + ms;
  while (Date.now() < end) {
    for (let i = 0; i < perTick; i++) {
      if (outstanding >= 32) { r.skipped++; continue; }
      outstanding++;
      all.push(scrape(socketPath).then((x) => { if (x.status === 200) r.ok++; else r.failed++; }, () => { r.failed++; }).finally(() => { outstanding--; }));
    }
    await new Promise((res) => setTimeout(res, tickMs));
  }
  await Promise.all(all);
  return r;
}

function node(dir: string, h: LabHost, haIp: string) {
  const pidfile = path.join(dir, h.name, 'vigil.pid');
  const sock = path.join(dir, h.name, 'metrics.sock');
  const config = writeConfig(dir, h.name, {
    node: h.name, pidfile, state_dir: path.join(dir, h.name, 'st'), log: { level: 'debug' },
    metrics: { listen: sock },
    vip: { interface: h.ifname, address: `${haIp}/24`, ...TIMING },
  });
  return { h, pidfile, sock, config, role: async () => (await daemonStatus(pidfile))?.roles?.vip?.role as string | undefined };
}

t.test('a failover as the metrics tell it', async (t) => {
  const { lab, dir, daemons } = await testLab(t, ['a', 'b'], 'metrics');
  const haIp = lab.freeIp(0);
  const a = node(dir, lab.host('a'), haIp);
  const b = node(dir, lab.host('b'), haIp);
  daemons.push(startDaemon(a.h, a.config, a.pidfile));
  const aloneMs = START_MS + takeoverBoundMs(V);
  await waitFor(async () => (await a.role()) === 'master', aloneMs, expectedOf('a master (alone)', aloneMs, daemons));
  const bd: Daemon = startDaemon(b.h, b.config, b.pidfile);
  daemons.push(bd);
  const heardMs = START_MS + V.checkIntervalMs + V.probeTimeoutMs + SLACK_MS;
  await waitFor(async () => (await daemonStatus(b.pidfile))?.roles?.vip?.lastProbe?.result === 'answered', heardMs, expectedOf('b heard a answer', heardMs, daemons));
  // The slave learnt its probe timeout from a's answers: a veth round trip is far below
  // probe_timeout, so the next probe waits less than the configured ceiling, not below the floor.
  const vb = (await daemonStatus(b.pidfile))?.roles?.vip as Record<string, any>;
  t.ok(vb.rtt?.samples >= 1, `b's status shows the round trip it learnt from (${JSON.stringify(vb.rtt)})`);
  t.ok(vb.probeTimeoutMs >= V.probeTimeoutMinMs && vb.probeTimeoutMs < V.probeTimeoutMs,
    `b's learnt probe timeout ${vb.probeTimeoutMs} ms lies in [probe_timeout_min ${V.probeTimeoutMinMs}, probe_timeout ${V.probeTimeoutMs}) ms`);

  const ra = await scrape(a.sock);
  t.equal(ra.status, 200);
  t.match(ra.type, /^text\/plain; version=0\.0\.4/, 'the Prometheus text format');
  t.equal(sample(ra.body, 'vigil_role_state', { role: 'vip', state: 'master' }), 1, 'a: state gauge says master');
  t.equal(sample(ra.body, 'vigil_takeovers_total', { role: 'vip' }), 1, 'a: one takeover (at start, alone)');
  t.equal(sample(ra.body, 'vigil_role_transitions_total', { role: 'vip', from: 'slave', to: 'master' }), 1);
  t.ok(Number(/^vigil_process_resident_memory_bytes (\d+)$/m.exec(ra.body)?.[1]) > 0, 'the library\'s process metrics are there (RSS)');
  t.match(ra.body, /^vigil_nodejs_eventloop_lag_seconds /m, 'and the event-loop delay');
  const rb0 = await scrape(b.sock);
  t.equal(sample(rb0.body, 'vigil_role_state', { role: 'vip', state: 'slave' }), 1, 'b: state gauge says slave');
  const answered0 = sample(rb0.body, 'vigil_probes_total', { role: 'vip', kind: 'check', result: 'answered' }) ?? 0;
  t.ok(answered0 >= 1, `b: answered probes counted (${answered0})`);
  t.ok((sample(rb0.body, 'vigil_probe_rtt_seconds_count', { role: 'vip', kind: 'check' }) ?? 0) >= answered0, 'b: each answered probe has a round trip');

  // The failover happens under a scrape storm on b: 1000 requests/s for 10 s
  // (at most 32 outstanding). The takeover must still come within its bound.
  const storm = scrapeStorm(b.sock, 1000, 10_000);
  await lab.host('a').cutLink();
  await waitFor(async () => (await b.role()) === 'master', takeoverBoundMs(V), expectedOf('b takes over after a\'s link cut, under a scrape storm', takeoverBoundMs(V), daemons));
  const stormed = await storm;
  t.ok(stormed.ok >= 1000, `the storm was answered (${stormed.ok} × 200, ${stormed.failed} failed, ${stormed.skipped} not sent while 32 were outstanding)`);
  t.equal(stormed.failed, 0, 'no scrape failed');
  const rb = await scrape(b.sock);
  t.equal(sample(rb.body, 'vigil_role_state', { role: 'vip', state: 'master' }), 1, 'b: state gauge moved to master');
  t.equal(sample(rb.body, 'vigil_role_state', { role: 'vip', state: 'slave' }), 0, 'b: and left slave');
  t.equal(sample(rb.body, 'vigil_takeovers_total', { role: 'vip' }), 1, 'b: one takeover');
  t.equal(sample(rb.body, 'vigil_role_transitions_total', { role: 'vip', from: 'slave', to: 'master' }), 1);
  const silent = sample(rb.body, 'vigil_probes_total', { role: 'vip', kind: 'check', result: 'silent' }) ?? 0;
  t.ok(silent >= V.takeOverAfter, `b: at least take_over_after (${V.takeOverAfter}) silent probes before the takeover (${silent})`);
  const st = (await daemonStatus(b.pidfile))?.roles?.vip;
  t.equal(st?.takeovers, sample(rb.body, 'vigil_takeovers_total', { role: 'vip' }), 'the counter agrees with vigil status');
  const delivered = sample(rb.body, 'vigil_arp_frames_delivered_total', { role: 'vip' });
  t.equal(delivered, st?.arp?.delivered, 'ARP frames delivered: the socket\'s own counter');
  t.match(bd.logs(), /role slave -> master/, 'the log says the same transition');
});

t.test('the listener serves only /metrics, and a client that never reads does not hold up the others', async (t) => {
  const { lab, dir, daemons } = await testLab(t, ['a'], 'metrics2');
  const a = node(dir, lab.host('a'), lab.freeIp(0));
  daemons.push(startDaemon(a.h, a.config, a.pidfile));
  const aloneMs = START_MS + takeoverBoundMs(V);
  await waitFor(async () => (await a.role()) === 'master', aloneMs, expectedOf('a master', aloneMs, daemons));
  t.equal((await scrape(a.sock, '/other')).status, 404);
  t.equal((await scrape(a.sock, '/metrics', 'POST')).status, 405);
  t.equal((await scrape(a.sock, '/metrics', 'HEAD')).status, 200);

  // Ten clients that send a request and never read the answer, each holding its socket.
  const net = await import('node:net');
  const stuck = Array.from({ length: 10 }, () => {
    const s = net.connect(a.sock);
    s.on('error', () => {});
    s.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
    s.pause();
    return s;
  });
  t.teardown(() => { for (const s of stuck) s.destroy(); });
  // Meanwhile a burst of ordinary scrapes (20 clients, 10 each, back to back)
  // is answered, and the role keeps its loop.
  const burst = (await Promise.all(Array.from({ length: 20 }, async () => {
    const out = [];
    for (let i = 0; i < 10; i++) out.push(await scrape(a.sock));
    return out;
  }))).flat();
  t.ok(burst.every((r) => r.status === 200 && r.body.includes('vigil_role_state')), '200 scrapes answered while 10 clients never read');
  const before = (await daemonStatus(a.pidfile))?.roles?.vip?.lastProbe?.at;
  const loopMs = V.masterCheckIntervalMs + V.probeTimeoutMs + SLACK_MS;
  await waitFor(async () => (await daemonStatus(a.pidfile))?.roles?.vip?.lastProbe?.at !== before, loopMs,
    expectedOf('a master check after the burst (the loop kept running)', loopMs, daemons));

  // Moving the listener is a restart, not a reload: refused, the old one keeps serving.
  const moved = writeConfig(dir, 'a', {
    node: 'a', pidfile: a.pidfile, state_dir: path.join(dir, 'a', 'st'), log: { level: 'debug' },
    metrics: { listen: path.join(dir, 'a', 'other.sock') },
    vip: { interface: a.h.ifname, address: `${lab.freeIp(0)}/24`, ...TIMING },
  });
  t.equal(moved, a.config, 'the same config file, rewritten');
  const rl = await runCli(['reload', '-c', a.config]);
  t.not(rl.code, 0, 'reload refused');
  t.match(rl.stderr + rl.stdout, /changing metrics needs a restart/);
  t.equal((await scrape(a.sock)).status, 200, 'the running listener still serves');
});
