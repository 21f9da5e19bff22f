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
 * The comparison, in host x of the same lab: the same N + 1 addresses added
 * by a shell loop of `ip addr add`, one process per address (how shell-based
 * HA scripts do it), and by one `ip -batch` for reference. Both are timed
 * like vigil's add, by a watcher in host x: first address present → last
 * present, so the figures compare the same interval (the loop's wall time,
 * which also holds the first fork and the timing forks, is kept beside it).
 * Output: bench/results/ipset.json (--full: ipset-full.json).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createLab, type LabHost } from '../test/support/lab';
import { watchBridge, watchHost, type NsWatch } from './lib/nswatch';
import { scratchDir } from '../test/support/vigil';
import { nowNs, nsToMs } from './lib/client';
import { VIGIL_AGGRESSIVE, label, soleMaster, startPair, type HaNode } from './lib/ha';
import { median, reportedPercentile, percentileRule, bootstrapMedianRatioCi, excludesOne } from './lib/stats';
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
  /** null unless n >= 20 (nearest rank: below that it is the max). */
  takeover_p95_ms: number | null;
  takeover_max_ms: number;
  /** vigil: first address present → last present (the watcher's receipt times). */
  add_median_ms: number;
  add_p95_ms: number | null;
  add_max_ms: number;
  /** N + 1 `ip addr add` processes in a shell loop, same lab: first address present → last present, as for vigil. */
  ip_loop_median_ms: number;
  /** The loop's wall time inside the namespace: also the first `ip` fork and the two `date` forks around it. */
  ip_loop_wall_median_ms: number;
  /** One `ip -batch` process adding the N + 1 addresses: first present → last present. */
  ip_batch_median_ms: number;
  ip_batch_wall_median_ms: number;
  /** ip_loop / vigil add, the same interval on both sides; null for 1 address (2 addresses, one batch: nothing to compare). */
  loop_vs_netlink_ratio: number | null;
  /** Bootstrap 95 % interval of that ratio (null where the ratio is). */
  loop_vs_netlink_ratio_ci95: [number, number] | null;
  ci95_excludes_1: boolean | null;
  failures: number;
  takeover_samples_ms: number[];
  add_samples_ms: number[];
  ip_loop_samples_ms: number[];
  ip_loop_wall_samples_ms: number[];
  ip_batch_samples_ms: number[];
}

/** Time a shell command inside `host` (ns from `date` before and after, inside the namespace). */
async function timeInside(host: LabHost, script: string, input?: string): Promise<number> {
  const r = await host.exec(['sh', '-c', `t0=$(date +%s%N); ${script}; t1=$(date +%s%N); echo "T $((t1 - t0))"`],
    { timeoutMs: 300_000, ...(input !== undefined ? { input } : {}) });
  const m = /T (\d+)/.exec(r.stdout);
  if (r.code !== 0 || !m) throw new Error(`timing in ${host.name} failed (exit ${r.code}): ${r.stderr.trim().slice(0, 300)}`);
  return Number(m[1]) / 1e6;
}

/** First → last receipt time of `addrs` in `watch`, once all are present and added at/after `sinceNs`. */
async function watchedSpan(watch: NsWatch, addrs: string[], sinceNs: bigint, what: string): Promise<number> {
  const times = await pollUntil(() => {
    const ts = addrs.map((ip) => watch.present.get(ip));
    return ts.every((t) => t !== undefined && t >= sinceNs) ? (ts as bigint[]) : undefined;
  }, 10_000, 5);
  if (!times) throw new Error(`${what}: the watcher did not report all ${addrs.length} addresses within 10 s`);
  const first = times.reduce((m, t) => (t < m ? t : m));
  const last = times.reduce((m, t) => (t > m ? t : m));
  return nsToMs(last - first);
}

/** Remove `addrs` from the host and wait until its watcher has seen them go (so the next span starts clean). */
async function removeAll(host: LabHost, watch: NsWatch, addrs: string[]): Promise<void> {
  await host.exec(['ip', '-batch', '-'], { input: addrs.map((a) => `addr del ${a}/32 dev ${host.ifname}\n`).join(''), timeoutMs: 60_000 });
  if (!await pollUntil(() => addrs.every((ip) => !watch.present.has(ip)), 10_000, 5)) throw new Error(`${host.name}: addresses still present 10 s after removal`);
}

/**
 * The shell-loop comparison: add N + 1 addresses one `ip` process at a time,
 * then with one `ip -batch`, removing them after each. Each is timed by the
 * watcher in the host (first present → last present, vigil's add interval)
 * and by its wall time inside the namespace.
 */
