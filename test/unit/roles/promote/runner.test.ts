// The promote runner with fake I/O and an in-memory journal: the journal marks a step started before it runs,
// a refused step record (409) runs nothing and demotes, a stop while promoted demotes and releases.
import t from 'tap';
import { ConsulTxnConflict } from '../../../../src/consul/client';
import { PromoteRunner, type JournalStore } from '../../../../src/roles/promote/runner';
import type { PromoteIo } from '../../../../src/roles/promote/io';
import type { Journal } from '../../../../src/roles/promote/journal';
import { rootLog } from '../../../../src/log';
import { cfgOf } from './fixtures';

const FAST = { checkIntervalMs: 50, renewIntervalMs: 50, retries: 2, demoteTimeoutMs: 500, ttlMs: 10_000 };

function fakes(opts: { refuseRecord?: boolean } = {}) {
  const calls: string[] = [];
  const journals: Journal[] = [];
  let stored: Journal | undefined;
  const store: JournalStore = { read: () => stored, write: (j) => { stored = j; journals.push(JSON.parse(JSON.stringify(j))); }, grant: () => undefined };
  const io: PromoteIo = {
    now: () => performance.now(),
    probe: async (p) => ({ probe: p.kind, result: 'down', detail: 'fake' }),
    witness: async () => true,
    leaseHolder: async () => '',
    kvValue: async () => undefined,
    acquire: async () => { calls.push('acquire'); return { session: 's1', lockIndex: 4 }; },
    adopt: async () => undefined,
    renew: async () => true,
    release: async () => { calls.push('release'); },
    recordStep: async (_h, r) => {
      calls.push(`record:${r.step}:${r.status}`);
      if (opts.refuseRecord) throw new ConsulTxnConflict([{ opIndex: 0, what: 'session check failed' }] as never);
    },
    runStep: async (s, env) => {
      // The journal already says started when the command runs.
      const mark = stored?.steps.find((x) => x.name === s.name);
      calls.push(`run:${s.name}:${mark?.status}:${env.VIGIL_LEASE_INDEX}`);
      return { ok: true };
    },
    fence: async () => ({ confirmed: true, evidence: 'fake' }),
  };
  return { calls, journals, store, io };
}

const log = rootLog().child({ module: 'test' });
log.level = 'silent';

t.test('steps run once each, marked started before they run, with the lease index in their env', async (t) => {
  const f = fakes();
  const r = new PromoteRunner(cfgOf(FAST), f.io, f.store, log);
  await r.start();
  for (let i = 0; i < 100 && r.state().phase !== 'promoted'; i++) await new Promise((res) => setTimeout(res, 20));
  t.equal(r.state().phase, 'promoted');
  t.same(f.calls.filter((c) => c.startsWith('run:')), ['run:p1:started:4', 'run:p2:started:4']);
  t.same(f.calls.filter((c) => c.startsWith('record:')), ['record:p1:started', 'record:p1:done', 'record:p2:started', 'record:p2:done']);
  r.stop();
  t.equal(await r.done, 0);
  t.same(f.calls.filter((c) => c.startsWith('run:d1') || c === 'release').map((c) => c.split(':').slice(0, 2).join(':')), ['run:d1', 'release'], 'stop demotes, then releases');
  t.equal(f.journals.at(-1)!.phase, 'standby');
});

t.test('a refused step record (409): the step does not run, the site demotes', async (t) => {
  const f = fakes({ refuseRecord: true });
  const r = new PromoteRunner(cfgOf(FAST), f.io, f.store, log);
  await r.start();
  for (let i = 0; i < 100 && !f.calls.includes('release'); i++) await new Promise((res) => setTimeout(res, 20));
  t.notOk(f.calls.some((c) => c.startsWith('run:p')), 'no promote step ran');
  t.ok(f.calls.includes('release'));
  t.match(f.journals.map((j) => j.reason ?? '').join(' '), /409/);
  r.stop();
  await r.done;
});

t.test('a promote step still running when the site demotes is interrupted, so the demote steps run at once', async (t) => {
  const f = fakes();
  let renewOk = true;
  f.io.renew = async () => renewOk;
  const seen: { name: string; aborted?: boolean }[] = [];
  f.io.runStep = async (s, _env, timeoutMs, _argv, signal) => {
    const entry: { name: string; aborted?: boolean } = { name: s.name };
    seen.push(entry);
    if (s.name !== 'p1') return { ok: true };
    // p1 "hangs" until its timeout unless it is interrupted.
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ ok: false, error: `timed out after ${timeoutMs} ms` }), timeoutMs);
      signal?.addEventListener('abort', () => { clearTimeout(timer); entry.aborted = true; resolve({ ok: false, error: 'interrupted: this site is demoting' }); });
    });
  };
  // The witness is slow to answer (as under a cut, up to consul.timeout): the demote must not wait for the record.
  const record = f.io.recordStep;
  f.io.recordStep = async (h, rec) => { await record(h, rec); if (rec.status === 'failed') await new Promise((res) => setTimeout(res, 3000)); };
  const cfg = cfgOf(FAST);
  (cfg.promoteSteps[0] as { timeoutMs: number }).timeoutMs = 60_000;
  const r = new PromoteRunner(cfg, f.io, f.store, log);
  await r.start();
  for (let i = 0; i < 100 && !seen.some((s) => s.name === 'p1'); i++) await new Promise((res) => setTimeout(res, 20));
  const lostAt = performance.now();
  renewOk = false; // the session is gone: the next renewal says lost
  for (let i = 0; i < 200 && !f.calls.includes('release'); i++) await new Promise((res) => setTimeout(res, 20));
  t.ok(f.calls.includes('release'), 'demoted and released');
  t.ok(performance.now() - lostAt < 2500, "well before p1's 60 s timeout, and not held back by the slow record");
  t.same(seen.map((s) => `${s.name}${s.aborted ? ':aborted' : ''}`), ['p1:aborted', 'd1'], 'p1 interrupted, p2 never ran, d1 ran');
  t.ok(f.calls.includes('record:p1:failed'), "the interrupted step's record is still sent (not awaited)");
  r.stop();
  await r.done;
});
