/**
 * Layer: bench entry. `bench/group` (root): activation of a 5-member group
 * (address + 3 command members + symlink) by `vigil group activate`, against
 * Debian resource-agents' `IPaddr2 start` for the address alone, in the
 * same lab (host a acts, client c watches).
 *
 * Per trial, measured on CLOCK_MONOTONIC (the same clock in every
 * namespace) from the moment the activating process is spawned:
 *
 * - first_answer_ms: until the client's first ARP answer for the address
 *   (a prober in c asks every 10 ms on its own socket);
 * - all_running_ms (vigil): until `vigil group activate` exits 0, which it
 *   does after every member started and its monitor said running;
 * - wall_ms (IPaddr2): until `IPaddr2 start` exits;
 * - vigil_address_only: `vigil group activate` of a group holding the
 *   address member alone (IPaddr2's job), first answer and exit.
 *
 * vigil's figure includes its preflight (the RFC 5227 probe of the address:
 * probe.count × probe.interval + probe.timeout, 400 ms by default) and a
 * Node.js process start; IPaddr2 adds the address without probing it.
 * Between trials both are stopped again (`deactivate`, `IPaddr2 stop`).
 * The bench installs resource-agents with apt-get when it is missing.
 * Output: bench/results/group.json (--full: group-full.json).
 *
 *   node dist/bench/group.js [--full] [--n N]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { createLab, type LabHost } from '../test/support/lab';
import { BIN, scratchDir, writeConfig } from '../test/support/vigil';
import { summarizeReported } from './lib/stats';
import { writeResult } from './lib/results';
import { parseBenchArgs, numberOption, requireRoot, progress, sleep, r1 } from './lib/common';

const log = (msg: string) => progress('group', msg);
const IPADDR2 = '/usr/lib/ocf/resource.d/heartbeat/IPaddr2';
const PROBER = path.join(__dirname, '..', 'src', 'net', 'arp', 'prober.js');

/** resource-agents is the comparison peer: install it like bench/run.ts installs its peers. */
function installPeer(): boolean {
  if (fs.existsSync(IPADDR2)) return true;
  log('installing the comparison peer: resource-agents (apt-get)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env, timeout: 300_000 });
  spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'resource-agents'], { stdio: 'ignore', env, timeout: 300_000 });
  return fs.existsSync(IPADDR2);
}

/**
 * A client in `c` that asks for `ip` every 10 ms and prints the monotonic ns
 * of the first answer. It asks as a client does, an ordinary who-has from
 * its own address: an RFC 5227 probe (sender 0.0.0.0) for the same address
 * is, to vigil's preflight, another host probing for it at the same time (a
 * conflict), which refused 2 of 20 trials of an earlier run (exit 3).
 */
function startClient(c: LabHost, ip: string): { proc: ChildProcess; answer: Promise<bigint | undefined> } {
  const js = `const { ArpProber } = require(${JSON.stringify(PROBER)});
const p = ArpProber.open(${JSON.stringify(c.ifname)});
(async () => { for (;;) { const r = await p.probe(${JSON.stringify(ip)}, { count: 1, timeoutMs: 10, source: 'request', senderIp: ${JSON.stringify(c.ip)} });
  if (r.status === 'answered') { process.stdout.write('ANSWER ' + process.hrtime.bigint() + '\\n'); process.exit(0); } } })();`;
  const proc = c.spawn([process.execPath, '-e', js], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const answer = new Promise<bigint | undefined>((resolve) => {
    proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); const m = /ANSWER (\d+)/.exec(out); if (m) resolve(BigInt(m[1]!)); });
    proc.on('exit', () => resolve(undefined));
  });
  return { proc, answer };
}

/** Run argv in `host`, returning the monotonic ns at its exit and its exit code. */
function runTimed(host: LabHost, argv: string[], env?: NodeJS.ProcessEnv): Promise<{ endNs: bigint; code: number | null; out: string }> {
  const p = host.spawn(argv, { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) });
  let out = '';
  p.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  p.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
  return new Promise((resolve) => p.on('exit', (code) => resolve({ endNs: process.hrtime.bigint(), code, out })));
}

