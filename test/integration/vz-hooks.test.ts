// The OpenVZ/Virtuozzo hooks end to end, in a lab host with the fake
// vzctl/vzlist on PATH: scripts/vz/mount starts vigil for a container and
// returns at once, vigil waits for the container to run without probing,
// then holds the HA IP and the IP file's addresses through one batched
// `vzctl set --ipadd`; scripts/vz/umount stops it and the addresses go with
// `--ipdel` (vzhaipd's umount never stopped its daemon, V-7).
//
// The fake vzctl mirrors the container's addresses onto the lab host's `lo`
// (FAKE_VZ_MIRROR_DEV), so the host answers ARP for them as a venet host
// does, and a client in the lab can see who holds the HA IP.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createLab, skipUnlessRoot, type LabHost } from '../support/lab';
import {
  BIN, ROOT, scratchDir, writeConfig, daemonStatus, waitFor, sleep, expectedOf, vipTiming, durationMs, takeoverBoundMs, masterCheckBoundMs, ipFileBoundMs,
  START_MS, SLACK_MS, type VipTiming,
} from '../support/vigil';
import { CONTAINER_POLL_MS } from '../../src/actions/container';
import { ArpSocket } from '../../src/net/arp/socket';
import { ArpProber } from '../../src/net/arp/prober';
import { isRunning } from '../../src/daemon/pidfile';

if (skipUnlessRoot(t)) process.exit(0);

const FAKE = path.join(ROOT, 'test', 'support', 'fake-vz');
const MOUNT = path.join(ROOT, 'scripts', 'vz', 'mount');
const UMOUNT = path.join(ROOT, 'scripts', 'vz', 'umount');

const TIMING = {
  check_interval: '200ms', failure_check_interval: '100ms', take_over_after: 3, probe_timeout: '100ms',
  master_check_interval: '400ms', ip_file_check_interval: '1s', announce: { count: 1, interval: '100ms' }, command_timeout: '5s',
};
const V = vipTiming(TIMING);
/** One run of vzctl or vzlist (or on_slave/on_master) ends within command_timeout. */
const TOOL_RUN_MS = durationMs(TIMING.command_timeout);
/**
 * By when a container that runs has a master: the wait's next poll
 * (CONTAINER_POLL_MS), container_settle, then a takeover whose tool runs
 * (the listing of the container's addresses, the batched --ipadd) may each
 * take command_timeout.
 */
const masterAfterRunningMs = (v: VipTiming, settle: string) => CONTAINER_POLL_MS + durationMs(settle) + 2 * TOOL_RUN_MS + takeoverBoundMs(v);
/** By when the wait for the container shows in the status: its first poll. */
const WAITING_MS = CONTAINER_POLL_MS + SLACK_MS;

interface Ct {
  id: string;
  dir: string;
  config: string;
  pidfile: string;
  logFile: string;
  hookLog: string;
  marker: string;
  env: NodeJS.ProcessEnv;
  setStatus(s: string): void;
  ips(): string[];
  setIps(ips: string[]): void;
  calls(): string[];
  vzctlCalls(): string[];
  events(): string[];
  daemonLog(): string;
  /** For a failed wait: the daemon's log file and the hook log. */
  witnesses: Record<string, { logs: () => string }>;
}

