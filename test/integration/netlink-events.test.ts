/**
 * Layer: integration test of the netlink event socket (native/nlevents.c via
 * src/net/netlink) inside a lab host: an address storm far larger than the
 * receive buffer never takes the process down, an overrun is reported as
 * EOVERFLOW (never an abort), and a subscriber that re-reads on overflow
 * ends with exactly the kernel's state.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Netlink } from '../../src/net/netlink';
import { RTNLGRP } from '../../src/net/netlink/codec';
import { native } from '../../src/native';
import { createLab, skipUnlessRoot, type Lab, type LabHost } from '../support/lab';

/** `ip -batch` lines: `n` add/del pairs of /32s in 10.250.0.0/16, leaving every `keepEvery`th one added (none when keepEvery > n). */
function stormLines(n: number, keepEvery: number): { lines: string; kept: string[] } {
  const out: string[] = [];
  const kept: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = `10.250.${Math.floor(i / 250) % 250}.${(i % 250) + 1}`;
    out.push(`addr add ${a}/32 dev eth0`);
    if (i % keepEvery === keepEvery - 1) kept.push(`${a}/32`);
    else out.push(`addr del ${a}/32 dev eth0`);
  }
  return { lines: `${out.join('\n')}\n`, kept };
}

async function kernelStorm(h: LabHost): Promise<string[]> {
  const r = await h.exec(['ip', '-j', '-4', 'addr', 'show', 'dev', 'eth0']);
  if (r.code !== 0) throw new Error(`ip addr show: ${r.stderr}`);
  const j = JSON.parse(r.stdout) as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>;
  return j.flatMap((i) => i.addr_info).map((a) => `${a.local}/${a.prefixlen}`).filter((a) => a.startsWith('10.250.')).sort();
}

if (!skipUnlessRoot(t, ['ip'])) {
  let lab: Lab;
  let a: LabHost;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-nlev-'));
  t.before(async () => {
    lab = await createLab({ hosts: ['a'] });
    a = lab.host('a');
  });
  t.teardown(async () => {
    await lab?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  t.test('an overrun while nobody reads is reported as overflow, and the socket goes on', async (t) => {
    // Smallest buffer, joined but not polled: the address changes below must overrun it.
    const sock = a.inNetns(() => native().openNetlinkEvents([RTNLGRP.IPV4_IFADDR], 4096));
    t.teardown(() => sock.close());
    const file = path.join(dir, 'small.batch');
    fs.writeFileSync(file, stormLines(2000, 1_000_000).lines);
    const r = await a.exec(['ip', '-batch', file], { timeoutMs: 60_000 });
    t.equal(r.code, 0, `ip -batch ran: ${r.stderr}`);
    let overflows = 0;
    let datagrams = 0;
    let error: Error | undefined;
    sock.start(() => { datagrams++; }, () => { overflows++; }, (e) => { error = e; });
    sock.ref(false);
    await a.exec(['ip', 'addr', 'add', '10.251.0.1/32', 'dev', 'eth0']);
    const deadline = Date.now() + 10_000;
    while (overflows === 0 && !error && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    t.equal(error, undefined, 'no socket error: an overrun is not an error');
    t.ok(overflows >= 1, `expected an overflow report within 10 s of reading a socket that dropped 4000 events; got ${overflows} (datagrams ${datagrams})`);
    t.equal(sock.closed, false, 'the socket stays open after an overrun');
  });

  t.test('100,000 address changes: the process lives and a re-reading subscriber ends with the kernel state', async (t) => {
    const nl = a.inNetns(() => Netlink.openSync());
    t.teardown(() => nl.close());
    const view = new Set<string>();
    let overflows = 0;
    let resyncs = 0;
    // A subscriber's discipline after an overrun: its view is stale, and events
    // still queued from before a dump would corrupt a dump taken now. So it
    // ignores events while dirty and dumps once the queue has gone quiet
    // (QUIET_MS without an event), then follows events again.
    const QUIET_MS = 300;
    let dirty = false;
    let quiet: NodeJS.Timeout | undefined;
    let resyncing: Promise<void> = Promise.resolve();
    const scheduleResync = () => {
      if (quiet) clearTimeout(quiet);
      quiet = setTimeout(() => {
        quiet = undefined;
        resyncs++;
        resyncing = resyncing.then(async () => {
          const all = await nl.addresses('eth0');
          view.clear();
          for (const x of all) if (x.address.startsWith('10.250.')) view.add(`${x.address}/${x.prefix}`);
          if (!quiet) dirty = false; // an overrun during the dump leaves it dirty, with a new dump scheduled
        });
      }, QUIET_MS);
    };
    t.teardown(() => { if (quiet) clearTimeout(quiet); });
    let events = 0;
    const off = nl.subscribe((ev) => {
      if (ev.kind !== 'address' || !ev.address.address.startsWith('10.250.')) return;
      events++;
      if (dirty) { scheduleResync(); return; }
      const k = `${ev.address.address}/${ev.address.prefix}`;
      if (ev.removed) view.delete(k); else view.add(k);
    }, (e) => {
      if (e.code === 'EOVERFLOW') { overflows++; dirty = true; scheduleResync(); }
    });
    t.teardown(off);
    // 50,000 adds and ~49,800 deletes: ~100,000 address events.
    const { lines, kept } = stormLines(50_000, 250);
    const file = path.join(dir, 'storm.batch');
    fs.writeFileSync(file, lines);
    const r = await a.exec(['ip', '-batch', file], { timeoutMs: 170_000 });
    t.equal(r.code, 0, `ip -batch ran: ${r.stderr.slice(0, 500)}`);
    const want = await kernelStorm(a);
    t.same(want, [...kept].sort(), 'the kernel holds the addresses the storm left');
    // Settle: wait until the view matches, allowing a generous 20 s for the tail of the queue.
    const deadline = Date.now() + 20_000;
    const same = () => [...view].sort().join() === want.join();
    while (!(same() && !dirty) && Date.now() < deadline) {
      await resyncing;
      await new Promise((r) => setTimeout(r, 100));
    }
    t.comment(`events ${events}, overflows ${overflows}, resyncs ${resyncs}`);
    t.same([...view].sort(), want, `expected the subscriber's view to match the kernel within 20 s of the storm (events ${events}, overflows ${overflows})`);
  });
}
