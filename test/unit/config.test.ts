// Unit: config schema, defaults, normalization and error messages (parseConfigText, no fs).
import t from 'tap';
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError } from '../../src/errors';
import { configRoles, formatKeyPath, formatValue, parseConfigText } from '../../src/config/load';
import { builtinConfigSchema } from '../../src/config/schema';
import { fullConfig as full, type Obj } from '../support/config-fixtures';

type Path = (string | number)[];

const FILE = '/etc/vigil/test.yml';


function setIn(obj: Obj, path: Path, value: unknown): Obj {
  let o: any = obj;
  for (const k of path.slice(0, -1)) {
    if (o[k] === undefined) o[k] = {};
    o = o[k];
  }
  o[path[path.length - 1]!] = value;
  return obj;
}

function errorsOf(text: string): string[] {
  try {
    parseConfigText(text, FILE);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return (e.detail?.errors as string[]) ?? [e.message];
  }
  return [];
}

t.test('every default is applied (vip only)', async (t) => {
  const cfg = parseConfigText('vip:\n  interface: eth0\n  address: 10.0.0.100\n', 'rel.yml');
  t.same(cfg, {
    file: join(process.cwd(), 'rel.yml'),
    node: hostname(),
    pidfile: '/run/vigil/vigil.pid',
    stateDir: '/var/lib/vigil',
    log: { level: 'info' },
    vip: {
      interface: 'eth0',
      address: { address: '10.0.0.100', prefix: 32 },
      checkIntervalMs: 1000,
      failureCheckIntervalMs: 200,
      takeOverAfter: 3,
      probeTimeoutMs: 200,
      probeTimeoutMinMs: 20,
      masterCheckIntervalMs: 2000,
      ipFileCheckIntervalMs: 5000,
      announce: { count: 3, intervalMs: 1000 },
      commandTimeoutMs: 30_000,
      backend: 'netlink',
      vzctl: 'vzctl',
      vzlist: 'vzlist',
      containerSettleMs: 30_000,
    },
  });
  t.same(configRoles(cfg), ['vip']);
});

t.test('every default is applied (fence, fence_handler, track, watchdog)', async (t) => {
  const cfg = parseConfigText(stringify(full()), FILE);
  t.same(cfg.vip?.track, { command: 'true', intervalMs: 2000, fall: 3, rise: 2, timeoutMs: 2000 }, 'track.timeout defaults to interval');
  t.same(cfg.fence, {
    agents: [{ name: 'mgmt', url: 'http://127.0.0.1:8500' }],
    checkIntervalMs: 5000,
    confirmCycles: 2,
    requestTimeoutMs: 2000,
    neighbourProbeTimeoutMs: 500,
    actions: [['systemctl', 'stop', 'openstack-nova-compute'], ['systemctl', 'poweroff', '--force']],
    actionTimeoutMs: 60_000,
    dryRun: false,
    watchdog: { device: '/dev/watchdog', timeoutMs: 30_000 },
  });
  t.same(cfg.fenceHandler, {
    event: 'fence', maxAgeMs: 120_000, maxSkewMs: 30_000,
    onEnable: [['systemctl', 'enable', '--now', 'openstack-nova-compute']],
  });
  t.same(configRoles(cfg), ['vip', 'fence', 'fence_handler', 'monitor', 'group', 'promote']);
});

t.test('a bare fence_handler gets the default fence actions and no fence loop', async (t) => {
  const cfg = parseConfigText('fence_handler:\n', FILE);
  t.same(cfg.fence?.agents, []);
  t.equal(cfg.fence?.actions.length, 2);
  t.equal(cfg.fenceHandler?.event, 'fence');
  t.same(configRoles(cfg), ['fence_handler']);
});

t.test('defaults do not leak between loads', async (t) => {
  const a = parseConfigText('fence_handler: {}\n', FILE);
  (a.fence!.actions[0] as string[]).push('mutated');
  const b = parseConfigText('fence_handler: {}\n', FILE);
  t.same(b.fence!.actions[0], ['systemctl', 'stop', 'openstack-nova-compute']);
});

