/** The runtime role's RoleRunner: start, status, health, a live reload that restarts the job, stop. */
import t from 'tap';
import { parseConfigText } from '../../../../src/config/load';
import { createRuntimeRunner } from '../../../../src/roles/runtime/daemon';
import type { Notifier } from '../../../../src/daemon/notify';
import { moduleLog } from '../../../../src/log';

const notifier = {} as unknown as Notifier;
// A missing file is decided before any request, so the unreachable agent is never asked.
/** The first cycle of a (re)started job: no request is made for a missing file, so it ends within a tick; 2 s is generous. */
async function firstCycle(r: { status(): unknown }): Promise<Record<string, any>> {
  const until = Date.now() + 2000;
  for (;;) {
    const s = r.status() as Record<string, any>;
    if (s.cycles >= 1) return s;
    if (Date.now() > until) throw new Error(`no first cycle within 2000 ms: ${JSON.stringify(s)}`);
    await new Promise((res) => setTimeout(res, 10));
  }
}
const cfgText = (file: string) => `node: cmp-01\nruntime_publish:\n  consul: {url: "http://127.0.0.1:1"}\n  file: ${file}\n  interval: 1s\n`;

t.test('start, reload with another file, stop', async (t) => {
  const r = createRuntimeRunner(parseConfigText(cfgText('/nonexistent/a.json'), '/etc/vigil/t.yml'), { log: moduleLog('test'), notifier });
  await r.start();
  t.match(await firstCycle(r), { phase: 'running', file: '/nonexistent/a.json', key: 'ha_cluster/compute_nodes/cmp-01/internal/runtime_config', last: { result: 'skipped', reason: 'file-missing' } });
  t.ok(r.healthy(performance.now()), 'healthy right after a cycle');
  t.notOk(r.healthy(performance.now() + 2 * 1000 + 3 * 5000 + 5000 + 1), 'not healthy past 2 × interval + 3 × request_timeout + 5s without a cycle');
  const next = parseConfigText(cfgText('/nonexistent/b.json'), '/etc/vigil/t.yml');
  t.equal(r.canReload(next), undefined);
  r.reload(next);
  t.match(await firstCycle(r), { file: '/nonexistent/b.json', last: { reason: 'file-missing', detail: '/nonexistent/b.json does not exist' } }, 'the job restarted on the new file');
  r.stop();
  t.equal(await r.done, 0);
});
