// monitor, fence method `redfish` through a running `vigil run` in the three-bridge lab: h1 is cut on
// every network, the monitor fences it with ComputerSystem.Reset ForceOff over HTTPS to a Redfish
// TEST DOUBLE, trusting only the pinned CA, and reports it fenced only once the PowerState it reads
// back is Off. A second run pins an unrelated CA: the certificate is refused, no reset is sent, and
// the incident ends fence-unconfirmed.
// The Redfish double is an in-process HTTPS server on 127.0.0.1 of this namespace; the BMC address the
// monitor sees is the lab's BMC host, where an in-process TCP relay (its listening socket opened inside
// that namespace) passes the TLS stream through untouched. The server certificate is made here for the
// BMC host's lab address, so the client's name check is real.
import t from 'tap';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { skipUnlessRoot, type LabHost } from '../support/lab';
import { daemonStatus, waitFor } from '../support/vigil';
import { monitorLab, SUSPICION_MS, tail, type MonitorLab } from '../support/monitor-lab';
import { startRedfishDouble, type DoubleCerts, type RedfishDouble } from '../support/redfish-double';

if (skipUnlessRoot(t, ['ipmi_sim', 'ipmitool', 'openssl'])) process.exit(0);

const USER = 'vigilfence';
const POWER_TIMEOUT_MS = 6000;

/** A throwaway CA, a server certificate it signs for `ip`, and an unrelated CA. */
function certsFor(dir: string, ip: string): DoubleCerts {
  const f = (n: string) => path.join(dir, n);
  const ssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  for (const name of ['ca', 'other-ca']) {
    ssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=vigil test ${name}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.pem`)]);
  }
  ssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=redfish-double', '-keyout', f('server.key'), '-out', f('server.csr')]);
  fs.writeFileSync(f('ext.cnf'), `subjectAltName=IP:${ip}\nbasicConstraints=CA:FALSE\n`);
  ssl(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('server.pem')]);
  return { dir, caCert: f('ca.pem'), caKey: f('ca.key'), cert: f('server.pem'), key: f('server.key'), otherCaCert: f('other-ca.pem') };
}

/**
 * A TCP relay listening in `host`'s namespace (every address, so no name lookup defers the bind
 * out of it) on port `port`, to 127.0.0.1:`to` here.
 */
function relay(t: Tap.Test, host: LabHost, port: number, to: number): void {
  const server = net.createServer((down) => {
    const up = net.connect(to, '127.0.0.1');
    down.pipe(up).pipe(down);
    const end = () => { down.destroy(); up.destroy(); };
    down.on('error', end); up.on('error', end); down.on('close', end); up.on('close', end);
  });
  host.inNetns(() => server.listen(port));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
}

async function setup(t: Tap.Test, tag: string, pin: 'ca' | 'other'): Promise<{ L: MonitorLab; bmcs: Record<string, RedfishDouble>; m: ReturnType<MonitorLab['startMonitor']> }> {
  const L = await monitorLab(t, tag, ['h1', 'h2', 'h3'], ['m1']);
  const bmcHost = L.lab.host('bmc');
  const certs = certsFor(fs.mkdtempSync(path.join(L.dir, 'certs-')), bmcHost.ip);
  const pwFile = path.join(L.dir, 'bmc.pw'); // the lab's per-run secret, 0600
  const password = fs.readFileSync(pwFile, 'utf8').trim();
  const bmcs: Record<string, RedfishDouble> = {};
  const hosts = [];
  for (const [i, h] of L.computes.entries()) {
    const d = await startRedfishDouble({ certs, user: USER, password });
    t.teardown(() => d.stop());
    bmcs[h] = d;
    relay(t, bmcHost, 8443 + i, d.port);
    hosts.push({ name: h, bmc: { method: 'redfish', ip: bmcHost.ip, port: 8443 + i, user: USER, password_file: pwFile, ca_file: pin === 'ca' ? certs.caCert : certs.otherCaCert } });
  }
  const m = L.startMonitor('m1', L.monitorSection({
    inventory: { hosts },
    fence: { method: 'redfish', power_timeout: `${POWER_TIMEOUT_MS}ms`, power_wait: '500ms' },
  }));
  await waitFor(async () => (await daemonStatus(m.pidfile))?.roles?.monitor?.hosts?.filter((h: any) => h.samples.mgmt?.state === 'up' && h.samples.tenant?.state === 'up').length === 3,
    20_000, () => `h1..h3 up on mgmt and tenant; logs:\n${tail(m.daemon)}`);
  return { L, bmcs, m };
}

const h1Of = async (pidfile: string) => (await daemonStatus(pidfile))?.roles?.monitor?.hosts?.find((h: any) => h.host === 'h1');
// suspicion + confirm (2) × interval (1 s) + power_timeout + slack, doubled.
const BOUND_MS = 2 * (SUSPICION_MS + 2 * 1000 + POWER_TIMEOUT_MS + 4000);

t.test('redfish: ForceOff over HTTPS with the pinned CA, fenced once PowerState reads Off', async (t) => {
  const { L, bmcs, m } = await setup(t, 'mon-rf', 'ca');
  await L.cut('h1');
  const h1 = await waitFor(async () => { const h = await h1Of(m.pidfile); return h?.phase === 'fenced' ? h : undefined; }, BOUND_MS,
    () => `h1 fenced within ${BOUND_MS} ms; logs:\n${tail(m.daemon)}`);
  t.match(h1.incident, { fence: { method: 'redfish', outcome: 'off' } }, 'the status shows the redfish fence, confirmed off');
  const reqs = bmcs.h1!.requests;
  const reset = reqs.find((r) => r.method === 'POST' && r.path.endsWith('/Actions/ComputerSystem.Reset'));
  t.ok(reset, 'ComputerSystem.Reset was posted');
  t.match(JSON.parse(reset?.body ?? '{}'), { ResetType: 'ForceOff' }, 'with ResetType ForceOff');
  t.ok(reqs.slice(reqs.indexOf(reset!) + 1).some((r) => r.method === 'GET' && /\/Systems\/[^/]+$/.test(r.path)), 'then the system (its PowerState) was read back');
  t.equal(bmcs.h1!.hostRunning(), false, 'the simulated host is off');
  for (const h of ['h2', 'h3']) t.notOk(bmcs[h]!.requests.some((r) => r.method === 'POST' && r.path.includes('Reset')), `${h} never reset`);
  t.notOk(m.daemon.logs().includes(L.secret), 'the BMC password is in no log line');
});

t.test('redfish: an unrelated CA pinned: certificate refused, no reset, fence-unconfirmed', async (t) => {
  const { L, bmcs, m } = await setup(t, 'mon-rfca', 'other');
  await L.cut('h1');
  const h1 = await waitFor(async () => { const h = await h1Of(m.pidfile); return h?.phase === 'fence-unconfirmed' ? h : undefined; }, BOUND_MS,
    () => `h1 fence-unconfirmed within ${BOUND_MS} ms; logs:\n${tail(m.daemon)}`);
  t.match(h1.lastAlarm, /^fence-unconfirmed:/, 'alarm');
  t.notOk(bmcs.h1!.requests.some((r) => r.method === 'POST'), 'nothing was posted to a BMC whose certificate did not verify');
  t.equal(bmcs.h1!.hostRunning(), true, 'the simulated host still runs');
  t.notMatch(m.daemon.logs(), /host fenced/, 'never reported fenced');
});
