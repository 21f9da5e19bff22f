// monitor, fence method `event` (hostha's) through a running `vigil run`, on the three-bridge lab:
// h1 is cut on mgmt and storage but still up on tenant, which the default 3-network matrix maps to
// row 010 (email, fence, evacuate). The monitor fires a signed `fence` user event on tenant for h1.
// The tenant double passes it on to h1's own tenant agent (a double on h1) over the tenant bridge,
// as gossip would; a watch on h1 feeds the event list to `vigil fence-handler`, which verifies the
// signature and runs its fence action (a marker file, then the host's own power-off: the chassis state
// its ipmi_sim reports). The monitor confirms by reading the BMC's power state: fenced, without ever sending a BMC
// power-off itself.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { skipUnlessRoot } from '../support/lab';
import { BIN, daemonStatus, waitFor } from '../support/vigil';
import { startConsulDouble, writeAgentConfig, childEnv } from '../support/consul-double';
import { recordingIpmitool } from '../support/ipmi-sim';
import { monitorLab, NETWORKS, SUSPICION_MS, tail } from '../support/monitor-lab';

if (skipUnlessRoot(t, ['ipmi_sim', 'ipmitool'])) process.exit(0);

/** What a Consul `watch -type event -name fence` does: on each new event list, run the handler with it on stdin. */
const WATCH_JS = `'use strict';
const http = require('node:http');
const { spawn } = require('node:child_process');
const [url, ...handler] = process.argv.slice(2);
let index = '';
function poll() {
  const req = http.get(url + '/v1/event/list?name=fence' + (index ? '&index=' + index + '&wait=30s' : ''), (res) => {
    let body = '';
    res.on('data', (c) => { body += c; });
    res.on('end', () => {
      const next = res.headers['x-consul-index'] || '';
      if (next !== index && index !== '' && body.trim() !== '[]') {
        const h = spawn(handler[0], handler.slice(1), { stdio: ['pipe', 'inherit', 'inherit'] });
        h.stdin.end(body);
      }
      index = next || index;
      setTimeout(poll, 100);
    });
  });
  req.on('error', () => setTimeout(poll, 500));
}
poll();
`;

t.test('event: a signed fence event on the network where the host is still up; its handler acts; the BMC confirms', async (t) => {
  const L = await monitorLab(t, 'mon-event', ['h1', 'h2', 'h3'], ['m1']);
  const h1 = L.lab.host('h1');
  const keyFile = path.join(L.dir, 'fence.key');
  fs.writeFileSync(keyFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });

  // h1's own tenant agent, which the tenant double's events reach over the tenant bridge.
  const agentDir = writeAgentConfig(path.join(L.dir, 'h1-agent'), { node_name: 'h1', server: false });
  const agent = await startConsulDouble({ configDir: agentDir, host: L.addr('h1', 'tenant'), port: 8500, unixSocket: path.join(L.dir, 'h1-agent.sock'),
    spawn: (argv) => h1.spawn(argv, { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] }) });
  t.teardown(() => agent.stop());
  await L.tenant.configure({ gossipEvents: [`http://${L.addr('h1', 'tenant')}:8500`] });

  // h1's fence-event handler: its action leaves a marker and powers the host off. The lab's stand-in for the
  // host's own power-off is the chassis state its ipmi_sim reports (h1 cannot reach its BMC: mgmt is cut).
  const marker = path.join(L.dir, 'h1-fenced');
  const handlerLog = path.join(L.dir, 'h1-handler.log');
  const handlerCfg = path.join(L.dir, 'h1-handler.yml');
  const sim = L.sims.h1!;
  fs.writeFileSync(handlerCfg, [
    'node: h1',
    `state_dir: ${L.dir}/h1-state`,
    'log:',
    '  level: info',
    `  file: ${handlerLog}`,
    'fence:',
    '  actions:',
    `    - ["/bin/sh", "-c", "echo fence >> ${marker}; echo 0 > ${path.join(L.dir, 'sim-h1', 'power')}"]`,
    '  action_timeout: 10s',
    'fence_handler:',
    '  event: fence',
    '  max_age: 120s',
    '  max_skew: 30s',
    `  key_file: ${keyFile}`,
    '',
  ].join('\n'), { mode: 0o600 });
  const watchJs = path.join(L.dir, 'watch.js');
  fs.writeFileSync(watchJs, WATCH_JS);
  h1.spawn([process.execPath, watchJs, `http://${L.addr('h1', 'tenant')}:8500`, process.execPath, BIN, 'fence-handler', '-c', handlerCfg], { stdio: 'ignore' });

  const wrap = path.join(L.dir, 'ipmitool-m1');
  fs.mkdirSync(wrap, { mode: 0o700 });
  const ipmitool = recordingIpmitool(wrap, L.lab.host('m1'));
  const m = L.startMonitor('m1', L.monitorSection({
    networks: L.networks(NETWORKS),
    fence: { method: 'event', event: 'fence', power_timeout: '10s', power_wait: '500ms', ipmitool: ipmitool.program },
  }), { fence_handler: { key_file: keyFile } });
  const logs = () => tail(m.daemon);
  const host = async (name: string) => (await daemonStatus(m.pidfile))?.roles?.monitor?.hosts?.find((h: any) => h.host === name);
  await waitFor(async () => (await daemonStatus(m.pidfile))?.roles?.monitor?.hosts?.filter((h: any) => NETWORKS.every((n) => h.samples[n]?.state === 'up')).length === 3,
    20_000, () => `h1..h3 up on every network; logs:\n${logs()}`);

  await L.cut('h1', ['mgmt', 'storage']);
  // suspicion + confirm (2) × interval (1 s) + power_timeout (10 s) + the handler's start and its ipmitool, doubled.
  const boundMs = 2 * (SUSPICION_MS + 2 * 1000 + 10_000 + 8000);
  const fenced = await waitFor(async () => { const h = await host('h1'); return h?.phase === 'fenced' ? h : undefined; }, boundMs,
    () => `h1 fenced within ${boundMs} ms; marker ${fs.existsSync(marker)}; handler log:\n${fs.existsSync(handlerLog) ? fs.readFileSync(handlerLog, 'utf8').slice(-1500) : '(none)'}\nmonitor logs:\n${logs()}`);
  t.match(fenced.decision, { row: '010' }, 'row 010 of K-19: fence by the host\'s method');
  t.match(fenced.incident, { fence: { method: 'event', network: 'tenant', outcome: 'off' } }, 'fenced by an event on tenant, confirmed off');
  t.match(m.daemon.logs(), /fence event fired/, 'the monitor fired the event');
  t.equal(fs.readFileSync(marker, 'utf8').split('\n').filter(Boolean).length, 1, 'h1\'s handler verified the event and acted once');
  t.match(fs.readFileSync(handlerLog, 'utf8'), /event accepted/, 'the handler logged the accepted event');
  t.equal(sim.power(), '0', 'h1 is off');
  const runs = ipmitool.runs();
  t.ok(runs.length >= 1 && runs.every((r) => r.cmdline.includes('status')), `the monitor only read the power state (${runs.map((r) => r.cmdline.slice(-2).join(' ')).join('; ')})`);
  for (const r of runs) t.notOk(r.cmdline.some((a) => a.includes(L.secret)), 'no password in the monitor\'s ipmitool argv');
  t.notOk(m.daemon.logs().includes(L.secret), 'nor in its log');
});
