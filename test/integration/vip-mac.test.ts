// A master whose interface changes MAC under it (re-created, or re-addressed
// by an operator) must decide a split brain with the MAC the other side sees
// now, or both sides keep the HA IP for good.
import t from 'tap';
import { skipUnlessRoot, type LabHost } from '../support/lab';
import { testLab, startDaemon, daemonStatus, waitFor, vipNode, expectedOf, vipTiming, takeoverBoundMs, stepDownBoundMs, START_MS } from '../support/vigil';

if (skipUnlessRoot(t)) process.exit(0);

const TIMING = {
  check_interval: '200ms', failure_check_interval: '100ms', take_over_after: 3, probe_timeout: '100ms',
  master_check_interval: '400ms', announce: { count: 1, interval: '100ms' }, command_timeout: '5s',
};
const V = vipTiming(TIMING);
const macNum = (m: string) => BigInt(`0x${m.replace(/:/g, '')}`);

t.test('split brain after our MAC changed: settled with the new MAC', async (t) => {
  const { lab, dir, daemons } = await testLab(t, ['a', 'b'], 'vipmac');
  const haIp = lab.freeIp(0);
  const node = (h: LabHost) => vipNode(dir, h, haIp, TIMING);
  const [A, B] = [lab.host('a'), lab.host('b')];
  t.ok(macNum(A.mac) < macNum(B.mac), 'a starts with the lower MAC');
  const a = node(A);
  const b = node(B);
  daemons.push(startDaemon(A, a.config, a.pidfile));
  const aloneMs = START_MS + takeoverBoundMs(V);
  await waitFor(async () => (await a.role()) === 'master', aloneMs, expectedOf('a master (alone: a takeover after start)', aloneMs, daemons));
  // a's interface gets a MAC higher than b's (down/up: its ARP socket is reopened).
  const lastProbe = async () => (await daemonStatus(a.pidfile))?.roles?.vip?.lastProbe as { at: string; result: string } | undefined;
  const before = (await lastProbe())?.at;
  const newMac = `${B.mac.slice(0, -2)}ff`;
  for (const args of [['link', 'set', 'eth0', 'down'], ['link', 'set', 'eth0', 'address', newMac], ['link', 'set', 'eth0', 'up']]) {
    const r = await A.exec(['ip', ...args]);
    t.equal(r.code, 0, `ip ${args.join(' ')}: ${r.stderr.trim()}`);
  }
  t.ok(macNum(newMac) > macNum(B.mac), `a is now ${newMac}, higher than b's ${B.mac}`);
  // The next master check after the link is up again (a probe in the down window errs: no carrier).
  await waitFor(async () => { const p = await lastProbe(); return p && p.at !== before && p.result !== 'error'; }, stepDownBoundMs(V), expectedOf('a probing again (a master check)', stepDownBoundMs(V), daemons));
  t.equal(await a.role(), 'master', 'a still master after the blip');
  // A split brain: b holds the HA IP too and resumes as master.
  await B.exec(['ip', 'addr', 'add', `${haIp}/24`, 'dev', B.ifname]);
  daemons.push(startDaemon(B, b.config, b.pidfile));
  const settled = await waitFor(async () => {
    const [ra, rb] = [await a.role(), await b.role()];
    return ra === 'slave' && rb === 'master' ? [ra, rb] : undefined;
  }, START_MS + stepDownBoundMs(V), expectedOf('a (now the higher MAC) steps down, b keeps the IP (b\'s start, then a master check)', START_MS + stepDownBoundMs(V), daemons)).catch((e: Error) => e);
  if (settled instanceof Error) {
    const st = async (p: string) => JSON.stringify((await daemonStatus(p))?.roles?.vip?.lastConflict);
    t.fail(`${settled.message}: a ${await a.role()} (conflict ${await st(a.pidfile)}), b ${await b.role()} (conflict ${await st(b.pidfile)})`);
    return;
  }
  t.pass('settled: the lower (current) MAC, b, keeps the HA IP');
  t.notOk((await A.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout.includes(` ${haIp}/`), 'a removed it');
  t.match((await daemonStatus(a.pidfile))?.roles?.vip?.lastConflict, { kept: false, mac: B.mac });
});
