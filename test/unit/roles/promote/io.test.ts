// The promote I/O's steps (argv, timeout, JSON output, environment) and the probe folds; TCP/HTTP probes on loopback.
import t from 'tap';
import * as net from 'node:net';
import * as http from 'node:http';
import { foldPeer, foldReady, httpProbe, realPromoteIo, tcpProbe } from '../../../../src/roles/promote/io';
import { cfgOf } from './fixtures';

const step = (command: string[], json = false) => ({ name: 's', command, timeoutMs: 2000, json });

t.test('steps: exit status, timeout, JSON output, environment', async (t) => {
  const io = realPromoteIo(cfgOf());
  const ac = new AbortController();
  const interrupted = io.runStep(step(['/bin/sleep', '30']), {}, 30_000, undefined, ac.signal);
  setTimeout(() => ac.abort(), 100);
  t.match(await interrupted, { ok: false, error: 'interrupted: this site is demoting' }, 'an abort interrupts the step');
  t.same(await io.runStep(step(['/bin/sh', '-c', 'exit 3']), {}, 2000), { ok: false, error: 'exit 3', stdout: '' });
  t.match(await io.runStep(step(['/bin/sleep', '5']), {}, 200), { ok: false, error: 'timed out after 200 ms' });
  t.match(await io.runStep(step(['/bin/echo', 'not json'], true), {}, 2000), { ok: false, error: 'stdout is not JSON' });
  t.match(await io.runStep(step(['/bin/echo', '{"response":{"values":[]}}'], true), {}, 2000), { ok: true });
  const env = await io.runStep(step(['/bin/sh', '-c', 'echo "$VIGIL_LEASE_KEY $VIGIL_LEASE_INDEX"']), { VIGIL_LEASE_KEY: 'vigil/promote/mail/leader', VIGIL_LEASE_INDEX: '7' }, 2000);
  t.equal(env.stdout, 'vigil/promote/mail/leader 7\n');
});

t.test('folds: a probe alone never promotes; unknown holds', async (t) => {
  t.equal(foldPeer([]), 'down');
  t.equal(foldPeer(['down', 'down']), 'down');
  t.equal(foldPeer(['down', 'unknown']), 'unknown');
  t.equal(foldPeer(['down', 'up']), 'up');
  t.equal(foldReady([]), 'up');
  t.equal(foldReady(['up', 'unknown']), 'unknown');
  t.equal(foldReady(['up', 'down']), 'down');
});

t.test('tcp and http probes on loopback', async (t) => {
  const srv = net.createServer((s) => s.end()).listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const port = (srv.address() as net.AddressInfo).port;
  t.equal((await tcpProbe('127.0.0.1', port, 500)).result, 'up');
  srv.close();
  t.equal((await tcpProbe('127.0.0.1', port, 500)).result, 'down', 'refused: the peer side answered no');
  const web = http.createServer((q, s) => { s.statusCode = q.url === '/ok' ? 200 : 503; s.end(); }).listen(0, '127.0.0.1');
  await new Promise((r) => web.once('listening', r));
  const wp = (web.address() as net.AddressInfo).port;
  t.equal((await httpProbe(`http://127.0.0.1:${wp}/ok`, 500)).result, 'up');
  t.match(await httpProbe(`http://127.0.0.1:${wp}/bad`, 500), { result: 'down', detail: 'HTTP 503' });
  web.close();
});