/** One container on `host`: fake-vz state, a vigil config with backend vzctl, the hook environment. */
function makeCt(t: { teardown(fn: () => void | Promise<void>): void }, host: LabHost, id: string, haIp: string, extra: string[], settle = '500ms',
  timing: Partial<typeof TIMING> = {}): Ct {
  const dir = scratchDir(`vzhook-${id}`);
  const vzDir = path.join(dir, 'vz');
  const ctDir = path.join(vzDir, 'ct', id);
  fs.mkdirSync(ctDir, { recursive: true });
  fs.writeFileSync(path.join(ctDir, 'status'), 'mounted\n');
  const ipFile = path.join(dir, 'ha-ips');
  fs.writeFileSync(ipFile, extra.map((a) => `${a}\n`).join(''), { mode: 0o600 });
  const pidfile = path.join(dir, 'run', `ct-${id}.pid`);
  const logFile = path.join(dir, 'vigil.log');
  const marker = path.join(dir, 'events');
  const config = writeConfig(dir, `ct-${id}`, {
    node: `${host.name}-ct${id}`, pidfile, state_dir: path.join(dir, 'state'), log: { level: 'debug', file: logFile },
    vip: {
      interface: host.ifname, address: `${haIp}/24`, ip_file: ipFile, ...TIMING, ...timing,
      on_master: `echo master >> ${marker}`, on_slave: `echo slave >> ${marker}`,
      backend: 'vzctl', container: id, container_settle: settle,
    },
  });
  const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
  const lines = (f: string) => read(f).split('\n').filter(Boolean);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${FAKE}:${process.env.PATH}`,
    VEID: id,
    VIGIL_CONFIG: config,
    VIGIL: BIN,
    VIGIL_HOOK_LOG: path.join(dir, 'hook.log'),
    FAKE_VZ_DIR: vzDir,
    FAKE_VZ_MIRROR_DEV: 'lo',
  };
  delete env.NOTIFY_SOCKET;
  t.teardown(async () => {
    // The daemon is detached (own session): the lab does not track it, so stop it here.
    const pid = Number(read(pidfile).trim());
    if (pid > 0) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    await sleep(50);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    id, dir, config, pidfile, logFile, hookLog: path.join(dir, 'hook.log'), marker, env,
    setStatus: (s) => fs.writeFileSync(path.join(ctDir, 'status'), `${s}\n`),
    ips: () => lines(path.join(ctDir, 'ips')),
    setIps: (ips) => fs.writeFileSync(path.join(ctDir, 'ips'), ips.map((i) => `${i}\n`).join('')),
    calls: () => lines(path.join(vzDir, 'calls')),
    vzctlCalls: () => lines(path.join(vzDir, 'calls')).filter((l) => l.startsWith('vzctl ')),
    events: () => lines(marker),
    daemonLog: () => read(logFile),
    witnesses: { [`ct-${id}'s log file`]: { logs: () => read(logFile) }, 'the hook log': { logs: () => read(path.join(dir, 'hook.log')) } },
  };
}

/** Run a hook in the lab host; returns its result and how long it took. */
/** A guard, not a bound: a hook that runs past it is killed (and its assertions fail). The umount hook waits for a stop: tool runs. */
async function hook(host: LabHost, script: string, env: NodeJS.ProcessEnv, timeoutMs = START_MS + 4 * TOOL_RUN_MS) {
  const started = process.hrtime.bigint();
  const r = await host.exec([script], { env, timeoutMs });
  return { ...r, ms: Number(process.hrtime.bigint() - started) / 1e6 };
}

const alive = isRunning;
const pidOf = (ct: Ct) => { try { return Number(fs.readFileSync(ct.pidfile, 'utf8').trim()) || undefined; } catch { return undefined; } };
const vipStatus = async (ct: Ct) => (await daemonStatus(ct.pidfile))?.roles?.vip as Record<string, any> | undefined;

/** Count ARP frames sent by `mac` about `ip`, seen from `host`. */
function watchArp(host: LabHost, mac: string, ip: string) {
  const sock = host.inNetns(() => ArpSocket.open(host.ifname));
  let count = 0;
  sock.on('frame', (p) => { if (p.senderMac === mac && (p.targetIp === ip || p.senderIp === ip)) count++; });
  return { count: () => count, close: () => sock.close() };
}

async function answeredBy(host: LabHost, ip: string): Promise<string | undefined> {
  const prober = host.inNetns(() => ArpProber.open(host.ifname));
  try {
    const r = await prober.probe(ip, { timeoutMs: 300, acceptConflict: false });
    return r.status === 'answered' ? r.replies[0]!.mac : undefined;
  } finally {
    prober.close();
  }
}

t.test('hooks: nothing to do, misuse', async (t) => {
  const lab = await createLab({ hosts: ['a'] });
  t.teardown(() => lab.destroy());
  const a = lab.host('a');
  const base = { ...process.env, PATH: `${FAKE}:${process.env.PATH}`, VIGIL: BIN };
  for (const script of [MOUNT, UMOUNT]) {
    const name = path.basename(script);
    const none = await hook(a, script, { ...base, VEID: '4100', VIGIL_CONFIG: '/nonexistent/vigil/ct-4100.yml' });
    t.equal(none.code, 0, `${name}: no config is nothing to do, exit 0`);
    t.match(none.stdout, /no vigil config \/nonexistent\/vigil\/ct-4100\.yml for container 4100: nothing to/, `${name} says why`);
    const dflt = await hook(a, script, { ...base, VEID: 'vgnone4101' });
    t.match(dflt.stdout, /no vigil config \/etc\/vigil\/ct-vgnone4101\.yml/, `${name}: the default config is /etc/vigil/ct-$VEID.yml`);
    const noVeid = await hook(a, script, base);
    t.equal(noVeid.code, 2, `${name}: no VEID means vzctl did not call it: exit 2`);
    t.match(noVeid.stderr, /VEID is not set/);
    const bad = await hook(a, script, { ...base, VEID: '../../etc/passwd' });
    t.equal(bad.code, 2, `${name}: a VEID that is not a container ID is refused`);
    const noVigil = await hook(a, script, { ...base, VEID: '4102', VIGIL_CONFIG: '/etc/hostname', VIGIL: '/nonexistent/vigil' });
    t.equal(noVigil.code, 0, `${name}: vigil missing never blocks the container (exit 0)`);
    t.match(noVigil.stderr, /cannot run vigil/, `${name}: but says so`);
  }
});

