/**
 * Layer: bench. ARP probe cost, vigil side by side with iputils `arping`,
 * in a lab of two network namespaces built for the run (root needed).
 *
 *   node dist/bench/arp.js [--count 1000] [--interval 10ms] [--arping-long 10]
 *
 * Every row probes host b's address from host a, `count` times, one probe
 * per `interval`:
 * - pacing baseline: the same paced loop with no probe in it; its CPU is
 *   subtracted from the vigil rows ("net"), since arping's pauses happen in
 *   the shell and are not counted against it either.
 * - vigil: RFC 5227 probes on one long-lived ArpProber (the daemon's path);
 *   rtt from the native receive timestamp; CPU from process.cpuUsage() over
 *   the loop (every thread of the process, user + system).
 * - vigil-request: the same with ordinary requests (arping's frame).
 * - vigil-hot: back to back, no pacing (the best case: caches warm).
 * - vigil-oneshot: count/10 one-shot probe() calls, each opening and closing
 *   the socket (what the CLI does once).
 * - arping-per-probe: `arping -D -c 1 -w 1`, one process per probe (the
 *   legacy vzhaipd/arpsend pattern), in a bash loop paced like vigil; CPU
 *   of the arping processes from bash `times` (the shell's own fork and
 *   pause cost is reported apart, not counted).
 * - arping-long: one `arping -b -c N -i 1` process. iputils takes the
 *   interval in whole seconds (`-i 0.01` is refused, `-i 0` sends once), so
 *   one 1000-probe arping process would run 17 minutes; N is small and the
 *   row shows arping's steady-state rtt and CPU.
 *
 * arping prints its rtt 0.5 ms too high: recv_pack() computes
 * `msecs = (usecs + 500) / 1000; usecs -= msecs * 1000 - 500` and prints
 * `msecs.usecs`, i.e. usecs/1000 + 0.5 (iputils 20221126). Both the printed
 * and the corrected (−0.5 ms) figures are kept; ratios use the corrected.
 *
 * Writes bench/results/arp.json and prints the figures and the ratios.
 */
import { parseArgs } from 'node:util';
import * as fs from 'node:fs';
import { createLab } from '../test/support/lab';
import type { Lab, LabHost } from '../test/support/lab';
import { ArpProber, probe } from '../src/net/arp/prober';
import type { ProbeSource } from '../src/net/arp/prober';
import { parseDurationMs } from '../src/util/duration';
import { setLogLevel } from '../src/log';
import { round, roundOrNull, summarizeReported, percentileRule } from './lib/stats';
import type { ReportedSummary } from './lib/stats';
import { writeResult } from './lib/results';
import { cpuMicros, parseShellTimes, timedLoopArgv } from './lib/proc';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** arping's printed rtt exceeds the measured one by exactly this (see the header). */
const ARPING_PRINT_BIAS_MS = 0.5;

/** One row of the comparison. */
interface Row {
  what: string;
  probes: number;
  answered: number;
  /** p90/p99 are null where n is too small for them to differ from max (arping-long: n = 10). */
  rttMs: ReportedSummary;
  /** CPU per probe, µs (net of the pacing loop for vigil's paced rows). */
  cpuUsPerProbe: number;
  /** Wall time per probe, ms (including pacing where there is any). */
  wallMsPerProbe: number;
  extra?: Record<string, unknown>;
}

function rounded(s: ReportedSummary): ReportedSummary {
  return { n: s.n, min: round(s.min), median: round(s.median), p90: roundOrNull(s.p90), p99: roundOrNull(s.p99), max: round(s.max), mean: round(s.mean) };
}

/** Run `body` `count` times, one start per `intervalMs` (0: back to back); CPU µs and wall ms of the loop. */
async function pacedLoop(count: number, intervalMs: number, body: () => Promise<void>): Promise<{ cpuUs: number; wallMs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await body();
    const left = start + intervalMs - performance.now();
    if (left > 0) await sleep(Math.ceil(left)); // libuv's cached loop time would fire a fractional wait early
  }
  return { cpuUs: cpuMicros(cpu0), wallMs: performance.now() - t0 };
}

