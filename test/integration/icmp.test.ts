// ICMP echo over the raw-socket package, inside a lab host.
import t from 'tap';
import { createLab, skipUnlessRoot } from '../support/lab';
import { Pinger } from '../../src/net/icmp/pinger';
import { SLACK_MS } from '../support/vigil';

if (skipUnlessRoot(t)) process.exit(0);

t.test('a present host answers, an absent one is silent within the timeout', async (t) => {
  const lab = await createLab({ hosts: ['a', 'b'] });
  t.teardown(() => lab.destroy());
  const a = lab.host('a');
  const pinger = a.inNetns(() => new Pinger());
  t.teardown(() => pinger.close());
  // A present host's answer: its timeout is a bound for an event (slack), not the thing tested.
  const ok = await pinger.ping(lab.host('b').ip, SLACK_MS);
  t.equal(ok.status, 'answered', `answered within ${SLACK_MS} ms`);
  const started = Date.now();
  const none = await pinger.ping(lab.freeIp(3), 200);
  t.equal(none.status, 'silent');
  t.ok(Date.now() - started < 1000, 'resolves at its timeout');
  const many = await Promise.all([lab.host('b').ip, lab.freeIp(4), lab.host('b').ip].map((ip) => pinger.ping(ip, 300)));
  t.same(many.map((r) => r.status), ['answered', 'silent', 'answered'], 'concurrent pings matched to their replies');
  t.equal((await pinger.ping('10.0.0.300', 100)).status, 'error', 'invalid input is an error, not silence');
});
