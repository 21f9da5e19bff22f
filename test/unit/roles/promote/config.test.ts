// The promote: section: defaults, the cross-key timing rules and the topology rule, each naming its key in one line.
import t from 'tap';
import { stringify } from 'yaml';
import { ConfigError } from '../../../../src/errors';
import { parseConfigText } from '../../../../src/config/load';
import type { PromoteConfig } from '../../../../src/roles/promote/config';

type Obj = Record<string, any>;
const FILE = '/etc/vigil/promote.yml';

function base(extra: Obj = {}): Obj {
  return { name: 'mail', site: 'dc2', peer: 'dc1', promote_steps: [{ name: 'promote', command: ['/bin/true'] }], ...extra };
}
function load(section: Obj): PromoteConfig {
  return (parseConfigText(stringify({ node: 'b', promote: section }), FILE) as any).promote as PromoteConfig;
}
function errors(section: Obj): string[] {
  try { load(section); } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    // The line number depends on the YAML layout, not on the rule.
    return ((e.detail?.errors as string[]) ?? [e.message]).map((l) => l.replace(/^(\S+?\.yml):\d+:/, '$1:'));
  }
  return [];
}

t.test('every default', async (t) => {
  const c = load(base());
  t.same(c, {
    name: 'mail', site: 'dc2', peer: 'dc1', mode: 'manual', witnessSites: 3, acceptSplitBrainRisk: false, autoPromote: true,
    consul: { url: 'http://127.0.0.1:8500', timeoutMs: 2000 },
    ttlMs: 15_000, lockDelayMs: 15_000, acquireAfterMs: 0, renewIntervalMs: 3000, retries: 2, demoteTimeoutMs: 5000, checkIntervalMs: 5000,
    journalDir: '/var/lib/vigil/promote', peerProbes: [], ready: [], fence: { kind: 'none' },
    promoteSteps: [{ name: 'promote', command: ['/bin/true'], timeoutMs: 60_000, json: false }],
    demoteSteps: [],
    failback: { mode: 'none', healthyChecks: 5, healthyForMs: 300_000 },
  });
});

t.test('probes, fence and steps are normalized', async (t) => {
  const c = load(base({
    mode: 'auto',
    peer_probes: [{ kind: 'icmp', host: '10.0.1.10' }, { kind: 'tcp', host: '10.0.1.10', port: 443, timeout: '300ms' },
      { kind: 'arp', host: '10.0.1.10', interface: 'eth0' }, { kind: 'http', url: 'http://10.0.1.10:8080/health' }],
    fence: { kind: 'command', command: ['/bin/withdraw'] },
    demote_steps: [{ name: 'demote', command: ['/bin/true'], verify: ['/bin/true'], json: true, timeout: '2s' }],
    prereq: { key: 'vigil/promote/mail/replication', equals: 'ACTIVE' },
  }));
  t.same(c.peerProbes, [
    { kind: 'icmp', host: '10.0.1.10', timeoutMs: 1000 }, { kind: 'tcp', host: '10.0.1.10', port: 443, timeoutMs: 300 },
    { kind: 'arp', host: '10.0.1.10', interface: 'eth0', timeoutMs: 1000 }, { kind: 'http', url: 'http://10.0.1.10:8080/health', timeoutMs: 1000 },
  ]);
  t.same(c.fence, { kind: 'command', command: ['/bin/withdraw'], timeoutMs: 60_000 });
  t.same(c.demoteSteps, [{ name: 'demote', command: ['/bin/true'], timeoutMs: 2000, verify: ['/bin/true'], json: true }]);
  t.same(c.prereq, { key: 'vigil/promote/mail/replication', equals: 'ACTIVE' });
});

t.test('unsafe timings are refused naming the keys', async (t) => {
  // 5s × 3 + 5s = 20s ≥ 15s
  t.same(errors(base({ renew_interval: '5s' })), [
    `${FILE}: promote.renew_interval: renew_interval × (retries + 1) + demote_timeout = 5s × 3 + 5s = 20s is not below ttl 15s (expected less: the holder must have demoted before its lease can end)`,
  ]);
  // exactly equal is refused too: 3s × 3 + 6s = 15s
  t.match(errors(base({ demote_timeout: '6s' }))[0], /promote\.renew_interval: .* = 15s is not below ttl 15s/);
  t.same(errors(base({ renew_interval: '3s', retries: 2, demote_timeout: '5s', ttl: '15s' })), [], '14s < 15s is accepted');
  t.same(errors(base({ lock_delay: '5s' })), [
    `${FILE}: promote.lock_delay: '5s' is out of range (expected from 15s to 60s: a lost holder needs the delay to finish demoting; Consul caps it at 60s)`,
  ]);
  t.match(errors(base({ lock_delay: '61s' }))[0], /promote\.lock_delay: '61s' is out of range/);
  t.match(errors(base({ failback: { mode: 'auto', healthy_checks: 10, healthy_for: '10s' } }))[0], /promote\.failback\.healthy_for: '10s' is shorter than check_interval × \(healthy_checks - 1\) = 45s/);
});

t.test('two-site auto is refused unless the risk is accepted', async (t) => {
  t.same(errors(base({ mode: 'auto', witness_sites: 2 })), [
    `${FILE}: promote.mode: 'auto' with witness_sites 2 (expected mode manual with fewer than 3 witness sites: two sites cannot tell a partition from a dead peer; or accept_split_brain_risk: true)`,
  ]);
  t.same(errors(base({ mode: 'auto', witness_sites: 2, accept_split_brain_risk: true })), []);
  t.same(errors(base({ mode: 'manual', witness_sites: 2 })), []);
  t.same(errors(base({ mode: 'auto', witness_sites: 3 })), []);
});

t.test('per-kind keys, names and argv', async (t) => {
  t.match(errors(base({ peer_probes: [{ kind: 'tcp', host: '10.0.1.10' }] }))[0], /promote\.peer_probes\[0\]\.port: is required but missing with kind tcp/);
  t.match(errors(base({ ready: [{ kind: 'arp', host: '10.0.1.10' }] }))[0], /promote\.ready\[0\]\.interface: is required but missing with kind arp/);
  t.match(errors(base({ fence: { kind: 'bmc' } }))[0], /promote\.fence\.host: is required but missing with kind bmc/);
  t.match(errors(base({ fence: { kind: 'wait' } }))[0], /promote\.fence\.wait: is required but missing with kind wait/);
  t.match(errors(base({ peer: 'dc2' }))[0], /promote\.peer: 'dc2' is this site's own name/);
  t.match(errors(base({ promote_steps: [{ name: 'a', command: ['x'] }, { name: 'a', command: ['y'] }] }))[0], /promote\.promote_steps\[1\]\.name: 'a' is used twice/);
  t.match(errors(base({ promote_steps: [{ name: 'a', command: 'rm -rf /' }] }))[0], /promote\.promote_steps\[0\]\.command/, 'a shell string is not argv');
  t.match(errors(base({ promote_steps: [] }))[0], /promote\.promote_steps/);
  t.match(errors(base({ ttl: '5s' }))[0], /promote\.ttl: '5s' is out of range/);
  t.match(errors({ site: 'a', peer: 'b', promote_steps: [{ name: 'a', command: ['x'] }] })[0], /promote\.name|promote: .*name/);
});