t.test('mount → wait → hold through vzctl --ipadd → umount → --ipdel', async (t) => {
  const lab = await createLab({ hosts: ['a', 'client'] });
  t.teardown(() => lab.destroy());
  const a = lab.host('a');
  const client = lab.host('client');
  const haIp = lab.freeIp(0);
  const extra = [lab.freeIp(1), lab.freeIp(2)];
  const settle = '500ms';
  const ct = makeCt(t, a, '4201', haIp, extra, settle);

  // vzctl runs the mount hook while the container is mounted, before it starts.
  const m = await hook(a, MOUNT, ct.env);
  t.equal(m.code, 0, 'mount exits 0');
  t.ok(m.ms < 500, `mount returned in ${Math.round(m.ms)} ms (it must never hold up the container start)`);
  t.match(m.stdout, /starting vigil for container 4201 in the background/);
  await waitFor(() => pidOf(ct) !== undefined && alive(pidOf(ct)!), START_MS, expectedOf('the daemon\'s PID file (start-up)', START_MS, ct.witnesses));
  await waitFor(async () => (await vipStatus(ct))?.phase === 'waiting for container', WAITING_MS, expectedOf('waiting for the container (its first poll)', WAITING_MS, ct.witnesses));
  // `vigil start` polls for the PID file, so its line may come a moment after the daemon answers.
  await waitFor(() => /vigil started for .* \(pid \d+\)/.test(fs.readFileSync(ct.hookLog, 'utf8')), SLACK_MS, expectedOf('vigil start\'s line in the hook log', SLACK_MS, ct.witnesses));
  t.pass('vigil start\'s output is in the hook log');
  // The wait's first vzlist answer comes after the phase shows (its first poll is a spawn):
  // bounded by one command_timeout (5s) and the container poll (2s), plus slack.
  const firstAnswerMs = TOOL_RUN_MS + CONTAINER_POLL_MS + SLACK_MS;
  const waiting = await waitFor(async () => { const st = await vipStatus(ct); return st?.container?.status ? st : undefined; }, firstAnswerMs,
    expectedOf('the container wait\'s first vzlist answer in the status', firstAnswerMs, ct.witnesses));
  t.match(waiting, { role: 'inactive', held: [], container: { container: '4201', phase: 'waiting', status: 'mounted' } }, 'status shows the wait');
  t.same(ct.vzctlCalls(), [], 'no vzctl call while the container is not running');

  // The container starts: vigil settles, starts as slave, nobody answers, it takes over.
  const runningAt = Date.now();
  ct.setStatus('running');
  const masterMs = masterAfterRunningMs(V, settle);
  await waitFor(async () => (await vipStatus(ct))?.role === 'master', masterMs, expectedOf('master (a poll, container_settle, a takeover)', masterMs, ct.witnesses));
  t.ok(Date.now() - runningAt >= durationMs(settle), `became master ${Date.now() - runningAt} ms after running (container_settle ${settle} first)`);
  const adds = ct.vzctlCalls().filter((c) => c.includes('--ipadd'));
  t.same(adds, [`vzctl set 4201 --ipadd ${haIp} --ipadd ${extra[0]} --ipadd ${extra[1]}`], 'one batched vzctl call: the HA IP first, then the IP file');
  t.same(ct.ips().sort(), [haIp, ...extra].sort(), 'the container holds them');
  t.same((await vipStatus(ct))!.held, [`${haIp}/24`, `${extra[0]}/32`, `${extra[1]}/32`], 'status: held, with the prefixes of the config');
  t.same(ct.events(), ['slave', 'master'], 'on_slave once at start, on_master after taking over');
  t.equal(await answeredBy(client, haIp), a.mac, 'a client gets the HA IP answered by the host');

  // Steady master: reconcile runs every master_check_interval and finds nothing to do.
  await sleep(4 * V.masterCheckIntervalMs); // four master checks
  t.equal(ct.vzctlCalls().length, 1, 'no further vzctl call while the set is in place (prefixes compared like with like)');

  // An IP-file edit reaches the container.
  const added = lab.freeIp(3);
  fs.writeFileSync(path.join(ct.dir, 'ha-ips'), `${extra[0]}\n${added}\n`, { mode: 0o600 });
  // An IP file check, then a reconcile: the listing, --ipadd, --ipdel.
  const editMs = ipFileBoundMs(V) + 3 * TOOL_RUN_MS;
  await waitFor(() => ct.ips().includes(added) && !ct.ips().includes(extra[1]!), editMs, expectedOf('the IP file change applied', editMs, ct.witnesses));
  t.ok(ct.vzctlCalls().includes(`vzctl set 4201 --ipadd ${added}`) && ct.vzctlCalls().includes(`vzctl set 4201 --ipdel ${extra[1]}`), 'the edit went through --ipadd and --ipdel');

  // Stop: vzctl runs umount; here the container still runs (an operator's vzctl umount path is the same).
  const pid = pidOf(ct)!;
  const u = await hook(a, UMOUNT, ct.env);
  t.equal(u.code, 0, 'umount exits 0');
  t.match(u.stdout, new RegExp(`vigil stopped \\(pid ${pid}\\)`), 'and reports the stop');
  t.notOk(alive(pid), 'the daemon is gone');
  t.notOk(fs.existsSync(ct.pidfile), 'its PID file is removed');
  const last = ct.vzctlCalls().pop()!.split(' ');
  t.same(last.slice(0, 3), ['vzctl', 'set', '4201'], 'the last vzctl call');
  t.same(last.slice(3).filter((_, i) => i % 2 === 0), ['--ipdel', '--ipdel', '--ipdel'], 'is one --ipdel batch');
  t.same(last.slice(3).filter((_, i) => i % 2 === 1).sort(), [haIp, extra[0], added].sort(), 'of everything held');
  t.equal(last[last.length - 1], haIp, 'the HA IP last');
  t.same(ct.ips(), [], 'the container holds none of them');
  t.equal(ct.events().pop(), 'slave', 'on_slave ran before the addresses went');
  t.equal(await answeredBy(client, haIp), undefined, 'nobody answers for the HA IP any more');
});

