// runCommand ends when the command's leader exits, not when every holder of
// its output pipes does: a service started in the background by on_master
// inherits the pipes, and must neither keep the run pending past its timeout
// nor get the run reported as timed out (and the service killed).
import t from 'tap';
import * as fs from 'node:fs';
import { runCommand } from '../../src/actions/commands';

/** Running (a zombie waiting for its reaper counts as gone). */
const alive = (pid: number): boolean => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
};
const kill = (pid: number): void => {
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
};
/** `p`, or 'pending' if it has not settled within `ms`. */
const within = <T>(p: Promise<T>, ms: number): Promise<T | 'pending'> => {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<'pending'>((r) => { timer = setTimeout(() => r('pending'), ms); })]).finally(() => clearTimeout(timer));
};

t.test('a setsid child holding stdout does not keep the run pending past the timeout', async (t) => {
  // setsid takes the child out of the process group, so the timeout's group
  // kill cannot reach it; it keeps stdout open for 8 s.
  const run = runCommand('setsid sleep 8 & echo $!', { timeoutMs: 500, killGraceMs: 200 });
  const r = await within(run, 4000);
  void run.then((x) => kill(Number(x.stdout.trim())));
  if (r === 'pending') {
    t.fail('runCommand still pending 4 s after a 500 ms timeout');
    return;
  }
  kill(Number(r.stdout.trim()));
  t.equal(r.code, 0, 'the shell exited 0');
  t.equal(r.timedOut, false, 'not a timeout: the command itself finished at once');
  t.equal(r.ok, true);
  t.match(r.stdout, /^\d+\n$/, 'its output was captured');
  t.ok(r.durationMs < 2000, `ended ${Math.round(r.durationMs)} ms after start`);
});

t.test('a leader that exits 0 at once leaves its background child running: ok, not timed out', async (t) => {
  const r = await runCommand('sleep 30 & echo $!; echo started', { timeoutMs: 1000, killGraceMs: 200 });
  const pid = Number(r.stdout.split('\n')[0]);
  t.teardown(() => kill(pid));
  t.equal(r.code, 0);
  t.equal(r.timedOut, false, 'not reported as timed out');
  t.equal(r.ok, true, 'reported as done');
  t.match(r.stdout, /started/, 'output before the exit captured');
  t.ok(r.durationMs < 1000, `ended before the timeout (${Math.round(r.durationMs)} ms)`);
  await new Promise((res) => setTimeout(res, 1500)); // past the timeout and its grace
  t.ok(alive(pid), 'the background child was not killed');
});

t.test('a command that outlives its timeout is still killed, with its group', async (t) => {
  const r = await within(runCommand('sleep 30 & echo $!; sleep 30', { timeoutMs: 300, killGraceMs: 200 }), 5000);
  if (r === 'pending') { t.fail('still pending 5 s after a 300 ms timeout'); return; }
  const pid = Number(r.stdout.split('\n')[0]);
  t.equal(r.timedOut, true);
  t.equal(r.ok, false);
  await new Promise((res) => setTimeout(res, 100));
  t.notOk(alive(pid), 'the background child in its group was killed too');
  kill(pid);
});

t.test('a leader that ignores TERM is killed after the grace, even with a setsid child holding stdout', async (t) => {
  const r = await within(runCommand("trap '' TERM; setsid sleep 8 & echo $!; while :; do sleep 0.05; done", { timeoutMs: 300, killGraceMs: 300 }), 5000);
  if (r === 'pending') { t.fail('still pending 5 s after a 300 ms timeout and 300 ms grace'); return; }
  kill(Number(r.stdout.split('\n')[0]));
  t.equal(r.timedOut, true);
  t.equal(r.signal, 'SIGKILL', 'the leader went with the KILL after the grace');
  t.ok(r.durationMs < 3000, `ended ${Math.round(r.durationMs)} ms after start`);
});

t.test('an ordinary command: exit code and both outputs', async (t) => {
  const r = await runCommand('echo out; echo err >&2; exit 3', { timeoutMs: 5000 });
  t.equal(r.code, 3);
  t.equal(r.ok, false);
  t.equal(r.timedOut, false);
  t.equal(r.stdout, 'out\n');
  t.equal(r.stderr, 'err\n');
  const big = await runCommand(['/bin/sh', '-c', 'i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done'], { timeoutMs: 5000, maxOutputBytes: 1 << 20 });
  t.equal(big.stdout.split('\n').filter(Boolean).length, 2000, 'all output of a busy writer kept');
});
