/**
 * Layer: bench entry. `npm run bench` (root): every benchmark in bench/, quick by default,
 * `npm run bench -- --full` for the long runs. Each bench is its own
 * process (`node dist/bench/<name>.js`), builds and removes its own lab,
 * and writes bench/results/<name>.json (with --full, <name>-full.json for
 * the benches that have a long mode, so a long run and a quick one never
 * overwrite each other).
 *
 * The benchmarks are the top-level files of bench/ (this runner and the SVG
 * writer aside). Order: failover, ipset, then the others by name, idle
 * last and alone: nothing else runs during either of its windows. Running
 * its rest window alongside the others saves its minutes (quick 5, full 60),
 * but their load showed in its figures (a rest window that measured more CPU
 * than the busy-loop window after it): per-process CPU time still grows when
 * the daemons' wake-ups compete for CPUs and caches. So that is opt-in,
 * `--concurrent`, for a quick look, not for published figures; the busy
 * window runs alone either way, so no other bench is timed with a core
 * saturated.
 *
 *   npm run bench [-- --full] [-- --only failover,idle] [-- --concurrent]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import { findKeepalived, keepalivedVersion } from './lib/ha';
import { resultsDir } from './lib/results';

/**
 * The peers the benches compare against are Debian packages (keepalived,
 * iputils arping). On a fresh machine, install the missing ones with apt-get
 * so `npm run bench` compares out of the box; without apt-get the benches
 * run vigil alone and say so. (Debian's keepalived unit does not start
 * without a config file, so installing it starts nothing.)
 */
function installPeers(): void {
  const has = (bin: string) => ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((d) => fs.existsSync(path.join(d, bin)));
  const missing = [...(findKeepalived() ? [] : ['keepalived']), ...(has('arping') ? [] : ['iputils-arping'])];
  if (missing.length === 0 || !has('apt-get')) return;
  say(`installing the comparison peers: ${missing.join(', ')} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env, timeout: 300_000 });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'ignore', env, timeout: 300_000 });
  if (r.status !== 0) say(`apt-get install ${missing.join(' ')} failed (exit ${r.status}): the comparisons that need them are skipped`);
}

const FIRST = ['failover', 'ipset'];
// chaos: its own command (minutes per setting, a pass/fail verdict rather than figures).
// wakeups: a one-pair quick look for profiling (prints JSON, writes no result).
const NOT_BENCHES = new Set(['run', 'svg', 'chaos', 'wakeups']);

const t0 = Date.now();
const say = (msg: string) => process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(5)} s] ${msg}\n`);

/** The compiled benches next to this file, in running order. */
export function discoverBenches(dir = __dirname): string[] {
  const names = fs.readdirSync(dir).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3)).filter((n) => !NOT_BENCHES.has(n));
  return [...FIRST.filter((n) => names.includes(n)), ...names.filter((n) => !FIRST.includes(n)).sort()];
}