async function vigilRow(a: LabHost, ip: string, count: number, intervalMs: number, source: ProbeSource, baselineUs: number): Promise<Row> {
  const prober = a.inNetns(() => ArpProber.open(a.ifname));
  try {
    for (let i = 0; i < 50; i++) await prober.probe(ip, { timeoutMs: 1000, source }); // warm up (JIT, caches)
    const rtts: number[] = [];
    let answered = 0;
    const loop = await pacedLoop(count, intervalMs, async () => {
      const r = await prober.probe(ip, { timeoutMs: 1000, source });
      if (r.status === 'answered') {
        answered++;
        rtts.push(r.rttMs);
      }
    });
    const gross = loop.cpuUs / count;
    return {
      what: `vigil ArpProber, ${source === 'probe' ? 'RFC 5227 probes' : 'ARP requests'}, one socket, ${intervalMs ? `every ${intervalMs} ms` : 'back to back'}`,
      probes: count, answered, rttMs: rounded(summarizeReported(rtts)),
      cpuUsPerProbe: round(Math.max(0, gross - baselineUs), 1), wallMsPerProbe: round(loop.wallMs / count),
      extra: { cpuUsPerProbeGross: round(gross, 1), pacingBaselineUs: round(baselineUs, 1) },
    };
  } finally {
    prober.close();
  }
}

async function vigilOneshotRow(a: LabHost, ip: string, count: number): Promise<Row> {
  const rtts: number[] = [];
  let answered = 0;
  const loop = await pacedLoop(count, 0, async () => {
    const r = await a.inNetns(() => probe(ip, a.ifname, { timeoutMs: 1000 }));
    if (r.status === 'answered') {
      answered++;
      rtts.push(r.rttMs);
    }
  });
  return {
    what: 'vigil probe() one-shot: socket opened and closed per probe, back to back',
    probes: count, answered, rttMs: rounded(summarizeReported(rtts)), cpuUsPerProbe: round(loop.cpuUs / count, 1), wallMsPerProbe: round(loop.wallMs / count),
  };
}

const ARPING_REPLY = /^(?:Unicast|Broadcast) reply from (\S+) \[([0-9A-F:]+)\]\s+(\d+\.\d+)ms$/gm;

function parseArping(stdout: string, ip: string, mac: string): number[] {
  const rtts: number[] = [];
  for (const m of stdout.matchAll(ARPING_REPLY)) {
    if (m[1] === ip && m[2]!.toLowerCase() === mac) rtts.push(Number(m[3]));
  }
  return rtts;
}

async function arpingRow(a: LabHost, b: LabHost, what: string, loops: number, argv: string[], probes: number, pauseMs: number): Promise<Row> {
  const t0 = performance.now();
  const r = await a.exec(timedLoopArgv(loops, argv, pauseMs), { timeoutMs: 60 * 60_000 });
  const wall = performance.now() - t0;
  const times = parseShellTimes(r.stderr);
  if (!times) throw new Error(`could not read CPU times of '${argv.join(' ')}' (exit ${r.code}): ${r.stderr.slice(-300)}`);
  const printed = parseArping(r.stdout, b.ip, b.mac);
  return {
    what, probes, answered: printed.length,
    rttMs: rounded(summarizeReported(printed.map((x) => x - ARPING_PRINT_BIAS_MS))),
    cpuUsPerProbe: round(times.childrenUs / probes, 1), wallMsPerProbe: round(wall / probes),
    extra: {
      command: argv.join(' '), loops, pauseMs,
      rttMsAsPrinted: rounded(summarizeReported(printed)),
      shellUsPerProbe: round(times.shellUs / probes, 1),
    },
  };
}

function hasArping(): string | undefined {
  return ['/usr/bin/arping', '/usr/sbin/arping', '/bin/arping', '/sbin/arping'].find((p) => fs.existsSync(p));
}

