// The group role's Consul owner lock, against the Consul TEST DOUBLE
// (test/support/consul-double, not Consul): two nodes' `vigil group`
// processes share one key; the second is refused (exit 3, nothing started)
// while the first holds it; after the holder's node fails (its serfHealth
// critical: its session is invalidated) the second is still refused during
// lock-delay and activates after it; deactivate releases the key; a refused
// or rolled-back activate gives back the lock it took.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { scratchDir, writeConfig } from '../support/vigil';
import { runGroup, type GroupRun } from '../support/group';
import { startDoubleForTest } from '../support/consul-double';
import { ConsulClient } from '../../src/consul/client';
import { normalizeGroups } from '../../src/roles/group/config';

const KEY = 'vigil/group/g/owner';
const LOCK_DELAY_MS = 15_000;

t.test('owner_lock: defaults and limits', async (t) => {
  const g = normalizeGroups({ g: { members: [{ type: 'command', start: 'true' }], owner_lock: { consul: { url: 'http://127.0.0.1:8500' } } } }).get('g')!;
  t.same(g.ownerLock, { url: 'http://127.0.0.1:8500', key: KEY, lockDelayMs: LOCK_DELAY_MS });
  t.throws(() => normalizeGroups({ g: { members: [{ type: 'command', start: 'true' }], owner_lock: { consul: { url: 'http://x:1' }, lock_delay: '5s' } } }),
    /group\.g\.owner_lock\.lock_delay: '5s' is out of range/);
  t.throws(() => normalizeGroups({ g: { members: [{ type: 'command', start: 'true' }], owner_lock: { key: 'a' } } }),
    /group\.g\.owner_lock\.consul: is required but missing/);
});

t.test('a second node is refused while the lock is held, and after the holder fails only after lock-delay', async (t) => {
  const d = await startDoubleForTest(t, { node_name: 'consul-agent', server: true });
  const consul = new ConsulClient({ url: d.url, timeoutMs: 5000 });
  const dir = scratchDir('group-lock');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const marks = path.join(dir, 'marks');
  fs.mkdirSync(marks);
  const member = (node: string, fail = false) => ({
    type: 'command', name: 'svc',
    start: fail ? `echo start >> ${marks}/${node}.start; exit 7` : `echo start >> ${marks}/${node}.start; touch ${marks}/${node}.up`,
    stop: `rm -f ${marks}/${node}.up`, monitor: `test -f ${marks}/${node}.up`,
  });
  const config = (node: string, fail = false) => writeConfig(dir, node, {
    node, group: { g: { state_dir: path.join(dir, `state-${node}`), members: [member(node, fail)], owner_lock: { consul: { url: d.url }, lock_delay: `${LOCK_DELAY_MS / 1000}s` } } },
  });
  const starts = (node: string) => (fs.existsSync(path.join(marks, `${node}.start`)) ? fs.readFileSync(path.join(marks, `${node}.start`), 'utf8').split('\n').filter(Boolean).length : 0);
  const run = (node: string, verb: string, fail = false) => runGroup([verb, 'g', '-c', config(node, fail)]);
  const show = (r: GroupRun) => ({ code: r.code, stdout: r.stdout.split('\n').slice(-12), stderr: r.stderr.split('\n').slice(-8) });
  const holderNode = async () => {
    const e = await consul.kvGet(KEY);
    return e?.session ? (await consul.sessionInfo(e.session))?.node : undefined;
  };

  const a = await run('mn-a', 'activate');
  t.equal(a.code, 0, 'mn-a activates (exit 0)', show(a));
  t.equal(await holderNode(), 'mn-a', 'the key is held by a session of node mn-a');
  const info = await consul.sessionInfo((await consul.kvGet(KEY))!.session!);
  t.equal(info?.ttl, '', 'the CLI session has no TTL (nobody renews it)');
  t.same(info?.checks, ['serfHealth'], 'it is bound to the node\'s serfHealth');

  const b = await run('mn-b', 'activate');
  t.equal(b.code, 3, 'mn-b is refused while mn-a holds the lock (exit 3)', show(b));
  t.match(b.stdout, /owner lock vigil\/group\/g\/owner: held by node mn-a/, 'the refusal names the holder');
  t.equal(starts('mn-b'), 0, 'mn-b started nothing');
  const plan = await run('mn-b', 'plan');
  t.equal(plan.code, 3, 'mn-b plan: activate would be refused', show(plan));
  t.equal(await holderNode(), 'mn-a', 'still held by mn-a');

  const again = await run('mn-a', 'activate');
  t.equal(again.code, 0, 'mn-a activate again: nothing to do', show(again));
  t.equal(starts('mn-a'), 1, 'mn-a did not start its member twice');

  // mn-a's node fails: its serfHealth turns critical and its sessions are invalidated (lock-delay starts).
  await d.setChecks({ Node: 'mn-a', CheckID: 'serfHealth', Status: 'critical' });
  const failedAt = Date.now();
  const early = await run('mn-b', 'activate');
  const earlyMs = Date.now() - failedAt;
  if (earlyMs < LOCK_DELAY_MS) {
    t.equal(early.code, 3, `mn-b is refused ${earlyMs} ms after mn-a's session was invalidated (lock-delay ${LOCK_DELAY_MS} ms)`, show(early));
    t.match(early.stdout, /lock-delay/, 'the refusal says lock-delay');
    t.equal(starts('mn-b'), 0, 'mn-b started nothing');
  } else t.fail(`the refused activate was expected within the lock-delay (${LOCK_DELAY_MS} ms); it ended after ${earlyMs} ms`);

  // After lock-delay (plus a generous margin for a loaded machine) mn-b activates.
  await new Promise((r) => setTimeout(r, Math.max(0, LOCK_DELAY_MS - (Date.now() - failedAt)) + 500));
  let late: GroupRun | undefined;
  const deadline = failedAt + LOCK_DELAY_MS + 20_000;
  while (Date.now() < deadline) {
    late = await run('mn-b', 'activate');
    if (late.code === 0) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  t.equal(late?.code, 0, `mn-b activates once lock-delay (${LOCK_DELAY_MS} ms) has passed, by ${LOCK_DELAY_MS + 20_000} ms after the failure`, late && show(late));
  t.equal(await holderNode(), 'mn-b', 'the key is held by mn-b');
  t.equal(starts('mn-b'), 1, 'mn-b started its member once');

  const off = await run('mn-b', 'deactivate');
  t.equal(off.code, 0, 'mn-b deactivates', show(off));
  t.match(off.stdout, /owner lock vigil\/group\/g\/owner released/);
  t.equal(await holderNode(), undefined, 'the key is free after deactivate');

  // A rolled-back activate (exit 4) gives back the lock it took: the next node is not kept out.
  const c = await run('mn-c', 'activate', true);
  t.equal(c.code, 4, 'mn-c fails and rolls back (exit 4)', show(c));
  t.equal(await holderNode(), undefined, 'the key is free again after the roll-back');
  const b2 = await run('mn-b', 'activate');
  t.equal(b2.code, 0, 'mn-b activates at once: a release imposes no lock-delay', show(b2));
});
