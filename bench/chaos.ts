/**
 * Layer: bench entry. `node dist/bench/chaos.js [--faults 100] [--seed N]
 * [--setting default|aggressive|both]` (root): three vigil nodes and a client
 * in the lab, and a seeded series of random faults. Its own command: never
 * part of `npm test` nor of `npm run bench` (it takes minutes per setting).
 *
 * Faults, one at a time, each healed before the next (targets: the master
 * half of the time, else a random node):
 *   cut        a node's link loses carrier for 0.3–5 s
 *   cut-many   two or three links at once, 0.3–5 s
 *   kill       kill -9 of a daemon (its addresses stay, as on a crash), restart after 0.2–3 s
 *   stall      SIGSTOP of a daemon for 0.1–5 s, then SIGCONT
 *   graceful   SIGTERM (what `vigil stop` sends), start again after 0.2–3 s
 *   lossy      a userspace relay in a node's link drops 5–50 % of the frames
 *              and delays them 0–50 ms for 2–8 s (no netem on these kernels)
 *   ip-file    the IP file rewritten: a random subset of the extra addresses and a bad line
 *   bad-reload a node's config replaced by an invalid one and `vigil reload`: refused, then restored
 *
 * Invariants, read from the world (the client's ARP answers and `ip addr` in
 * every namespace), never from vigil's log:
 *   one-holder   within `master_check_interval + check_interval` (+ the
 *                scheduling slack below) of a heal, exactly one node holds the
 *                HA IP and every IP-file address, and no other node any of them;
 *   client-gap   the client never goes longer than the takeover bound without
 *                an answer, except while every node is cut or stopped;
 *   graceful     a daemon's graceful stop leaves none of the addresses behind;
 *   reload       a bad config is refused and the daemon keeps running;
 *   leftovers    nothing of the run is left at the end (namespaces, processes).
 *
 * Output: bench/results/chaos-<setting>.json (every fault, its timings and
 * each invariant's result), chaos-<setting>-worst.svg (the fault with the
 * longest settle relative to its bound), and one line per setting:
 * `100 faults, 0 violations (seed S, setting default)`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createLab, type Lab } from '../test/support/lab';
import { scratchDir } from '../test/support/vigil';
import { startClient, type ArpClient } from './lib/client';
import { VIGIL_DEFAULT, VIGIL_AGGRESSIVE, type HaConfig } from './lib/ha';
import { seededRandom } from './lib/stats';
import { writeResult, resultsDir, runContext } from './lib/results';
import { parseBenchArgs, numberOption, requireRoot, progress, sleep } from './lib/common';
import { writeTimelineSvg } from './svg';
import {
  startNodes, holdings, soleHolder, waitStarted, restart, signalTree, insertRelay, removeRelay, writeIpFile,
  reloadNode, leftovers, nowNs, type ChaosNode,
} from './lib/chaos-lab';
import { FAULT_KINDS, boundsOf, clientGaps, type Bounds, type FaultKind, type FaultRecord, type Unavailable } from './lib/chaos-check';

const NAME = 'chaos';
const NODES = ['n1', 'n2', 'n3'];
/** Extra addresses the IP file may name (lab free IPs 1..3). */
const EXTRA = [1, 2, 3];

/** The two settings: the documented defaults and the aggressive timing, both with a fast IP-file check. */
function settingOf(name: string): HaConfig {
  const base = name === 'aggressive' ? VIGIL_AGGRESSIVE : VIGIL_DEFAULT;
  return { ...base, vip: { ...(base.vip ?? {}), ip_file_check_interval: '1s' } };
}

interface Ctx {
  lab: Lab;
  nodes: ChaosNode[];
  client: ArpClient;
  rnd: () => number;
  haIp: string;
  ipFile: string;
  extras: string[];
  bounds: Bounds;
  unavailable: Unavailable[];
}

const between = (rnd: () => number, lo: number, hi: number) => lo + (hi - lo) * rnd();
const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

/** The master (by `ip addr`: who holds the HA IP), else a random node; half the time a random node anyway. */
async function target(c: Ctx): Promise<number> {
  const held = await holdings(c.nodes, [c.haIp]);
  const master = held.findIndex((h) => h.length > 0);
  return master >= 0 && c.rnd() < 0.5 ? master : Math.floor(c.rnd() * c.nodes.length);
}

function markDown(c: Ctx, i: number, down: boolean, why: string): void {
  c.unavailable.push({ atNs: nowNs(), node: i, down, why });
}

