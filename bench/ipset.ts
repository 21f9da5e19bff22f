/**
 * Layer: bench entry. `bench/ipset` (root): taking over a whole address set, 1, 100 and 1000
 * addresses in the IP file.
 *
 * Lab: vigil on hosts a and b (aggressive timing, so detection does not
 * drown the address work), with an IP file of N extra /32 addresses, and a
 * third host x for the comparison. A watcher process in each vigil host
 * (bench/lib/addrwatch-proc.ts) reports every address the kernel adds, with
 * its CLOCK_MONOTONIC receipt time. Per trial the master's link is cut at a
 * random phase of the check cycle, and measured:
 *
 * - takeover_ms: fault → the last of the N + 1 addresses present on the
 *   new master (the HA IP and the IP file);
 * - add_ms: first of them present → last present (vigil's netlink batch).
 *
 * The comparison, in host x of the same lab: the same N addresses added by
 * a shell loop of `ip addr add`, one process per address (how shell-based HA
 * scripts do it), timed inside the namespace; and by one `ip -batch` for
 * reference. Output: bench/results/ipset.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createLab, type LabHost } from '../test/support/lab';
import { watchBridge, watchHost, type NsWatch } from './lib/nswatch';
import { scratchDir } from '../test/support/vigil';
import { nowNs, nsToMs } from './lib/client';
import { VIGIL_AGGRESSIVE, label, soleMaster, startPair, type HaNode } from './lib/ha';
import { median, percentile } from './lib/stats';
import { writeResult } from './lib/results';
import { parseBenchArgs, numberOption, requireRoot, progress, sleep, pollUntil, r1 } from './lib/common';

const log = (msg: string) => progress('ipset', msg);

/** The address-set sizes of issue 7. */
export const SIZES = [1, 100, 1000];

/** N distinct /32 addresses, 10.250.0.1 onwards (they only ever exist inside the lab's namespaces). */
export function extraAddresses(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `10.250.${(i + 1) >> 8}.${(i + 1) & 255}`);
}

/** One row of ipset.json `runs`. */
export interface IpsetRun {
  addresses: number;
  n: number;
  /** vigil: fault → all N + 1 addresses present on the new master. */
  takeover_median_ms: number;
  takeover_p95_ms: number;
  /** vigil: first address present → last present. */
  add_median_ms: number;
  add_p95_ms: number;
  /** N `ip addr add` processes in a shell loop (+1 for the HA IP), same lab. */
  ip_loop_median_ms: number;
  /** One `ip -batch` process adding the N + 1 addresses. */
  ip_batch_median_ms: number;
  /** ip_loop / vigil add. */
  loop_vs_netlink_ratio: number;
  failures: number;
  takeover_samples_ms: number[];
  add_samples_ms: number[];
  ip_loop_samples_ms: number[];
}

/** Time a shell command inside `host` (ns from `date` before and after, inside the namespace). */
async function timeInside(host: LabHost, script: string, input?: string): Promise<number> {
  const r = await host.exec(['sh', '-c', `t0=$(date +%s%N); ${script}; t1=$(date +%s%N); echo "T $((t1 - t0))"`],
    { timeoutMs: 300_000, ...(input !== undefined ? { input } : {}) });
  const m = /T (\d+)/.exec(r.stdout);
  if (r.code !== 0 || !m) throw new Error(`timing in ${host.name} failed (exit ${r.code}): ${r.stderr.trim().slice(0, 300)}`);
  return Number(m[1]) / 1e6;
}

