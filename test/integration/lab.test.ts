/**
 * Layer: integration test of the test lab itself (test/support/lab.ts):
 * hosts reach each other and nothing else, links can be cut, restored and
 * deleted, and every namespace goes away — on destroy(), when the owning
 * process crashes, and when it is killed by a signal.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createLab, cleanupStaleLabs, skipUnlessRoot, LAB_REGISTRY_DIR, STALE_LAB_MS, type Lab, type LabHost } from '../support/lab';
import { SLACK_MS } from '../support/vigil';

const LAB_TS = path.resolve(__dirname, '../support/lab.ts');

function namespaces(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return r.stdout.split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
}

function labNamespaces(prefix: string): string[] {
  return namespaces().filter((n) => n.startsWith(`${prefix}-`));
}

async function ping(from: LabHost, to: string): Promise<boolean> {
  const r = await from.exec(['ping', '-c1', '-W1', to]);
  return r.code === 0;
}

async function eth0(h: LabHost): Promise<{ flags: string[]; operstate: string; address: string; addr_info?: Array<{ family: string; local: string; prefixlen: number }> } | undefined> {
  const r = await h.exec(['ip', '-j', 'addr', 'show']);
  const all = JSON.parse(r.stdout) as Array<{ ifname: string; flags: string[]; operstate: string; address: string }>;
  return all.find((x) => x.ifname === 'eth0');
}

/** Poll `fn` until true or `ms` pass. */
async function eventually(fn: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

if (!skipUnlessRoot(t, ['ping'])) {
  t.test('hosts are configured and reach each other, and only each other', async (t) => {
    const lab = await createLab({ hosts: ['a', 'b', 'c'] });
    t.teardown(() => lab.destroy());
    t.match(lab.prefix, /^vg[0-9a-f]{6}$/);
    t.match(lab.subnet, /^10\.\d+\.\d+\.0\/24$/);
    t.same(labNamespaces(lab.prefix).sort(), [lab.bridgeNs, ...lab.hosts.map((h) => h.ns)].sort());
    t.ok(fs.existsSync(path.join(LAB_REGISTRY_DIR, `${lab.prefix}.json`)), 'lab recorded for stale cleanup');
    for (const h of lab.hosts) {
      t.ok(h.ns.length <= 15, `${h.ns} is short`);
      const e = await eth0(h);
      t.ok(e, `${h.name} has eth0`);
      t.equal(e!.address, h.mac, `${h.name} eth0 MAC`);
      t.ok(e!.flags.includes('UP') && e!.flags.includes('LOWER_UP'), `${h.name} eth0 up with carrier`);
      t.same(e!.addr_info!.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`), [`${h.ip}/24`]);
      t.equal(h.nsPath, `/run/netns/${h.ns}`);
    }
    t.not(lab.host('a').mac, lab.host('b').mac);
    t.throws(() => lab.host('zz'), /no host 'zz'/);
    t.ok(await ping(lab.host('a'), lab.host('b').ip), 'a pings b');
    t.ok(await ping(lab.host('c'), lab.host('a').ip), 'c pings a');
    t.notOk(await ping(lab.host('a'), lab.freeIp(0)), 'nobody answers a free address');
    t.equal(lab.freeIp(3), `${lab.subnet.split('.').slice(0, 3).join('.')}.203`);
    t.throws(() => lab.freeIp(55), RangeError);
    const r = await lab.host('b').exec(['sh', '-c', 'cat; echo err >&2; exit 3'], { input: 'hello' });
    t.same(r, { code: 3, stdout: 'hello', stderr: 'err\n' }, 'exec passes input, output and exit code');
    const slow = await lab.host('b').exec(['sleep', '5'], { timeoutMs: 200 });
    t.equal(slow.code, null, 'exec kills a command past its timeout');
  });

  t.test('cut, restore, delete and recreate a link', async (t) => {
    const lab = await createLab({ hosts: ['a', 'b'] });
    t.teardown(() => lab.destroy());
    const a = lab.host('a');
    const b = lab.host('b');
    await a.cutLink();
    const cut = await eth0(a);
    t.notOk(cut!.flags.includes('LOWER_UP'), 'carrier lost inside the namespace');
    // veth reports DOWN or LOWERLAYERDOWN depending on the kernel; either way not UP.
    t.match(cut!.operstate, /^(DOWN|LOWERLAYERDOWN)$/, 'operstate no longer UP');
    t.notOk(await ping(b, a.ip), 'cut host unreachable');
    await a.restoreLink();
    t.ok(await eventually(() => ping(b, a.ip), SLACK_MS), `reachable again within ${SLACK_MS} ms of the restore (no setting governs it: slack)`);
    await a.deleteLink();
    t.equal(await eth0(a), undefined, 'eth0 gone after deleteLink');
    await a.restoreLink();
    const back = await eth0(a);
    t.equal(back?.address, a.mac, 'recreated with the same MAC');
    t.ok(await eventually(() => ping(b, a.ip), SLACK_MS), `reachable again within ${SLACK_MS} ms of the recreate`);
  });

  t.test('destroy removes every namespace, kills spawned processes, and is idempotent', async (t) => {
    const lab = await createLab({ hosts: ['a', 'b'] });
    const child = lab.host('a').spawn(['sleep', '1000'], { stdio: 'ignore' });
    const exited = new Promise<string | null>((resolve) => child.once('exit', (_c, sig) => resolve(sig)));
    t.equal(labNamespaces(lab.prefix).length, 3);
    await Promise.all([lab.destroy(), lab.destroy()]);
    await lab.destroy();
    t.equal(await exited, 'SIGTERM', 'spawned process terminated');
    t.same(labNamespaces(lab.prefix), [], 'no namespace left');
    t.notOk(fs.existsSync(path.join(LAB_REGISTRY_DIR, `${lab.prefix}.json`)), 'record removed');
  });

  t.test('inNetns runs code inside the host namespace and always comes back', async (t) => {
    let lab: Lab;
    try {
      require('../../src/native').native();
    } catch {
      t.plan(0, 'native addon not built (npm install)');
      return;
    }
    lab = await createLab({ hosts: ['a'] });
    t.teardown(() => lab.destroy());
    const a = lab.host('a');
    const outside = Object.keys(os.networkInterfaces()).sort();
    const inside = a.inNetns(() => os.networkInterfaces());
    t.same(Object.keys(inside).sort(), ['eth0', 'lo']);
    t.equal(inside.eth0!.find((x) => x.family === 'IPv4')?.address, a.ip);
    t.same(Object.keys(os.networkInterfaces()).sort(), outside, 'back in the original namespace');
    t.throws(() => a.inNetns(() => { throw new Error('boom'); }), /boom/);
    t.same(Object.keys(os.networkInterfaces()).sort(), outside, 'back after a throw too');
  });

  /** Run a child that builds a lab, prints its prefix, then crashes or waits. */
  function labChild(mode: 'throw' | 'wait'): { prefix: Promise<string>; exit: Promise<{ code: number | null; signal: string | null }>; kill: (s: NodeJS.Signals) => void } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-lab-fixture-'));
    const file = path.join(dir, 'fixture.js');
    fs.writeFileSync(file, `
      const { createLab } = require(${JSON.stringify(LAB_TS)});
      createLab({ hosts: ['a', 'b'] }).then((lab) => {
        process.stdout.write(lab.prefix + '\\n');
        if (${JSON.stringify(mode)} === 'throw') setImmediate(() => { throw new Error('test body failed'); });
        else setInterval(() => {}, 1000);
      });
    `);
    // process.execArgv carries tap's TypeScript loader, so the child can require lab.ts.
    const child = spawn(process.execPath, [...process.execArgv, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const prefix = new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /^(vg[0-9a-f]{6})$/m.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once('exit', () => reject(new Error(`fixture exited before creating its lab: ${out}`)));
    });
    const exit = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => {
      fs.rmSync(dir, { recursive: true, force: true });
      resolve({ code, signal });
    }));
    return { prefix, exit, kill: (s) => child.kill(s) };
  }

  t.test('a crashing test process still removes its lab', async (t) => {
    const c = labChild('throw');
    const prefix = await c.prefix;
    const { code } = await c.exit;
    t.not(code, 0, 'the fixture failed');
    t.same(labNamespaces(prefix), [], 'no namespace left');
  });

  t.test('SIGTERM, SIGINT and SIGALRM (tap\'s timeout) remove the lab and still end the process by that signal', async (t) => {
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGALRM'] as const) {
      const c = labChild('wait');
      const prefix = await c.prefix;
      t.equal(labNamespaces(prefix).length, 3, `${sig}: lab up`);
      c.kill(sig);
      const { signal } = await c.exit;
      t.equal(signal, sig, `${sig}: process ended by the signal`);
      t.same(labNamespaces(prefix), [], `${sig}: no namespace left`);
    }
  });

  t.test('cleanupStaleLabs removes labs of dead processes and old orphans, not live labs', async (t) => {
    const live = await createLab({ hosts: ['a'] });
    t.teardown(() => live.destroy());
    // A lab recorded by a process that no longer exists.
    const dead = spawnSync('true');
    const deadPrefix = `vg${Math.floor(Math.random() * 0xffffff).toString(16).padStart(6, '0')}`;
    const deadNs = `${deadPrefix}-a`;
    spawnSync('ip', ['netns', 'add', deadNs]);
    fs.writeFileSync(path.join(LAB_REGISTRY_DIR, `${deadPrefix}.json`), JSON.stringify({
      prefix: deadPrefix, pid: dead.pid, pidStart: '1', createdAt: Date.now(), subnet: '10.1.1.0/24', namespaces: [deadNs],
    }));
    // An unrecorded lab-looking namespace: young ones are left (another run may be building it), old ones go.
    const orphanPrefix = `vg${Math.floor(Math.random() * 0xffffff).toString(16).padStart(6, '0')}`;
    const orphanNs = `${orphanPrefix}-b`;
    spawnSync('ip', ['netns', 'add', orphanNs]);
    t.teardown(() => { spawnSync('ip', ['netns', 'del', orphanNs]); spawnSync('ip', ['netns', 'del', deadNs]); });

    // Scoped to this test's labs: other runs on the machine may have live labs of their own.
    const scope = [deadPrefix, orphanPrefix, live.prefix];
    const removed = cleanupStaleLabs({ prefixes: scope });
    t.ok(removed.includes(deadNs), 'dead owner: removed');
    t.notOk(namespaces().includes(deadNs));
    t.notOk(fs.existsSync(path.join(LAB_REGISTRY_DIR, `${deadPrefix}.json`)));
    t.ok(namespaces().includes(orphanNs), 'young orphan kept');
    t.same(labNamespaces(live.prefix).length, 2, 'live lab untouched');

    const later = cleanupStaleLabs({ now: Date.now() + STALE_LAB_MS + 60_000, prefixes: scope });
    t.ok(later.includes(orphanNs), 'old orphan removed');
    t.same(labNamespaces(live.prefix).length, 2, 'own live lab untouched even when old');
  });

  t.test('cleanupStaleLabs leaves an old lab alone while its process lives, and removes it once it is gone', async (t) => {
    const owner = spawn('sleep', ['60'], { stdio: 'ignore' });
    t.teardown(() => owner.kill('SIGKILL'));
    const stat = fs.readFileSync(`/proc/${owner.pid}/stat`, 'utf8');
    const pidStart = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    const prefix = `vg${Math.floor(Math.random() * 0xffffff).toString(16).padStart(6, '0')}`;
    const ns = `${prefix}-a`;
    spawnSync('ip', ['netns', 'add', ns]);
    t.teardown(() => { spawnSync('ip', ['netns', 'del', ns]); fs.rmSync(path.join(LAB_REGISTRY_DIR, `${prefix}.json`), { force: true }); });
    fs.writeFileSync(path.join(LAB_REGISTRY_DIR, `${prefix}.json`), JSON.stringify({
      prefix, pid: owner.pid, pidStart, createdAt: Date.now() - 3_600_000, subnet: '10.1.1.0/24', namespaces: [ns],
    }));
    const hourLater = Date.now() + 3_600_000;
    t.same(cleanupStaleLabs({ now: hourLater, prefixes: [prefix] }), [], 'owner alive: kept, however old');
    t.ok(namespaces().includes(ns));
    await new Promise((resolve) => { owner.once('exit', resolve); owner.kill('SIGKILL'); });
    t.same(cleanupStaleLabs({ prefixes: [prefix] }), [ns], 'owner gone: removed');
    t.notOk(namespaces().includes(ns));
  });

  t.test('createLab validates host names', async (t) => {
    await t.rejects(createLab({ hosts: [] }), RangeError);
    await t.rejects(createLab({ hosts: ['a', 'a'] }), /unique/);
    await t.rejects(createLab({ hosts: ['Bad'] }), /bad host name/);
    await t.rejects(createLab({ hosts: ['br'] }), /bad host name/);
  });
}
