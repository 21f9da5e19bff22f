// monitor, scenario 4: the BMC reports power off, but the host still answers ARP (its heartbeats
// stopped, its link did not): with silence_check the incident is aborted with an alarm, never fenced.
import t from 'tap';
import { skipUnlessRoot } from '../support/lab';
import { daemonStatus, waitFor } from '../support/vigil';
import { monitorLab, SUSPICION_MS, tail } from '../support/monitor-lab';

if (skipUnlessRoot(t, ['ipmi_sim', 'ipmitool'])) process.exit(0);

t.test('power reported off but the host still answers ARP: aborted', async (t) => {
  const L = await monitorLab(t, 'mon-arp', ['h1', 'h2', 'h3'], ['m1']);
  const m = L.startMonitor('m1', L.monitorSection({ fence: { power_timeout: '8s', power_wait: '500ms', silence_check: true } }));
  const logs = () => tail(m.daemon);
  await waitFor(async () => (await daemonStatus(m.pidfile))?.roles?.monitor?.hosts?.filter((h: any) => h.samples.tenant?.state === 'up').length === 3, 20_000, () => `hosts up; logs:\n${logs()}`);
  L.silence('h1');
  const boundMs = 2 * (SUSPICION_MS + 2 * 1000 + 8000 + 3000);
  const h1 = await waitFor(async () => (await daemonStatus(m.pidfile))?.roles?.monitor?.hosts?.find((h: any) => h.host === 'h1' && h.phase === 'aborted'), boundMs,
    () => `h1 aborted within ${boundMs} ms; logs:\n${logs()}`);
  t.equal(L.sims.h1!.power(), '0', 'the BMC was told off (and says so)');
  t.match(h1.lastAlarm, /^still-answers:.*h1|^still-answers:/, 'alarm: still answers');
  t.match(m.daemon.logs(), /"code":"EMONITORSTILLANSWERS"/, 'error line with the stable code');
  t.notMatch(m.daemon.logs(), /host fenced/, 'never reported fenced');
});