/** The shell-loop comparison: add N + 1 addresses one `ip` process at a time, then remove them. */
async function ipLoop(host: LabHost, addrs: string[]): Promise<{ loopMs: number; batchMs: number }> {
  const list = addrs.map((a) => `${a}/32`).join(' ');
  const loopMs = await timeInside(host, `for a in ${list}; do ip addr add $a dev ${host.ifname} || exit 1; done`);
  await host.exec(['ip', '-batch', '-'], { input: addrs.map((a) => `addr del ${a}/32 dev ${host.ifname}\n`).join(''), timeoutMs: 60_000 });
  const batchMs = await timeInside(host, `ip -batch - || exit 1`, addrs.map((a) => `addr add ${a}/32 dev ${host.ifname}\n`).join(''));
  await host.exec(['ip', '-batch', '-'], { input: addrs.map((a) => `addr del ${a}/32 dev ${host.ifname}\n`).join(''), timeoutMs: 60_000 });
  return { loopMs, batchMs };
}

/** Run the ipset bench and write bench/results/ipset.json. */
export async function runIpset(opts: { full: boolean; trials?: number; sizes?: number[] }): Promise<Record<string, unknown>> {
  const trials = opts.trials ?? (opts.full ? 20 : 5);
  const sizes = opts.sizes ?? SIZES;
  const cfg = VIGIL_AGGRESSIVE;
  const lab = await createLab({ hosts: ['a', 'b', 'x'] });
  const dir = scratchDir('bench-ipset');
  const runs: IpsetRun[] = [];
  const watches: NsWatch[] = [];
  try {
    const a = lab.host('a');
    const b = lab.host('b');
    const x = lab.host('x');
    const haIp = lab.freeIp(0);
    for (const h of [a, b]) watches.push(await watchHost(h));
    const bridge = await watchBridge(lab);
    watches.push(bridge);
    const watchOf = (n: HaNode) => watches[n.host === a ? 0 : 1]!;
    log(`lab ${lab.prefix}; ${label(cfg)} with IP files of ${sizes.join(', ')} addresses, ${trials} takeovers each`);
    for (const size of sizes) {
      const extra = extraAddresses(size);
      const all = [haIp, ...extra];
      const ipFile = path.join(dir, `ha-ips-${size}`);
      fs.writeFileSync(ipFile, `# ${size} addresses for bench/ipset\n${extra.map((e) => `${e}/32`).join('\n')}\n`, { mode: 0o644 });
      const nodes = startPair(cfg, a, b, { haIp, dir: path.join(dir, String(size)), ipFile });
      const holdsAll = (n: HaNode) => all.every((ip) => watchOf(n).present.has(ip));
      const holdsNone = (n: HaNode) => all.every((ip) => !watchOf(n).present.has(ip));
      const settled = () => {
        const m = soleMaster(nodes);
        return m && holdsAll(m) && holdsNone(nodes.find((n) => n !== m)!) ? m : undefined;
      };
      const take: number[] = [];
      const add: number[] = [];
      const loops: number[] = [];
      const batches: number[] = [];
      let failures = 0;
      try {
        if (!await pollUntil(settled, 60_000, 20)) throw new Error(`${size} addresses: no settled master within 60 s`);
        for (let i = 0; i < trials; i++) {
          const master = await pollUntil(settled, 60_000, 20);
          if (!master) throw new Error(`${size} addresses: not settled before trial ${i + 1}`);
          const other = nodes.find((n) => n !== master)!;
          await sleep(Math.random() * cfg.cycleMs);
          const issued = nowNs();
          await master.host.cutLink();
          // The fault instant: the kernel's notification that the bridge port went down.
          const ev = await pollUntil(() => bridge.links.find((e) => e.atNs >= issued && e.name !== 'br0' && !e.up), 1000, 2);
          const faultNs = ev ? ev.atNs : nowNs();
          const done = await pollUntil(() => holdsAll(other), 60_000, 5);
          if (!done) {
            failures++;
            log(`${size} addresses #${i + 1}: FAILED: ${other.host.name} did not get all ${all.length} addresses within 60 s`);
          } else {
            const times = all.map((ip) => watchOf(other).present.get(ip)!);
            const first = times.reduce((m, t) => (t < m ? t : m));
            const last = times.reduce((m, t) => (t > m ? t : m));
            take.push(r1(nsToMs(last - faultNs)));
            add.push(r1(nsToMs(last - first)));
            log(`${size} addresses #${i + 1}: all present ${take.at(-1)} ms after the fault (adding took ${add.at(-1)} ms)`);
          }
          await sleep(300);
          await master.host.restoreLink();
          // The split brain is settled at the next master check (lower MAC keeps everything).
        }
        if (!await pollUntil(settled, 60_000, 20)) log(`${size} addresses: not settled after the last trial`);
      } finally {
        await Promise.all(nodes.map((n) => n.stop()));
      }
      for (let i = 0; i < trials; i++) {
        const r = await ipLoop(x, all);
        loops.push(r1(r.loopMs));
        batches.push(r1(r.batchMs));
      }
      log(`${size} addresses: shell loop of ip addr add ${r1(median(loops))} ms, ip -batch ${r1(median(batches))} ms (medians)`);
      runs.push({
        addresses: size, n: take.length,
        takeover_median_ms: r1(median(take)), takeover_p95_ms: r1(percentile(take, 95)),
        add_median_ms: r1(median(add)), add_p95_ms: r1(percentile(add, 95)),
        ip_loop_median_ms: r1(median(loops)), ip_batch_median_ms: r1(median(batches)),
        loop_vs_netlink_ratio: Math.round((median(loops) / Math.max(median(add), 0.1)) * 10) / 10,
        failures, takeover_samples_ms: take, add_samples_ms: add, ip_loop_samples_ms: loops,
      });
    }
  } finally {
    for (const w of watches) await w.stop();
    await lab.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const doc = {
    runs,
    mode: opts.full ? 'full' : 'quick',
    trials,
    config: `${label(cfg)} (${JSON.stringify(cfg.vip)})`,
    definitions: {
      takeover_ms: "link cut of the master (the kernel's notification that its bridge port went down) to the last of the N + 1 addresses (HA IP + IP file) reported by netlink on the new master",
      add_ms: 'first of those addresses reported → last reported: vigil adding the set in netlink batches',
      ip_loop_ms: "N + 1 'ip addr add' processes in a shell loop inside a lab host, timed inside the namespace",
      ip_batch_ms: "one 'ip -batch' process adding the N + 1 addresses",
    },
  };
  const file = writeResult('ipset', doc);
  log(`wrote ${file}`);
  return doc;
}

/** Print the headline table. */
export function printIpset(doc: { runs: IpsetRun[] }): void {
  const out = ['', 'ipset (ms, medians)', 'addresses   n  takeover  vigil add  ip addr add loop  ip -batch  loop/vigil'];
  for (const r of doc.runs) {
    out.push(`${String(r.addresses).padStart(9)} ${String(r.n).padStart(3)} ${String(r.takeover_median_ms).padStart(9)} ${String(r.add_median_ms).padStart(10)} ${String(r.ip_loop_median_ms).padStart(17)} ${String(r.ip_batch_median_ms).padStart(10)} ${String(r.loop_vs_netlink_ratio).padStart(11)}`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

async function main(): Promise<number> {
  const args = parseBenchArgs(process.argv.slice(2), { trials: { type: 'string' }, sizes: { type: 'string' } });
  if (args.help) {
    process.stdout.write('usage: node dist/bench/ipset.js [--full] [--trials N] [--sizes 1,100,1000]\n');
    return 0;
  }
  if (!requireRoot('bench/ipset')) return 2;
  const sizes = typeof args.values.sizes === 'string' ? args.values.sizes.split(',').map((s) => numberOption(s, 1, 'sizes')) : undefined;
  const doc = await runIpset({
    full: args.full,
    ...(args.values.trials !== undefined ? { trials: numberOption(args.values.trials, 3, 'trials') } : {}),
    ...(sizes ? { sizes } : {}),
  }) as { runs: IpsetRun[] };
  printIpset(doc);
  return 0;
}

if (require.main === module) {
  main().then((code) => process.exit(code), (e) => {
    process.stderr.write(`bench/ipset failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exit(1);
  });
}