// vzctl stop, then the umount hook: a master check may or may not run in
// between, and finds the container stopped. Both orders are driven, not left
// to timing: with a long master check none can run in the window (the window
// is shorter than the interval by far, and the vzlist calls prove it); with a
// short one the test waits for the failed reconcile before the hook. The hook
// must do the same either way: --ipdel of what was held, counted as removed
// because the container stopped, exit 0.
for (const order of ['umount before any reconcile', 'a reconcile fails first'] as const) {
  t.test(`the container stopped before umount (${order}): addresses gone with it, vigil exits cleanly`, async (t) => {
    const lab = await createLab({ hosts: ['a'] });
    t.teardown(() => lab.destroy());
    const a = lab.host('a');
    const haIp = lab.freeIp(0);
    const reconcileFirst = order === 'a reconcile fails first';
    const masterCheck = reconcileFirst ? '400ms' : '60s';
    const ct = makeCt(t, a, reconcileFirst ? '4302' : '4301', haIp, [lab.freeIp(1)], '0s', { master_check_interval: masterCheck });
    const v = vipTiming({ ...TIMING, master_check_interval: masterCheck });
    ct.setStatus('running');
    t.equal((await hook(a, MOUNT, ct.env)).code, 0);
    const masterMs = START_MS + masterAfterRunningMs(v, '0s');
    await waitFor(async () => (await vipStatus(ct))?.role === 'master', masterMs, expectedOf('master (start-up, a poll, a takeover)', masterMs, ct.witnesses));
    // Both are added by the takeover's one batched call.
    await waitFor(async () => (await vipStatus(ct))?.held?.length === 2, SLACK_MS, expectedOf('both addresses held (the HA IP and the IP file\'s)', SLACK_MS, ct.witnesses));
    // vzctl stop: the container stops (its runtime addresses vanish), then the umount hook runs.
    const listsBefore = ct.calls().filter((c) => c.startsWith('vzlist -H -o status,ip')).length;
    ct.setStatus('stopped');
    for (const ip of ct.ips()) await a.exec(['ip', 'addr', 'del', `${ip}/32`, 'dev', 'lo']);
    ct.setIps([]);
    if (reconcileFirst) {
      // A master check (master_check_interval + probe_timeout) whose reconcile runs vzlist (command_timeout), plus slack.
      const failMs = masterCheckBoundMs(v) + TOOL_RUN_MS;
      await waitFor(() => ct.daemonLog().split('\n').some((l) => l.includes('"msg":"reconcile incomplete"') && /container \d+ is stopped/.test(l)), failMs,
        expectedOf('a master check\'s reconcile failing on the stopped container', failMs, ct.witnesses));
    }
    const pid = pidOf(ct)!;
    const u = await hook(a, UMOUNT, ct.env);
    if (!reconcileFirst) {
      const listsAfter = ct.calls().filter((c) => c.startsWith('vzlist -H -o status,ip')).length;
      t.equal(listsAfter, listsBefore, 'no reconcile ran between the stop and the hook (master_check_interval 60s)');
    }
    t.equal(u.code, 0, `umount hook exit 0 (${u.stderr.trim()})`);
    t.notOk(alive(pid), 'the daemon is gone (vzhaipd\'s stayed and flapped against a stopped container, V-41)');
    t.ok(ct.vzctlCalls().some((c) => c.includes('--ipdel')), '--ipdel was tried');
    t.match(ct.daemonLog(), /container not running: it holds no runtime addresses/, 'the failed --ipdel counted as removed, and said why');
    t.match(ct.daemonLog(), /"code":0,"msg":"vigil stopped"/, 'exit code 0: nothing left held');
  });
}

