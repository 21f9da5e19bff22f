// The promote role's scheduler as processes against the Consul TEST DOUBLE on
// loopback, for what needs no sites: a SIGKILL between two promote steps whose
// verify then fails → demote and stop, p1 never repeated; the I/O's step record
// under an invalidated session → 409; unsafe timings and two-site auto → exit 2
// with one line. The three-site versions (run-once busy, SIGKILL with and
// without verify, the stale holder's delayed write): promote-lab-*.test.ts.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { BIN, runCli, scratchDir, waitFor, writeConfig } from '../support/vigil';
import { doubleRequest, startDoubleForTest, type AgentConfigFile } from '../support/consul-double';
import { realPromoteIo } from '../../src/roles/promote/io';
import { ConsulTxnConflict } from '../../src/consul/client';
import type { PromoteConfig } from '../../src/roles/promote/config';

// session_ttl_min lowered: the double accepts the 10 s TTL vigil's config allows at minimum.
const DOUBLE: AgentConfigFile = { node_name: 'w', retry_join: ['10.0.0.5'], session_ttl_min: '1s' };
const TTL_MS = 10_000;
const RENEW_MS = 2000;

function section(url: string, dir: string, steps: string[][]): Record<string, unknown> {
  return {
    node: 'b',
    pidfile: path.join(dir, 'vigil.pid'),
    state_dir: dir,
    promote: {
      name: 'mail', site: 'b', peer: 'a', mode: 'auto', witness_sites: 3,
      consul: { url }, ttl: `${TTL_MS / 1000}s`, lock_delay: '15s', renew_interval: `${RENEW_MS / 1000}s`, retries: 1, demote_timeout: '3s',
      check_interval: '1s', journal_dir: path.join(dir, 'journal'),
      promote_steps: steps.map((argv, i) => ({ name: `p${i + 1}`, command: argv, timeout: '20s' })),
      demote_steps: [{ name: 'd1', command: ['/bin/sh', '-c', `echo "d1 $VIGIL_LEASE_INDEX" >> ${dir}/markers`], timeout: '2s' }],
    },
  };
}

/** A marker-writing stand-in for a promote command: appends "NAME LOCKINDEX" to the markers file, after an optional sleep. */
const marker = (dir: string, name: string, sleepS = 0): string[] => ['/bin/sh', '-c', `${sleepS > 0 ? `sleep ${sleepS}; ` : ''}echo "${name} $VIGIL_LEASE_INDEX" >> ${dir}/markers`];
const markers = (dir: string): string[] => { try { return fs.readFileSync(path.join(dir, 'markers'), 'utf8').trim().split('\n').filter(Boolean); } catch { return []; } };

function runOnce(config: string): { proc: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, [BIN, 'promote', 'run-once', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  proc.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
  return { proc, out: () => out, exited: new Promise((r) => proc.on('exit', (code) => r(code))) };
}
const tail = (s: string) => s.trim().split('\n').slice(-12).join('\n');
/** True once the journal marks promote step `name` started (the crash point between two steps). */
const started = (dir: string, name: string): boolean => {
  try {
    const j = JSON.parse(fs.readFileSync(path.join(dir, 'journal', 'mail.json'), 'utf8')) as { steps: { name: string; status: string }[] };
    return j.steps.some((s) => s.name === name && s.status === 'started');
  } catch { return false; }
};

t.test('SIGKILL between steps with a verify: the restart verifies, continues, and never repeats p1', async (t) => {
  const d = await startDoubleForTest(t, DOUBLE);
  const dir = scratchDir('promote-verify');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const raw = section(d.url, dir, [marker(dir, 'p1'), marker(dir, 'p2', 4), marker(dir, 'p3')]) as any;
  // p2's verify: did p2 write its marker?
  raw.promote.promote_steps[1].verify = ['/bin/sh', '-c', `grep -q '^p2 ' ${dir}/markers`];
  const cfg = writeConfig(dir, 'vigil', raw);
  const first = runOnce(cfg);
  t.teardown(() => { first.proc.kill('SIGKILL'); });
  await waitFor(() => markers(dir).some((m) => m.startsWith('p1 ')), 3000 + TTL_MS, () => `p1's marker; run-once said:\n${tail(first.out())}`);
  await waitFor(() => started(dir, 'p2'), 5000, () => `the journal marking p2 started; run-once said:\n${tail(first.out())}`);
  first.proc.kill('SIGKILL');
  await first.exited;
  // The restart adopts the session (alive for TTL), verifies p2 (not done: its marker is missing) → failed → demote → stopped.
  const again = runOnce(cfg);
  t.teardown(() => { again.proc.kill('SIGKILL'); });
  // Bounded: verify (≤ the step timeout) + demote + release; a run that kept promoting would hold the lease forever.
  const code = await Promise.race([again.exited, new Promise<string>((r) => setTimeout(() => r('still running after 60 s'), 60_000))]);
  again.proc.kill('SIGKILL');
  t.equal(code, 1, `verify failed: demote, then stopped; said:\n${tail(again.out())}`);
  t.same(markers(dir).map((m) => m.split(' ')[0]), ['p1', 'd1'], 'p1 once, p2 never re-run blindly, demoted');
});

t.test("a stale holder's delayed step record is refused with 409", async (t) => {
  const d = await startDoubleForTest(t, DOUBLE);
  const cfg = {
    name: 'mail', site: 'b', peer: 'a', consul: { url: d.url, timeoutMs: 2000 }, ttlMs: TTL_MS, lockDelayMs: 15_000,
  } as unknown as PromoteConfig;
  const io = realPromoteIo(cfg);
  const hold = await io.acquire();
  t.ok(hold, 'acquired');
  await io.recordStep(hold!, { step: 'p1', status: 'started' });
  // The session is invalidated (as the servers do after 2 × TTL without renewal).
  const r = await doubleRequest(d.url, 'PUT', `/v1/session/destroy/${hold!.session}`);
  t.equal(r.status, 200);
  await t.rejects(io.recordStep(hold!, { step: 'p2', status: 'started' }), ConsulTxnConflict, 'the late write fails with 409');
});

t.test('unsafe timings and two-site auto: exit 2 with one line naming the key', async (t) => {
  const dir = scratchDir('promote-cfg');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const base = section('http://127.0.0.1:8500', dir, [['/bin/true']]) as any;
  const unsafe = writeConfig(dir, 'unsafe', { ...base, promote: { ...base.promote, renew_interval: '4s', retries: 2, demote_timeout: '3s' } });
  const twoSite = writeConfig(dir, 'two', { ...base, promote: { ...base.promote, witness_sites: 2 } });
  for (const [file, want] of [[unsafe, /promote\.renew_interval: renew_interval × \(retries \+ 1\) \+ demote_timeout = 4s × 3 \+ 3s = 15s is not below ttl 10s/],
    [twoSite, /promote\.mode: 'auto' with witness_sites 2/]] as const) {
    for (const args of [['check-config', '-c', file], ['promote', 'run-once', '-c', file]]) {
      const r = await runCli(args);
      t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
      t.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line`);
      t.match(r.stderr, want);
    }
  }
});
