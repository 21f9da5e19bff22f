// Member drivers against a temp root (symlink, hostname), stand-in
// programs (command, unit) and a fake address world.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { symlinkMember } from '../../../../src/roles/group/members/symlink';
import { hostnameMember, addBlock, findBlock, removeBlock } from '../../../../src/roles/group/members/hostname';
import { commandMember } from '../../../../src/roles/group/members/command';
import { unitMember } from '../../../../src/roles/group/members/unit';
import { addressMember, type AddressIo } from '../../../../src/roles/group/members/address';
import type { ListedCidr } from '../../../../src/actions/addresses';

const tmp = (t: { teardown(f: () => void): void }) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-group-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
};

t.test('symlink: moves the file aside, restores it, never overwrites a backup', async (t) => {
  const d = tmp(t);
  const link = path.join(d, 'install');
  fs.writeFileSync(link, 'local copy');
  const m = symlinkMember({ type: 'symlink', name: 's', link, target: '/HA/install', backupSuffix: '.vigilbak' });
  t.equal((await m.monitor()).state, 'stopped');
  t.same(await m.validate(), []);
  t.ok((await m.start()).ok);
  t.equal(fs.readlinkSync(link), '/HA/install');
  t.equal(fs.readFileSync(`${link}.vigilbak`, 'utf8'), 'local copy');
  t.equal((await m.monitor()).state, 'running');
  t.match(await m.start(), { ok: true, detail: 'already linked' });
  t.ok((await m.stop()).ok);
  t.equal(fs.readFileSync(link, 'utf8'), 'local copy');
  t.notOk(fs.existsSync(`${link}.vigilbak`));
  t.ok((await m.stop()).ok, 'stop when stopped succeeds');
  fs.writeFileSync(`${link}.vigilbak`, 'older backup');
  t.match(await m.validate(), [/refusing to overwrite a backup/]);
  t.match(await m.start(), { ok: false, reason: /already exists; refusing/ });
  t.equal(fs.readFileSync(`${link}.vigilbak`, 'utf8'), 'older backup', 'backup untouched');
  t.equal(fs.readFileSync(link, 'utf8'), 'local copy');
});

t.test('managed blocks restore the exact bytes', async (t) => {
  for (const text of ['', 'a\n', 'no newline at end', '127.0.0.1 localhost\n\n']) {
    const added = addBlock(text, 'vigil g/m', ['10.0.0.1 mn'], 'bottom', { previous: 'old' });
    const b = findBlock(added, 'vigil g/m')!;
    t.equal(b.attrs.previous, 'old');
    t.equal(removeBlock(added, b), text, JSON.stringify(text));
    const top = addBlock(text, 'vigil g/m', ['nameserver 10.0.0.1'], 'top');
    t.equal(removeBlock(top, findBlock(top, 'vigil g/m')!), text);
  }
});