/** Whether a bench takes `--full` (its --help says so). */
function takesFull(file: string): boolean {
  const r = spawnSync(process.execPath, [file, '--help'], { encoding: 'utf8', timeout: 20_000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.includes('--full');
}

const children = new Set<ChildProcess>();

function runBench(name: string, args: string[], opts: { gate?: (child: ChildProcess) => void } = {}): { child: ChildProcess; done: Promise<number> } {
  const file = path.join(__dirname, `${name}.js`);
  const child = spawn(process.execPath, [file, ...args], { stdio: [opts.gate ? 'pipe' : 'ignore', opts.gate ? 'pipe' : 'inherit', 'inherit'] });
  children.add(child);
  if (opts.gate) opts.gate(child);
  const done = new Promise<number>((resolve) => {
    child.once('exit', (code, sig) => {
      children.delete(child);
      resolve(code ?? (sig ? 128 : 1));
    });
  });
  return { child, done };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    // --sequential is the default now; still accepted so that older command lines keep working.
    options: { full: { type: 'boolean' }, only: { type: 'string' }, concurrent: { type: 'boolean' }, sequential: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write('usage: npm run bench [-- --full] [-- --only NAME,NAME] [-- --concurrent]\n'
      + '  --full        the long runs (written as <name>-full.json beside the quick <name>.json)\n'
      + "  --concurrent  run idle's rest window alongside the other benches: saves its minutes, but their load\n"
      + '                moves its figures (not for publication); by default idle runs last, alone\n'
      + `benches: ${discoverBenches().join(', ')}\n`);
    return 0;
  }
  if (values.concurrent && values.sequential) {
    process.stderr.write('npm run bench: --concurrent and --sequential contradict each other\n');
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('npm run bench: needs root (the benches build network namespaces); try: sudo npm run bench\n');
    return 2;
  }
  const full = values.full === true;
  let benches = discoverBenches();
  if (values.only) {
    const only = values.only.split(',').map((s) => s.trim());
    const unknown = only.filter((n) => !benches.includes(n));
    if (unknown.length) {
      process.stderr.write(`npm run bench: no bench named ${unknown.join(', ')} (benches: ${benches.join(', ')})\n`);
      return 2;
    }
    benches = benches.filter((n) => only.includes(n));
  }
  say(`${full ? 'full' : 'quick'} run of ${benches.join(', ')}; results in ${resultsDir()}`);
  installPeers();
  if (!findKeepalived()) say('keepalived is not installed (apt-get install keepalived): the comparisons run vigil only');
  else say(`keepalived: ${keepalivedVersion()}`);

  const fullArgs = (name: string) => (full && takesFull(path.join(__dirname, `${name}.js`)) ? ['--full'] : []);
  const status: Array<{ name: string; code: number; seconds: number }> = [];
  const others = benches.filter((n) => n !== 'idle');
  let idle: { done: Promise<number>; child: ChildProcess; gate: Promise<void>; started: number } | undefined;

  if (benches.includes('idle') && values.concurrent) {
    let openGate: () => void = () => {};
    const gate = new Promise<void>((r) => { openGate = r; });
    const started = Date.now();
    const r = runBench('idle', [...fullArgs('idle'), '--gate'], {
      gate: (child) => {
        let buf = '';
        child.stdout!.on('data', (d: Buffer) => {
          buf += d.toString();
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line === 'IDLE-GATE') openGate();
            else process.stdout.write(`${line}\n`);
          }
        });
      },
    });
    r.done.then(() => openGate());
    idle = { ...r, gate, started };
    say('idle: rest window running alongside the other benches (--concurrent: its figures are not for publication)');
  }
  for (const name of others) {
    const started = Date.now();
    say(`${name}: starting`);
    const code = await runBench(name, fullArgs(name)).done;
    status.push({ name, code, seconds: Math.round((Date.now() - started) / 1000) });
    say(`${name}: ${code === 0 ? 'done' : `FAILED (exit ${code})`} in ${status.at(-1)!.seconds} s`);
  }
  if (idle) {
    say('idle: waiting for the rest window to end; the busy window then runs alone');
    await idle.gate;
    idle.child.stdin?.end('go\n');
    const code = await idle.done;
    status.push({ name: 'idle', code, seconds: Math.round((Date.now() - idle.started) / 1000) });
  } else if (benches.includes('idle')) {
    const started = Date.now();
    say('idle: starting, alone');
    const code = await runBench('idle', fullArgs('idle')).done;
    status.push({ name: 'idle', code, seconds: Math.round((Date.now() - started) / 1000) });
  }
  const failed = status.filter((s) => s.code !== 0);
  say(`finished in ${Math.round((Date.now() - t0) / 1000)} s: ${status.map((s) => `${s.name} ${s.code === 0 ? 'ok' : `exit ${s.code}`} (${s.seconds} s)`).join(', ')}`);
  let files: string[] = [];
  try { files = fs.readdirSync(resultsDir()).filter((f) => /\.(json|svg)$/.test(f)); } catch { /* none */ }
  say(`results: ${files.map((f) => path.join('bench', 'results', f)).join(' ')}`);
  return failed.length ? 1 : 0;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    // Each bench removes its own lab on these signals; pass them on and wait.
    for (const c of children) c.kill(sig);
    const deadline = Date.now() + 15_000;
    const wait = () => (children.size === 0 || Date.now() > deadline ? process.exit(130) : setTimeout(wait, 100));
    wait();
  });
}

main().then((code) => process.exit(code), (e) => {
  process.stderr.write(`npm run bench failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
