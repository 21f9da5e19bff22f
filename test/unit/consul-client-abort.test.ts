// ConsulClient.request's abort signal (a watch that stops ends its held blocking read at once):
// a held request rejects with ECONSULABORTED when aborted, an already aborted signal never waits,
// and a request that answered is not affected by a later abort. A loopback server that holds requests.
import t from 'tap';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConsulClient } from '../../src/consul/client';

t.test('abort signal', async (t) => {
  const held: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith('/hold')) { held.push(res); return; }
    res.setHeader('Content-Type', 'application/json');
    res.end('[]');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => { for (const r of held) r.destroy(); server.close(); });
  const c = new ConsulClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, timeoutMs: 30_000 });

  const ac = new AbortController();
  const started = Date.now();
  const p = c.request('GET', '/hold', { signal: ac.signal });
  await new Promise((r) => setTimeout(r, 100));
  ac.abort();
  await t.rejects(p, { code: 'ECONSULABORTED' }, 'a held request rejects when aborted');
  t.ok(Date.now() - started < 5000, 'at once, not at the 30 s deadline');

  const gone = new AbortController();
  gone.abort();
  await t.rejects(c.request('GET', '/hold', { signal: gone.signal }), { code: 'ECONSULABORTED' }, 'an already aborted signal: rejected without waiting');

  const later = new AbortController();
  const r = await c.request('GET', '/v1/agent/members', { signal: later.signal });
  later.abort();
  t.equal(r.body.toString(), '[]', 'an answered request is unaffected by a later abort');
});