/** Carry out one fault and its heal; returns the heal instant and what was done. */
async function runFault(c: Ctx, kind: FaultKind, rec: FaultRecord): Promise<void> {
  const { nodes, rnd } = c;
  switch (kind) {
    case 'cut':
    case 'cut-many': {
      const count = kind === 'cut' ? 1 : 2 + Math.floor(rnd() * 2);
      const first = await target(c);
      const idx = [first, ...[0, 1, 2].filter((i) => i !== first).sort(() => rnd() - 0.5)].slice(0, count);
      const ms = between(rnd, 300, 5000);
      rec.targets = idx.map((i) => NODES[i]!);
      rec.params = { ms: Math.round(ms) };
      for (const i of idx) { await nodes[i]!.host.cutLink(); nodes[i]!.cut = true; markDown(c, i, true, 'cut'); }
      await sleep(ms);
      for (const i of idx) { await nodes[i]!.host.restoreLink(); nodes[i]!.cut = false; markDown(c, i, false, 'healed'); }
      return;
    }
    case 'kill': {
      const i = await target(c);
      const ms = between(rnd, 200, 3000);
      rec.targets = [NODES[i]!];
      rec.params = { ms: Math.round(ms) };
      await nodes[i]!.ha.kill();
      // Its addresses stay on the interface (the kernel still answers for them): not "down" for the client.
      await sleep(ms);
      restart(nodes[i]!);
      rec.started = await waitStarted(nodes[i]!, c.bounds.startMs);
      return;
    }
    case 'stall': {
      const i = await target(c);
      const ms = between(rnd, 100, 5000);
      rec.targets = [NODES[i]!];
      rec.params = { ms: Math.round(ms) };
      signalTree(nodes[i]!, 'SIGSTOP');
      await sleep(ms);
      signalTree(nodes[i]!, 'SIGCONT');
      return;
    }
    case 'graceful': {
      const i = await target(c);
      const ms = between(rnd, 200, 3000);
      rec.targets = [NODES[i]!];
      rec.params = { ms: Math.round(ms) };
      markDown(c, i, true, 'stopping');
      await nodes[i]!.ha.stop(c.bounds.stopMs);
      const left = (await holdings([nodes[i]!], [c.haIp, ...c.extras]))[0]!;
      rec.checks.graceful = { ok: left.length === 0, detail: left.length === 0 ? 'nothing held after the stop' : `still held after the stop: ${left.join(', ')}` };
      await sleep(ms);
      restart(nodes[i]!);
      rec.started = await waitStarted(nodes[i]!, c.bounds.startMs);
      markDown(c, i, false, 'started');
      return;
    }
    case 'lossy': {
      const i = await target(c);
      const loss = between(rnd, 0.05, 0.5);
      const delayMs = between(rnd, 0, 50);
      const ms = between(rnd, 2000, 8000);
      rec.targets = [NODES[i]!];
      rec.params = { loss: Math.round(loss * 100) / 100, delayMs: Math.round(delayMs), ms: Math.round(ms) };
      await insertRelay(c.lab, nodes[i]!, i, loss, delayMs, delayMs / 4, Math.floor(rnd() * 2 ** 31));
      await sleep(ms);
      rec.params.relay = await removeRelay(c.lab, nodes[i]!);
      return;
    }
    case 'ip-file': {
      const subset = c.extras.filter(() => rnd() < 0.6);
      rec.params = { addresses: subset };
      writeIpFile(c.ipFile, subset, pick(rnd, ['10.0.0.999/24', 'not an address', '224.0.0.1/24', '10.1.2.3/33']));
      c.extras = subset;
      return;
    }
    case 'bad-reload': {
      const i = Math.floor(rnd() * nodes.length);
      const n = nodes[i]!;
      rec.targets = [NODES[i]!];
      const good = fs.readFileSync(n.config);
      fs.writeFileSync(n.config, 'vip:\n  interface: eth0\n  address: 10.0.0.999\n  take_over_after: 0\n', { mode: 0o600 });
      const r = await reloadNode(n);
      fs.writeFileSync(n.config, good, { mode: 0o600 });
      const alive = n.ha.proc !== undefined;
      rec.checks.reload = { ok: r.code !== 0 && alive, detail: `reload exit ${r.code}, daemon ${alive ? 'running' : 'gone'}: ${r.out.trim().split('\n').pop() ?? ''}` };
      return;
    }
  }
}

/** After a heal: poll `ip addr` until exactly one node holds everything; the time it took. */
async function settle(c: Ctx, healNs: bigint, boundMs: number): Promise<{ ms: number | null; held: string[][] }> {
  const wanted = [c.haIp, ...c.extras];
  const deadline = Number(healNs) / 1e6 + boundMs + 2000; // read a little past the bound, to report how late
  let held: string[][] = [];
  for (;;) {
    held = await holdings(c.nodes, wanted);
    const now = Number(nowNs()) / 1e6;
    if (soleHolder(held, wanted) !== undefined) return { ms: now - Number(healNs) / 1e6, held };
    if (now > deadline) return { ms: null, held };
    await sleep(25);
  }
}

