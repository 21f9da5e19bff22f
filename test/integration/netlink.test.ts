/**
 * Layer: integration test of the netlink layer (src/net/netlink) inside lab
 * hosts: what it reads matches `ip -j` in the same namespace; address
 * changes are idempotent and batched; link and address changes reach
 * subscribers promptly.
 */
import t from 'tap';
import { performance } from 'node:perf_hooks';
import { Netlink, type NetlinkEvent } from '../../src/net/netlink';
import { createLab, skipUnlessRoot, type Lab, type LabHost } from '../support/lab';
import { SLACK_MS } from '../support/vigil';

/** A kernel event reaches a subscriber within scheduling slack: no setting governs it. */
const EVENT_MS = SLACK_MS;

interface IpLink { ifindex: number; ifname: string; flags: string[]; mtu: number; operstate: string; address: string }
interface IpAddr { ifindex: number; ifname: string; addr_info: Array<{ family: string; local: string; prefixlen: number; label?: string }> }
interface IpNeigh { dst: string; dev: string; lladdr?: string; state: string[] }

async function ipJson<T>(h: LabHost, args: string[]): Promise<T> {
  const r = await h.exec(['ip', '-j', ...args]);
  if (r.code !== 0) throw new Error(`ip -j ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

async function ipv4Of(h: LabHost): Promise<string[]> {
  const all = await ipJson<IpAddr[]>(h, ['-4', 'addr', 'show', 'dev', 'eth0']);
  return all.flatMap((i) => i.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).sort();
}

/** Wait for the first event matching `pred`, recording when it arrived. */
function nextEvent(nl: Netlink, pred: (ev: NetlinkEvent) => boolean, timeoutMs: number): Promise<{ ev: NetlinkEvent; at: number } | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { off(); resolve(undefined); }, timeoutMs);
    const off = nl.subscribe((ev) => {
      if (!pred(ev)) return;
      const at = performance.now();
      clearTimeout(timer);
      off();
      resolve({ ev, at });
    });
  });
}

let nativeMissing: string | undefined;
try {
  require('../../src/native').native();
} catch {
  nativeMissing = 'native addon not built (npm install): lab.inNetns needs netnsEnter';
}

if (!skipUnlessRoot(t, ['ping'])) {
  if (nativeMissing) {
    t.plan(0, nativeMissing);
  } else {
    let lab: Lab;
    let a: LabHost;
    let b: LabHost;
    let nl: Netlink;

    t.before(async () => {
      lab = await createLab({ hosts: ['a', 'b'] });
      a = lab.host('a');
      b = lab.host('b');
      // open() creates its sockets before its first await, so they live in a's namespace.
      nl = await a.inNetns(() => Netlink.open());
    });
    t.teardown(async () => {
      nl?.close();
      await lab?.destroy();
    });

    t.test('links match ip -j link', async (t) => {
      const mine = await nl.links();
      const theirs = await ipJson<IpLink[]>(a, ['link', 'show']);
      t.same(mine.map((l) => l.name).sort(), ['eth0', 'lo'], 'only the namespace\'s own links');
      t.equal(mine.length, theirs.length);
      for (const ip of theirs) {
        const l = mine.find((x) => x.ifindex === ip.ifindex);
        t.ok(l, `link ${ip.ifname} found`);
        t.same(l, {
          ifindex: ip.ifindex, name: ip.ifname, mac: ip.address, mtu: ip.mtu,
          up: ip.flags.includes('UP'), carrier: ip.flags.includes('LOWER_UP'), operstate: ip.operstate.toLowerCase(),
        }, `link ${ip.ifname} fields`);
      }
      t.same(await nl.link('eth0'), mine.find((l) => l.name === 'eth0'), 'link(name) agrees with links()');
      t.equal((await nl.link('eth0'))!.mac, a.mac);
      t.equal(await nl.link('nope0'), undefined, 'unknown link: undefined');
    });

    t.test('addresses match ip -j -4 addr', async (t) => {
      const mine = await nl.addresses();
      const theirs = await ipJson<IpAddr[]>(a, ['-4', 'addr', 'show']);
      const flat = theirs.flatMap((i) => i.addr_info.filter((x) => x.family === 'inet').map((x) => ({
        ifindex: i.ifindex, ifname: i.ifname, address: x.local, prefix: x.prefixlen, label: x.label ?? i.ifname,
      })));
      t.same(mine.sort((x, y) => x.ifindex - y.ifindex), flat.sort((x, y) => x.ifindex - y.ifindex));
      t.same((await nl.addresses('eth0')).map((x) => `${x.address}/${x.prefix}`), [`${a.ip}/24`]);
      await t.rejects(nl.addresses('nope0'), { code: 'ENODEV', message: /nope0/ });
    });

    t.test('neighbours match ip -j -4 neigh after traffic', async (t) => {
      const r = await a.exec(['ping', '-c1', '-W1', b.ip]);
      t.equal(r.code, 0, 'a pings b');
      const mine = await nl.neighbours('eth0');
      const theirs = await ipJson<IpNeigh[]>(a, ['-4', 'neigh', 'show', 'dev', 'eth0']);
      const entry = mine.find((n) => n.address === b.ip);
      t.ok(entry, 'b is in a\'s neighbour table');
      t.equal(entry!.mac, b.mac, 'with b\'s MAC');
      t.same(mine.map((n) => ({ address: n.address, mac: n.mac, state: n.state })).sort((x, y) => x.address.localeCompare(y.address)),
        theirs.map((n) => ({ address: n.dst, mac: n.lladdr, state: n.state })).sort((x, y) => x.address.localeCompare(y.address)),
        'same entries, MACs and states as ip neigh');
      t.same((await nl.neighbours()).filter((n) => n.ifindex === entry!.ifindex), mine, 'unfiltered list contains the same');
      await t.rejects(nl.neighbours('nope0'), { code: 'ENODEV' });
    });

    t.test('add and remove are idempotent', async (t) => {
      const vip = { address: lab.freeIp(0), prefix: 24 };
      await nl.addAddress('eth0', vip, { label: 'eth0:vip' });
      await nl.addAddress('eth0', vip, { label: 'eth0:vip' });
      t.same(await ipv4Of(a), [`${a.ip}/24`, `${vip.address}/24`].sort(), 'present once');
      const labelled = (await ipJson<IpAddr[]>(a, ['-4', 'addr', 'show', 'dev', 'eth0']))[0]!.addr_info.find((x) => x.local === vip.address);
      t.equal(labelled?.label, 'eth0:vip', 'label set');
      t.ok((await b.exec(['ping', '-c1', '-W1', vip.address])).code === 0, 'b reaches the added address');
      await nl.removeAddress('eth0', vip);
      await nl.removeAddress('eth0', vip);
      t.same(await ipv4Of(a), [`${a.ip}/24`], 'gone, and removing again is fine');
      await t.rejects(nl.addAddress('nope0', vip), { code: 'ENODEV', message: /nope0/ });
      await t.rejects(nl.removeAddress('nope0', vip), { code: 'ENODEV' });
      await t.rejects(nl.addAddress('eth0', { address: '10.1.2.300', prefix: 24 }), { code: 'EINVAL' });
      await t.rejects(nl.addAddress('eth0', vip, { label: 'a-label-longer-than-15' }), { code: 'EINVAL' });
    });

    t.test('a batch of 100 addresses is all present, re-adding changes nothing, removal empties it', async (t) => {
      const base = lab.subnet.split('.').slice(0, 3).join('.');
      // /32s in the unused .100–.199 range: each its own primary, so removing one never takes others with it.
      const cidrs = Array.from({ length: 100 }, (_, i) => ({ address: `${base}.${100 + i}`, prefix: 32 }));
      const t0 = performance.now();
      const added = await nl.addAddresses('eth0', cidrs);
      t.comment(`100 adds in ${(performance.now() - t0).toFixed(1)} ms`);
      t.same([added.done.length, added.unchanged.length, added.failed.length], [100, 0, 0]);
      const present = await ipv4Of(a);
      t.same(present, [`${a.ip}/24`, ...cidrs.map((c) => `${c.address}/32`)].sort(), 'all 100 present per ip -j');
      t.equal((await nl.addresses('eth0')).length, 101, 'and per addresses()');
      const again = await nl.addAddresses('eth0', cidrs);
      t.same([again.done.length, again.unchanged.length, again.failed.length], [100, 100, 0], 're-add: all unchanged');
      const half = await nl.removeAddresses('eth0', cidrs.slice(0, 50));
      t.same([half.done.length, half.unchanged.length], [50, 0]);
      const removed = await nl.removeAddresses('eth0', cidrs);
      t.same([removed.done.length, removed.unchanged.length, removed.failed.length], [100, 50, 0], 'already-removed half unchanged');
      t.same(await ipv4Of(a), [`${a.ip}/24`]);
    });

    t.test('a link cut and its restore reach subscribers promptly (generous bound; latency is a bench matter)', async (t) => {
      const isEth0 = (carrier: boolean) => (ev: NetlinkEvent) => ev.kind === 'link' && ev.link.name === 'eth0' && ev.link.carrier === carrier;
      const down = nextEvent(nl, isEth0(false), EVENT_MS);
      const t0 = performance.now();
      await a.cutLink();
      const d = await down;
      t.ok(d, `carrier loss seen within ${EVENT_MS} ms`);
      if (d) {
        const ms = d.at - t0;
        t.comment(`carrier loss seen ${ms.toFixed(1)} ms after issuing the cut`);
        t.ok(ms <= 1000, `within 1 s (${ms.toFixed(1)} ms)`);
        t.equal(d.ev.kind === 'link' && d.ev.removed, false);
        t.not(d.ev.kind === 'link' && d.ev.link.operstate, 'up');
      }
      t.equal((await nl.link('eth0'))!.carrier, false, 'and link() agrees');

      const up = nextEvent(nl, isEth0(true), EVENT_MS);
      const t1 = performance.now();
      await a.restoreLink();
      const u = await up;
      t.ok(u, `carrier return seen within ${EVENT_MS} ms`);
      if (u) {
        const ms = u.at - t1;
        t.comment(`carrier return seen ${ms.toFixed(1)} ms after issuing the restore`);
        t.ok(ms <= 1000, `within 1 s (${ms.toFixed(1)} ms)`);
      }
    });

    t.test('address changes and link removal reach subscribers', async (t) => {
      const vip = { address: lab.freeIp(1), prefix: 32 };
      const added = nextEvent(nl, (ev) => ev.kind === 'address' && ev.address.address === vip.address && !ev.removed, EVENT_MS);
      await nl.addAddress('eth0', vip);
      const ev = await added;
      t.ok(ev, `address added event within ${EVENT_MS} ms`);
      t.same(ev && ev.ev.kind === 'address' && { ifname: ev.ev.address.ifname, prefix: ev.ev.address.prefix }, { ifname: 'eth0', prefix: 32 });
      const removed = nextEvent(nl, (ev) => ev.kind === 'address' && ev.address.address === vip.address && ev.removed, EVENT_MS);
      await b.exec(['true']); // unrelated work in between must not matter
      await a.exec(['ip', 'addr', 'del', `${vip.address}/32`, 'dev', 'eth0']);
      t.ok(await removed, `address removal by someone else seen within ${EVENT_MS} ms`);

      const gone = nextEvent(nl, (ev) => ev.kind === 'link' && ev.link.name === 'eth0' && ev.removed, EVENT_MS);
      await a.deleteLink();
      t.ok(await gone, `link deletion seen within ${EVENT_MS} ms`);
      t.equal(await nl.link('eth0'), undefined);
      await t.rejects(nl.addAddress('eth0', vip), { code: 'ENODEV' });
      await a.restoreLink();
      t.ok(await nl.link('eth0'), 'recreated');
    });

    t.test('unsubscribe stops delivery; close is idempotent and rejects later calls', async (t) => {
      const other = await a.inNetns(() => Netlink.open());
      const seen: NetlinkEvent[] = [];
      const off = other.subscribe((ev) => seen.push(ev));
      off();
      off();
      await nl.addAddress('eth0', { address: lab.freeIp(2), prefix: 32 });
      await nl.removeAddress('eth0', { address: lab.freeIp(2), prefix: 32 });
      await new Promise((r) => setTimeout(r, 100));
      t.same(seen, [], 'nothing after unsubscribe');
      other.close();
      other.close();
      await t.rejects(other.links(), { code: 'ECLOSED' });
      t.throws(() => other.subscribe(() => undefined), { code: 'ECLOSED' });
    });
  }
}
