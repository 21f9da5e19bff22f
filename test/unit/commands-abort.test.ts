// runCommand's abort signal: the whole process group goes (TERM, then KILL after the grace),
// the run reports aborted and not ok; an abort after the run ended changes nothing.
import t from 'tap';
import * as fs from 'node:fs';
import { runCommand } from '../../src/actions/commands';

/** Alive and not a zombie (a killed orphan may wait a moment to be reaped). */
const alive = (pid: number) => {
  try { return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
};

t.test('abort kills the group, grandchildren included, and reports aborted', async (t) => {
  const ac = new AbortController();
  // The grandchild (sleep) prints its pid, then the leader waits on it.
  const run = runCommand(['/bin/sh', '-c', 'sleep 30 & echo $!; wait'], { timeoutMs: 30_000, killGraceMs: 300, signal: ac.signal });
  await new Promise((r) => setTimeout(r, 300));
  const started = Date.now();
  ac.abort();
  const r = await run;
  t.ok(Date.now() - started < 5000, 'ended within the grace, not at the 30 s timeout');
  t.equal(r.aborted, true);
  t.equal(r.timedOut, false);
  t.equal(r.ok, false);
  const grandchild = Number(r.stdout.trim());
  t.ok(grandchild > 0, 'the grandchild printed its pid');
  for (let i = 0; i < 20 && alive(grandchild); i++) await new Promise((r) => setTimeout(r, 50));
  t.notOk(alive(grandchild), 'the grandchild was killed with the group');
});

t.test('a TERM-ignoring command is killed after the grace', async (t) => {
  const ac = new AbortController();
  const run = runCommand(['/bin/sh', '-c', "trap '' TERM; while :; do sleep 0.05; done"], { timeoutMs: 30_000, killGraceMs: 300, signal: ac.signal });
  await new Promise((r) => setTimeout(r, 200));
  ac.abort();
  const r = await run;
  t.equal(r.aborted, true);
  t.equal(r.signal, 'SIGKILL');
});

t.test('already aborted: the command is stopped at once; abort after the end: no effect', async (t) => {
  const ac = new AbortController();
  ac.abort();
  const r = await runCommand(['/bin/sleep', '30'], { timeoutMs: 30_000, killGraceMs: 300, signal: ac.signal });
  t.equal(r.aborted, true);
  const ac2 = new AbortController();
  const ok = await runCommand(['/bin/true'], { timeoutMs: 5000, signal: ac2.signal });
  ac2.abort();
  t.equal(ok.ok, true);
  t.notOk(ok.aborted);
});