function printRow(r: Row): void {
  const s = r.rttMs;
  process.stdout.write(
    `${r.what}\n  ${r.answered}/${r.probes} answered; rtt ms median ${s.median}${s.p99 === null ? '' : ` p99 ${s.p99}`} (min ${s.min}, max ${s.max}); `
    + `CPU ${r.cpuUsPerProbe} µs/probe; wall ${r.wallMsPerProbe} ms/probe\n`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { count: { type: 'string', default: '1000' }, interval: { type: 'string', default: '10ms' }, 'arping-long': { type: 'string', default: '10' } },
  });
  const count = Number(values.count);
  const intervalMs = parseDurationMs(values.interval);
  const longN = Number(values['arping-long']);
  if (!Number.isInteger(count) || count < 1 || intervalMs === undefined || !Number.isInteger(longN) || longN < 0) {
    process.stderr.write('bench/arp: usage: [--count N] [--interval DURATION] [--arping-long N]\n');
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench/arp: needs root (it builds network namespaces)\n');
    return 2;
  }
  setLogLevel('silent');
  const arping = hasArping();
  let lab: Lab | undefined;
  try {
    lab = await createLab({ hosts: ['a', 'b'] });
    const a = lab.host('a');
    const b = lab.host('b');
    process.stdout.write(`bench/arp: lab ${lab.prefix}, probing ${b.ip} [${b.mac}] from ${a.ip}, ${count} probes every ${intervalMs} ms\n\n`);

    const baseline = await pacedLoop(count, intervalMs, async () => undefined);
    const baselineUs = baseline.cpuUs / count;
    process.stdout.write(`pacing loop alone: ${round(baselineUs, 1)} µs CPU per iteration (subtracted from the paced vigil rows)\n`);
    const rows: Record<string, Row> = {};
    rows.vigil = await vigilRow(a, b.ip, count, intervalMs, 'probe', baselineUs);
    printRow(rows.vigil);
    rows.vigilRequest = await vigilRow(a, b.ip, count, intervalMs, 'request', baselineUs);
    printRow(rows.vigilRequest);
    rows.vigilHot = await vigilRow(a, b.ip, count, 0, 'probe', 0);
    printRow(rows.vigilHot);
    rows.vigilOneshot = await vigilOneshotRow(a, b.ip, Math.max(1, Math.round(count / 10)));
    printRow(rows.vigilOneshot);

    let ratios: Record<string, number | null> | undefined;
    let arpingVersion: string | undefined;
    if (arping) {
      arpingVersion = (await a.exec([arping, '-V'])).stdout.trim().split('\n')[0];
      rows.arpingPerProbe = await arpingRow(a, b, `arping -D -c 1 -w 1: one process per probe (legacy pattern), every ~${intervalMs} ms`, count,
        [arping, '-D', '-c', '1', '-w', '1', '-I', a.ifname, b.ip], count, intervalMs);
      printRow(rows.arpingPerProbe);
      if (longN > 0) {
        rows.arpingLong = await arpingRow(a, b, `arping -b -c ${longN} -i 1: one process, iputils' smallest interval (1 s)`, 1,
          [arping, '-b', '-c', String(longN), '-i', '1', '-I', a.ifname, b.ip], longN, 0);
        printRow(rows.arpingLong);
      }
      const v = rows.vigil;
      const p = rows.arpingPerProbe;
      ratios = {
        cpuPerProbe_arpingPerProcess_over_vigil: round(p.cpuUsPerProbe / v.cpuUsPerProbe, 2),
        rttMedian_arping_over_vigil: round(p.rttMs.median / v.rttMs.median, 2),
        // null when either row has too few samples for a p99 (it would be a ratio of maxima).
        rttP99_arping_over_vigil: p.rttMs.p99 !== null && v.rttMs.p99 !== null ? round(p.rttMs.p99 / v.rttMs.p99, 2) : null,
      };
      if (rows.arpingLong) {
        ratios.cpuPerProbe_arpingLong_over_vigil = round(rows.arpingLong.cpuUsPerProbe / v.cpuUsPerProbe, 2);
        ratios.rttMedian_arpingLong_over_vigil = round(rows.arpingLong.rttMs.median / v.rttMs.median, 2);
      }
      process.stdout.write(`\nratios (arping / vigil): CPU per probe ${ratios.cpuPerProbe_arpingPerProcess_over_vigil}x `
        + `(process per probe)${rows.arpingLong ? `, ${ratios.cpuPerProbe_arpingLong_over_vigil}x (one arping process)` : ''}; `
        + `rtt median ${ratios.rttMedian_arping_over_vigil}x${ratios.rttP99_arping_over_vigil === null ? '' : `, p99 ${ratios.rttP99_arping_over_vigil}x`} `
        + `(arping rtt corrected by −${ARPING_PRINT_BIAS_MS} ms)\n`);
    } else {
      process.stdout.write('\narping not installed (Debian: apt-get install iputils-arping): vigil figures only\n');
    }
    const file = writeResult('arp', {
      params: { count, intervalMs, arpingLong: longN, target: 'lab host b over a veth + bridge' },
      arping: arpingVersion ?? null,
      arpingRttCorrectionMs: -ARPING_PRINT_BIAS_MS,
      pacingBaselineUsPerIteration: round(baselineUs, 1),
      percentiles: percentileRule(90, 99),
      rows,
      ratios: ratios ?? null,
    });
    process.stdout.write(`\nwrote ${file}\n`);
    return 0;
  } finally {
    await lab?.destroy();
  }
}

main().then((code) => { process.exitCode = code; }, (e: unknown) => {
  process.stderr.write(`bench/arp: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