t.test('every key is read and normalized', async (t) => {
  const text = `
node: cmp-01
pidfile: /run/x/x.pid
state_dir: /var/lib/x
log: { level: 5, file: /var/log/x.log }
vip:
  interface: bond0
  address: 192.168.5.10/24
  ip_file: /etc/vigil/ips
  check_interval: 2
  failure_check_interval: 0.5
  take_over_after: 7
  probe_timeout: 300ms
  probe_timeout_min: 30ms
  master_check_interval: 1m
  ip_file_check_interval: 1h
  announce: { count: 0, interval: 0 }
  on_master: systemctl start haproxy
  on_slave: [systemctl, stop, haproxy]
  command_timeout: 45s
  track: { command: [/bin/check, -q], interval: 3s, fall: 4, rise: 5, timeout: 1s }
  backend: vzctl
  container: 101
  vzctl: /usr/sbin/vzctl
  vzlist: /usr/sbin/vzlist
  container_settle: 0
fence:
  agents:
    - { name: a, url: 'https://10.0.0.1:8501/', token_file: /etc/vigil/tok, command: [consul, agent], join: [10.0.0.5, 10.0.0.6] }
    - { name: b, url: 'http://10.1.0.1:8500' }
  interfaces: [eth0, eth1]
  check_interval: 10s
  confirm_cycles: 4
  request_timeout: 3s
  neighbour_probe_timeout: 1s
  actions: ["echo fenced", [touch, /tmp/x]]
  action_timeout: 5s
  dry_run: true
  watchdog: { device: /dev/watchdog1, timeout: 60 }
fence_handler:
  event: fence-test
  max_age: 5m
  max_skew: 0
  key_file: /etc/vigil/fence.key
  on_enable: []
`;
  const cfg = parseConfigText(text, FILE);
  t.equal(cfg.node, 'cmp-01');
  t.equal(cfg.pidfile, '/run/x/x.pid');
  t.equal(cfg.stateDir, '/var/lib/x');
  t.same(cfg.log, { level: 'fatal', file: '/var/log/x.log' }, 'vzhaipd level 5 maps to fatal');
  t.same(cfg.vip, {
    interface: 'bond0',
    address: { address: '192.168.5.10', prefix: 24 },
    ipFile: '/etc/vigil/ips',
    checkIntervalMs: 2000,
    failureCheckIntervalMs: 500,
    takeOverAfter: 7,
    probeTimeoutMs: 300,
    probeTimeoutMinMs: 30,
    masterCheckIntervalMs: 60_000,
    ipFileCheckIntervalMs: 3_600_000,
    announce: { count: 0, intervalMs: 0 },
    onMaster: 'systemctl start haproxy',
    onSlave: ['systemctl', 'stop', 'haproxy'],
    commandTimeoutMs: 45_000,
    track: { command: ['/bin/check', '-q'], intervalMs: 3000, fall: 4, rise: 5, timeoutMs: 1000 },
    backend: 'vzctl',
    container: '101',
    vzctl: '/usr/sbin/vzctl',
    vzlist: '/usr/sbin/vzlist',
    containerSettleMs: 0,
  });
  t.same(cfg.fence, {
    agents: [
      { name: 'a', url: 'https://10.0.0.1:8501', tokenFile: '/etc/vigil/tok', command: ['consul', 'agent'], join: ['10.0.0.5', '10.0.0.6'] },
      { name: 'b', url: 'http://10.1.0.1:8500' },
    ],
    interfaces: ['eth0', 'eth1'],
    checkIntervalMs: 10_000,
    confirmCycles: 4,
    requestTimeoutMs: 3000,
    neighbourProbeTimeoutMs: 1000,
    actions: ['echo fenced', ['touch', '/tmp/x']],
    actionTimeoutMs: 5000,
    dryRun: true,
    watchdog: { device: '/dev/watchdog1', timeoutMs: 60_000 },
  });
  t.same(cfg.fenceHandler, { event: 'fence-test', maxAgeMs: 300_000, maxSkewMs: 0, keyFile: '/etc/vigil/fence.key', onEnable: [] });
});

