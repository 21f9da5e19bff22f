// The group role in lab hosts: real netlink, real ARP on vigil's own
// socket. Two hosts (a, b) and a client on one bridge; `vigil group` runs as
// a child process inside a host's namespace (test/support/group.ts).
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { skipUnlessRoot, type LabHost } from '../support/lab';
import { testLab, writeConfig, waitFor } from '../support/vigil';
import { groupArgv, runGroup, treeFingerprint } from '../support/group';
import { ArpSocket } from '../../src/net/arp/socket';

if (skipUnlessRoot(t)) process.exit(0);

const ARP = { count: 5, interval: '200ms' };
const ARP_WINDOW_MS = 5 * 200;

/** ip -j addr of the host's eth0, as the kernel reports it now. */
const addrs = async (h: LabHost) => JSON.parse((await h.exec(['ip', '-j', 'addr', 'show', 'dev', h.ifname])).stdout) as unknown[];
const holds = async (h: LabHost, ip: string) => (await h.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', h.ifname])).stdout.includes(` ${ip}/`);

function setup(dir: string, h: LabHost, vip: string, extra: Record<string, unknown>[] = [], group: Record<string, unknown> = {}, arp: Record<string, unknown> = ARP) {
  const base = path.join(dir, h.name);
  const marks = path.join(base, 'marks');
  fs.mkdirSync(marks, { recursive: true });
  const address = { type: 'address', name: 'vip', address: `${vip}/24`, interface: h.ifname, arp };
  const config = writeConfig(dir, h.name, { group: { g: { state_dir: path.join(base, 'state'), members: [address, ...extra], ...group } } });
  const step = (n: string, fail = false) => ({
    type: 'command', name: n,
    start: fail ? `echo start ${n} >> ${marks}/order; echo "no quorum" >&2; exit 1` : `echo start ${n} >> ${marks}/order; touch ${marks}/${n}`,
    stop: `echo stop ${n} >> ${marks}/order; rm -f ${marks}/${n}`, monitor: `test -f ${marks}/${n}`,
  });
  const order = () => (fs.existsSync(path.join(marks, 'order')) ? fs.readFileSync(path.join(marks, 'order'), 'utf8').trim().split('\n') : []);
  return { config, marks, step, order };
}

t.test('a peer holding the address and ignoring ICMP: refused with exit 3 within 0.5 s, nothing changed', async (t) => {
  const { lab, dir } = await testLab(t, ['a', 'b'], 'grp-dad');
  const [a, b] = [lab.host('a'), lab.host('b')];
  const vip = lab.freeIp(0);
  t.equal((await b.exec(['ip', 'addr', 'add', `${vip}/24`, 'dev', b.ifname])).code, 0);
  t.equal((await b.exec(['sh', '-c', 'echo 1 > /proc/sys/net/ipv4/icmp_echo_ignore_all'])).code, 0);
  const s = setup(dir, a, vip);
  const cfg = writeConfig(dir, 'a2', { group: { g: { state_dir: path.join(dir, 'a', 'state'), members: [
    { type: 'address', name: 'vip', address: `${vip}/24`, interface: a.ifname, arp: ARP }, { type: 'command', name: 'svc', start: `touch ${s.marks}/svc` }] } } });
  const before = await addrs(a);
  const r = await runGroup(['activate', 'g', '-c', cfg, '--json'], a);
  t.equal(r.code, 3, r.stdout + r.stderr);
  const rep = JSON.parse(r.stdout);
  const probe = rep.preflight.find((p: any) => p.check.startsWith('arp-probe'));
  t.match(probe, { ok: false, detail: `address ${vip} in use by MAC ${b.mac}` });
  t.ok(probe.elapsedMs < 500, `the probe found the holder in ${probe.elapsedMs} ms (expected under 500 ms; the whole process took ${r.ms} ms)`);
  t.same(await addrs(a), before, "a's addresses unchanged");
  t.notOk(fs.existsSync(path.join(s.marks, 'svc')), 'no member command ran');
});

t.test('member 3 of 5 fails: 2 and 1 stopped in reverse, the address gone, exit 4', async (t) => {
  const { lab, dir } = await testLab(t, ['a'], 'grp-rb');
  const a = lab.host('a');
  const vip = lab.freeIp(1);
  const s0 = setup(dir, a, vip);
  const s = setup(dir, a, vip, [s0.step('m2'), s0.step('m3', true), s0.step('m4'), s0.step('m5')]);
  const before = await addrs(a);
  const r = await runGroup(['activate', 'g', '-c', s.config], a);
  t.equal(r.code, 4, r.stdout + r.stderr);
  t.match(r.stdout, /step 3\/5 \(m3\) failed: .*exit 1; output: no quorum; rolled back/);
  t.match(r.stdout, /rollback m2: ok[^]*rollback vip: ok removed \(read back\)/);
  t.same(s.order(), ['start m2', 'start m3', 'stop m2']);
  t.notOk(await holds(a, vip), 'the address is gone (read with ip)');
  t.same(await addrs(a), before, 'eth0 exactly as before');
});

t.test('a dry run changes nothing: namespace addresses, files, commands', async (t) => {
  const { lab, dir } = await testLab(t, ['a'], 'grp-dry');
  const a = lab.host('a');
  const vip = lab.freeIp(2);
  const s0 = setup(dir, a, vip);
  const s = setup(dir, a, vip, [s0.step('svc')], { hooks: { before_start: `touch ${s0.marks}/hook` } });
  const before = { addrs: await addrs(a), tree: treeFingerprint(dir) };
  for (const args of [['plan', 'g'], ['activate', 'g', '--dry-run']]) {
    const r = await runGroup([...args, '-c', s.config, '--json'], a);
    t.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(r.stdout);
    t.same(rep.effects.map((e: any) => `${e.member} ${e.op}`), ['(hook) before_start', 'vip addAddress', 'vip announce', 'vip verify', 'svc runCommand', 'svc verify'], args.join(' '));
    t.match(rep.preflight.find((p: any) => p.check.startsWith('arp-probe')), { ok: true });
  }
  t.same(await addrs(a), before.addrs, 'ip -j addr unchanged');
  t.same(treeFingerprint(dir), before.tree, 'scratch dir unchanged: no marker, no state file');
});

t.test('after activation a client ARP cache moves to the new MAC; 5 request+reply rounds and 5 unicast replies are seen', async (t) => {
  const { lab, dir } = await testLab(t, ['a', 'b', 'client'], 'grp-arp');
  const [a, b, client] = [lab.host('a'), lab.host('b'), lab.host('client')];
  const vip = lab.freeIp(3);
  const sb = setup(dir, b, vip);
  // The client doubles as the listed neighbour (the gateway in production) for the unicast announcements.
  const sa = setup(dir, a, vip, [], {}, { ...ARP, unicast: [client.ip] });
  t.equal((await runGroup(['activate', 'g', '-c', sb.config], b)).code, 0);
  // The client knows the address at b's MAC (as after talking to it).
  t.equal((await client.exec(['ip', 'neigh', 'replace', vip, 'lladdr', b.mac, 'dev', client.ifname, 'nud', 'stale'])).code, 0);
  t.equal((await runGroup(['deactivate', 'g', '-c', sb.config], b)).code, 0);
  t.notOk(await holds(b, vip));
  const frames: { op: number; mac: string; ethDst: string; targetIp: string }[] = [];
  const sock = client.inNetns(() => ArpSocket.open(client.ifname));
  t.teardown(() => sock.close());
  sock.on('frame', (p) => { if (p.senderIp === vip) frames.push({ op: p.op, mac: p.senderMac, ethDst: p.ethDst, targetIp: p.targetIp }); });
  await new Promise((r) => setTimeout(r, 1100)); // past the neighbour entry's locktime (1 s)
  const t0 = Date.now();
  const r = await runGroup(['activate', 'g', '-c', sa.config], a);
  t.equal(r.code, 0, r.stdout + r.stderr);
  // Gratuitous: target IP = sender IP, broadcast. The unicast ones go to the client's MAC.
  const garp = () => frames.filter((f) => f.targetIp === vip && f.ethDst === 'ff:ff:ff:ff:ff:ff');
  const unicast = () => frames.filter((f) => f.op === 2 && f.ethDst === client.mac && f.targetIp === client.ip);
  await waitFor(() => garp().length >= 10 && unicast().length >= 5, ARP_WINDOW_MS + 2000,
    `10 gratuitous frames (5 rounds × request+reply, ${ARP.interval} apart) and 5 unicast replies within ${ARP_WINDOW_MS + 2000} ms of activation`);
  await new Promise((r) => setTimeout(r, 300));
  t.equal(garp().filter((f) => f.op === 1).length, 5, 'five gratuitous requests');
  t.equal(garp().filter((f) => f.op === 2).length, 5, 'five gratuitous replies');
  t.equal(unicast().length, 5, 'five unicast replies to the listed neighbour');
  t.ok(frames.every((f) => f.mac === a.mac), 'all with a\'s MAC');
  const neigh = await waitFor(async () => {
    const out = (await client.exec(['ip', 'neigh', 'show', vip, 'dev', client.ifname])).stdout;
    return out.includes(a.mac) ? out : undefined;
  }, 2000, `the client's neighbour entry for ${vip} to show ${a.mac}`);
  t.match(neigh, a.mac, `client cache moved to a's MAC ${Date.now() - t0} ms after activate started`);
});

t.test('a stop failure with block keeps the address: exit 5, a standby is refused', async (t) => {
  const { lab, dir } = await testLab(t, ['a', 'b'], 'grp-block');
  const [a, b] = [lab.host('a'), lab.host('b')];
  const vip = lab.freeIp(4);
  const s0 = setup(dir, a, vip);
  const bad = { ...s0.step('db'), stop: 'echo "cannot flush" >&2; exit 1' };
  const s = setup(dir, a, vip, [bad]);
  t.equal((await runGroup(['activate', 'g', '-c', s.config], a)).code, 0);
  const r = await runGroup(['deactivate', 'g', '-c', s.config], a);
  t.equal(r.code, 5, r.stdout);
  t.match(r.stdout, /stop of db: .*exit 1; output: cannot flush; blocked: vip kept/);
  t.ok(await holds(a, vip), 'the address stays on a');
  const sb = setup(dir, b, vip);
  const rb = await runGroup(['activate', 'g', '-c', sb.config], b);
  t.equal(rb.code, 3, 'b refuses to take over while a still holds it');
  t.notOk(await holds(b, vip));
});

t.test('kill -9 in the middle of an activation, then activate completes: the address is not added twice', async (t) => {
  const { lab, dir } = await testLab(t, ['a'], 'grp-kill');
  const a = lab.host('a');
  const vip = lab.freeIp(5);
  const s0 = setup(dir, a, vip);
  const release = path.join(s0.marks, 'release');
  const slow = { ...s0.step('slow'), start: `echo start slow >> ${s0.marks}/order; echo $$ > ${s0.marks}/slow.pid; while [ ! -f ${release} ]; do sleep 0.05; done; touch ${s0.marks}/slow` };
  const s = setup(dir, a, vip, [slow, s0.step('last')]);
  const run = a.spawn(groupArgv(['activate', 'g', '-c', s.config]), { stdio: 'ignore' });
  const pidFile = path.join(s0.marks, 'slow.pid');
  await waitFor(() => fs.existsSync(pidFile), 15_000, 'the second member to start (slow.pid written) within 15 s');
  run.kill('SIGKILL');
  try { process.kill(-Number(fs.readFileSync(pidFile, 'utf8')), 'SIGKILL'); } catch { /* gone */ }
  t.ok(await holds(a, vip), 'the address was added before the kill');
  t.match((await runGroup(['status', 'g', '-c', s.config], a)).stdout, /partial 1\/3/);
  fs.writeFileSync(release, '');
  const r = await runGroup(['activate', 'g', '-c', s.config], a);
  t.equal(r.code, 0, r.stdout + r.stderr);
  t.match(r.stdout, /skip vip: ok already running/);
  t.same(s.order(), ['start slow', 'start slow', 'start last']);
  t.match((await runGroup(['status', 'g', '-c', s.config], a)).stdout, /active 3\/3/);
});

t.test('addresses vigil did not add are never removed, and removing ours never takes another one along (X-22)', async (t) => {
  const { lab, dir } = await testLab(t, ['a'], 'grp-own');
  const a = lab.host('a');
  const vip = lab.freeIp(6);
  // Already on eth0, put there by someone else (no vigil label): running, but not ours to remove.
  t.equal((await a.exec(['ip', 'addr', 'add', `${vip}/24`, 'dev', a.ifname])).code, 0);
  const s = setup(dir, a, vip);
  const r1 = await runGroup(['activate', 'g', '-c', s.config], a);
  t.match(r1, { code: 0, stdout: /already active/ });
  const r2 = await runGroup(['deactivate', 'g', '-c', s.config], a);
  t.equal(r2.code, 0, r2.stdout);
  t.match(r2.stdout, /stop vip: ok present but not added by vigil: left in place/);
  t.ok(await holds(a, vip), 'the foreign address stays');

  // Ours as the primary of its own subnet, then a secondary added by hand: removing ours would flush it.
  const net = `192.168.${200 + (Number(a.ip.split('.')[2]) % 50)}`;
  const own = writeConfig(dir, 'own', { group: { g2: { state_dir: path.join(dir, 'a', 'state'), members: [{ type: 'address', name: 'vip', address: `${net}.10/24`, interface: a.ifname, arp: { count: 0 } }] } } });
  t.equal((await runGroup(['activate', 'g2', '-c', own], a)).code, 0);
  t.equal((await a.exec(['ip', 'addr', 'add', `${net}.11/24`, 'dev', a.ifname])).code, 0);
  const r3 = await runGroup(['deactivate', 'g2', '-c', own], a);
  t.equal(r3.code, 5, r3.stdout);
  t.match(r3.stdout, new RegExp(`primary of ${net.replace(/\./g, '\\.')}\\.11; removing it would remove them too`));
  t.ok(await holds(a, `${net}.10`) && await holds(a, `${net}.11`), 'both addresses stay');
});
