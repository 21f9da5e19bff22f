// monitor, scenario 5: the monitor that claimed an incident is SIGKILLed mid-fence (its fence command
// hangs) and its host goes silent. Its session, bound to its own serfHealth, is invalidated; after
// lock-delay another monitor takes the incident over and fences, and the host is powered off once.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { skipUnlessRoot } from '../support/lab';
import { daemonStatus, waitFor } from '../support/vigil';
import { monitorLab, SUSPICION_MS, tail } from '../support/monitor-lab';

if (skipUnlessRoot(t, ['ipmi_sim', 'ipmitool'])) process.exit(0);

const LOCK_DELAY_MS = 15_000;

t.test('claimer killed after its claim: another monitor takes over after lock-delay, one power-off', async (t) => {
  const L = await monitorLab(t, 'mon-takeover', ['h1', 'h2', 'h3'], ['m1', 'm2']);
  const runs = path.join(L.dir, 'fence-runs');
  const offs = path.join(L.dir, 'power-offs');
  // Stand-in fence command: the first run hangs (the claimer dies in it); a later run powers the
  // host off by setting its simulator's power file, which the BMC then reads back as off.
  const script = [
    `n=$(cat ${runs} 2>/dev/null || echo 0); echo $((n+1)) > ${runs}`,
    'if [ "$n" = 0 ]; then exec sleep 600; fi',
    `echo off >> ${offs}; echo 0 > ${L.dir}/sim-$1/power`,
  ].join('\n');
  const section = L.monitorSection({ fence: { method: 'command', command: ['/bin/sh', '-c', script, 'fence-host'], power_timeout: '8s', power_wait: '500ms' }, lock_delay: `${LOCK_DELAY_MS / 1000}s`,
    // `fence` (the host's method, here command) rather than the default row's `ipmi` (a hard BMC power-off).
    matrix: [
      { when: { mgmt: 'up', tenant: 'up' }, actions: [] },
      { when: { mgmt: 'up', tenant: 'down' }, actions: ['migrate'] },
      { when: { mgmt: 'down', tenant: 'up' }, actions: ['email'] },
      { when: { mgmt: 'down', tenant: 'down' }, actions: ['fence', 'evacuate'] },
    ] });
  const ms = ['m1', 'm2'].map((m) => ({ name: m, ...L.startMonitor(m, section) }));
  const logs = () => ms.map((m) => `--- ${m.name}\n${tail(m.daemon)}`).join('\n');
  await waitFor(async () => {
    const st = await Promise.all(ms.map((m) => daemonStatus(m.pidfile)));
    return st.every((s) => s?.roles?.monitor?.hosts?.every((h: any) => h.samples.mgmt?.state === 'up'));
  }, 20_000, () => `monitors seeing the hosts up; logs:\n${logs()}`);
  await L.cut('h1');
  const claimer = await waitFor(() => ms.find((m) => /"msg":"fencing"/.test(m.daemon.logs())), 2 * (SUSPICION_MS + 2000) + 5000, () => `a monitor fencing h1; logs:\n${logs()}`);
  await waitFor(() => fs.existsSync(runs), 5000, () => `the fence command started; logs:\n${logs()}`);
  claimer.daemon.proc.kill('SIGKILL');
  L.silence(claimer.name);
  const killed = Date.now();
  const other = ms.find((m) => m !== claimer)!;
  const boundMs = SUSPICION_MS + LOCK_DELAY_MS + 2 * 1000 + 8000 + 10_000;
  await waitFor(async () => (await daemonStatus(other.pidfile))?.roles?.monitor?.hosts?.find((h: any) => h.host === 'h1')?.phase === 'fenced', boundMs,
    () => `${other.name} taking over and fencing h1 within ${boundMs} ms of the kill; logs:\n${logs()}`);
  const after = Date.now() - killed;
  t.ok(after >= LOCK_DELAY_MS - 1000, `taken over only after lock-delay (${LOCK_DELAY_MS} ms): ${after} ms after the kill`);
  t.equal(L.sims.h1!.power(), '0', 'h1 off, read back by the BMC');
  t.equal(fs.readFileSync(offs, 'utf8').trim().split('\n').length, 1, 'powered off exactly once');
  t.equal(fs.readFileSync(runs, 'utf8').trim(), '2', 'two fence runs: the dead claimer\'s (hung, never powered off) and the takeover\'s');
  t.match(other.daemon.logs(), /another monitor holds this host's incident/, `${other.name} observed the claim first`);
});