t.test('log levels', async (t) => {
  const level = (v: unknown) => parseConfigText(stringify({ log: { level: v }, fence_handler: {} }), FILE).log.level;
  for (const name of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) t.equal(level(name), name);
  t.equal(level(0), 'fatal');
  t.equal(level(10), 'error');
  t.equal(level(20), 'warn');
  t.equal(level(40), 'info');
  t.equal(level(99), 'debug');
  t.equal(level(900), 'trace');
});

// [path, bad value, problem words, reported path (default: path)]
const BAD: [Path, unknown, string, Path?][] = [
  [['node'], '-web', 'is not a node name'],
  [['node'], 'x'.repeat(64), 'is not a node name'],
  [['node'], 5, 'is not a node name'],
  [['pidfile'], 'run/vigil.pid', 'is not an absolute file path'],
  [['pidfile'], '/run/vigil/', 'is not an absolute file path'],
  [['state_dir'], 7, 'is not an absolute file path'],
  [['log', 'level'], 'loud', 'is not a log level'],
  [['log', 'level'], 901, 'is out of range'],
  [['log', 'level'], -1, 'is out of range'],
  [['log', 'level'], 1.5, 'is not a log level'],
  [['log', 'file'], 'vigil.log', 'is not an absolute file path'],
  [['log'], 'info', 'is not a mapping'],
  [['vip'], ['eth0'], 'is not a mapping'],
  [['vip', 'interface'], 'eth0:0', 'is not an interface name'],
  [['vip', 'interface'], 'a/b', 'is not an interface name'],
  [['vip', 'interface'], 'abcdefghijklmnop', 'is not an interface name'],
  [['vip', 'interface'], '', 'is not an interface name'],
  [['vip', 'interface'], 'et h0', 'is not an interface name'],
  [['vip', 'interface'], '..', 'is not an interface name'],
  [['vip', 'address'], '10.0.0.256', 'is not an IPv4 address'],
  [['vip', 'address'], '10.0.0.1/33', 'is not an IPv4 address'],
  [['vip', 'address'], '010.0.0.1', 'is not an IPv4 address'],
  [['vip', 'address'], 'web.example', 'is not an IPv4 address'],
  [['vip', 'address'], 167772161, 'is not an IPv4 address'],
  [['vip', 'address'], '127.0.0.1', 'is not a unicast address'],
  [['vip', 'address'], '224.0.0.18', 'is not a unicast address'],
  [['vip', 'address'], '0.0.0.0', 'is not a unicast address'],
  [['vip', 'address'], '10.0.0.255/24', 'is the network or broadcast address'],
  [['vip', 'address'], '10.0.0.0/24', 'is the network or broadcast address'],
  [['vip', 'ip_file'], 'ha-ips', 'is not an absolute file path'],
  [['vip', 'check_interval'], '5x', 'is not a duration'],
  [['vip', 'check_interval'], '-1s', 'is not a duration'],
  [['vip', 'check_interval'], '1d', 'is not a duration'],
  [['vip', 'check_interval'], true, 'is not a duration'],
  [['vip', 'check_interval'], 0, 'is out of range'],
  [['vip', 'check_interval'], '25h', 'is out of range'],
  [['vip', 'failure_check_interval'], '1 s', 'is not a duration'],
  [['vip', 'take_over_after'], 0, 'is out of range'],
  [['vip', 'take_over_after'], 1001, 'is out of range'],
  [['vip', 'take_over_after'], 1.5, 'is not an integer'],
  [['vip', 'take_over_after'], '3', 'is not an integer'],
  [['vip', 'probe_timeout'], '5ms', 'is out of range'],
  [['vip', 'probe_timeout'], '2m', 'is out of range'],
  [['vip', 'probe_timeout_min'], '4ms', 'is out of range'],
  [['vip', 'probe_timeout_min'], 'fast', 'is not a duration'],
  [['vip', 'failure_check_interval'], '-1s', 'is not a duration'],
  [['vip', 'master_check_interval'], 'soon', 'is not a duration'],
  [['vip', 'ip_file_check_interval'], [], 'is not a duration'],
  [['vip', 'announce'], 3, 'is not a mapping'],
  [['vip', 'announce', 'count'], -1, 'is out of range'],
  [['vip', 'announce', 'count'], 101, 'is out of range'],
  [['vip', 'announce', 'count'], 'three', 'is not an integer'],
  [['vip', 'announce', 'interval'], '2m', 'is out of range'],
  [['vip', 'on_master'], '', 'is an empty command'],
  [['vip', 'on_master'], '   ', 'is an empty command'],
  [['vip', 'on_master'], [], 'is an empty command'],
  [['vip', 'on_master'], [1, 2], 'is not a list of strings'],
  [['vip', 'on_master'], ['', 'x'], 'has an empty program name'],
  [['vip', 'on_master'], { run: 'x' }, 'is not a command'],
  [['vip', 'on_slave'], 5, 'is not a command'],
  [['vip', 'command_timeout'], '50ms', 'is out of range'],
  [['vip', 'track'], 'check', 'is not a mapping'],
  [['vip', 'track', 'command'], [], 'is an empty command'],
  [['vip', 'track', 'interval'], 'x', 'is not a duration'],
  [['vip', 'track', 'fall'], 0, 'is out of range'],
  [['vip', 'track', 'rise'], 'x', 'is not an integer'],
  [['vip', 'track', 'timeout'], 'x', 'is not a duration'],
  [['vip', 'backend'], 'ip', 'is not a valid choice'],
  [['vip', 'container'], '-101', 'is not a container ID'],
  [['vip', 'container'], 'ct 101', 'is not a container ID'],
  [['vip', 'container'], -1, 'is not a container ID'],
  [['vip', 'vzctl'], 'vzctl --verbose', 'is not a program name'],
  [['vip', 'vzctl'], 'rm;x', 'is not a program name'],
  [['vip', 'vzlist'], '', 'is not a program name'],
  [['vip', 'container_settle'], 'x', 'is not a duration'],
  [['fence'], [], 'is not a mapping'],
  [['fence', 'agents'], 'mgmt', 'is not a list'],
  [['fence', 'agents', 0], 'mgmt', 'is not a mapping'],
  [['fence', 'agents', 0, 'name'], '', 'is not a valid name'],
  [['fence', 'agents', 0, 'name'], '-x', 'is not a valid name'],
  [['fence', 'agents', 0, 'url'], 'ftp://10.0.0.1', 'is not an agent URL'],
  [['fence', 'agents', 0, 'url'], 'http://u:p@10.0.0.1:8500', 'is not an agent URL'],
  [['fence', 'agents', 0, 'url'], 'http://10.0.0.1:8500/v1', 'is not an agent URL'],
  [['fence', 'agents', 0, 'url'], 'http://10.0.0.1:8500?x=1', 'is not an agent URL'],
  [['fence', 'agents', 0, 'url'], '10.0.0.1:8500', 'is not an agent URL'],
  [['fence', 'agents', 0, 'token_file'], 'tok', 'is not an absolute file path'],
  [['fence', 'agents', 0, 'command'], 'consul agent', 'is not a command'],
  [['fence', 'agents', 0, 'command'], [], 'is an empty command'],
  [['fence', 'agents', 0, 'join'], [], 'is empty'],
  [['fence', 'agents', 0, 'join'], '10.0.0.5', 'is not a list'],
  [['fence', 'agents', 0, 'join'], ['10.0.0.256'], 'is not an IPv4 address', ['fence', 'agents', 0, 'join', 0]],
  [['fence', 'agents', 0, 'join'], ['10.0.0.5', '10.0.0.5'], 'is listed twice', ['fence', 'agents', 0, 'join', 1]],
  [['fence', 'interfaces'], [], 'is empty'],
  [['fence', 'interfaces'], ['eth0:1'], 'is not an interface name', ['fence', 'interfaces', 0]],
  [['fence', 'check_interval'], '50ms', 'is out of range'],
  [['fence', 'confirm_cycles'], 0, 'is out of range'],
  [['fence', 'request_timeout'], 'x', 'is not a duration'],
  [['fence', 'neighbour_probe_timeout'], 'x', 'is not a duration'],
  [['fence', 'actions'], [], 'is empty'],
  [['fence', 'actions'], 'systemctl poweroff', 'is not a list'],
  [['fence', 'actions'], [[]], 'is an empty command', ['fence', 'actions', 0]],
  [['fence', 'action_timeout'], 'x', 'is not a duration'],
  [['fence', 'dry_run'], 'yes', 'is not a boolean'],
  [['fence', 'dry_run'], 1, 'is not a boolean'],
  [['fence', 'watchdog'], true, 'is not a mapping'],
  [['fence', 'watchdog', 'device'], 'dev/watchdog', 'is not an absolute file path'],
  [['fence', 'watchdog', 'timeout'], '500ms', 'is out of range'],
  [['fence_handler'], 'fence', 'is not a mapping'],
  [['fence_handler', 'event'], 'fence event', 'is not a Consul event name'],
  [['fence_handler', 'event'], '../fence', 'is not a Consul event name'],
  [['fence_handler', 'event'], '', 'is not a Consul event name'],
  [['fence_handler', 'max_age'], '500ms', 'is out of range'],
  [['fence_handler', 'max_skew'], 'x', 'is not a duration'],
  [['fence_handler', 'key_file'], 'fence.key', 'is not an absolute file path'],
  [['fence_handler', 'on_enable'], 'systemctl enable x', 'is not a list'],
  [['fence_handler', 'on_enable'], [5], 'is not a command', ['fence_handler', 'on_enable', 0]],
];