async function runSetting(setting: string, faults: number, seed: number): Promise<{ summary: string; violations: number }> {
  const cfg = settingOf(setting);
  const bounds = boundsOf(cfg);
  const rnd = seededRandom(seed);
  const dir = scratchDir(`chaos-${setting}`);
  const lab = await createLab({ hosts: [...NODES, 'client'] });
  const haIp = lab.freeIp(0);
  const allExtras = EXTRA.map((n) => lab.freeIp(n));
  const ipFile = path.join(dir, 'ha-ips');
  writeIpFile(ipFile, allExtras);
  const records: FaultRecord[] = [];
  let client: ArpClient | undefined;
  let nodes: ChaosNode[] = [];
  const unavailable: Unavailable[] = [];
  const t0 = nowNs();
  let left: string[] = [];
  let endRunNs = t0;
  try {
    nodes = startNodes(lab, cfg, NODES, { haIp, dir, ipFile });
    for (const n of nodes) if (!(await waitStarted(n, bounds.startMs))) throw new Error(`${n.host.name} did not start: ${n.ha.tail.slice(-5).join(' | ')}`);
    client = await startClient(lab.host('client'), haIp);
    const c: Ctx = { lab, nodes, client, rnd, haIp, ipFile, extras: allExtras, bounds, unavailable };
    const first = await settle(c, nowNs(), bounds.takeoverMs + bounds.settleMs);
    if (first.ms === null) throw new Error(`no single holder after start: ${JSON.stringify(first.held)}`);
    for (let k = 0; k < faults; k++) {
      const kind = pick(rnd, FAULT_KINDS);
      const rec: FaultRecord = { n: k + 1, kind, targets: [], params: {}, startMs: 0, healMs: 0, checks: {} };
      const startNs = nowNs();
      rec.startMs = Math.round(Number(startNs - t0) / 1e6);
      await runFault(c, kind, rec);
      const healNs = nowNs();
      rec.healMs = Math.round(Number(healNs - t0) / 1e6);
      const bound = kind === 'ip-file' ? bounds.ipFileMs : bounds.settleMs;
      const s = await settle(c, healNs, bound);
      rec.settleMs = s.ms === null ? null : Math.round(s.ms);
      rec.boundMs = bound;
      rec.checks.oneHolder = s.ms !== null && s.ms <= bound
        ? { ok: true, detail: `one holder ${Math.round(s.ms)} ms after the heal (bound ${bound} ms)` }
        : { ok: false, detail: s.ms === null ? `no single holder within ${bound + 2000} ms: ${JSON.stringify(s.held)}` : `one holder only ${Math.round(s.ms)} ms after the heal (bound ${bound} ms)` };
      rec.endMs = Math.round(Number(nowNs() - t0) / 1e6);
      records.push(rec);
      const bad = Object.entries(rec.checks).filter(([, v]) => !v.ok).map(([k]) => k);
      progress(NAME, `${setting} #${rec.n} ${kind} ${rec.targets.join('+')} ${JSON.stringify(rec.params)} → settled ${rec.settleMs ?? '—'} ms${bad.length ? `  VIOLATION ${bad.join(', ')}` : ''}`);
      await sleep(between(rnd, 200, 1000));
    }
  } finally {
    endRunNs = nowNs(); // the client's record ends here: the daemons are stopped below on purpose
    for (const n of nodes) { signalTree(n, 'SIGCONT'); if (n.relay) await removeRelay(lab, n).catch(() => ''); }
    await Promise.all(nodes.map((n) => n.ha.stop(bounds.stopMs)));
    const stillHeld = nodes.length ? await holdings(nodes, [haIp, ...allExtras]) : [];
    if (stillHeld.some((h) => h.length > 0)) left.push(`addresses held after every daemon stopped: ${JSON.stringify(stillHeld)}`);
    await client?.stop();
    await lab.destroy();
    left = [...left, ...(await leftovers(lab, dir))];
  }
  // The client gaps, over the whole run, with the all-down windows taken out.
  const gaps = clientGaps(client!.answers.map((a) => a.atNs).filter((x) => x <= endRunNs), unavailable, NODES.length, t0, endRunNs);
  for (const g of gaps) {
    const rec = records.find((r) => g.startMs >= r.startMs && g.startMs <= (r.endMs ?? r.healMs)) ?? records[records.length - 1];
    const ok = g.countedMs <= bounds.gapMs;
    if (rec && (!ok || !rec.checks.clientGap || g.countedMs > (rec.maxGapMs ?? 0))) {
      rec.maxGapMs = Math.round(g.countedMs);
      rec.checks.clientGap = ok && (rec.checks.clientGap?.ok ?? true)
        ? { ok: true, detail: `longest gap ${Math.round(g.countedMs)} ms (bound ${bounds.gapMs} ms)` }
        : { ok: false, detail: `a gap of ${Math.round(g.countedMs)} ms without an answer (${Math.round(g.totalMs)} ms, minus ${Math.round(g.totalMs - g.countedMs)} ms with every node down; bound ${bounds.gapMs} ms)` };
    }
  }
  const violations: { fault: number; kind: string; check: string; detail: string }[] = records.flatMap((r) => Object.entries(r.checks)
    .filter(([, v]) => !v.ok).map(([k, v]) => ({ fault: r.n, kind: r.kind as string, check: k, detail: v.detail })));
  if (left.length > 0) violations.push({ fault: 0, kind: 'end', check: 'leftovers', detail: left.join('; ') });
  const summary = `${records.length} faults, ${violations.length} violations (seed ${seed}, setting ${setting})`;
  const worst = records.filter((r) => r.settleMs !== undefined && r.boundMs).sort((a, b) => ((b.settleMs ?? 1e9) / b.boundMs!) - ((a.settleMs ?? 1e9) / a.boundMs!))[0];
  let svg: string | undefined;
  if (worst && client) {
    svg = path.join(resultsDir(), `${NAME}-${setting}-worst.svg`);
    const startNs = t0 + BigInt(Math.max(0, worst.startMs - 1000)) * 1_000_000n;
    const endNs = t0 + BigInt((worst.endMs ?? worst.healMs) + 1000) * 1_000_000n;
    writeTimelineSvg(svg, {
      title: `chaos ${setting}: fault #${worst.n} ${worst.kind} ${worst.targets.join('+')} (settled ${worst.settleMs ?? '—'} ms, bound ${worst.boundMs} ms)`,
      startNs, endNs, faultNs: t0 + BigInt(worst.startMs) * 1_000_000n, healNs: t0 + BigInt(worst.healMs) * 1_000_000n,
      faultLabel: worst.kind, healLabel: 'heal', takeoverMs: worst.settleMs ?? 0, periodMs: 10,
      nodes: nodes.map((n) => ({
        name: n.host.name, mac: n.host.mac,
        roles: n.ha.events.filter((e) => e.atNs <= endNs).map((e) => ({ atNs: e.atNs, role: e.role })),
        answers: client!.answers.filter((a) => a.mac === n.host.mac && a.atNs >= startNs && a.atNs <= endNs).map((a) => a.atNs),
      })),
    });
  }
  const file = writeResult(`${NAME}-${setting}`, {
    setting, seed, faults: records.length, vip: cfg.vip ?? {}, bounds, summary, violations, leftovers: left,
    clientProbePeriodMs: 10, records, ...(svg ? { worstSvg: path.basename(svg) } : {}),
  });
  progress(NAME, `wrote ${file}`);
  fs.rmSync(dir, { recursive: true, force: true });
  return { summary, violations: violations.length };
}