async function ipLoop(host: LabHost, watch: NsWatch, addrs: string[]): Promise<{ loopMs: number; loopWallMs: number; batchMs: number; batchWallMs: number }> {
  const list = addrs.map((a) => `${a}/32`).join(' ');
  const t0 = nowNs();
  const loopWallMs = await timeInside(host, `for a in ${list}; do ip addr add $a dev ${host.ifname} || exit 1; done`);
  const loopMs = await watchedSpan(watch, addrs, t0, 'ip addr add loop');
  await removeAll(host, watch, addrs);
  const t1 = nowNs();
  const batchWallMs = await timeInside(host, `ip -batch - || exit 1`, addrs.map((a) => `addr add ${a}/32 dev ${host.ifname}\n`).join(''));
  const batchMs = await watchedSpan(watch, addrs, t1, 'ip -batch');
  await removeAll(host, watch, addrs);
  return { loopMs, loopWallMs, batchMs, batchWallMs };
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
    const xWatch = await watchHost(x);
    watches.push(xWatch);
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
      const loopWalls: number[] = [];
      const batches: number[] = [];
      const batchWalls: number[] = [];
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
        const r = await ipLoop(x, xWatch, all);
        loops.push(r1(r.loopMs));
        loopWalls.push(r1(r.loopWallMs));
        batches.push(r1(r.batchMs));
        batchWalls.push(r1(r.batchWallMs));
      }
      log(`${size} addresses: shell loop of ip addr add ${r1(median(loops))} ms first→last (${r1(median(loopWalls))} ms wall), ip -batch ${r1(median(batches))} ms (medians)`);
      // With 1 address the set is 2 addresses that vigil adds in one netlink
      // message (first→last ≈ 0): a ratio to that says nothing.
      const comparable = size > 1 && median(add) > 0;
      const ci = comparable ? bootstrapMedianRatioCi(loops, add) : undefined;
      const ci95: [number, number] | null = ci ? [Math.round(ci[0] * 10) / 10, Math.round(ci[1] * 10) / 10] : null;
      const p95 = (xs: number[]) => { const v = reportedPercentile(xs, 95); return v === null ? null : r1(v); };
      runs.push({
        addresses: size, n: take.length,
        takeover_median_ms: r1(median(take)), takeover_p95_ms: p95(take), takeover_max_ms: r1(Math.max(...take)),
        add_median_ms: r1(median(add)), add_p95_ms: p95(add), add_max_ms: r1(Math.max(...add)),
        ip_loop_median_ms: r1(median(loops)), ip_loop_wall_median_ms: r1(median(loopWalls)),
        ip_batch_median_ms: r1(median(batches)), ip_batch_wall_median_ms: r1(median(batchWalls)),
        loop_vs_netlink_ratio: comparable ? Math.round((median(loops) / median(add)) * 10) / 10 : null,
        loop_vs_netlink_ratio_ci95: ci95,
        ci95_excludes_1: excludesOne(ci95),
        failures, takeover_samples_ms: take, add_samples_ms: add, ip_loop_samples_ms: loops,
        ip_loop_wall_samples_ms: loopWalls, ip_batch_samples_ms: batches,
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
      ip_loop_ms: "N + 1 'ip addr add' processes in a shell loop inside a lab host: first of the addresses reported by a netlink watcher in that host → last reported, the same interval as add_ms",
      ip_loop_wall_ms: 'the same loop timed by `date +%s%N` before and after it inside the namespace: also the first ip fork and the date forks',
      ip_batch_ms: "one 'ip -batch' process adding the N + 1 addresses, first reported → last reported (its wall time in ip_batch_wall_median_ms)",
      loop_vs_netlink_ratio: 'median ip_loop_ms / median add_ms; null for 1 address (2 addresses, added by vigil in one netlink message: nothing to compare); loop_vs_netlink_ratio_ci95 its percentile-bootstrap 95 % interval (10000 resamples, seeded PRNG)',
      p95_ms: percentileRule(95),
    },
  };
  // A full run gets a file of its own: it must not overwrite the quick figures.
  const file = writeResult(opts.full ? 'ipset-full' : 'ipset', doc);
  log(`wrote ${file}`);
  return doc;
}

/** Print the headline table. */
export function printIpset(doc: { runs: IpsetRun[] }): void {
  const out = ['', 'ipset (ms, medians; adds timed first address present → last present; loop wall time in parentheses)',
    'addresses   n  takeover  vigil add  ip addr add loop (wall)  ip -batch  loop/vigil [95 % interval]'];
  for (const r of doc.runs) {
    const ratio = r.loop_vs_netlink_ratio === null ? '–' : `${r.loop_vs_netlink_ratio}${r.loop_vs_netlink_ratio_ci95 ? ` [${r.loop_vs_netlink_ratio_ci95[0]}, ${r.loop_vs_netlink_ratio_ci95[1]}]` : ''}`;
    out.push(`${String(r.addresses).padStart(9)} ${String(r.n).padStart(3)} ${String(r.takeover_median_ms).padStart(9)} ${String(r.add_median_ms).padStart(10)} ${`${r.ip_loop_median_ms} (${r.ip_loop_wall_median_ms})`.padStart(24)} ${String(r.ip_batch_median_ms).padStart(10)}  ${ratio}`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

async function main(): Promise<number> {
  const args = parseBenchArgs(process.argv.slice(2), { trials: { type: 'string' }, sizes: { type: 'string' } });
  if (args.help) {
    process.stdout.write('usage: node dist/bench/ipset.js [--full] [--trials N] [--sizes 1,100,1000]\n'
      + 'quick (default): 5 takeovers per size -> ipset.json; --full: 20 -> ipset-full.json\n');
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