t.test('each bad value is refused with key path, value and expectation', async (t) => {
  for (const [path, value, problem, reported] of BAD) {
    const cfg = full();
    if (path[0] === 'vip' && path[1] === 'container') (cfg.vip as Obj).backend = 'vzctl';
    setIn(cfg, path, value);
    const errs = errorsOf(stringify(cfg));
    const where = formatKeyPath(reported ?? path);
    const shown = reported ? formatValue((value as unknown[])[reported[reported.length - 1] as number]) : formatValue(value);
    const hit = errs.find((e) => e.includes(`: ${where}: ${shown} ${problem}`));
    t.ok(hit, `${where} = ${JSON.stringify(value)} → ${problem}`, { errors: errs });
    if (hit) t.match(hit, /\(expected .+\)$/, `${where}: says what was expected`);
  }
});

t.test('the message from the brief, word for word', async (t) => {
  const errs = errorsOf('vip:\n  interface: eth0\n  address: 10.0.0.1\n  check_interval: 5x\n');
  t.same(errs, [`${FILE}:4: vip.check_interval: '5x' is not a duration (expected a duration such as '200ms', '1s', '2m' or a number of seconds, from 10ms to 24h)`]);
});

/** Every mapping in the schema, as a path into `full()` (lists at index 0). */
function objectPaths(schema: Obj, path: Path = []): Path[] {
  const out: Path[] = [];
  if (schema.type === 'object' && schema.patternProperties) {
    // A mapping from names (group name → group, monitor.networks, …): its own level takes any
    // name; the values' mappings are walked under the name full() uses there, if it has one.
    const at = path.reduce<unknown>((o, k) => (o as Record<string | number, unknown> | undefined)?.[k], full()) as Obj | undefined;
    const name = at && typeof at === 'object' ? Object.keys(at)[0] : undefined;
    if (name !== undefined) for (const s of Object.values(schema.patternProperties as Record<string, Obj>)) out.push(...objectPaths(s, [...path, name]));
  } else if (schema.type === 'object') {
    out.push(path);
    for (const [k, s] of Object.entries(schema.properties as Record<string, Obj>)) out.push(...objectPaths(s, [...path, k]));
  } else if (schema.type === 'array') {
    out.push(...objectPaths(schema.items as Obj, [...path, 0]));
  }
  return out;
}