t.test('a container that never reaches running: vigil waits without probing, and stops at once', async (t) => {
  const lab = await createLab({ hosts: ['a', 'client'] });
  t.teardown(() => lab.destroy());
  const a = lab.host('a');
  const client = lab.host('client');
  const haIp = lab.freeIp(0);
  const settle = '200ms';
  const ct = makeCt(t, a, '4401', haIp, [], settle);
  const arp = watchArp(client, a.mac, haIp);
  t.teardown(() => arp.close());

  t.equal((await hook(a, MOUNT, ct.env)).code, 0);
  await waitFor(async () => (await vipStatus(ct))?.phase === 'waiting for container', START_MS + WAITING_MS, expectedOf('waiting (start-up, a poll)', START_MS + WAITING_MS, ct.witnesses));
  // 15 check intervals: probing would send ~15 probes meanwhile.
  await sleep(15 * V.checkIntervalMs);
  t.equal(arp.count(), 0, `no ARP frame about the HA IP left the host in ${15 * V.checkIntervalMs} ms (15 check intervals)`);
  t.same(ct.vzctlCalls(), [], 'no vzctl call');
  t.same(ct.events(), [], 'no on_slave/on_master');
  const polls = ct.calls().filter((c) => c === 'vzlist -H -o status 4401').length;
  t.ok(polls >= 1, `vzlist asked ${polls} times`);
  t.match(await vipStatus(ct), { role: 'inactive', container: { phase: 'waiting', status: 'mounted' } });

  // Stop during the wait: prompt and clean, nothing run, nothing touched.
  const pid = pidOf(ct)!;
  const u = await hook(a, UMOUNT, ct.env);
  t.equal(u.code, 0);
  t.ok(u.ms < 5000, `umount returned in ${Math.round(u.ms)} ms`);
  t.notOk(alive(pid), 'the daemon is gone');
  t.notOk(fs.existsSync(ct.pidfile), 'PID file removed');
  t.same(ct.events(), [], 'no on_slave: it never started');
  t.same(ct.vzctlCalls(), [], 'no vzctl call');
  t.match(ct.daemonLog(), /wait for the container cancelled/);
  t.match(ct.daemonLog(), /"code":0,"msg":"vigil stopped"/, 'exit code 0');

  // Positive control: the same setup probes once the container runs, and the capture sees it.
  t.equal((await hook(a, MOUNT, ct.env)).code, 0);
  await waitFor(async () => (await vipStatus(ct))?.phase === 'waiting for container', START_MS + WAITING_MS, expectedOf('waiting again (start-up, a poll)', START_MS + WAITING_MS, ct.witnesses));
  ct.setStatus('running');
  // The next poll, container_settle 200ms, on_slave and the initial listing (tool runs), the first probe within a check interval.
  const probeMs = CONTAINER_POLL_MS + durationMs(settle) + 2 * TOOL_RUN_MS + V.checkIntervalMs + SLACK_MS;
  await waitFor(() => arp.count() > 0, probeMs, expectedOf('ARP probes once the container runs', probeMs, ct.witnesses));
  t.pass(`probes seen once the container runs (${arp.count()} frames)`);
  await hook(a, UMOUNT, ct.env);
});