const ms = (a: bigint, b: bigint) => Number(b - a) / 1e6;

async function main(): Promise<void> {
  const args = parseBenchArgs(process.argv.slice(2), { n: { type: 'string' } });
  if (args.help) { process.stdout.write('usage: node dist/bench/group.js [--full] [--n N]\n(takes --full)\n'); return; }
  if (!requireRoot('group')) return;
  const n = numberOption(args.values.n, args.full ? 30 : 8, '--n');
  const haveIpaddr2 = installPeer();
  if (!haveIpaddr2) log('resource-agents is not installed: the comparison runs vigil only');
  const lab = await createLab({ hosts: ['a', 'c'] });
  const dir = scratchDir('bench-group');
  try {
    const [a, c] = [lab.host('a'), lab.host('c')];
    const vip = lab.freeIp(0);
    const marks = path.join(dir, 'marks');
    fs.mkdirSync(marks);
    fs.writeFileSync(path.join(dir, 'data'), 'local\n');
    const cmd = (name: string) => ({ type: 'command', name, start: `touch ${marks}/${name}`, stop: `rm -f ${marks}/${name}`, monitor: `test -f ${marks}/${name}` });
    const config = writeConfig(dir, 'vigil', { group: { g: { state_dir: path.join(dir, 'state'), members: [
      { type: 'address', name: 'vip', address: `${vip}/24`, interface: a.ifname },
      cmd('db'), cmd('app'), cmd('web'),
      { type: 'symlink', name: 'data', link: path.join(dir, 'data'), target: path.join(dir, 'shared-data') },
    ] } } });
    // The address alone, as IPaddr2 is measured: the same process start and preflight, one member.
    const single = writeConfig(dir, 'single', { group: { v: { state_dir: path.join(dir, 'state'), members: [
      { type: 'address', name: 'vip', address: `${vip}/24`, interface: a.ifname },
    ] } } });
    const vigil = { first_answer_ms: [] as number[], all_running_ms: [] as number[], failures: 0 };
    const solo = { first_answer_ms: [] as number[], all_running_ms: [] as number[], failures: 0 };
    const loadStart = os.loadavg();
    const ocf = { first_answer_ms: [] as number[], wall_ms: [] as number[], failures: 0 };
    const ocfEnv = { ...process.env, OCF_ROOT: '/usr/lib/ocf', OCF_RESOURCE_INSTANCE: 'bench-vip', OCF_RESKEY_ip: vip, OCF_RESKEY_cidr_netmask: '24', OCF_RESKEY_nic: a.ifname };
    for (let i = 0; i < n; i++) {
      // vigil: the whole group.
      await c.exec(['ip', 'neigh', 'flush', 'dev', c.ifname]);
      const cl = startClient(c, vip);
      await sleep(200); // the client is asking before the activation starts
      const t0 = process.hrtime.bigint();
      const r = await runTimed(a, [process.execPath, BIN, 'group', 'activate', 'g', '-c', config]);
      const ans = await Promise.race([cl.answer, sleep(5000).then(() => undefined)]);
      cl.proc.kill('SIGKILL');
      if (r.code === 0 && ans !== undefined) {
        vigil.first_answer_ms.push(r1(ms(t0, ans)));
        vigil.all_running_ms.push(r1(ms(t0, r.endNs)));
      } else { vigil.failures++; log(`vigil trial ${i + 1}: exit ${r.code}, answer ${ans !== undefined}: ${r.out.slice(-300)}`); }
      const off = await runTimed(a, [process.execPath, BIN, 'group', 'deactivate', 'g', '-c', config]);
      if (off.code !== 0) throw new Error(`deactivate failed: ${off.out.slice(-300)}`);
      // vigil: the address member alone.
      await c.exec(['ip', 'neigh', 'flush', 'dev', c.ifname]);
      const cl3 = startClient(c, vip);
      await sleep(200);
      const t3 = process.hrtime.bigint();
      const r3 = await runTimed(a, [process.execPath, BIN, 'group', 'activate', 'v', '-c', single]);
      const ans3 = await Promise.race([cl3.answer, sleep(5000).then(() => undefined)]);
      cl3.proc.kill('SIGKILL');
      if (r3.code === 0 && ans3 !== undefined) {
        solo.first_answer_ms.push(r1(ms(t3, ans3)));
        solo.all_running_ms.push(r1(ms(t3, r3.endNs)));
      } else { solo.failures++; log(`vigil address-only trial ${i + 1}: exit ${r3.code}, answer ${ans3 !== undefined}: ${r3.out.slice(-300)}`); }
      const off3 = await runTimed(a, [process.execPath, BIN, 'group', 'deactivate', 'v', '-c', single]);
      if (off3.code !== 0) throw new Error(`deactivate (address only) failed: ${off3.out.slice(-300)}`);
      if (!haveIpaddr2) continue;
      // IPaddr2: the address alone.
      await c.exec(['ip', 'neigh', 'flush', 'dev', c.ifname]);
      const cl2 = startClient(c, vip);
      await sleep(200);
      const t1 = process.hrtime.bigint();
      const r2 = await runTimed(a, [IPADDR2, 'start'], ocfEnv);
      const ans2 = await Promise.race([cl2.answer, sleep(5000).then(() => undefined)]);
      cl2.proc.kill('SIGKILL');
      if (r2.code === 0 && ans2 !== undefined) {
        ocf.first_answer_ms.push(r1(ms(t1, ans2)));
        ocf.wall_ms.push(r1(ms(t1, r2.endNs)));
      } else { ocf.failures++; log(`IPaddr2 trial ${i + 1}: exit ${r2.code}, answer ${ans2 !== undefined}: ${r2.out.slice(-300)}`); }
      await runTimed(a, [IPADDR2, 'stop'], ocfEnv);
      await sleep(300); // IPaddr2's background send_arp ends
      log(`trial ${i + 1}/${n}: vigil first answer ${vigil.first_answer_ms.at(-1)} ms, all running ${vigil.all_running_ms.at(-1)} ms; address only ${solo.first_answer_ms.at(-1)} ms; IPaddr2 first answer ${ocf.first_answer_ms.at(-1)} ms`);
    }
    const file = writeResult(args.full ? 'group-full' : 'group', {
      command: `node dist/bench/group.js${args.full ? ' --full' : ''} --n ${n}`,
      group: 'address + 3 command members + symlink; defaults (probe 3 × 100 ms + 200 ms, arp 5 × 200 ms)',
      vigil: { first_answer_ms: summarizeReported(vigil.first_answer_ms), all_running_ms: summarizeReported(vigil.all_running_ms), failures: vigil.failures,
        first_answer_samples_ms: vigil.first_answer_ms, all_running_samples_ms: vigil.all_running_ms },
      vigil_address_only: { first_answer_ms: summarizeReported(solo.first_answer_ms), exit_ms: summarizeReported(solo.all_running_ms), failures: solo.failures,
        first_answer_samples_ms: solo.first_answer_ms, exit_samples_ms: solo.all_running_ms },
      // The machine is shared: its load during the run says how far the figures are from an idle host's.
      loadavg_1_5_15: { start: loadStart.map((x) => r1(x)), end: os.loadavg().map((x) => r1(x)) },
      ipaddr2: haveIpaddr2 ? { first_answer_ms: summarizeReported(ocf.first_answer_ms), wall_ms: summarizeReported(ocf.wall_ms), failures: ocf.failures,
        first_answer_samples_ms: ocf.first_answer_ms, wall_samples_ms: ocf.wall_ms } : null,
    });
    log(`wrote ${file}`);
  } finally {
    await lab.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => { process.stderr.write(`bench group: ${String(e instanceof Error ? e.stack : e)}\n`); process.exit(1); });