t.test('unknown keys are refused at every level', async (t) => {
  const paths = objectPaths(builtinConfigSchema());
  t.ok(paths.length >= 9, `found ${paths.length} mappings in the schema`);
  for (const p of paths) {
    const cfg = full();
    setIn(cfg, [...p, 'bogus_key'], 1);
    const errs = errorsOf(stringify(cfg));
    const where = formatKeyPath([...p, 'bogus_key']);
    t.ok(errs.some((e) => e.includes(`: ${where}: unknown key (`)), `${where} refused`, { errors: errs });
  }
});

t.test('a name-keyed mapping refuses a key that is not a name', async (t) => {
  const cfg = full();
  setIn(cfg, ['monitor', 'networks', 'bad name!'], { url: 'http://127.0.0.1:8502' });
  const errs = errorsOf(stringify(cfg));
  t.ok(errs.some((e) => e.includes('monitor.networks["bad name!"]: is not a valid name (expected a mapping of network name')), 'monitor.networks: a bad network name is refused', { errors: errs });
});

t.test('a misspelt key gets a suggestion', async (t) => {
  const errs = errorsOf('vip:\n  interface: eth0\n  address: 10.0.0.1\n  check_intervall: 2s\n');
  t.match(errs[0], /vip\.check_intervall: unknown key \(did you mean 'check_interval'\?/);
});

t.test('required keys', async (t) => {
  const cases: [string, string][] = [
    ['vip: { address: 10.0.0.1 }', 'vip.interface: is required but missing (expected a Linux interface name'],
    ['vip: { interface: eth0 }', 'vip.address: is required but missing (expected a unicast IPv4 address'],
    ['vip:', 'vip.interface: is required but missing'],
    ['vip: { interface: eth0, address: 10.0.0.1, track: {} }', 'vip.track.command: is required but missing (expected a command'],
    ['fence: { agents: [ { url: "http://127.0.0.1:8500" } ] }', 'fence.agents[0].name: is required but missing'],
    ['fence: { agents: [ { name: a } ] }', 'fence.agents[0].url: is required but missing (expected an http(s) URL'],
  ];
  for (const [text, want] of cases) {
    const errs = errorsOf(`${text}\n`);
    t.ok(errs.some((e) => e.includes(want)), want, { errors: errs });
  }
});

t.test('cross-field rules', async (t) => {
  const vip = 'vip:\n  interface: eth0\n  address: 10.0.0.1\n';
  const cases: [string, string][] = [
    [`${vip}  check_interval: 1s\n  failure_check_interval: 2s\n`,
      "vip.failure_check_interval: '2s' is longer than vip.check_interval (1s) (expected at most 1s"],
    [`${vip}  probe_timeout: 100ms\n  probe_timeout_min: 150ms\n`,
      "vip.probe_timeout_min: '150ms' is longer than vip.probe_timeout (100ms) (expected at most 100ms: the learnt timeout lies between"],
    [`${vip}  failure_check_interval: 1s\n  probe_timeout: 1s\n  master_check_interval: 500ms\n`,
      "vip.probe_timeout: '1s' is longer than vip.master_check_interval (500ms)"],
    [`${vip}  track: { command: 'true', interval: 1s, timeout: 2s }\n`,
      "vip.track.timeout: '2s' is longer than vip.track.interval (1s)"],
    [`${vip}  backend: vzctl\n`, 'vip.container: is required but missing with backend vzctl'],
    [`${vip}  container: 101\n`, 'vip.container: 101 is set but backend is netlink (expected no container, or backend: vzctl)'],
    ['fence_handler:\nfence: { request_timeout: 4s, neighbour_probe_timeout: 2s }\n',
      "fence.request_timeout: '4s' plus fence.neighbour_probe_timeout (2s) is longer than fence.check_interval (5s)"],
    ['fence_handler:\nfence: { watchdog: { timeout: 8s } }\n',
      "fence.watchdog.timeout: '8s' is shorter than twice fence.check_interval (5s) (expected at least 10s"],
    ['fence_handler:\nfence: { watchdog: { timeout: 30.5 } }\n', 'fence.watchdog.timeout: 30.5 is not whole seconds'],
    ['fence:\n  agents:\n    - { name: a, url: "http://127.0.0.1:8500" }\n    - { name: a, url: "http://127.0.0.1:8501" }\n',
      "fence.agents[1].name: 'a' is used by an earlier agent (expected a unique name)"],
    ['fence:\n  agents:\n    - { name: a, url: "http://127.0.0.1:8500" }\n    - { name: b, url: "http://127.0.0.1:8500/" }\n',
      "fence.agents[1].url: 'http://127.0.0.1:8500/' is used by an earlier agent"],
    ['node: web-a\n', 'no role configured (expected at least one of the sections vip, fence, fence_handler, monitor, group, promote or runtime_publish)'],
    ['fence: { agents: [] }\n', 'fence.agents: [] is empty and there is no vip, fence_handler, monitor, group, promote or runtime_publish section, so no role is configured'],
    ['fence:\n', 'fence.agents: [] is empty'],
  ];
  for (const [text, want] of cases) {
    const errs = errorsOf(text);
    t.ok(errs.some((e) => e.includes(want)), want, { errors: errs });
  }
  // The boundaries themselves are allowed.
  t.doesNotThrow(() => parseConfigText(`${vip}  check_interval: 1s\n  failure_check_interval: 1s\n  probe_timeout: 1s\n`, FILE));
  t.doesNotThrow(() => parseConfigText('fence_handler:\nfence: { request_timeout: 3s, neighbour_probe_timeout: 2s, watchdog: { timeout: 10 } }\n', FILE));
  t.doesNotThrow(() => parseConfigText(`${vip}  backend: vzctl\n  container: ct-web.1\n`, FILE));
  // A confirmation burst: the next probe goes out when the last one timed out.
  const burst = parseConfigText(`${vip}  check_interval: 200ms\n  failure_check_interval: 0ms\n  probe_timeout: 50ms\n`, FILE);
  t.equal(burst.vip!.failureCheckIntervalMs, 0, 'failure_check_interval 0 is a burst');
  t.equal(burst.vip!.probeTimeoutMinMs, 20, 'the learnt timeout\'s floor defaults to 20 ms');
  // A probe_timeout below the default floor lowers the floor with it (no error the operator did not ask for).
  t.equal(parseConfigText(`${vip}  probe_timeout: 10ms\n`, FILE).vip!.probeTimeoutMinMs, 10, 'floor = probe_timeout when that is shorter');
});

t.test('YAML-level refusals', async (t) => {
  const cases: [string, RegExp][] = [
    ['', /:1: the file is empty/],
    ['# only a comment\n', /:1: the file is empty/],
    ['vip: {interface: eth0, address: 10.0.0.1}\nvip: {interface: eth1, address: 10.0.0.2}\n', /:2: YAML: Map keys must be unique/],
    ['fence_handler: {}\n---\nvip: {}\n', /:2: the file holds several YAML documents \(expected exactly one\)/],
    ['- vip\n', /:1: \["vip"\] is not a mapping/],
    ['just text\n', /:1: 'just text' is not a mapping/],
    ['fence_handler: !!js/function "x"\n', /YAML: /],
    ['fence_handler: !custom {}\n', /:1: YAML: Unresolved tag: !custom/],
    ['vip: [unclosed\n', /YAML: /],
    ['fence_handler:\n\tevent: x\n', /YAML: /],
    ['fence_handler:\n? [a, b]\n: x\n', /:2: YAML: a mapping or list is used as a key/],
    ['__proto__: { fence_handler: {} }\n', /:1: __proto__: unknown key/],
  ];
  for (const [text, want] of cases) {
    const errs = errorsOf(text);
    t.ok(errs.length > 0 && want.test(errs[0]!), `${JSON.stringify(text)} → ${want}`, { errors: errs });
  }
});

t.test('alias expansion is bounded (billion laughs)', async (t) => {
  const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 9; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
  const errs = errorsOf(`${lines.join('\n')}\n`);
  t.ok(errs.length > 0, 'refused', { errors: errs });
  t.match(errs[0], /alias/i);
});

t.test('aliases within limits work', async (t) => {
  const cfg = parseConfigText('vip:\n  interface: eth0\n  address: 10.0.0.1\n  on_master: &c [systemctl, restart, haproxy]\n  track: { command: *c }\n', FILE);
  t.same(cfg.vip?.track?.command, ['systemctl', 'restart', 'haproxy']);
});

t.test('YAML 1.2 scalars: yes/no/on/off are not booleans', async (t) => {
  for (const v of ['yes', 'no', 'on', 'off', 'y', 'Yes']) {
    const errs = errorsOf(`fence_handler:\nfence:\n  dry_run: ${v}\n`);
    t.ok(errs.some((e) => e.includes('fence.dry_run:') && e.includes('is not a boolean (expected true or false)')), `dry_run: ${v}`, { errors: errs });
  }
});

t.test('all errors are collected, unknown keys first, then by line; the first in the message', async (t) => {
  const text = 'vip:\n  interface: eth0:0\n  address: 10.0.0.1\n  take_over_after: 0\nfence_handler:\n  max_age: x\n  bogus: 1\n';
  let err: ConfigError | undefined;
  try { parseConfigText(text, FILE); } catch (e) { err = e as ConfigError; }
  t.ok(err instanceof ConfigError);
  t.equal(err!.code, 'EVIGILCONFIG');
  const errs = err!.detail!.errors as string[];
  t.equal(errs.length, 4);
  t.same(errs.map((e) => Number(/^[^:]+:(\d+):/.exec(e)![1])), [7, 2, 4, 6], 'the unknown key, then line numbers in order');
  t.equal(err!.message, `${errs[0]} (and 3 more errors)`);
  t.notOk(err!.message.includes('\n'), 'the message is one line');
});

t.test('a misspelt required key: the one line shown is the did-you-mean, not "missing"', async (t) => {
  let msg = '';
  try { parseConfigText('vip:\n  interface: eth0\n  adress: 10.0.0.1\n', FILE); } catch (e) { msg = (e as Error).message; }
  t.match(msg, /vip\.adress: unknown key \(did you mean 'address'\?/);
  t.match(msg, /\(and 1 more error\)$/);
});

t.test('the example config is valid and documents every key', async (t) => {
  const path = join(__dirname, '../../etc/vigil.example.yml');
  const text = readFileSync(path, 'utf8');
  const cfg = parseConfigText(text, path);
  t.same(configRoles(cfg), ['vip', 'fence', 'fence_handler', 'monitor', 'group', 'promote', 'runtime_publish']);
  // Every key of the schema appears in the example, set or commented.
  const keys = new Set<string>();
  const walk = (s: Obj) => {
    if (s.type === 'object') for (const [k, c] of Object.entries((s.properties ?? {}) as Record<string, Obj>)) { keys.add(k); walk(c); }
    // A mapping from names (group name → group): its values' keys.
    if (s.type === 'object') for (const c of Object.values((s.patternProperties ?? {}) as Record<string, Obj>)) walk(c);
    if (s.type === 'array') walk(s.items as Obj);
  };
  walk(builtinConfigSchema());
  for (const k of keys) t.match(text, new RegExp(`(^|\\n)[ #-]*${k}:`), `example mentions ${k}`);
  // With its commented keys switched on, it is still valid.
  const uncommented = text.replace(/^(\s*)# (ip_file|on_master|on_slave|track|  command|  interval|  fall|  rise|  timeout|file|token_file|command|join|interfaces|watchdog|  device|key_file):/gm, '$1$2:');
  t.not(uncommented, text);
  const all = parseConfigText(uncommented, path);
  t.ok(all.vip?.track && all.fence?.watchdog && all.fenceHandler?.keyFile && all.fence?.interfaces && all.log.file && all.vip.onMaster);
});