async function main(): Promise<number> {
  const args = parseBenchArgs(process.argv.slice(2), { faults: { type: 'string' }, seed: { type: 'string' }, setting: { type: 'string' } });
  if (args.help) {
    process.stdout.write('usage: node dist/bench/chaos.js [--faults 100] [--seed N] [--setting default|aggressive|both]\n');
    return 0;
  }
  if (!requireRoot(NAME)) return 2;
  const faults = Math.round(numberOption(args.values.faults, 100, 'faults'));
  const seed = args.values.seed !== undefined ? Math.round(numberOption(args.values.seed, 1, 'seed')) : Math.floor(Math.random() * 1e9);
  const which = String(args.values.setting ?? 'both');
  if (!['default', 'aggressive', 'both'].includes(which)) { process.stderr.write(`chaos: --setting must be default, aggressive or both\n`); return 2; }
  progress(NAME, `seed ${seed} (replay with --seed ${seed}), ${faults} faults per setting; context ${JSON.stringify(runContext())}`);
  let bad = 0;
  const lines: string[] = [];
  for (const s of which === 'both' ? ['default', 'aggressive'] : [which]) {
    const r = await runSetting(s, faults, seed);
    lines.push(r.summary);
    bad += r.violations;
  }
  for (const l of lines) process.stdout.write(`${l}\n`);
  return bad === 0 ? 0 : 1;
}

main().then((code) => process.exit(code), (e: unknown) => { process.stderr.write(`chaos: ${e instanceof Error ? e.stack : String(e)}\n`); process.exit(1); });