t.test('hostname: hosts and resolv.conf byte-identical after stop, previous name restored', async (t) => {
  const d = tmp(t);
  const hosts = path.join(d, 'hosts');
  const resolv = path.join(d, 'resolv.conf');
  const hn = path.join(d, 'hostname');
  fs.writeFileSync(hosts, '127.0.0.1 localhost\n10.0.0.10 node-a'); // no final newline on purpose
  fs.writeFileSync(resolv, 'search example\nnameserver 1.1.1.1\n');
  fs.writeFileSync(hn, 'node-a\n');
  const setter = path.join(d, 'set-hostname');
  fs.writeFileSync(setter, `#!/bin/sh\necho "$1" > ${hn}\n`, { mode: 0o755 });
  const before = { hosts: fs.readFileSync(hosts), resolv: fs.readFileSync(resolv) };
  const m = hostnameMember({ type: 'hostname', name: 'h', hostname: 'mn', address: '10.0.0.100', aliases: ['mn.example'],
    hostsFile: hosts, resolvConf: resolv, nameservers: ['10.0.0.100'], hostnameFile: hn, setCommand: [setter] }, 'g/h');
  t.equal((await m.monitor()).state, 'stopped');
  t.ok((await m.start()).ok);
  t.equal((await m.monitor()).state, 'running');
  t.match(fs.readFileSync(hosts, 'utf8'), /\n10\.0\.0\.100 mn mn\.example\n# END vigil g\/h\n$/);
  t.match(fs.readFileSync(resolv, 'utf8'), /^# BEGIN vigil g\/h\nnameserver 10\.0\.0\.100\n/);
  t.equal(fs.readFileSync(hn, 'utf8').trim(), 'mn');
  t.ok((await m.start()).ok, 'second start');
  t.ok((await m.stop()).ok);
  t.same(fs.readFileSync(hosts), before.hosts);
  t.same(fs.readFileSync(resolv), before.resolv);
  t.equal(fs.readFileSync(hn, 'utf8').trim(), 'node-a');
  t.equal((await m.monitor()).state, 'stopped');
});

t.test('command: monitor exit codes, failing start output, stop killed after stop_timeout', async (t) => {
  const d = tmp(t);
  const flag = path.join(d, 'up');
  let rec: 'running' | 'stopped' = 'stopped';
  const m = commandMember({ type: 'command', name: 'c', start: `touch ${flag}`, stop: `rm -f ${flag}`, monitor: `test -f ${flag}`, timeoutMs: 2000, stopTimeoutMs: 2000, killGraceMs: 200 }, 'g', () => rec);
  t.equal((await m.monitor()).state, 'stopped');
  t.ok((await m.start()).ok);
  t.equal((await m.monitor()).state, 'running');
  t.ok((await m.stop()).ok);
  t.equal((await m.monitor()).state, 'stopped');
  const bad = commandMember({ type: 'command', name: 'b', start: 'echo starting; echo boom >&2; exit 3', timeoutMs: 2000, stopTimeoutMs: 2000, killGraceMs: 200 }, 'g', () => rec);
  t.match(await bad.start(), { ok: false, reason: /exit 3/, output: /boom/ });
  rec = 'running';
  t.equal((await bad.monitor()).state, 'running', 'without a monitor: the journal');
  const pidf = path.join(d, 'pid');
  const stubborn = commandMember({ type: 'command', name: 's', start: 'true', stop: `trap '' TERM; echo $$ > ${pidf}; while :; do sleep 0.05; done`, timeoutMs: 2000, stopTimeoutMs: 300, killGraceMs: 200 }, 'g', () => rec);
  const t0 = Date.now();
  const r = await stubborn.stop();
  const took = Date.now() - t0;
  t.match(r, { ok: false, reason: /timed out after 300 ms/ });
  t.ok(took >= 450 && took < 2000, `TERM at 300 ms, KILL 200 ms later (took ${took} ms, expected 500 ms give or take)`);
  const pid = Number(fs.readFileSync(pidf, 'utf8'));
  t.throws(() => process.kill(pid, 0), 'the stop process is gone');
});

t.test('unit: systemctl argv through a stand-in', async (t) => {
  const d = tmp(t);
  const state = path.join(d, 'state');
  const ctl = path.join(d, 'systemctl');
  fs.writeFileSync(ctl, `#!/bin/sh
echo "$1 $2" >> ${d}/calls
case "$1" in
  start) echo active > ${state};;
  stop) echo inactive > ${state};;
  is-active) s=$(cat ${state} 2>/dev/null || echo inactive); echo $s; [ "$s" = active ];;
esac
`, { mode: 0o755 });
  const m = unitMember({ type: 'unit', name: 'u', unit: 'db.service', backend: 'systemctl', systemctl: ctl, timeoutMs: 2000 });
  t.same(await m.validate(), []);
  t.equal((await m.monitor()).state, 'stopped');
  t.ok((await m.start()).ok);
  t.equal((await m.monitor()).state, 'running');
  t.ok((await m.stop()).ok);
  fs.writeFileSync(state, 'failed\n');
  t.match(await m.monitor(), { state: 'failed' });
  t.same(fs.readFileSync(path.join(d, 'calls'), 'utf8').trim().split('\n'), ['is-active db.service', 'start db.service', 'is-active db.service', 'stop db.service', 'is-active db.service']);
  t.match(await unitMember({ type: 'unit', name: 'x', unit: 'nosuffix', backend: 'systemctl', systemctl: ctl, timeoutMs: 100 }).validate(), [/not a unit name/]);
});

function fakeIo(initial: ListedCidr[], promote = false) {
  const calls: string[] = [];
  let addrs = [...initial];
  const io: AddressIo = {
    list: async () => addrs.map((a) => ({ ...a })),
    add: async (_i, c) => { calls.push(`add ${c.address}`); addrs.push({ ...c, ours: true }); },
    remove: async (_i, c) => {
      calls.push(`remove ${c.address}`);
      const idx = addrs.findIndex((a) => a.address === c.address);
      // The kernel's rule: removing a primary drops the later ones of its subnet.
      addrs = promote ? addrs.filter((a) => a.address !== c.address) : addrs.filter((a, i) => a.address !== c.address && !(i > idx && a.prefix === c.prefix));
    },
    carrier: async (i) => (i === 'eth0' ? true : i === 'down0' ? false : undefined),
    promotesSecondaries: async () => promote,
    announce: async (_i, ip, n, ms) => { calls.push(`announce ${ip} ${n}x${ms}`); },
    announceTo: async (_i, ip, nb) => { calls.push(`announceTo ${nb} ${ip}`); },
  };
  return { io, calls, addrs: () => addrs };
}

t.test('address: add, read back, announce; a second start does nothing; only ours is removed', async (t) => {
  const f = fakeIo([{ address: '10.0.0.10', prefix: 24 }]);
  const m = addressMember({ type: 'address', name: 'vip', cidr: { address: '10.0.0.100', prefix: 24 }, interface: 'eth0', arp: { count: 5, intervalMs: 200, unicast: ['10.0.0.1'] } }, f.io);
  t.same(await m.validate(), []);
  t.ok((await m.start()).ok);
  t.same(f.calls, ['add 10.0.0.100', 'announce 10.0.0.100 5x200', 'announceTo 10.0.0.1 10.0.0.100']);
  f.calls.length = 0;
  t.match(await m.start(), { ok: true, detail: 'already present' });
  t.same(f.calls, [], 'zero effects');
  t.ok((await m.stop()).ok);
  t.same(f.addrs(), [{ address: '10.0.0.10', prefix: 24 }], 'the primary stays');
  t.ok((await m.stop()).ok, 'stop when absent succeeds');
  const foreign = fakeIo([{ address: '10.0.0.100', prefix: 24 }]);
  const m2 = addressMember({ type: 'address', name: 'vip', cidr: { address: '10.0.0.100', prefix: 24 }, interface: 'eth0', arp: { count: 5, intervalMs: 200, unicast: [] } }, foreign.io);
  t.match(await m2.stop(), { ok: true, kept: true });
  t.same(foreign.calls, [], 'an address vigil did not add is never removed');
});

t.test('address: refuses to remove a primary that would take secondaries along (X-22)', async (t) => {
  const f = fakeIo([{ address: '10.0.0.100', prefix: 24, ours: true }, { address: '10.0.0.50', prefix: 24 }]);
  const m = addressMember({ type: 'address', name: 'vip', cidr: { address: '10.0.0.100', prefix: 24 }, interface: 'eth0', arp: { count: 0, intervalMs: 200, unicast: [] } }, f.io);
  t.match(await m.stop(), { ok: false, reason: /removing it would remove them too/ });
  t.equal(f.addrs().length, 2);
});

t.test('address: validate reports a missing interface and a link without carrier', async (t) => {
  const f = fakeIo([]);
  const mk = (i: string) => addressMember({ type: 'address', name: 'v', cidr: { address: '10.0.0.1', prefix: 32 }, interface: i, arp: { count: 0, intervalMs: 0, unicast: [] } }, f.io);
  t.match(await mk('eth9').validate(), [/does not exist/]);
  t.match(await mk('down0').validate(), [/no carrier/]);
});

t.test('symlink: a link whose directory is missing fails validation', async (t) => {
  const m = symlinkMember({ type: 'symlink', name: 's', link: '/nonexistent-dir-vigil/x', target: '/y', backupSuffix: '.vigilbak' });
  t.match(await m.validate(), [/does not exist/]);
});

t.test('address: complete() re-announces an address of ours', async (t) => {
  const f = fakeIo([{ address: '10.0.0.100', prefix: 24, ours: true }]);
  const m = addressMember({ type: 'address', name: 'vip', cidr: { address: '10.0.0.100', prefix: 24 }, interface: 'eth0', arp: { count: 5, intervalMs: 200, unicast: [] } }, f.io);
  t.ok((await m.complete!()).ok);
  t.same(f.calls, ['announce 10.0.0.100 5x200']);
});
