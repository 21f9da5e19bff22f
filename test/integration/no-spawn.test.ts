// Ground rule 3: no process spawn in the steady-state loop. The daemon runs
// alone in a fresh PID namespace; the namespace's last allocated PID
// (/proc/sys/kernel/ns_last_pid, read with shell builtins so the reader
// itself forks nothing) must not move while it probes at rest. Threads take
// PIDs too, so this also catches a thread pool growing in the steady state.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { createLab, skipUnlessRoot } from '../support/lab';
import { scratchDir, writeConfig, daemonStatus, waitFor, BIN } from '../support/vigil';

if (skipUnlessRoot(t, ['unshare', 'bash'])) process.exit(0);

t.test('a slave and a master probing at rest allocate no PID', async (t) => {
  const lab = await createLab({ hosts: ['a', 'b'] });
  const dir = scratchDir('nospawn');
  t.teardown(async () => { await lab.destroy(); fs.rmSync(dir, { recursive: true, force: true }); });
  const haIp = lab.freeIp(0);
  const watchers: { host: string; sample: () => Promise<number>; pidfile: string }[] = [];
  for (const name of ['a', 'b']) {
    const host = lab.host(name);
    const pidfile = path.join(dir, name, 'vigil.pid');
    fs.mkdirSync(path.dirname(pidfile), { recursive: true, mode: 0o755 });
    const cfg = writeConfig(dir, name, {
      pidfile, state_dir: path.join(dir, name, 'st'), log: { level: 'warn' },
      vip: { interface: host.ifname, address: `${haIp}/24`, check_interval: '100ms', failure_check_interval: '50ms', probe_timeout: '50ms', master_check_interval: '100ms' },
    });
    const script = `${process.execPath} ${BIN} run -c ${cfg} >/dev/null 2>&1 & while read -r _; do read -r v < /proc/sys/kernel/ns_last_pid; echo "$v"; done`;
    const proc = host.spawn(['unshare', '--pid', '--fork', 'bash', '-c', script]);
    const lines = readline.createInterface({ input: proc.stdout! });
    const queue: ((v: number) => void)[] = [];
    lines.on('line', (l) => queue.shift()?.(Number(l)));
    watchers.push({
      host: name, pidfile,
      sample: () => new Promise<number>((resolve) => { queue.push(resolve); proc.stdin!.write('\n'); }),
    });
  }
  await waitFor(async () => {
    const roles = await Promise.all(watchers.map(async (w) => (await daemonStatus(w.pidfile))?.roles?.vip?.role));
    return roles.includes('master') && roles.includes('slave');
  }, 15_000, 'one master, one slave');
  await new Promise((r) => setTimeout(r, 2000)); // warm-up: thread pool, first timers
  const before = await Promise.all(watchers.map((w) => w.sample()));
  await new Promise((r) => setTimeout(r, 5000)); // ~50 probes per node
  const after = await Promise.all(watchers.map((w) => w.sample()));
  for (let i = 0; i < watchers.length; i++) {
    t.equal(after[i], before[i], `node ${watchers[i]!.host}: last PID ${before[i]} -> ${after[i]} over 5 s of probing`);
  }
  const st = await daemonStatus(watchers[0]!.pidfile);
  t.ok(st?.roles?.vip?.lastProbe, 'the loop was probing meanwhile');
});
